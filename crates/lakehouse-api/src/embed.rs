//! Text to vectors.

use async_trait::async_trait;
use lakehouse_types::RequestContext;
use lakehouse_types::embed::{EmbedRequest, EmbedResponse};
use lakehouse_types::health::ServiceHealth;

use crate::Result;

/// Text embedding through the configured providers (the built-in local model, Ollama, OpenAI-compatible).
#[async_trait]
pub trait EmbedApi: Send + Sync + std::fmt::Debug {
    /// Embeds every text of the request, in order.
    async fn embed(&self, ctx: &RequestContext, request: EmbedRequest) -> Result<EmbedResponse>;

    /// Whether the default provider can embed (model loaded, provider reachable).
    async fn health(&self) -> ServiceHealth;
}
