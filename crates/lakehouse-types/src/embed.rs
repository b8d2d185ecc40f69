//! Embedding requests and responses.

use serde::{Deserialize, Serialize};

/// A request to embed texts (the wire form `{"text": "..."}` is turned into one of these by the HTTP layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// The texts, in order.
    pub texts: Vec<String>,
    /// The model (or `provider/model`); the configured default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// The answer to an embed request: `{model, dim, vectors}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// The model that produced the vectors.
    pub model: String,
    /// Their dimension.
    pub dim: usize,
    /// One vector per input text, in order.
    pub vectors: Vec<Vec<f32>>,
}
