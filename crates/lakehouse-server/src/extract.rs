//! The extractors handlers use: [`Ctx`] (who is asking, under which request id) and [`ApiJson`] (a JSON body
//! whose rejections are answered with the JSON error body).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use lakehouse_types::{ApiError, Caller, ErrorCode, RequestContext};
use serde::de::DeserializeOwned;

use crate::HttpError;
use crate::observe::RequestId;

/// The request context: the caller set by auth and the request id set by the observe layer.
#[derive(Debug, Clone)]
pub struct Ctx(pub RequestContext);

impl std::ops::Deref for Ctx {
    type Target = RequestContext;
    fn deref(&self) -> &RequestContext {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let caller = parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            // Only reachable if a route was mounted outside the auth layer: a bug, not bad input.
            HttpError(ApiError::internal("route is not behind authentication"))
        })?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        Ok(Ctx(RequestContext { caller, request_id }))
    }
}

/// A JSON request body. Unlike axum's `Json`, a bad body is answered with the JSON error body, naming the line
/// and column serde stopped at. The body is read as JSON only when it says it is JSON (`application/json`
/// or `application/*+json`) or says nothing: a `text/plain` or form body is what a web page of another site
/// can send without asking the browser first, so it is refused (415) rather than read as JSON.
///
/// The body's bytes are capped by the route's `DefaultBodyLimit`, but what decoding allocates is not in
/// proportion to them: `{}` is 2 bytes of text and a 100-byte struct, `0` 1 byte and a 32-byte JSON value
/// (`{"items": [{},{},...]}` in 128 MiB is 44 million items of some 100 bytes each). So the values in a
/// body are counted before it is decoded, and past the route's [`JsonValues`] (default
/// [`DEFAULT_JSON_VALUES`]) it is refused with 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// The most JSON values a route decodes from one body, set on a router with `Extension(JsonValues(n))`.
#[derive(Debug, Clone, Copy)]
pub struct JsonValues(pub usize);

/// The most JSON values in a body when the route says nothing: more than a 2 MiB body can hold of anything
/// but numbers, and at most some 32 MiB once decoded.
pub const DEFAULT_JSON_VALUES: usize = 1_000_000;

/// An upper bound on the values and keys a JSON text decodes into: its commas, colons and opening brackets
/// outside strings, plus one. Stops counting past `max`.
pub fn json_values(bytes: &[u8], max: usize) -> usize {
    let (mut count, mut in_string, mut escaped) = (1usize, false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b':' | b'[' | b'{' => {
                    count += 1;
                    if count > max {
                        return count;
                    }
                }
                _ => {}
            }
        }
    }
    count
}

/// Refuses a body declared as anything but JSON (no declared type is taken as JSON, as curl and many
/// clients send none).
pub fn json_content_type(headers: &axum::http::HeaderMap) -> Result<(), HttpError> {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let declared = value.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = declared.split(';').next().unwrap_or("").trim();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        return Ok(());
    }
    Err(HttpError(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!(
            "this endpoint reads a JSON body, and the body is declared as {:?}; send it with \
             `Content-Type: application/json` (curl: --json '...' or -H 'Content-Type: application/json')",
            if essence.is_empty() {
                "nothing readable"
            } else {
                essence
            }
        ),
    )))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        json_content_type(req.headers())?;
        let max_values = req
            .extensions()
            .get::<JsonValues>()
            .map_or(DEFAULT_JSON_VALUES, |limit| limit.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let code = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ErrorCode::PayloadTooLarge
            } else {
                ErrorCode::BadRequest
            };
            HttpError(ApiError::new(
                code,
                format!("cannot read the request body: {}", rejection.body_text()),
            ))
        })?;
        if json_values(&bytes, max_values) > max_values {
            return Err(HttpError(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body holds more than {max_values} JSON values, the most this endpoint decodes; \
                     send fewer items at a time"
                ),
            )));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|err| {
            HttpError(ApiError::new(
                ErrorCode::InvalidJson,
                format!("the request body is not valid JSON for this endpoint: {err}"),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_bound_what_a_body_decodes_into() {
        assert_eq!(json_values(b"1", 10), 1);
        assert_eq!(json_values(b"[]", 10), 2);
        assert_eq!(json_values(br#"{"a": [1, 2, 3]}"#, 10), 6);
        // Brackets, commas and colons inside strings, escaped quotes among them, are text.
        assert_eq!(json_values(br#"{"a": "[,:{\"],"}"#, 10), 3);
        assert_eq!(json_values(br#"["\\", 1]"#, 10), 3);
        // The bound is never below what serde_json builds: every value and key is counted.
        let body =
            br#"{"items": [{}, {"id": "x", "vector": [0.5, 1], "metadata": {"k": [null]}}]}"#;
        let value: serde_json::Value = serde_json::from_slice(body).expect("valid");
        fn nodes(v: &serde_json::Value) -> usize {
            match v {
                serde_json::Value::Array(a) => 1 + a.iter().map(nodes).sum::<usize>(),
                serde_json::Value::Object(o) => 1 + o.values().map(|v| 1 + nodes(v)).sum::<usize>(),
                serde_json::Value::Null
                | serde_json::Value::Bool(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::String(_) => 1,
            }
        }
        assert!(json_values(body, 100) >= nodes(&value));
        // Counting stops past the limit.
        assert_eq!(json_values(&b"{},".repeat(1000), 10), 11);
    }
}
