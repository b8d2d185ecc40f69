//! Storage errors and their API codes.

use lakehouse_types::{ApiError, ErrorCode};

/// What can go wrong in storaged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key breaks the key rules.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A query parameter is out of range.
    #[error("{0}")]
    InvalidParameter(String),
    /// The key is under a prefix only the admin role may write.
    #[error(
        "the prefix {prefix:?} is reserved for the services' own data; only the admin role may write under it"
    )]
    Reserved {
        /// The reserved prefix.
        prefix: &'static str,
    },
    /// The key is under a prefix only the admin role may read (its files hold every column of the data).
    #[error(
        "the prefix {prefix:?} holds the services' own data (every column of every dataset); only the admin \
         role may read under it: read datasets through SQL, the catalog or matrix search instead"
    )]
    ReservedRead {
        /// The reserved prefix.
        prefix: &'static str,
    },
    /// No such object.
    #[error("no object with key {0:?}")]
    NotFound(String),
    /// The body is larger than the cap.
    #[error("the object is larger than the limit of {limit} bytes (storage.max_object_bytes)")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// Too many transfers at once.
    #[error("more than {limit} transfers are in flight; retry shortly")]
    Busy {
        /// The cap.
        limit: usize,
    },
    /// The requested range cannot be served.
    #[error("range not satisfiable: {0}")]
    Range(String),
    /// The client's body stream failed (disconnect, malformed chunking).
    #[error("the request body could not be read: {0}")]
    Body(String),
    /// The backend failed.
    #[error("object store error: {0}")]
    Store(#[from] object_store::Error),
    /// The backend could not be set up.
    #[error("cannot open the object store: {0}")]
    Setup(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> ApiError {
        let message = err.to_string();
        match err {
            Error::InvalidKey(_) => ApiError::new(ErrorCode::InvalidKey, message),
            Error::InvalidParameter(_) => ApiError::new(ErrorCode::InvalidParameter, message),
            Error::Reserved { .. } | Error::ReservedRead { .. } => {
                ApiError::new(ErrorCode::ReservedPrefix, message)
            }
            Error::NotFound(_) => ApiError::new(ErrorCode::ObjectNotFound, message),
            Error::TooLarge { .. } => ApiError::new(ErrorCode::PayloadTooLarge, message),
            Error::Busy { .. } => ApiError::new(ErrorCode::Overloaded, message).with_retry_after(1),
            Error::Range(_) => ApiError::new(ErrorCode::InvalidRange, message),
            Error::Body(_) => ApiError::new(ErrorCode::BadRequest, message),
            Error::Store(store) => store_error(store, message),
            Error::Setup(_) => ApiError::new(ErrorCode::StorageUnavailable, message),
        }
    }
}

fn store_error(err: object_store::Error, message: String) -> ApiError {
    #[allow(clippy::wildcard_enum_match_arm)] // object_store::Error is non-exhaustive
    match err {
        object_store::Error::NotFound { .. } => ApiError::new(ErrorCode::ObjectNotFound, message),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            ApiError::new(ErrorCode::PreconditionFailed, message)
        }
        object_store::Error::InvalidPath { .. } => ApiError::new(ErrorCode::InvalidKey, message),
        // Anything else is the backend failing us (network, permissions, disk): not the caller's fault, and
        // possibly transient.
        _ => ApiError::new(ErrorCode::StorageUnavailable, message).with_retry_after(1),
    }
}
