//! ingestd's route: `POST /v1/ingest/{dataset}?mode=&evolve=&format=`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use lakehouse_api::IngestApi;
use lakehouse_types::dataset::{IngestFormat, IngestParams, IngestRequest};
use lakehouse_types::{ApiError, ErrorCode};

use crate::api::catalog::idempotency_key;
use crate::{Ctx, HttpError};

type Svc = State<Arc<dyn IngestApi>>;

/// The ingest route over `service`. The body is streamed to the service; its size cap is the service's.
pub fn router(service: Arc<dyn IngestApi>) -> Router {
    Router::new()
        .route("/v1/ingest/{dataset}", post(ingest))
        .layer(DefaultBodyLimit::disable())
        .with_state(service)
}

/// Declared types a web page of another site can send without the browser asking first (a form, plain
/// text): never read as data, whatever `?format=` says.
const FORM_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// The body format: `?format=` first, then the `Content-Type`, then CSV. A body declared as a form or plain
/// text is refused.
fn format(params: &IngestParams, headers: &HeaderMap) -> Result<IngestFormat, HttpError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").to_ascii_lowercase());
    if let Some(ct) = &declared {
        let essence = ct.split(';').next().unwrap_or("").trim();
        if FORM_TYPES.contains(&essence) {
            return Err(HttpError(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "cannot ingest a body declared as {essence}; declare what it is: text/csv, \
                     application/x-ndjson or application/vnd.apache.parquet (curl: -H 'Content-Type: text/csv' \
                     --data-binary @file.csv)"
                ),
            )));
        }
    }
    if let Some(format) = params.format {
        return Ok(format);
    }
    match declared.as_deref() {
        // No type, or a generic one: CSV, the common case.
        None => Ok(IngestFormat::Csv),
        Some(ct) if ct.starts_with("application/octet-stream") => Ok(IngestFormat::Csv),
        Some(ct) => IngestFormat::from_content_type(ct).ok_or_else(|| {
            HttpError(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "cannot ingest {ct}; send text/csv, application/x-ndjson or \
                     application/vnd.apache.parquet (or add ?format=csv|ndjson|parquet)"
                ),
            ))
        }),
    }
}

async fn ingest(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<IngestParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let Path(dataset) = path.map_err(|r| {
        HttpError(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("the path is not valid: {}", r.body_text()),
        ))
    })?;
    let Query(params) = params.map_err(|r| {
        HttpError(ApiError::new(
            ErrorCode::InvalidParameter,
            format!(
                "bad query parameters ({}); mode is create|append|overwrite, evolve is add_columns",
                r.body_text()
            ),
        ))
    })?;
    let request = IngestRequest {
        dataset,
        mode: params.mode.unwrap_or_default(),
        evolve: params.evolve,
        format: format(&params, &headers)?,
        idempotency_key: idempotency_key(&headers)?,
        content_length: headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    };
    let stream = body
        .into_data_stream()
        .map(|chunk| {
            chunk.map_err(|e| {
                ApiError::bad_request(format!("the request body could not be read: {e}"))
            })
        })
        .boxed();
    let answer = service.ingest(&ctx, request, stream).await?;
    let status = if answer.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(answer)).into_response())
}
