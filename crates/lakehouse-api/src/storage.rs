//! Streaming object I/O.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use lakehouse_types::RequestContext;
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::storage::{ByteRange, ListQuery, ListResponse, ObjectInfo, PutObjectResponse};

use crate::Result;

/// A stream of body chunks. Errors inside it end the transfer.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// An object being read: its metadata, the byte range being returned, and the bytes.
pub struct GetObject {
    /// The whole object's metadata.
    pub info: ObjectInfo,
    /// The range returned, as `start..end` (end exclusive); the whole object when no range was asked.
    pub range: std::ops::Range<u64>,
    /// Whether a range was asked for (the HTTP layer answers 206 then).
    pub partial: bool,
    /// The bytes of `range`, streamed.
    pub body: ByteStream,
}

impl std::fmt::Debug for GetObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetObject")
            .field("info", &self.info)
            .field("range", &self.range)
            .field("partial", &self.partial)
            .finish_non_exhaustive()
    }
}

/// Object storage: streaming PUT and GET, HEAD, DELETE, LIST.
///
/// Implementations enforce the key rules, the size cap, the concurrency cap and the reserved prefixes, so
/// every deployment behaves the same.
#[async_trait]
pub trait StorageApi: Send + Sync + std::fmt::Debug {
    /// Stores `body` under `key`, streaming it. `content_length`, when the client declared one, lets an
    /// over-cap upload be refused before a byte is read.
    async fn put(
        &self,
        ctx: &RequestContext,
        key: &str,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<PutObjectResponse>;

    /// Reads an object, or a range of it.
    async fn get(
        &self,
        ctx: &RequestContext,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<GetObject>;

    /// An object's metadata.
    async fn head(&self, ctx: &RequestContext, key: &str) -> Result<ObjectInfo>;

    /// Deletes an object. Deleting a missing object is `object_not_found`.
    async fn delete(&self, ctx: &RequestContext, key: &str) -> Result<()>;

    /// Lists objects by key prefix, in key order.
    async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> Result<ListResponse>;

    /// Whether the store is reachable.
    async fn health(&self) -> ServiceHealth;
}
