//! catalogd: the dataset registry.
//!
//! Datasets are Delta Lake tables under `datasets/<name>/` of the shared object store; the catalog reads
//! their versions, schemas, files and history straight from the transaction logs, so every instance sharing
//! a store (and a restarted one) sees the same datasets at the same versions. Its own state — idempotency
//! records and registration records — lives under `_catalog/`, written with conditional puts.
//!
//! Modules:
//! - [`tables`]: open a table (at a version), list, delete, write a stream of batches as one version,
//!   compact its small files, vacuum what no kept version needs; checkpoints after commits.
//! - [`maintenance`]: when tables are compacted and vacuumed (in the background, and on request), and how
//!   long their versions are kept.
//! - [`lease`]: leases in storage, so that one instance at a time works on a table's upkeep.
//! - [`schema`]: column descriptions and the reconciliation of an incoming schema with a table's (drift).
//! - [`manifest`]: manifests, summaries and history read from the log.
//! - [`idempotency`]: `Idempotency-Key` records (first answer kept; another body with the key is refused).
//! - [`register`]: existing Parquet objects as a new version.
//! - [`service`]: [`Catalog`], the [`lakehouse_api::CatalogApi`] implementation.
//! - [`names`]: dataset name rules.
//! - [`ordered`]: listings in key order, which the Delta kernel relies on.
//! - `report`: what catalogd reports to `/metrics`.
//! - `datafiles`: a version's data files, written on two threads; `stats`: their statistics for the log.
#![deny(missing_docs)]

mod datafiles;
pub mod idempotency;
pub mod lease;
pub mod maintenance;
pub mod manifest;
pub mod names;
pub mod ordered;
pub mod register;
mod report;
pub mod schema;
pub mod service;
mod stats;
pub mod tables;

use lakehouse_types::dataset::SchemaDiff;
use lakehouse_types::{ApiError, ErrorCode};

pub use idempotency::{Begin, IdempotencyStore, Reservation};
pub use maintenance::{MaintenanceConfig, MaintenanceStats, TableConfig};
pub use service::{Catalog, CatalogConfig};
pub use tables::{Tables, WriteArgs, WriteOutcome};

/// Marks an error that comes from the data being written (a value that does not parse), so a failed write
/// is reported as bad input rather than as a server fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Everything that can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name breaks the naming rules.
    #[error("invalid dataset name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// No such dataset.
    #[error("dataset {0:?} not found; GET /v1/catalog/datasets lists the datasets")]
    NotFound(String),
    /// No such version of a dataset.
    #[error("dataset {name:?} has no version {version}; its current version is {current}")]
    VersionNotFound {
        /// Dataset.
        name: String,
        /// Version asked for.
        version: u64,
        /// The latest version.
        current: u64,
    },
    /// A version older than the retention: its files may be gone.
    #[error(
        "version {version} of dataset {name:?} is older than its retention of {keep_days} days; the oldest \
         version kept is {oldest} ([datasets] keep_versions sets how long versions are kept)"
    )]
    VersionExpired {
        /// Dataset.
        name: String,
        /// Version asked for.
        version: u64,
        /// The oldest version still kept.
        oldest: u64,
        /// How long versions are kept, in days.
        keep_days: f64,
    },
    /// A referenced object does not exist.
    #[error("object {0:?} not found")]
    ObjectNotFound(String),
    /// `mode=create` on an existing dataset.
    #[error("dataset {0:?} already exists; use mode=append or mode=overwrite")]
    AlreadyExists(String),
    /// The incoming schema differs from the table's.
    #[error("schema drift on dataset {dataset:?}: {summary}; nothing was written")]
    SchemaDrift {
        /// Dataset.
        dataset: String,
        /// One line describing the diff.
        summary: String,
        /// The diff.
        diff: SchemaDiff,
    },
    /// The idempotency key was used with another request.
    #[error("idempotency key {0:?} was already used with a different request")]
    IdempotencyConflict(String),
    /// A request with the idempotency key is still running.
    #[error("a request with idempotency key {0:?} is still in progress; retry later")]
    IdempotencyInProgress(String),
    /// Another writer committed first in a way this write cannot be reconciled with.
    #[error("concurrent write to dataset {dataset:?}: {message}; retry")]
    Conflict {
        /// Dataset.
        dataset: String,
        /// What collided.
        message: String,
    },
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The data is well-formed but cannot be written.
    #[error("{0}")]
    Unprocessable(String),
    /// What was read does not add up (a compaction read other than the rows it rewrites): nothing committed.
    #[error("{0}")]
    Integrity(String),
    /// The Delta layer failed.
    #[error("table error: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    /// The object store failed.
    #[error("storage error: {0}")]
    Store(#[from] object_store::Error),
    /// DataFusion failed (planning a write).
    #[error("query engine error: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Reading Parquet failed.
    #[error("parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow failed (a cast, a batch).
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A record under `_catalog/` does not parse.
    #[error("corrupt catalog record {path}: {source}")]
    CorruptRecord {
        /// Its key.
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// The catalog's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Classifies an error from a Delta write: input errors, commit conflicts, the rest.
    pub fn from_write(dataset: &str, err: deltalake::DeltaTableError) -> Self {
        use deltalake::DeltaTableError as D;
        use deltalake::kernel::transaction::TransactionError as T;
        if let Some(input) = find_input_error(&err) {
            return Error::Unprocessable(input);
        }
        let conflict = matches!(
            err,
            D::VersionAlreadyExists(_)
                | D::SchemaMismatch { .. }
                | D::Transaction {
                    source: T::VersionAlreadyExists(_)
                        | T::CommitConflict(_)
                        | T::MaxCommitAttempts(_),
                }
        );
        if conflict {
            Error::Conflict {
                dataset: dataset.to_owned(),
                message: err.to_string(),
            }
        } else {
            Error::Delta(err)
        }
    }

    /// The [`InputError`] in an error's source chain, as [`Error::Unprocessable`].
    pub fn from_input(err: &(dyn std::error::Error + 'static)) -> Option<Self> {
        find_input_error(err).map(Error::Unprocessable)
    }
}

/// Finds an [`InputError`] in an error's source chain (or, where a layer flattened it to text, its message).
fn find_input_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(input) = e.downcast_ref::<InputError>() {
            return Some(input.0.clone());
        }
        if let Some(datafusion::error::DataFusionError::External(inner)) =
            e.downcast_ref::<datafusion::error::DataFusionError>()
            && let Some(input) = inner.downcast_ref::<InputError>()
        {
            return Some(input.0.clone());
        }
        current = e.source();
    }
    let text = err.to_string();
    text.find(INPUT_ERROR_MARKER)
        .map(|at| text[at + INPUT_ERROR_MARKER.len()..].trim().to_owned())
}

