//! Any OpenAI-compatible embeddings endpoint: `POST {base_url}/embeddings {"model", "input": [...],
//! "encoding_format": "float"}` → `{"data": [{"index", "embedding": [...]}, ...], "model"}`; errors come as
//! `{"error": {"message": "..."}}`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{OpenAiConfig, ProviderKind};
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::provider::http::HttpCaller;

/// The OpenAI-compatible provider.
#[derive(Debug)]
pub struct OpenAiProvider {
    base_url: String,
    model: String,
    http: HttpCaller,
}

#[derive(Serialize)]
struct EmbedBody<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct EmbedAnswer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<serde_json::Value>,
}

impl OpenAiProvider {
    /// A provider calling `base_url` (which ends in `/v1` or whatever prefix the service uses).
    pub fn new(base_url: &str, config: &OpenAiConfig) -> Result<Self> {
        Ok(OpenAiProvider {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: config.model.clone(),
            http: HttpCaller::new(
                "openai",
                "embed.openai.api_key",
                config.timeout(),
                config.retries,
                config.api_key.clone(),
            )?,
        })
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn serves(&self, _model: &str) -> bool {
        true
    }

    async fn embed(&self, model: &str, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let url = format!("{}/embeddings", self.base_url);
        let body = EmbedBody {
            model,
            input: &texts,
            encoding_format: "float",
        };
        let answer: EmbedAnswer = self.http.post(&url, &body).await?;
        // The items carry their index; the order of the array is not promised.
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for item in answer.data {
            match vectors.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                Some(Some(_)) | None => {
                    return Err(Error::ProviderProtocol {
                        provider: "openai",
                        message: format!(
                            "embedding index {} is repeated or out of range for {} texts",
                            item.index,
                            texts.len()
                        ),
                    });
                }
            }
        }
        vectors
            .into_iter()
            .enumerate()
            .map(|(index, vector)| {
                vector.ok_or_else(|| Error::ProviderProtocol {
                    provider: "openai",
                    message: format!("no embedding came back for text {index}"),
                })
            })
            .collect()
    }

    async fn check(&self) -> Result<serde_json::Value> {
        let url = format!("{}/models", self.base_url);
        let models: ModelList = self.http.get(&url).await?;
        Ok(
            serde_json::json!({"base_url": self.base_url, "model": self.model, "models_listed": models.data.len()}),
        )
    }
}
