//! [`HttpEmbedClient`]: `EmbedApi` over HTTP.

use async_trait::async_trait;
use lakehouse_api::EmbedApi;
use lakehouse_types::embed::{EmbedRequest, EmbedResponse};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::{ApiError, RequestContext};
use reqwest::Method;

use crate::Remote;

/// embedd reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpEmbedClient {
    remote: Remote,
}

impl HttpEmbedClient {
    /// A client for embedd (or a gateway) at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, ApiError> {
        Ok(HttpEmbedClient {
            remote: Remote::new("embedd", base_url)?,
        })
    }
}

#[async_trait]
impl EmbedApi for HttpEmbedClient {
    async fn embed(
        &self,
        ctx: &RequestContext,
        request: EmbedRequest,
    ) -> Result<EmbedResponse, ApiError> {
        let builder = self
            .remote
            .request(ctx, Method::POST, "/v1/embed")
            .json(&request);
        self.remote.json(builder).await
    }

    async fn health(&self) -> ServiceHealth {
        self.remote.health().await
    }
}
