//! [`HttpVectorClient`]: `VectorApi` over HTTP.

use async_trait::async_trait;
use lakehouse_api::VectorApi;
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::vector::{
    AddRequest, AddResponse, CreateIndexRequest, IndexInfo, ListIndexesResponse, SearchRequest,
    SearchResponse, VectorItem,
};
use lakehouse_types::{ApiError, RequestContext};
use reqwest::Method;

use crate::Remote;

/// vectord reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpVectorClient {
    remote: Remote,
}

impl HttpVectorClient {
    /// A client for vectord (or a gateway) at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, ApiError> {
        Ok(HttpVectorClient {
            remote: Remote::new("vectord", base_url)?,
        })
    }
}

/// Percent-encodes one path segment: ids are free-form text and may hold `/`, `?`, `#` or spaces.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    // `.` and `..` would be resolved away by URL normalisation.
    match out.as_str() {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => out,
    }
}

fn index_path(name: &str) -> String {
    format!("/v1/vectors/index/{}", segment(name))
}

#[async_trait]
impl VectorApi for HttpVectorClient {
    async fn create_index(
        &self,
        ctx: &RequestContext,
        request: CreateIndexRequest,
    ) -> Result<IndexInfo, ApiError> {
        let builder = self
            .remote
            .request(ctx, Method::POST, "/v1/vectors/index")
            .json(&request);
        self.remote.json(builder).await
    }

    async fn list_indexes(&self, ctx: &RequestContext) -> Result<ListIndexesResponse, ApiError> {
        self.remote
            .json(self.remote.request(ctx, Method::GET, "/v1/vectors/index"))
            .await
    }

    async fn index_info(&self, ctx: &RequestContext, name: &str) -> Result<IndexInfo, ApiError> {
        self.remote
            .json(self.remote.request(ctx, Method::GET, &index_path(name)))
            .await
    }

    async fn drop_index(&self, ctx: &RequestContext, name: &str) -> Result<(), ApiError> {
        self.remote
            .send(self.remote.request(ctx, Method::DELETE, &index_path(name)))
            .await?;
        Ok(())
    }

    async fn add(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: AddRequest,
    ) -> Result<AddResponse, ApiError> {
        let path = format!("{}/add", index_path(name));
        self.remote
            .json(self.remote.request(ctx, Method::POST, &path).json(&request))
            .await
    }

    async fn delete_item(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        let path = format!("{}/items/{}", index_path(name), segment(id));
        self.remote
            .send(self.remote.request(ctx, Method::DELETE, &path))
            .await?;
        Ok(())
    }

    async fn get_item(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
    ) -> Result<VectorItem, ApiError> {
        let path = format!("{}/items/{}", index_path(name), segment(id));
        self.remote
            .json(self.remote.request(ctx, Method::GET, &path))
            .await
    }

    async fn search(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: SearchRequest,
    ) -> Result<SearchResponse, ApiError> {
        let path = format!("{}/search", index_path(name));
        self.remote
            .json(self.remote.request(ctx, Method::POST, &path).json(&request))
            .await
    }

    async fn health(&self) -> ServiceHealth {
        self.remote.health().await
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("w-1"), "w-1");
        assert_eq!(segment("a/b c?#"), "a%2Fb%20c%3F%23");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