/// Prefix of [`InputError`] messages, so they are recognisable even after a layer turns them into text.
pub const INPUT_ERROR_MARKER: &str = "invalid input:";

fn store_error(e: &object_store::Error) -> ApiError {
    if let object_store::Error::NotFound { path, .. } = e {
        ApiError::new(
            ErrorCode::ObjectNotFound,
            format!("object {path:?} not found"),
        )
    } else {
        ApiError::new(ErrorCode::StorageUnavailable, format!("storage error: {e}"))
            .with_retry_after(1)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::InvalidName { .. } => ApiError::new(ErrorCode::InvalidParameter, message),
            Error::NotFound(_) | Error::VersionNotFound { .. } => {
                ApiError::new(ErrorCode::DatasetNotFound, message)
            }
            Error::VersionExpired { .. } => ApiError::new(ErrorCode::VersionExpired, message),
            Error::ObjectNotFound(_) => ApiError::new(ErrorCode::ObjectNotFound, message),
            Error::AlreadyExists(_) => ApiError::new(ErrorCode::AlreadyExists, message),
            Error::SchemaDrift { diff, .. } => ApiError::new(ErrorCode::SchemaDrift, message)
                .with_details(serde_json::to_value(diff).unwrap_or_default()),
            Error::IdempotencyConflict(_) => ApiError::new(ErrorCode::IdempotencyConflict, message),
            Error::IdempotencyInProgress(_) => {
                ApiError::new(ErrorCode::Conflict, message).with_retry_after(1)
            }
            Error::Conflict { .. } => ApiError::new(ErrorCode::Conflict, message),
            Error::Forbidden(_) => ApiError::new(ErrorCode::Forbidden, message),
            Error::BadRequest(_) => ApiError::new(ErrorCode::BadRequest, message),
            Error::Unprocessable(_) => ApiError::new(ErrorCode::UnprocessableContent, message),
            Error::Store(e) => store_error(&e),
            Error::Delta(deltalake::DeltaTableError::ObjectStore { source }) => {
                store_error(&source)
            }
            Error::Delta(_)
            | Error::DataFusion(_)
            | Error::Parquet(_)
            | Error::Arrow(_)
            | Error::CorruptRecord { .. }
            | Error::Integrity(_) => ApiError::internal(message),
        }
    }
}
