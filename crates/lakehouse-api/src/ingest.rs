//! CSV, NDJSON and Parquet bodies into versioned tables.

use async_trait::async_trait;
use lakehouse_types::RequestContext;
use lakehouse_types::dataset::{IngestRequest, WriteResponse};
use lakehouse_types::health::ServiceHealth;

use crate::Result;
use crate::storage::ByteStream;

/// Ingest: a streamed body becomes a new table version, or nothing at all.
#[async_trait]
pub trait IngestApi: Send + Sync + std::fmt::Debug {
    /// Writes `body` into `request.dataset` as one new version. Schema drift on append is `schema_drift`
    /// with the diff in the details; malformed input is `bad_request`/`unprocessable_content` naming the line
    /// and column. With an idempotency key, a replay of the same body returns the first answer
    /// (`replayed: true`).
    async fn ingest(
        &self,
        ctx: &RequestContext,
        request: IngestRequest,
        body: ByteStream,
    ) -> Result<WriteResponse>;

    /// Whether ingest can write.
    async fn health(&self) -> ServiceHealth;
}
