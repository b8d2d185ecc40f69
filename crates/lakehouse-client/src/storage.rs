//! [`HttpStorageClient`]: `StorageApi` over HTTP.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use lakehouse_api::storage::{ByteStream, GetObject, StorageApi};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::storage::{ByteRange, ListQuery, ListResponse, ObjectInfo, PutObjectResponse};
use lakehouse_types::{ApiError, ErrorCode, RequestContext};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap, LAST_MODIFIED, RANGE};
use reqwest::{Body, Method};

use crate::Remote;

/// storaged reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpStorageClient {
    remote: Remote,
}

impl HttpStorageClient {
    /// A client for storaged (or a gateway) at `base_url`.
    pub fn new(base_url: &str) -> Result<Self, ApiError> {
        Ok(HttpStorageClient {
            remote: Remote::new("storaged", base_url)?,
        })
    }

    /// The object URL path of a key. The key is checked first: a URL parser would otherwise resolve `..`
    /// segments before the server could refuse them, and reach another object.
    fn path(key: &str) -> Result<String, ApiError> {
        lakehouse_types::keys::validate_key(key)
            .map_err(|why| ApiError::new(ErrorCode::InvalidKey, format!("invalid key: {why}")))?;
        Ok(format!("/v1/storage/objects/{key}"))
    }
}

fn header_u64(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

fn info_from(key: &str, headers: &HeaderMap, size: u64) -> ObjectInfo {
    let last_modified = headers
        .get(LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let etag = headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_owned());
    ObjectInfo {
        key: key.to_owned(),
        size,
        last_modified,
        etag,
    }
}

/// `bytes a-b/size` → (a..b+1, size).
fn content_range(headers: &HeaderMap) -> Option<(std::ops::Range<u64>, u64)> {
    let text = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let (range, size) = text.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, size) = (
        start.parse::<u64>().ok()?,
        end.parse::<u64>().ok()?,
        size.parse::<u64>().ok()?,
    );
    Some((start..end + 1, size))
}

#[async_trait]
impl StorageApi for HttpStorageClient {
    async fn put(
        &self,
        ctx: &RequestContext,
        key: &str,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<PutObjectResponse, ApiError> {
        let mut request = self
            .remote
            .request(ctx, Method::PUT, &Self::path(key)?)
            .body(Body::wrap_stream(body));
        if let Some(length) = content_length {
            request = request.header(CONTENT_LENGTH, length);
        }
        self.remote.json(request).await
    }

    async fn get(
        &self,
        ctx: &RequestContext,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<GetObject, ApiError> {
        let mut request = self.remote.request(ctx, Method::GET, &Self::path(key)?);
        if let Some(range) = range {
            let value = match range {
                ByteRange::FromTo {
                    start,
                    end_inclusive,
                } => format!("bytes={start}-{end_inclusive}"),
                ByteRange::From { start } => format!("bytes={start}-"),
                ByteRange::Suffix { len } => format!("bytes=-{len}"),
            };
            request = request.header(RANGE, value);
        }
        let response = self.remote.send(request).await?;
        let headers = response.headers().clone();
        let length = header_u64(&headers, CONTENT_LENGTH).unwrap_or(0);
        let (returned, size) = match content_range(&headers) {
            Some((returned, size)) => (returned, size),
            None => (0..length, length),
        };
        let service = self.remote.base_url().to_owned();
        let body = response
            .bytes_stream()
            .map_err(move |e| {
                ApiError::new(
                    ErrorCode::BadGateway,
                    format!("storaged at {service}: body failed: {e}"),
                )
            })
            .boxed();
        Ok(GetObject {
            info: info_from(key, &headers, size),
            range: returned,
            partial: range.is_some(),
            body,
        })
    }

    async fn head(&self, ctx: &RequestContext, key: &str) -> Result<ObjectInfo, ApiError> {
        let response = self
            .remote
            .send(self.remote.request(ctx, Method::HEAD, &Self::path(key)?))
            .await?;
        let size = header_u64(response.headers(), CONTENT_LENGTH).unwrap_or(0);
        Ok(info_from(key, response.headers(), size))
    }

    async fn delete(&self, ctx: &RequestContext, key: &str) -> Result<(), ApiError> {
        self.remote
            .send(self.remote.request(ctx, Method::DELETE, &Self::path(key)?))
            .await?;
        Ok(())
    }

    async fn list(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
    ) -> Result<ListResponse, ApiError> {
        let request = self
            .remote
            .request(ctx, Method::GET, "/v1/storage/objects")
            .query(query);
        self.remote.json(request).await
    }

    async fn health(&self) -> ServiceHealth {
        self.remote.health().await
    }
}
