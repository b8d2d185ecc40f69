//! [`Error`] and its mapping to API error codes.

use lakehouse_types::{ApiError, ErrorCode};

/// What can go wrong in matrix search.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request or definition that cannot be used; the message names the part.
    #[error("{0}")]
    BadRequest(String),
    /// A filter that cannot be understood or names a field that is not filterable.
    #[error("invalid filters: {0}")]
    InvalidFilter(String),
    /// The role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such corpus.
    #[error("corpus '{0}' does not exist; GET /v1/matrix/corpora lists them")]
    CorpusNotFound(String),
    /// No such dataset.
    #[error("dataset '{0}' does not exist; ingest it first (GET /v1/catalog/datasets lists them)")]
    DatasetNotFound(String),
    /// No such job order.
    #[error("{0}")]
    OrderNotFound(String),
    /// A corpus with this name exists.
    #[error("corpus '{0}' already exists; DELETE it first or choose another name")]
    AlreadyExists(String),
    /// Something else holds the name (a vector index, say).
    #[error("{0}")]
    Conflict(String),
    /// The corpus cannot answer yet (first build, or loading after a start).
    #[error("{0}")]
    NotReady(String),
    /// A service matrixd relies on failed.
    #[error(transparent)]
    Upstream(#[from] ApiError),
    /// The keyword index failed.
    #[error("keyword index: {0}")]
    Keyword(String),
    /// Anything else that is our fault.
    #[error("{0}")]
    Internal(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tantivy::TantivyError> for Error {
    fn from(err: tantivy::TantivyError) -> Self {
        Error::Keyword(err.to_string())
    }
}

impl From<lakehouse_types::filter::FilterError> for Error {
    fn from(err: lakehouse_types::filter::FilterError) -> Self {
        Error::InvalidFilter(err.0)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::BadRequest(_) => ApiError::new(ErrorCode::BadRequest, message),
            Error::InvalidFilter(_) => ApiError::new(ErrorCode::InvalidFilter, message),
            Error::Forbidden(_) => ApiError::new(ErrorCode::Forbidden, message),
            Error::CorpusNotFound(_) | Error::OrderNotFound(_) => {
                ApiError::new(ErrorCode::NotFound, message)
            }
            Error::DatasetNotFound(_) => ApiError::new(ErrorCode::DatasetNotFound, message),
            Error::AlreadyExists(_) => ApiError::new(ErrorCode::AlreadyExists, message),
            Error::Conflict(_) => ApiError::new(ErrorCode::Conflict, message),
            Error::NotReady(_) => {
                ApiError::new(ErrorCode::ServiceUnavailable, message).with_retry_after(1)
            }
            Error::Upstream(inner) => inner,
            Error::Keyword(_) | Error::Internal(_) => ApiError::internal(message),
        }
    }
}
