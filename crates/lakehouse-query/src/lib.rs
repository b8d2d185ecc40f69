//! queryd: read-only SQL over every dataset with Apache DataFusion.
//!
//! Each query gets a fresh session over a shared runtime (one memory pool, one spill directory): every dataset
//! is a table, `"name@v3"` is version 3 of it, and nothing else is reachable — no URL tables, no file-reading
//! functions, no DDL or DML. Queries run under a time limit and a memory limit and return at most `max_rows`
//! rows, as Arrow batches; the HTTP layer encodes them.
//!
//! Modules:
//! - [`readonly`]: the statement gate.
//! - [`provider`]: datasets as DataFusion tables, with time travel.
//! - [`service`]: [`Query`], the [`lakehouse_api::QueryApi`] implementation, and [`QueryConfig`].
//! - `rules`: our optimizer rules for the shapes staffing reports run; `files`: a table read as its Parquet
//!   files; `bounded`: functions that build values from a number, bounded.
#![deny(missing_docs)]

mod bounded;
mod files;
pub mod provider;
pub mod readonly;
mod rules;
pub mod service;
#[cfg(test)]
mod testing;

use datafusion::error::DataFusionError;
use lakehouse_types::{ApiError, ErrorCode};

pub use service::{Query, QueryConfig};

/// Everything that can go wrong with a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement would change something.
    #[error("{0}")]
    ReadOnly(String),
    /// The request is malformed (no statement, several, does not parse).
    #[error("{0}")]
    BadRequest(String),
    /// The query ran past the time limit (and was cancelled).
    #[error(
        "the query ran longer than the limit of {limit_ms} ms and was cancelled; add filters or a LIMIT"
    )]
    Timeout {
        /// The limit.
        limit_ms: u64,
    },
    /// Planning or execution failed.
    #[error("{0}")]
    DataFusion(Box<DataFusionError>),
    /// Listing the datasets failed.
    #[error(transparent)]
    Catalog(Box<lakehouse_catalog::Error>),
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
}

impl From<DataFusionError> for Error {
    fn from(err: DataFusionError) -> Self {
        Error::DataFusion(Box::new(err))
    }
}

impl From<lakehouse_catalog::Error> for Error {
    fn from(err: lakehouse_catalog::Error) -> Self {
        Error::Catalog(Box::new(err))
    }
}

/// The query result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::ReadOnly(m) => ApiError::new(ErrorCode::ReadOnly, m),
            Error::BadRequest(m) => ApiError::new(ErrorCode::BadRequest, m),
            e @ Error::Timeout { .. } => ApiError::new(ErrorCode::Timeout, e.to_string()),
            Error::DataFusion(e) => datafusion_error(&e),
            Error::Catalog(e) => (*e).into(),
            Error::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
        }
    }
}

/// Maps a DataFusion error by its root cause: the user's SQL (400), an unsupported feature (501), the memory
/// limit (413), the rest (500).
#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "every other DataFusion error is a fault of ours (500)"
)]
pub fn datafusion_error(err: &DataFusionError) -> ApiError {
    let root = err.find_root();
    let message = root.to_string();
    if let DataFusionError::External(inner) = root
        && let Some(forbidden) = inner.downcast_ref::<provider::Forbidden>()
    {
        return ApiError::new(ErrorCode::Forbidden, forbidden.0.clone());
    }
    match root {
        DataFusionError::Plan(_) | DataFusionError::SQL(..) | DataFusionError::SchemaError(..) => {
            ApiError::new(ErrorCode::BadRequest, message)
        }
        // Arrow errors during execution are the data meeting an expression: division by zero, a failed cast.
        DataFusionError::ArrowError(..) => ApiError::new(ErrorCode::BadRequest, message),
        DataFusionError::NotImplemented(_) => ApiError::new(ErrorCode::NotImplemented, message),
        DataFusionError::ResourcesExhausted(_) => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the query needs more memory than its limit allows; add filters, aggregate, or a LIMIT ({message})"
            ),
        ),
        _ => ApiError::internal(message),
    }
}
