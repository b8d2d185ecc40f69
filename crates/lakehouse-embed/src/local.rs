//! The built-in model: sentence-transformers all-MiniLM-L6-v2 run in-process with candle.
//!
//! The pipeline is the one sentence-transformers runs: WordPiece tokenisation truncated at the model's
//! `max_seq_length` (256), the BERT encoder, mean pooling over the attention mask, L2 normalisation.
//! Texts are sorted by token count and cut into sub-batches so each forward pass pads as little as possible.

use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// Sequences per forward pass at most. Larger passes stop paying off once the matrix products are big
/// enough to keep every core busy.
const MAX_SEQS_PER_PASS: usize = 64;
/// Padded tokens per forward pass at most, so a batch of long texts keeps its attention matrices small
/// (scores are `seqs × heads × len²` floats).
const MAX_TOKENS_PER_PASS: usize = 8_192;
/// sentence-transformers' `max_seq_length` for this model, used when the directory does not say.
const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// The files the model directory must hold.
const REQUIRED_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// A loaded local model. Inference is synchronous and CPU-bound: call it from a blocking thread.
pub struct LocalModel {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    max_seq_len: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .field("max_seq_len", &self.max_seq_len)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads the model from a directory holding `model.safetensors`, `tokenizer.json` and `config.json`
    /// (and optionally `sentence_bert_config.json` for the maximum sequence length).
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::ModelMissing {
                dir: dir.to_owned(),
                what: "no such directory".to_owned(),
            });
        }
        for file in REQUIRED_FILES {
            if !dir.join(file).is_file() {
                return Err(Error::ModelMissing {
                    dir: dir.to_owned(),
                    what: format!("no {file}"),
                });
            }
        }
        let invalid = |message: String| Error::ModelInvalid {
            dir: dir.to_owned(),
            message,
        };

        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|err| invalid(format!("reading config.json: {err}")))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|err| invalid(format!("config.json: {err}")))?;
        let max_seq_len = read_max_seq_len(dir)?.min(config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|err| invalid(format!("tokenizer.json: {err}")))?;
        // The shipped tokenizer.json pads every input to a fixed 128 tokens and truncates there; padding is
        // done per sub-batch below, and truncation belongs at the model's real maximum.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_len,
                ..TruncationParams::default()
            }))
            .map_err(|err| invalid(format!("setting truncation: {err}")))?;

        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &device)
            .map_err(|err| invalid(format!("model.safetensors: {err}")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let bert =
            BertModel::load(vb, &config).map_err(|err| invalid(format!("model weights: {err}")))?;

        Ok(LocalModel {
            bert,
            tokenizer,
            device,
            dim: config.hidden_size,
            max_seq_len,
            dir: dir.to_owned(),
        })
    }

    /// The dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Embeds texts, returning one L2-normalised vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|err| Error::Inference(format!("tokenising: {err}")))?;
        let tokens: Vec<&[u32]> = encodings
            .iter()
            .map(|encoding| encoding.get_ids())
            .collect();
        self.embed_tokens(&tokens)
    }

    /// Embeds already tokenised texts (with `[CLS]`/`[SEP]`, truncated), one vector per text, in order.
    fn embed_tokens(&self, tokens: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&index| tokens[index].len());

        let mut vectors = vec![Vec::new(); tokens.len()];
        let mut start = 0;
        while start < order.len() {
            // Sorted ascending, so the last sequence taken sets the padded length of the pass.
            let mut end = start + 1;
            while end < order.len()
                && end - start < MAX_SEQS_PER_PASS
                && (end - start + 1) * tokens[order[end]].len() <= MAX_TOKENS_PER_PASS
            {
                end += 1;
            }
            let chunk = &order[start..end];
            let pooled = self.forward(chunk.iter().map(|&index| tokens[index]))?;
            for (&index, vector) in chunk.iter().zip(pooled) {
                vectors[index] = vector;
            }
            start = end;
        }
        Ok(vectors)
    }

    /// One forward pass: pads to the longest sequence, runs BERT, mean-pools and normalises.
    fn forward<'a>(
        &self,
        sequences: impl ExactSizeIterator<Item = &'a [u32]> + Clone,
    ) -> Result<Vec<Vec<f32>>> {
        let count = sequences.len();
        let len = sequences
            .clone()
            .map(<[u32]>::len)
            .max()
            .unwrap_or(0)
            .min(self.max_seq_len);
        let mut ids = vec![0u32; count * len];
        let mut mask = vec![0f32; count * len];
        for (row, sequence) in sequences.enumerate() {
            let sequence = &sequence[..sequence.len().min(len)];
            ids[row * len..row * len + sequence.len()].copy_from_slice(sequence);
            mask[row * len..row * len + sequence.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, (count, len), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let mask = Tensor::from_vec(mask, (count, len), &self.device)?;

        let hidden = self.bert.forward(&ids, &type_ids, Some(&mask))?;
        // Mean over real tokens only: padding positions are zeroed by the mask and not counted.
        let summed = hidden.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?;
        let counts = mask.sum_keepdim(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// `max_seq_length` from `sentence_bert_config.json`, or the model's known default when the file is absent.
fn read_max_seq_len(dir: &Path) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct SentenceBertConfig {
        max_seq_length: usize,
    }
    let path = dir.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(DEFAULT_MAX_SEQ_LEN);
    }
    let text = std::fs::read_to_string(&path).map_err(|err| Error::ModelInvalid {
        dir: dir.to_owned(),
        message: format!("reading sentence_bert_config.json: {err}"),
    })?;
    let config: SentenceBertConfig =
        serde_json::from_str(&text).map_err(|err| Error::ModelInvalid {
            dir: dir.to_owned(),
            message: format!("sentence_bert_config.json: {err}"),
        })?;
    Ok(config.max_seq_length.max(2))
}
