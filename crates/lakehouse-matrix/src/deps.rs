//! The services matrixd uses, and how it calls them for its own work (builds, catch-ups, checks): with its
//! own context, and the errors worth retrying told apart from those that are not.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use lakehouse_api::{CatalogApi, EmbedApi, QueryApi, VectorApi};
use lakehouse_types::dataset::{ColumnInfo, SqlRequest};
use lakehouse_types::{ApiError, ErrorCode, RequestContext};

use crate::definition::quote_ident;
use crate::error::{Error, Result};
use crate::store::Store;

/// The services matrixd uses, and how it calls them.
#[derive(Debug, Clone)]
pub(crate) struct Deps {
    pub(crate) catalog: Arc<dyn CatalogApi>,
    pub(crate) query: Arc<dyn QueryApi>,
    pub(crate) embed: Arc<dyn EmbedApi>,
    pub(crate) vector: Arc<dyn VectorApi>,
    pub(crate) store: Store,
    /// The system context matrixd calls other services with (carrying its service key, if any).
    pub(crate) ctx: RequestContext,
    /// Texts embedded per request.
    pub(crate) embed_batch: usize,
    /// Most rows a corpus may have.
    pub(crate) max_rows: usize,
    /// Rows embedded between two checkpoints of the fingerprints during a build.
    pub(crate) checkpoint_rows: usize,
}

/// Errors worth retrying at the next tick rather than marking the corpus failed.
pub(crate) fn transient(err: &Error) -> bool {
    match err {
        Error::Upstream(ApiError { code, .. }) => matches!(
            code,
            ErrorCode::ServiceUnavailable
                | ErrorCode::Overloaded
                | ErrorCode::ProviderUnavailable
                | ErrorCode::StorageUnavailable
                | ErrorCode::BadGateway
                | ErrorCode::Timeout
                | ErrorCode::TooManyRequests
                | ErrorCode::Conflict
        ),
        Error::NotReady(_) => true,
        Error::BadRequest(_)
        | Error::InvalidFilter(_)
        | Error::Forbidden(_)
        | Error::CorpusNotFound(_)
        | Error::DatasetNotFound(_)
        | Error::OrderNotFound(_)
        | Error::AlreadyExists(_)
        | Error::Conflict(_)
        | Error::Keyword(_)
        | Error::Internal(_) => false,
    }
}

impl Deps {
    /// A dataset's schema at `version` (the current one when `None`).
    pub(crate) async fn schema(
        &self,
        dataset: &str,
        version: Option<u64>,
    ) -> Result<(u64, u64, Vec<ColumnInfo>)> {
        match self.catalog.manifest(&self.ctx, dataset, version).await {
            Ok(m) => Ok((m.version, m.rows, m.schema)),
            Err(e) if e.code == ErrorCode::DatasetNotFound || e.code == ErrorCode::NotFound => {
                Err(Error::DatasetNotFound(dataset.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a statement of our own making.
    pub(crate) async fn sql(&self, sql: String) -> Result<Vec<RecordBatch>> {
        let result = self
            .query
            .sql(
                &self.ctx,
                SqlRequest {
                    sql,
                    max_rows: Some(self.max_rows),
                },
            )
            .await?;
        if result.truncated {
            return Err(Error::BadRequest(format!(
                "the dataset has more than {} rows, the most a corpus may hold ([matrix] max_rows)",
                self.max_rows
            )));
        }
        Ok(result.batches)
    }

    /// `columns` of `dataset` as of `version`.
    pub(crate) async fn read(
        &self,
        dataset: &str,
        version: u64,
        columns: &[String],
    ) -> Result<Vec<RecordBatch>> {
        let list = columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let table = quote_ident(&format!("{dataset}@v{version}"));
        self.sql(format!("SELECT {list} FROM {table}")).await
    }
}
