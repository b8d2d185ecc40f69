//! The built-in model: sentence-transformers all-MiniLM-L6-v2 run in-process with candle.
//!
//! The pipeline is the one sentence-transformers runs: WordPiece tokenisation truncated at the model's
//! `max_seq_length` (256), the BERT encoder, mean pooling over the text's tokens, L2 normalisation. The
//! encoder works on packed sequences (see [`crate::encoder`]): texts of different lengths share a forward
//! pass without padding, so no work is spent on padding at all (sorting by length, the usual way to cut it,
//! is not needed).

use std::path::{Path, PathBuf};

use candle_core::Device;
use tokenizers::{Tokenizer, TruncationParams};

use crate::encoder::{Encoder, EncoderConfig};
use crate::error::{Error, Result};

/// Tokens per forward pass at most: bounds the activations (about 30 KB per token across the widest layer
/// and its inputs) while keeping the matrix products large enough to use every core.
const MAX_TOKENS_PER_PASS: usize = 8_192;
/// sentence-transformers' `max_seq_length` for this model, used when the directory does not say.
const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// The files the model directory must hold.
const REQUIRED_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// A loaded local model. Inference is synchronous and CPU-bound: call it from a blocking thread.
pub struct LocalModel {
    encoder: Encoder,
    tokenizer: Tokenizer,
    max_seq_len: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("dir", &self.dir)
            .field("dim", &self.encoder.hidden())
            .field("max_seq_len", &self.max_seq_len)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Loads the model from a directory holding `model.safetensors`, `tokenizer.json` and `config.json`
    /// (and optionally `sentence_bert_config.json` for the maximum sequence length).
    pub fn load(dir: &Path) -> Result<Self> {
        check_model_dir(dir)?;
        let invalid = |message: String| Error::ModelInvalid {
            dir: dir.to_owned(),
            message,
        };

        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|err| invalid(format!("reading config.json: {err}")))?;
        let config: EncoderConfig = serde_json::from_str(&config_text)
            .map_err(|err| invalid(format!("config.json: {err}")))?;

        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &device)
            .map_err(|err| invalid(format!("model.safetensors: {err}")))?;
        let encoder = Encoder::load(tensors, &config, &device).map_err(invalid)?;
        let max_seq_len = read_max_seq_len(dir)?.min(encoder.max_len());

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|err| invalid(format!("tokenizer.json: {err}")))?;
        // The shipped tokenizer.json pads every input to a fixed 128 tokens and truncates there; the encoder
        // takes unpadded sequences, and truncation belongs at the model's real maximum.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_len,
                ..TruncationParams::default()
            }))
            .map_err(|err| invalid(format!("setting truncation: {err}")))?;

        Ok(LocalModel {
            encoder,
            tokenizer,
            max_seq_len,
            dir: dir.to_owned(),
        })
    }

    /// The dimension of the vectors.
    pub fn dim(&self) -> usize {
        self.encoder.hidden()
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

    /// Embeds tokenised texts (with `[CLS]`/`[SEP]`, truncated), one vector per text, in order, in passes of
    /// at most [`MAX_TOKENS_PER_PASS`] tokens.
    pub fn embed_tokens(&self, tokens: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(tokens.len());
        let mut start = 0;
        while start < tokens.len() {
            let mut end = start;
            let mut budget = 0;
            while end < tokens.len()
                && (end == start || budget + tokens[end].len() <= MAX_TOKENS_PER_PASS)
            {
                budget += tokens[end].len();
                end += 1;
            }
            vectors.extend(self.encoder.embed(&tokens[start..end])?);
            start = end;
        }
        Ok(vectors)
    }
}

/// Checks, without loading anything, that `dir` holds the files the model needs; the error names the
/// directory and the command that fetches the model (for `lakehouse doctor` and start-up checks).
pub fn check_model_dir(dir: &Path) -> Result<()> {
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
    Ok(())
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
