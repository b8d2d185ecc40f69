//! Vector indexes.

use async_trait::async_trait;
use lakehouse_types::RequestContext;
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::vector::{
    AddRequest, AddResponse, CreateIndexRequest, IndexInfo, ListIndexesResponse, SearchRequest,
    SearchResponse, VectorItem,
};

use crate::Result;

/// HNSW vector indexes with metadata filters and durable persistence.
///
/// An acknowledged `add` or `delete_item` is durable: it survives a crash of the process right after.
#[async_trait]
pub trait VectorApi: Send + Sync + std::fmt::Debug {
    /// Creates an empty index; `already_exists` when the name is taken.
    async fn create_index(
        &self,
        ctx: &RequestContext,
        request: CreateIndexRequest,
    ) -> Result<IndexInfo>;

    /// Every index.
    async fn list_indexes(&self, ctx: &RequestContext) -> Result<ListIndexesResponse>;

    /// One index's dimension, metric, count and persistence state.
    async fn index_info(&self, ctx: &RequestContext, name: &str) -> Result<IndexInfo>;

    /// Deletes an index and everything it stored.
    async fn drop_index(&self, ctx: &RequestContext, name: &str) -> Result<()>;

    /// Adds or replaces items. The batch is validated whole; on any error nothing of it is applied.
    async fn add(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: AddRequest,
    ) -> Result<AddResponse>;

    /// Deletes one item; `not_found` when the id is not in the index.
    async fn delete_item(&self, ctx: &RequestContext, name: &str, id: &str) -> Result<()>;

    /// One item's vector and metadata; `not_found` when the id is not in the index.
    async fn get_item(&self, ctx: &RequestContext, name: &str, id: &str) -> Result<VectorItem>;

    /// The `k` items nearest to a vector or text that match the filter.
    async fn search(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: SearchRequest,
    ) -> Result<SearchResponse>;

    /// Whether indexes can be read and written.
    async fn health(&self) -> ServiceHealth;
}
