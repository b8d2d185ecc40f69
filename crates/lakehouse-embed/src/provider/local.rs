//! The built-in model as a provider: loaded on first use (or at start-up), run on the inference pool.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::config::{EmbedConfig, LOCAL_MODEL, ProviderKind};
use crate::error::{Error, Result};
use crate::local::LocalModel;
use crate::pool::{InferencePool, PoolOptions};
use crate::provider::Provider;

/// The Hugging Face name of the local model, accepted as an alias.
const LOCAL_MODEL_ALIAS: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The local model provider.
#[derive(Debug)]
pub struct LocalProvider {
    dir: PathBuf,
    options: PoolOptions,
    // Left empty when loading fails, so a request after the model is put in place loads it.
    pool: OnceCell<Arc<InferencePool>>,
}

impl LocalProvider {
    /// A provider that loads the model from `config.model_dir` when first needed.
    pub fn new(config: &EmbedConfig) -> Self {
        LocalProvider {
            dir: config.model_dir.clone(),
            options: PoolOptions {
                threads: config.threads,
                batch_window: std::time::Duration::from_micros(config.batch_window_us),
                max_queued_texts: config.max_queued_texts,
            },
            pool: OnceCell::new(),
        }
    }

    /// The pool, loading the model on a blocking thread if this is the first use.
    pub async fn pool(&self) -> Result<&Arc<InferencePool>> {
        self.pool
            .get_or_try_init(|| async {
                let dir = self.dir.clone();
                let options = self.options.clone();
                let started = std::time::Instant::now();
                let pool = tokio::task::spawn_blocking(move || {
                    let model = LocalModel::load(&dir)?;
                    InferencePool::start(model, &options)
                })
                .await
                .map_err(|err| Error::Inference(format!("loading the model: {err}")))??;
                tracing::info!(dir = %self.dir.display(), elapsed_ms = started.elapsed().as_millis() as u64,
                    "local embedding model loaded");
                Ok(Arc::new(pool))
            })
            .await
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn default_model(&self) -> &str {
        LOCAL_MODEL
    }

    fn serves(&self, model: &str) -> bool {
        model == LOCAL_MODEL || model == LOCAL_MODEL_ALIAS
    }

    async fn embed(&self, _model: &str, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        self.pool().await?.embed(texts).await
    }

    async fn check(&self) -> Result<serde_json::Value> {
        let pool = self.pool().await?;
        Ok(serde_json::json!({
            "model": LOCAL_MODEL,
            "dim": pool.model().dim(),
            "model_dir": pool.model().dir().display().to_string(),
            "queued_texts": pool.queued_texts(),
        }))
    }
}
