//! [`HttpIngestClient`]: `IngestApi` over HTTP (the body is streamed).

use async_trait::async_trait;
use lakehouse_api::IngestApi;
use lakehouse_api::storage::ByteStream;
use lakehouse_types::dataset::{IngestRequest, WriteResponse};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::{ApiError, RequestContext};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Body, Method};

use crate::Remote;
use crate::catalog::{dataset_segment, write_response};

/// ingestd reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpIngestClient {
    remote: Remote,
}

impl HttpIngestClient {
    /// A client for ingestd (or a gateway) at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, ApiError> {
        Ok(HttpIngestClient {
            remote: Remote::new("ingestd", base_url)?,
        })
    }
}

#[async_trait]
impl IngestApi for HttpIngestClient {
    async fn ingest(
        &self,
        ctx: &RequestContext,
        request: IngestRequest,
        body: ByteStream,
    ) -> Result<WriteResponse, ApiError> {
        let mut path = format!(
            "/v1/ingest/{}?mode={}",
            dataset_segment(&request.dataset)?,
            request.mode.as_str()
        );
        if let Some(evolve) = request.evolve {
            path.push_str("&evolve=");
            path.push_str(evolve.as_str());
        }
        let mut builder = self
            .remote
            .request(ctx, Method::POST, &path)
            .header(CONTENT_TYPE, request.format.content_type())
            .body(Body::wrap_stream(body));
        if let Some(length) = request.content_length {
            builder = builder.header(CONTENT_LENGTH, length);
        }
        if let Some(key) = request.idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        write_response(&self.remote, builder).await
    }

    async fn health(&self) -> ServiceHealth {
        self.remote.health().await
    }
}
