//! Ollama's batch endpoint: `POST {base_url}/api/embed {"model", "input": [...]}` →
//! `{"model", "embeddings": [[...], ...]}`; errors come as `{"error": "..."}`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{OllamaConfig, ProviderKind};
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::provider::http::HttpCaller;

/// The Ollama provider.
#[derive(Debug)]
pub struct OllamaProvider {
    base_url: String,
    model: String,
    http: HttpCaller,
}

#[derive(Serialize)]
struct EmbedBody<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbedAnswer {
    embeddings: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct VersionAnswer {
    version: String,
}

impl OllamaProvider {
    /// A provider calling the configured server.
    pub fn new(config: &OllamaConfig) -> Result<Self> {
        Ok(OllamaProvider {
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            model: config.model.clone(),
            http: HttpCaller::new(
                "ollama",
                "the Ollama server's proxy settings",
                config.timeout(),
                config.retries,
                None,
            )?,
        })
    }
}

#[async_trait]
impl Provider for OllamaProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ollama
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn serves(&self, _model: &str) -> bool {
        true
    }

    async fn embed(&self, model: &str, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let url = format!("{}/api/embed", self.base_url);
        let answer: EmbedAnswer = self
            .http
            .post(
                &url,
                &EmbedBody {
                    model,
                    input: &texts,
                },
            )
            .await?;
        if answer.embeddings.len() != texts.len() {
            return Err(Error::ProviderProtocol {
                provider: "ollama",
                message: format!(
                    "sent {} texts, got {} embeddings back",
                    texts.len(),
                    answer.embeddings.len()
                ),
            });
        }
        Ok(answer.embeddings)
    }

    async fn check(&self) -> Result<serde_json::Value> {
        let url = format!("{}/api/version", self.base_url);
        let answer: VersionAnswer = self.http.get(&url).await?;
        Ok(
            serde_json::json!({"base_url": self.base_url, "model": self.model, "version": answer.version}),
        )
    }
}
