//! [`HttpCatalogClient`]: `CatalogApi` over HTTP.

use async_trait::async_trait;
use lakehouse_api::CatalogApi;
use lakehouse_types::dataset::{
    DatasetList, HistoryPage, HistoryQuery, Manifest, OptimizeResponse, RegisterRequest,
    VacuumQuery, VacuumResponse, WriteResponse,
};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::{ApiError, ErrorCode, RequestContext};
use reqwest::{Method, StatusCode};

use crate::Remote;

/// catalogd reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpCatalogClient {
    remote: Remote,
}

impl HttpCatalogClient {
    /// A client for catalogd (or a gateway) at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, ApiError> {
        Ok(HttpCatalogClient {
            remote: Remote::new("catalogd", base_url)?,
        })
    }
}

/// Dataset names are lowercase letters, digits, `_` and `-`: anything else is refused here rather than sent
/// (a `/` or `..` would reach another route).
pub(crate) fn dataset_segment(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("invalid dataset name {name:?}: lowercase letters, digits, '_' and '-' only"),
        ))
    }
}

/// Reads a 200/201 write answer, marking a 200 (a replayed idempotent request).
pub(crate) async fn write_response(
    remote: &Remote,
    builder: reqwest::RequestBuilder,
) -> Result<WriteResponse, ApiError> {
    let response = remote.send(builder).await?;
    let replayed = response.status() == StatusCode::OK;
    let mut answer: WriteResponse = response.json().await.map_err(|e| {
        ApiError::new(
            ErrorCode::BadGateway,
            format!("the write answer is unreadable: {e}"),
        )
    })?;
    answer.replayed = replayed;
    Ok(answer)
}

#[async_trait]
impl CatalogApi for HttpCatalogClient {
    async fn list_datasets(&self, ctx: &RequestContext) -> Result<DatasetList, ApiError> {
        self.remote
            .json(
                self.remote
                    .request(ctx, Method::GET, "/v1/catalog/datasets"),
            )
            .await
    }

    async fn manifest(
        &self,
        ctx: &RequestContext,
        name: &str,
        version: Option<u64>,
    ) -> Result<Manifest, ApiError> {
        let name = dataset_segment(name)?;
        let path = match version {
            Some(v) => format!("/v1/catalog/datasets/{name}/versions/{v}"),
            None => format!("/v1/catalog/datasets/{name}"),
        };
        self.remote
            .json(self.remote.request(ctx, Method::GET, &path))
            .await
    }

    async fn register(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: RegisterRequest,
        idempotency_key: Option<String>,
    ) -> Result<WriteResponse, ApiError> {
        let path = format!("/v1/catalog/datasets/{}/register", dataset_segment(name)?);
        let mut builder = self.remote.request(ctx, Method::POST, &path).json(&request);
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        write_response(&self.remote, builder).await
    }

    async fn delete_dataset(&self, ctx: &RequestContext, name: &str) -> Result<(), ApiError> {
        let path = format!("/v1/catalog/datasets/{}", dataset_segment(name)?);
        self.remote
            .send(self.remote.request(ctx, Method::DELETE, &path))
            .await?;
        Ok(())
    }

    async fn optimize(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<OptimizeResponse, ApiError> {
        let path = format!("/v1/catalog/datasets/{}/optimize", dataset_segment(name)?);
        self.remote
            .json(self.remote.request(ctx, Method::POST, &path))
            .await
    }

    async fn vacuum(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: VacuumQuery,
    ) -> Result<VacuumResponse, ApiError> {
        let path = format!("/v1/catalog/datasets/{}/vacuum", dataset_segment(name)?);
        self.remote
            .json(self.remote.request(ctx, Method::POST, &path).query(&query))
            .await
    }

    async fn history(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage, ApiError> {
        let path = format!("/v1/catalog/datasets/{}/history", dataset_segment(name)?);
        self.remote
            .json(self.remote.request(ctx, Method::GET, &path).query(&query))
            .await
    }

    async fn health(&self) -> ServiceHealth {
        self.remote.health().await
    }
}
