//! Matrix search: corpora and the staffing co-pilot's search.

use async_trait::async_trait;
use lakehouse_types::RequestContext;
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::matrix::{
    CorpusDefinition, CorpusInfo, CorpusList, MatrixSearchRequest, MatrixSearchResponse,
};

use crate::Result;

/// Corpora (datasets made searchable, following their dataset) and hybrid search with the eligibility
/// judge, under the caller's role.
#[async_trait]
pub trait MatrixApi: Send + Sync + std::fmt::Debug {
    /// Defines a corpus and starts building it in the background; the answer is its state at once.
    async fn create_corpus(
        &self,
        ctx: &RequestContext,
        definition: CorpusDefinition,
    ) -> Result<CorpusInfo>;

    /// The corpora the caller may search.
    async fn list_corpora(&self, ctx: &RequestContext) -> Result<CorpusList>;

    /// One corpus's state and build progress.
    async fn corpus(&self, ctx: &RequestContext, name: &str) -> Result<CorpusInfo>;

    /// Drops a corpus and its indexes (admin only).
    async fn delete_corpus(&self, ctx: &RequestContext, name: &str) -> Result<()>;

    /// Builds a corpus again from its dataset (after a failure, say); searches keep answering meanwhile.
    async fn rebuild_corpus(&self, ctx: &RequestContext, name: &str) -> Result<CorpusInfo>;

    /// Searches corpora: retrieval with the filters inside, fusion, the eligibility judge, masking.
    async fn search(
        &self,
        ctx: &RequestContext,
        request: MatrixSearchRequest,
    ) -> Result<MatrixSearchResponse>;

    /// Whether searches can be answered.
    async fn health(&self) -> ServiceHealth;
}
