//! The error-code table and the error every service interface returns.
//!
//! Every error that reaches a user is an [`ApiError`]: a stable snake_case code, a message that says what went
//! wrong and what to do, and (for overload) how long to wait. The HTTP status comes from the code alone, from
//! the one table in [`ErrorCode::status`], so the local and the remote deployment answer identically.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:literal)),+ $(,)?) => {
        /// A stable error code. Adding a variant forces a status for it here, and a mapping in every crate
        /// whose errors can produce it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $code, "` → HTTP ", stringify!($status))]
                $variant,
            )+
        }

        impl ErrorCode {
            /// The snake_case code put in the JSON error body.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }

            /// The HTTP status this code is answered with.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }

            /// The code for a snake_case string, as read back from a remote service's error body.
            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(ErrorCode::$variant),)+
                    _ => None,
                }
            }

            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];
        }
    };
}

error_codes! {
    BadRequest => ("bad_request", 400),
    InvalidKey => ("invalid_key", 400),
    InvalidJson => ("invalid_json", 400),
    InvalidRange => ("invalid_range", 416),
    InvalidParameter => ("invalid_parameter", 400),
    InvalidVector => ("invalid_vector", 400),
    InvalidFilter => ("invalid_filter", 400),
    ReadOnly => ("read_only", 400),
    MissingApiKey => ("missing_api_key", 401),
    InvalidApiKey => ("invalid_api_key", 401),
    Forbidden => ("forbidden", 403),
    CrossOrigin => ("cross_origin", 403),
    ReservedPrefix => ("reserved_prefix", 403),
    NotFound => ("not_found", 404),
    ObjectNotFound => ("object_not_found", 404),
    IndexNotFound => ("index_not_found", 404),
    DatasetNotFound => ("dataset_not_found", 404),
    VersionExpired => ("version_expired", 410),
    MethodNotAllowed => ("method_not_allowed", 405),
    Timeout => ("timeout", 408),
    AlreadyExists => ("already_exists", 409),
    Conflict => ("conflict", 409),
    IdempotencyConflict => ("idempotency_conflict", 409),
    SchemaDrift => ("schema_drift", 409),
    PreconditionFailed => ("precondition_failed", 412),
    MisdirectedHost => ("misdirected_host", 421),
    PayloadTooLarge => ("payload_too_large", 413),
    UnsupportedMediaType => ("unsupported_media_type", 415),
    UnprocessableContent => ("unprocessable_content", 422),
    TooManyRequests => ("too_many_requests", 429),
    Internal => ("internal", 500),
    NotImplemented => ("not_implemented", 501),
    BadGateway => ("bad_gateway", 502),
    Overloaded => ("overloaded", 503),
    ServiceUnavailable => ("service_unavailable", 503),
    ProviderUnavailable => ("provider_unavailable", 503),
    StorageUnavailable => ("storage_unavailable", 503),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error every service interface returns, and the JSON body of every error response:
/// `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What kind of error this is; decides the HTTP status.
    pub code: ErrorCode,
    /// What went wrong and what to do about it.
    pub message: String,
    /// For overload errors: seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
    /// Structured detail some errors carry (the diff of a schema drift, the failing item of a batch).
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
            details: None,
        }
    }

    /// Adds a `Retry-After` hint.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `400 bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `500 internal`. The message should still say what failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body sent to clients.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }

    /// Reads an error back from a remote service's response (status and body).
    pub fn from_response(status: u16, body: &[u8], retry_after_secs: Option<u64>) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => {
                let code = ErrorCode::parse(&parsed.error.code).unwrap_or(ErrorCode::BadGateway);
                ApiError {
                    code,
                    message: parsed.error.message,
                    retry_after_secs,
                    details: parsed.error.details,
                }
            }
            Err(_) if body.is_empty() => {
                // HEAD answers and some proxies carry no body: the status is all there is.
                let code = match status {
                    400 => ErrorCode::BadRequest,
                    401 => ErrorCode::InvalidApiKey,
                    403 => ErrorCode::Forbidden,
                    404 => ErrorCode::NotFound,
                    408 => ErrorCode::Timeout,
                    409 => ErrorCode::Conflict,
                    413 => ErrorCode::PayloadTooLarge,
                    416 => ErrorCode::InvalidRange,
                    429 => ErrorCode::TooManyRequests,
                    503 => ErrorCode::ServiceUnavailable,
                    _ => ErrorCode::BadGateway,
                };
                ApiError {
                    code,
                    message: format!("upstream service answered HTTP {status}"),
                    retry_after_secs,
                    details: None,
                }
            }
            Err(_) => {
                let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
                ApiError::new(
                    ErrorCode::BadGateway,
                    format!(
                        "upstream service answered HTTP {status} without an error body: {text}"
                    ),
                )
                .with_retry_after(retry_after_secs.unwrap_or(1))
            }
        }
    }
}

/// The JSON error body: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of the JSON error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Snake-case error code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured detail, when the error has some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!(
                (400..600).contains(&code.status()),
                "{code} has status {}",
                code.status()
            );
        }
    }

    #[test]
    fn error_body_round_trips_through_json() {
        let err = ApiError::new(ErrorCode::SchemaDrift, "column changed")
            .with_details(serde_json::json!({"added": ["x"]}));
        let body = serde_json::to_vec(&err.to_body()).expect("serialise");
        let back = ApiError::from_response(409, &body, None);
        assert_eq!(back, err);
    }

    #[test]
    fn non_json_upstream_body_becomes_bad_gateway() {
        let back = ApiError::from_response(502, b"<html>proxy error</html>", None);
        assert_eq!(back.code, ErrorCode::BadGateway);
        assert!(back.message.contains("proxy error"));
    }
}
