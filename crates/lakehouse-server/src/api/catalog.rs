//! catalogd's routes: `/v1/catalog/datasets`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lakehouse_api::CatalogApi;
use lakehouse_types::dataset::{HistoryQuery, RegisterRequest, VacuumQuery};
use lakehouse_types::{ApiError, ErrorCode};

use crate::{ApiJson, Ctx, HttpError};

type Svc = State<Arc<dyn CatalogApi>>;

/// The header carrying an idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The catalog routes over `service`.
pub fn router(service: Arc<dyn CatalogApi>) -> Router {
    Router::new()
        .route("/v1/catalog/datasets", get(list))
        .route("/v1/catalog/datasets/{name}", get(manifest).delete(delete))
        .route(
            "/v1/catalog/datasets/{name}/versions/{version}",
            get(manifest_at),
        )
        .route("/v1/catalog/datasets/{name}/register", post(register))
        .route("/v1/catalog/datasets/{name}/optimize", post(optimize))
        .route("/v1/catalog/datasets/{name}/vacuum", post(vacuum))
        .route("/v1/catalog/datasets/{name}/history", get(history))
        .with_state(service)
}

fn bad_path(rejection: &PathRejection) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::InvalidParameter,
        format!("the path is not valid: {}", rejection.body_text()),
    ))
}

/// The `Idempotency-Key` header, when sent.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value.to_str().map(|v| Some(v.to_owned())).map_err(|_| {
            HttpError(ApiError::new(
                ErrorCode::InvalidParameter,
                "the Idempotency-Key header must be visible ASCII",
            ))
        }),
    }
}

async fn list(ctx: Ctx, State(service): Svc) -> Result<Response, HttpError> {
    Ok(Json(service.list_datasets(&ctx).await?).into_response())
}

/// Query parameters, refused with the JSON error body when malformed (`hint` says what they take).
fn query_params<T>(query: Result<Query<T>, QueryRejection>, hint: &str) -> Result<T, HttpError> {
    query.map(|Query(q)| q).map_err(|r| {
        HttpError(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("bad query parameters ({}); {hint}", r.body_text()),
        ))
    })
}

/// `?limit=&before=`.
fn history_query(
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<HistoryQuery, HttpError> {
    query_params(query, "limit is a count, before a version")
}

/// The manifest; `?limit=&before=` pages its history.
async fn manifest(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let Path(name) = path.map_err(|r| bad_path(&r))?;
    let query = history_query(query)?;
    let mut manifest = service.manifest(&ctx, &name, None).await?;
    if query != HistoryQuery::default() {
        manifest.history = service.history(&ctx, &name, query).await?.history;
    }
    Ok(Json(manifest).into_response())
}

async fn history(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let Path(name) = path.map_err(|r| bad_path(&r))?;
    let query = history_query(query)?;
    Ok(Json(service.history(&ctx, &name, query).await?).into_response())
}

async fn manifest_at(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, HttpError> {
    let Path((name, version)) = path.map_err(|r| bad_path(&r))?;
    let digits = version.strip_prefix(['v', 'V']).unwrap_or(&version);
    let version = digits.parse::<u64>().map_err(|_| {
        HttpError(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("{version:?} is not a version number"),
        ))
    })?;
    Ok(Json(service.manifest(&ctx, &name, Some(version)).await?).into_response())
}

async fn register(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<Response, HttpError> {
    let Path(name) = path.map_err(|r| bad_path(&r))?;
    let key = idempotency_key(&headers)?;
    let answer = service.register(&ctx, &name, request, key).await?;
    let status = if answer.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(answer)).into_response())
}

async fn optimize(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    let Path(name) = path.map_err(|r| bad_path(&r))?;
    Ok(Json(service.optimize(&ctx, &name).await?).into_response())
}

async fn vacuum(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<VacuumQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let Path(name) = path.map_err(|r| bad_path(&r))?;
    let query = query_params(query, "dry_run is true or false")?;
    Ok(Json(service.vacuum(&ctx, &name, query).await?).into_response())
}

async fn delete(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let Path(name) = path.map_err(|r| bad_path(&r))?;
    service.delete_dataset(&ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
