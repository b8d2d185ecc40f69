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
/// and column serde stopped at, and the content type is not required (curl users forget it).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
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
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|err| {
            HttpError(ApiError::new(
                ErrorCode::InvalidJson,
                format!("the request body is not valid JSON for this endpoint: {err}"),
            ))
        })
    }
}
