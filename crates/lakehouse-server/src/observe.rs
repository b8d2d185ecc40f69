//! Request ids, request logs and request metrics, in one middleware so the three agree on what a request is.
//!
//! tower-http has request-id and trace layers; we need the id validated (a client's header is logged, so it
//! must be short and printable), the same id on the span, the response and the metrics' in-flight count, and
//! the matched route template as the metrics label. One small function does all of that.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::Metrics;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// The request's id, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

/// Middleware: keeps a sent `X-Request-Id` (or makes one), logs the request under a span carrying it, counts it.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        caller = tracing::field::Empty,
    );

    let started = Instant::now();
    let _in_flight = metrics.track_in_flight();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();

    let status = response.status().as_u16();
    metrics.record_request(&method, &route, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn request_ids_must_be_short_and_printable() {
        assert!(acceptable("abc-123"));
        assert!(acceptable("4f1c2a9e-1b2c-4d5e-8f90-123456789abc"));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable("new\nline"));
        assert!(!acceptable(&"x".repeat(129)));
    }
}
