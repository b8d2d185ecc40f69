//! [`HttpQueryClient`]: `QueryApi` over HTTP, reading results as an Arrow IPC stream.

use async_trait::async_trait;
use lakehouse_api::{QueryApi, QueryResult};
use lakehouse_types::dataset::{ARROW_STREAM_CONTENT_TYPE, SqlRequest, sql_headers};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::{ApiError, ErrorCode, RequestContext};
use reqwest::Method;
use reqwest::header::ACCEPT;

use crate::Remote;

/// queryd reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpQueryClient {
    remote: Remote,
}

impl HttpQueryClient {
    /// A client for queryd (or a gateway) at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, ApiError> {
        Ok(HttpQueryClient {
            remote: Remote::new("queryd", base_url)?,
        })
    }
}

#[async_trait]
impl QueryApi for HttpQueryClient {
    async fn sql(
        &self,
        ctx: &RequestContext,
        request: SqlRequest,
    ) -> Result<QueryResult, ApiError> {
        let builder = self
            .remote
            .request(ctx, Method::POST, "/v1/sql")
            .header(ACCEPT, ARROW_STREAM_CONTENT_TYPE)
            .json(&request);
        let response = self.remote.send(builder).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let truncated = header(sql_headers::TRUNCATED).is_some_and(|v| v == "true");
        let elapsed_ms = header(sql_headers::ELAPSED_MS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = response.bytes().await.map_err(|e| {
            ApiError::new(
                ErrorCode::BadGateway,
                format!("queryd: the result body failed: {e}"),
            )
        })?;
        QueryResult::from_ipc(&bytes, truncated, elapsed_ms)
    }

    async fn health(&self) -> ServiceHealth {
        self.remote.health().await
    }
}
