//! queryd's route: `POST /v1/sql`, answered as JSON, CSV, NDJSON or an Arrow IPC stream by `Accept`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lakehouse_api::QueryApi;
use lakehouse_types::dataset::{ARROW_STREAM_CONTENT_TYPE, SqlRequest, sql_headers};

use crate::{ApiJson, Ctx, HttpError};

type Svc = State<Arc<dyn QueryApi>>;

/// The SQL route over `service`.
pub fn router(service: Arc<dyn QueryApi>) -> Router {
    Router::new()
        .route("/v1/sql", post(sql))
        .with_state(service)
}

/// The result encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Ndjson,
    Arrow,
}

/// The first supported type the `Accept` header names (quality values are not weighed); JSON otherwise.
fn negotiate(headers: &HeaderMap) -> Format {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for item in accept.split(',') {
        let essence = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => return Format::Json,
            "text/csv" => return Format::Csv,
            "application/x-ndjson" | "application/ndjson" => return Format::Ndjson,
            ARROW_STREAM_CONTENT_TYPE => return Format::Arrow,
            _ => {}
        }
    }
    Format::Json
}

async fn sql(
    ctx: Ctx,
    State(service): Svc,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SqlRequest>,
) -> Result<Response, HttpError> {
    let format = negotiate(&headers);
    let result = service.sql(&ctx, request).await?;
    let (content_type, body) = match format {
        Format::Json => return Ok(Json(result.to_sql_response()?).into_response()),
        Format::Csv => ("text/csv; charset=utf-8", result.to_csv()?),
        Format::Ndjson => ("application/x-ndjson", result.to_ndjson()?),
        Format::Arrow => (ARROW_STREAM_CONTENT_TYPE, result.to_ipc()?),
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        sql_headers::TRUNCATED,
        HeaderValue::from_static(if result.truncated { "true" } else { "false" }),
    );
    h.insert(
        sql_headers::ELAPSED_MS,
        HeaderValue::from(result.elapsed_ms),
    );
    Ok(response)
}
