//! The dataset registry.

use async_trait::async_trait;
use lakehouse_types::RequestContext;
use lakehouse_types::dataset::{
    DatasetList, HistoryPage, HistoryQuery, Manifest, OptimizeResponse, RegisterRequest,
    VacuumQuery, VacuumResponse, WriteResponse,
};
use lakehouse_types::health::ServiceHealth;

use crate::Result;

/// Datasets: their versions, schemas and files; registration of existing Parquet objects; deletion.
#[async_trait]
pub trait CatalogApi: Send + Sync + std::fmt::Debug {
    /// Every dataset with its current version, rows, bytes and commit time.
    async fn list_datasets(&self, ctx: &RequestContext) -> Result<DatasetList>;

    /// The manifest of a dataset: the current version, or `version` when given (time travel).
    async fn manifest(
        &self,
        ctx: &RequestContext,
        name: &str,
        version: Option<u64>,
    ) -> Result<Manifest>;

    /// Adds existing Parquet objects as a new version. With an idempotency key, a replay with the same request
    /// returns the first answer (`replayed: true`) and writes nothing; the same key with another request is
    /// `idempotency_conflict`.
    async fn register(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: RegisterRequest,
        idempotency_key: Option<String>,
    ) -> Result<WriteResponse>;

    /// Deletes a dataset with every version (admin only).
    async fn delete_dataset(&self, ctx: &RequestContext, name: &str) -> Result<()>;

    /// A page of a dataset's history, newest first (the manifest holds the first page).
    async fn history(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage>;

    /// Compacts a dataset's small files now (admin only): one or more commits that change no row.
    async fn optimize(&self, ctx: &RequestContext, name: &str) -> Result<OptimizeResponse>;

    /// Removes the files no version inside the retention needs (admin only); `dry_run` only reports them.
    async fn vacuum(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: VacuumQuery,
    ) -> Result<VacuumResponse>;

    /// Whether the catalog can reach its storage.
    async fn health(&self) -> ServiceHealth;
}
