//! Integration tests of the embeddings service, one binary with a module per area.
//!
//! The local-model tests run the real all-MiniLM-L6-v2 from the model directory (the configured default,
//! or `LAKEHOUSE_EMBED_MODEL_DIR`); they fail with the fetch command when it is missing.

mod limits;
mod local_model;
mod providers;
mod reference_bert;

use std::path::PathBuf;

use lakehouse_embed::EmbedConfig;
use lakehouse_embed::config::default_model_dir;

/// The model directory the tests use.
fn model_dir() -> PathBuf {
    std::env::var_os("LAKEHOUSE_EMBED_MODEL_DIR").map_or_else(default_model_dir, PathBuf::from)
}

/// The default configuration over the test model directory.
fn local_config() -> EmbedConfig {
    EmbedConfig {
        model_dir: model_dir(),
        ..EmbedConfig::default()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
