//! The BERT encoder of MiniLM over packed sequences.
//!
//! Texts of a batch are laid end to end, `(tokens, hidden)`, with no padding: every matrix product works on
//! real tokens only, and attention looks within each text's own rows (see [`crate::kernels`]). The matrix
//! products are candle's; the steps between them are the fused kernels. The arithmetic is BERT's
//! (post-norm layers, erf GELU), so the result equals padded BERT with an attention mask, which the tests
//! check against candle-transformers' BERT and sentence-transformers' own vectors.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::Deserialize;

use crate::kernels::{Attention, BiasGelu, BiasResidualNorm, MAX_SEQ_LEN, normalise};

/// The parts of a BERT `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EncoderConfig {
    pub(crate) hidden_size: usize,
    pub(crate) num_attention_heads: usize,
    pub(crate) num_hidden_layers: usize,
    pub(crate) max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub(crate) layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub(crate) hidden_act: String,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".to_owned()
}

#[derive(Debug)]
struct Layer {
    /// `(3 × hidden, hidden)`: query, key and value weights stacked, so one product computes all three.
    qkv: Tensor,
    attention_output: Tensor,
    intermediate: Tensor,
    output: Tensor,
    attention: AttentionParams,
    gelu: BiasGelu,
    attention_norm: BiasResidualNorm,
    output_norm: BiasResidualNorm,
}

#[derive(Debug)]
struct AttentionParams {
    heads: usize,
    head_dim: usize,
    bias: Vec<f32>,
}

/// Loaded encoder weights.
#[derive(Debug)]
pub(crate) struct Encoder {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_gamma: Vec<f32>,
    embedding_beta: Vec<f32>,
    eps: f32,
    hidden: usize,
    vocab: usize,
    max_len: usize,
    layers: Vec<Layer>,
    device: Device,
}

/// The weights by name, with or without a `bert.` prefix.
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn tensor(&self, name: &str) -> Result<Tensor, String> {
        self.tensors
            .get(&format!("{}{name}", self.prefix))
            .ok_or_else(|| format!("model.safetensors has no tensor `{}{name}`", self.prefix))?
            .to_dtype(DType::F32)
            .map_err(|err| format!("{name}: {err}"))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, String> {
        let values = self
            .tensor(name)?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|err| format!("{name}: {err}"))?;
        if values.len() != len {
            return Err(format!(
                "{name} has {} values, expected {len}",
                values.len()
            ));
        }
        Ok(values)
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Tensor, String> {
        let tensor = self.tensor(name)?;
        if tensor.dims() != [rows, cols] {
            return Err(format!(
                "{name} has shape {:?}, expected [{rows}, {cols}]",
                tensor.dims()
            ));
        }
        Ok(tensor)
    }
}

