//! ingestd: CSV, NDJSON and Parquet bodies into versioned Delta tables.
//!
//! A body is streamed to a spool file (bounded memory, a size cap, a fingerprint for idempotency), its schema
//! inferred over the whole input while its structure is checked, reconciled with the table's (drift is refused
//! before anything is written), then decoded a second time with the final schema and written as one new table
//! version. A failure at any step commits nothing.
//!
//! Modules:
//! - [`spool`]: the body to a temporary file without a name.
//! - [`infer`]: whole-input schema inference and structure checks.
//! - [`csv`]: the CSV pipeline: inference on several threads while the body arrives, records into Arrow
//!   columns for the second pass, records split without csv_core.
//! - [`decode`]: the second pass, batches with the final schema.
//! - [`service`]: [`Ingest`], the [`lakehouse_api::IngestApi`] implementation, and [`IngestConfig`].
#![deny(missing_docs)]

pub mod csv;
pub mod decode;
#[cfg(test)]
mod fuzz;
pub mod infer;
pub mod service;
pub mod spool;

use lakehouse_types::{ApiError, ErrorCode};

pub use service::{Ingest, IngestConfig};

/// Everything that can go wrong in an ingest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body breaks the format (names the line and column).
    #[error("malformed input: {0}; nothing was written")]
    Malformed(String),
    /// The body is larger than the configured cap.
    #[error("the body is larger than the ingest limit of {max_bytes} bytes")]
    TooLarge {
        /// The cap.
        max_bytes: u64,
    },
    /// Reading the request body failed.
    #[error("reading the request body failed: {0}")]
    Body(ApiError),
    /// The spool file could not be written or read.
    #[error("spool file error: {0}")]
    Spool(String),
    /// A blocking task failed.
    #[error("background task failed: {0}")]
    Task(String),
    /// The catalog (tables, drift, idempotency) refused or failed.
    #[error(transparent)]
    Catalog(Box<lakehouse_catalog::Error>),
}

impl From<lakehouse_catalog::Error> for Error {
    fn from(err: lakehouse_catalog::Error) -> Self {
        Error::Catalog(Box::new(err))
    }
}

/// The ingest result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::Malformed(_) => ApiError::new(ErrorCode::UnprocessableContent, message),
            Error::TooLarge { .. } => ApiError::new(ErrorCode::PayloadTooLarge, message),
            Error::Body(e) => e,
            Error::Spool(_) | Error::Task(_) => ApiError::internal(message),
            Error::Catalog(e) => (*e).into(),
        }
    }
}
