//! [`HttpMatrixClient`]: `MatrixApi` over HTTP.

use async_trait::async_trait;
use lakehouse_api::MatrixApi;
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::matrix::{
    CorpusDefinition, CorpusInfo, CorpusList, MatrixSearchRequest, MatrixSearchResponse,
};
use lakehouse_types::{ApiError, RequestContext};
use reqwest::Method;

use crate::Remote;

/// matrixd reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpMatrixClient {
    remote: Remote,
}

impl HttpMatrixClient {
    /// A client for matrixd (or a gateway) at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, ApiError> {
        Ok(HttpMatrixClient {
            remote: Remote::new("matrixd", base_url)?,
        })
    }
}

/// A corpus path; names are checked by the service, but a name must never escape its path segment.
fn corpus_path(name: &str) -> String {
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/v1/matrix/corpora/{encoded}")
}

#[async_trait]
impl MatrixApi for HttpMatrixClient {
    async fn create_corpus(
        &self,
        ctx: &RequestContext,
        definition: CorpusDefinition,
    ) -> Result<CorpusInfo, ApiError> {
        let builder = self
            .remote
            .request(ctx, Method::POST, "/v1/matrix/corpora")
            .json(&definition);
        self.remote.json(builder).await
    }

    async fn list_corpora(&self, ctx: &RequestContext) -> Result<CorpusList, ApiError> {
        self.remote
            .json(self.remote.request(ctx, Method::GET, "/v1/matrix/corpora"))
            .await
    }

    async fn corpus(&self, ctx: &RequestContext, name: &str) -> Result<CorpusInfo, ApiError> {
        self.remote
            .json(self.remote.request(ctx, Method::GET, &corpus_path(name)))
            .await
    }

    async fn delete_corpus(&self, ctx: &RequestContext, name: &str) -> Result<(), ApiError> {
        self.remote
            .send(self.remote.request(ctx, Method::DELETE, &corpus_path(name)))
            .await?;
        Ok(())
    }

    async fn rebuild_corpus(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<CorpusInfo, ApiError> {
        let path = format!("{}/rebuild", corpus_path(name));
        self.remote
            .json(self.remote.request(ctx, Method::POST, &path))
            .await
    }

    async fn search(
        &self,
        ctx: &RequestContext,
        request: MatrixSearchRequest,
    ) -> Result<MatrixSearchResponse, ApiError> {
        let builder = self
            .remote
            .request(ctx, Method::POST, "/v1/matrix/search")
            .json(&request);
        self.remote.json(builder).await
    }

    async fn health(&self) -> ServiceHealth {
        self.remote.health().await
    }
}