impl Encoder {
    /// Builds the encoder from the tensors of `model.safetensors`; the error says what does not fit.
    pub(crate) fn load(
        tensors: HashMap<String, Tensor>,
        config: &EncoderConfig,
        device: &Device,
    ) -> Result<Self, String> {
        if config.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act `{}` is not supported (only BERT's erf `gelu`)",
                config.hidden_act
            ));
        }
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(format!(
                "hidden_size {hidden} is not divisible into {heads} heads"
            ));
        }
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let weights = Weights { tensors, prefix };
        let word_tensor = weights.tensor("embeddings.word_embeddings.weight")?;
        let vocab = word_tensor.dims().first().copied().unwrap_or(0);
        let word = weights.vector("embeddings.word_embeddings.weight", vocab * hidden)?;
        let max_len = config.max_position_embeddings.min(MAX_SEQ_LEN);
        let position = weights.vector(
            "embeddings.position_embeddings.weight",
            config.max_position_embeddings * hidden,
        )?;
        let token_type_all = weights.tensor("embeddings.token_type_embeddings.weight")?;
        // Single texts always have token type 0: only its row is needed.
        let token_type = token_type_all
            .get(0)
            .and_then(|row| row.to_vec1::<f32>())
            .map_err(|err| format!("embeddings.token_type_embeddings.weight: {err}"))?;
        let eps = config.layer_norm_eps as f32;
        let norm = |name: &str, bias: Vec<f32>| -> Result<BiasResidualNorm, String> {
            Ok(BiasResidualNorm {
                bias,
                gamma: weights.vector(&format!("{name}.LayerNorm.weight"), hidden)?,
                beta: weights.vector(&format!("{name}.LayerNorm.bias"), hidden)?,
                eps,
            })
        };

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let base = format!("encoder.layer.{index}");
            let attn = format!("{base}.attention.self");
            let q = weights.matrix(&format!("{attn}.query.weight"), hidden, hidden)?;
            let k = weights.matrix(&format!("{attn}.key.weight"), hidden, hidden)?;
            let v = weights.matrix(&format!("{attn}.value.weight"), hidden, hidden)?;
            let qkv = Tensor::cat(&[&q, &k, &v], 0).map_err(|err| format!("{attn}: {err}"))?;
            let mut bias = weights.vector(&format!("{attn}.query.bias"), hidden)?;
            bias.extend(weights.vector(&format!("{attn}.key.bias"), hidden)?);
            bias.extend(weights.vector(&format!("{attn}.value.bias"), hidden)?);
            let intermediate_rows = weights
                .tensor(&format!("{base}.intermediate.dense.weight"))?
                .dims()
                .first()
                .copied()
                .unwrap_or(0);
            layers.push(Layer {
                qkv,
                attention_output: weights.matrix(
                    &format!("{base}.attention.output.dense.weight"),
                    hidden,
                    hidden,
                )?,
                intermediate: weights.matrix(
                    &format!("{base}.intermediate.dense.weight"),
                    intermediate_rows,
                    hidden,
                )?,
                output: weights.matrix(
                    &format!("{base}.output.dense.weight"),
                    hidden,
                    intermediate_rows,
                )?,
                attention: AttentionParams {
                    heads,
                    head_dim: hidden / heads,
                    bias,
                },
                gelu: BiasGelu {
                    bias: weights.vector(
                        &format!("{base}.intermediate.dense.bias"),
                        intermediate_rows,
                    )?,
                },
                attention_norm: norm(
                    &format!("{base}.attention.output"),
                    weights.vector(&format!("{base}.attention.output.dense.bias"), hidden)?,
                )?,
                output_norm: norm(
                    &format!("{base}.output"),
                    weights.vector(&format!("{base}.output.dense.bias"), hidden)?,
                )?,
            });
        }
        Ok(Encoder {
            word,
            position,
            token_type,
            embedding_gamma: weights.vector("embeddings.LayerNorm.weight", hidden)?,
            embedding_beta: weights.vector("embeddings.LayerNorm.bias", hidden)?,
            eps,
            hidden,
            vocab,
            max_len,
            layers,
            device: device.clone(),
        })
    }

    /// The hidden size (the dimension of the pooled vectors).
    pub(crate) fn hidden(&self) -> usize {
        self.hidden
    }

    /// The longest sequence the encoder takes.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Encodes sequences of token ids (each at most [`Self::max_len`] long) and returns each one's mean-pooled,
    /// L2-normalised vector.
    pub(crate) fn embed(&self, sequences: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let mut offsets = Vec::with_capacity(sequences.len() + 1);
        offsets.push(0);
        for sequence in sequences {
            if sequence.len() > self.max_len {
                candle_core::bail!(
                    "a sequence of {} tokens exceeds the model's {}",
                    sequence.len(),
                    self.max_len
                );
            }
            offsets.push(offsets[offsets.len() - 1] + sequence.len());
        }
        let tokens = offsets[offsets.len() - 1];
        if tokens == 0 {
            candle_core::bail!("nothing to encode: every sequence is empty");
        }
        let mut x = Tensor::from_vec(
            self.embeddings(sequences)?,
            (tokens, self.hidden),
            &self.device,
        )?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &offsets)?;
        }
        let states = x.flatten_all()?.to_vec1::<f32>()?;
        Ok(offsets
            .windows(2)
            .map(|window| self.pool(&states[window[0] * self.hidden..window[1] * self.hidden]))
            .collect())
    }

    /// Word + position + token-type embeddings, layer-normalised, one row per token.
    fn embeddings(&self, sequences: &[&[u32]]) -> candle_core::Result<Vec<f32>> {
        let hidden = self.hidden;
        let rows: Vec<(u32, usize)> = sequences
            .iter()
            .flat_map(|sequence| sequence.iter().enumerate().map(|(pos, &id)| (id, pos)))
            .collect();
        if let Some(&(id, _)) = rows.iter().find(|(id, _)| *id as usize >= self.vocab) {
            candle_core::bail!("token id {id} is outside the vocabulary of {}", self.vocab);
        }
        let mut out = vec![0f32; rows.len() * hidden];
        out.par_chunks_mut(hidden)
            .zip(rows.par_iter())
            .for_each(|(out, &(id, pos))| {
                let word = &self.word[id as usize * hidden..][..hidden];
                let position = &self.position[pos * hidden..][..hidden];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = word[i] + position[i] + self.token_type[i];
                }
                normalise(out, &self.embedding_gamma, &self.embedding_beta, self.eps);
            });
        Ok(out)
    }

    fn layer(&self, layer: &Layer, x: &Tensor, offsets: &[usize]) -> candle_core::Result<Tensor> {
        let qkv = x.matmul(&layer.qkv.t()?)?;
        let attention = Attention {
            heads: layer.attention.heads,
            head_dim: layer.attention.head_dim,
            bias: layer.attention.bias.clone(),
            offsets: offsets.to_vec(),
        };
        let context = qkv.apply_op1_no_bwd(&attention)?;
        let attended = context
            .matmul(&layer.attention_output.t()?)?
            .apply_op2_no_bwd(x, &layer.attention_norm)?;
        let intermediate = attended
            .matmul(&layer.intermediate.t()?)?
            .apply_op1_no_bwd(&layer.gelu)?;
        intermediate
            .matmul(&layer.output.t()?)?
            .apply_op2_no_bwd(&attended, &layer.output_norm)
    }

    /// Mean over the sequence's token rows, then L2 normalisation (as sentence-transformers' Normalize, with
    /// its 1e-12 floor on the norm).
    fn pool(&self, rows: &[f32]) -> Vec<f32> {
        let count = (rows.len() / self.hidden).max(1) as f32;
        let mut mean = vec![0f32; self.hidden];
        for row in rows.chunks_exact(self.hidden) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x;
            }
        }
        for m in &mut mean {
            *m /= count;
        }
        let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        for m in &mut mean {
            *m /= norm;
        }
        mean
    }
}
