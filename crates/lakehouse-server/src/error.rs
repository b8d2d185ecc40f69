//! The one place an error becomes an HTTP response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lakehouse_types::{ApiError, ErrorCode};

/// An [`ApiError`] on its way out as `{"error": {"code", "message"}}` with its status and headers.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(err: ApiError) -> Self {
        HttpError(err)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status =
            StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = %err.code, message = %err.message, "request failed");
        } else {
            tracing::debug!(code = %err.code, message = %err.message, "request refused");
        }
        let mut response = (status, Json(err.to_body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = err.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        } else if matches!(err.code, ErrorCode::Overloaded | ErrorCode::TooManyRequests) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read, so the connection cannot carry another request; say so, or a
            // client would reuse it and fail.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The fallback for paths no route matches.
pub async fn not_found(uri: axum::http::Uri) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {}; see the API in the README", uri.path()),
    ))
}

/// The fallback for a known path with a method it does not take.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    ))
}
