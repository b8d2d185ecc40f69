//! The crate's error and its mapping onto the error-code table.

use lakehouse_types::{ApiError, ErrorCode};

/// Everything that can go wrong in the vector service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No index has this name.
    #[error("vector index '{0}' does not exist; list indexes with GET /v1/vectors/index")]
    IndexNotFound(String),

    /// An index with this name exists already.
    #[error("vector index '{0}' already exists; drop it first or pick another name")]
    AlreadyExists(String),

    /// The id is not in the index.
    #[error("item '{id}' is not in vector index '{index}'")]
    ItemNotFound {
        /// The index.
        index: String,
        /// The id asked for.
        id: String,
    },

    /// An index name breaking the naming rules.
    #[error(
        "invalid index name '{0}': use 1-64 characters of lowercase letters, digits, '_' and '-'"
    )]
    InvalidName(String),

    /// A request parameter out of range (dimension, k).
    #[error("{0}")]
    InvalidParameter(String),

    /// One item of a batch is invalid; nothing of the batch was applied.
    #[error("items[{position}]{}: {reason}; nothing from this batch was applied", id_suffix(.id))]
    InvalidItem {
        /// Where in the batch.
        position: usize,
        /// The item's id, when it has one.
        id: Option<String>,
        /// What is wrong with it.
        reason: String,
        /// Whether the problem is the vector itself (dimension, NaN) rather than the id or metadata.
        vector: bool,
    },

    /// A query vector that cannot be searched with.
    #[error("query {0}")]
    InvalidQuery(String),

    /// A filter that cannot be understood.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),

    /// A batch over the item limit.
    #[error("batch of {got} items is over the limit of {max}; split it into smaller batches")]
    BatchTooLarge {
        /// Items sent.
        got: usize,
        /// The limit.
        max: usize,
    },

    /// `text` was given but no embedding service is configured.
    #[error(
        "{0} needs the embedding service, which this vector service was started without; send vectors instead"
    )]
    NoEmbedder(String),

    /// The embedding service failed.
    #[error(transparent)]
    Embed(ApiError),

    /// Another writer (another instance over the same storage) keeps winning the race for the next segment.
    #[error(
        "vector index '{0}' is being written concurrently by another instance; \
         retry, or send its writes to one instance"
    )]
    WriteConflict(String),

    /// Storage failed.
    #[error("vector storage failed: {0}")]
    Storage(#[from] object_store::Error),

    /// Stored data could not be read back (a corrupt segment or snapshot).
    #[error("stored vector data is unreadable: {0}")]
    Corrupt(String),

    /// A snapshot in a format this build does not read (the usearch format of earlier versions without the
    /// `usearch-snapshots` feature): the index is not opened rather than opened without its vectors.
    #[error("{0}")]
    UnreadableFormat(String),

    /// The HNSW library failed.
    #[error("vector index operation failed: {0}")]
    Index(String),

    /// A background task panicked or was cancelled.
    #[error("vector task failed: {0}")]
    Task(String),
}

fn id_suffix(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" (id '{id}')"),
        None => String::new(),
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::IndexNotFound(_) => ApiError::new(ErrorCode::IndexNotFound, message),
            Error::AlreadyExists(_) => ApiError::new(ErrorCode::AlreadyExists, message),
            Error::ItemNotFound { .. } => ApiError::new(ErrorCode::NotFound, message),
            Error::InvalidName(_) | Error::InvalidParameter(_) => {
                ApiError::new(ErrorCode::InvalidParameter, message)
            }
            Error::InvalidItem {
                position,
                id,
                vector,
                ..
            } => {
                let code = if vector {
                    ErrorCode::InvalidVector
                } else {
                    ErrorCode::BadRequest
                };
                ApiError::new(code, message)
                    .with_details(serde_json::json!({"item": position, "id": id}))
            }
            Error::InvalidQuery(_) => ApiError::new(ErrorCode::InvalidVector, message),
            Error::InvalidFilter(_) => ApiError::new(ErrorCode::InvalidFilter, message),
            Error::BatchTooLarge { .. } => ApiError::new(ErrorCode::PayloadTooLarge, message),
            Error::NoEmbedder(_) => ApiError::new(ErrorCode::BadRequest, message),
            Error::Embed(inner) => inner,
            Error::WriteConflict(_) => {
                ApiError::new(ErrorCode::Conflict, message).with_retry_after(1)
            }
            Error::Storage(_) => {
                ApiError::new(ErrorCode::StorageUnavailable, message).with_retry_after(1)
            }
            Error::Corrupt(_) | Error::UnreadableFormat(_) | Error::Index(_) | Error::Task(_) => {
                ApiError::internal(message)
            }
        }
    }
}

impl From<lakehouse_types::filter::FilterError> for Error {
    fn from(err: lakehouse_types::filter::FilterError) -> Self {
        Error::InvalidFilter(err.0)
    }
}
