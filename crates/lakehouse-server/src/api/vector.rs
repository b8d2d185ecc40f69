//! vectord's routes: `/v1/vectors/index`.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use lakehouse_api::VectorApi;
use lakehouse_types::vector::{AddRequest, CreateIndexRequest, SearchRequest};
use lakehouse_types::{ApiError, ErrorCode};

use crate::extract::JsonValues;
use crate::{ApiJson, Ctx, HttpError};

type Svc = State<Arc<dyn VectorApi>>;

/// Largest request body: a full batch (10,000 items of 384-d vectors, as JSON text) with room to spare.
pub const MAX_BODY_BYTES: usize = 128 * 1024 * 1024;

/// Most JSON values decoded from one body: 10,000 items of 768-d vectors with their metadata. A body of
/// nothing but small JSON values decodes into at most some 256 MB.
pub const MAX_JSON_VALUES: usize = 8_000_000;

/// The vector routes over `service`.
pub fn router(service: Arc<dyn VectorApi>) -> Router {
    Router::new()
        .route("/v1/vectors/index", post(create_index).get(list_indexes))
        .route(
            "/v1/vectors/index/{name}",
            get(index_info).delete(drop_index),
        )
        .route("/v1/vectors/index/{name}/add", post(add))
        .route("/v1/vectors/index/{name}/search", post(search))
        .route(
            "/v1/vectors/index/{name}/items/{id}",
            get(get_item).delete(delete_item),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(JsonValues(MAX_JSON_VALUES)))
        .with_state(service)
}

fn bad_path(rejection: &PathRejection) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::InvalidParameter,
        format!("the path is not valid: {}", rejection.body_text()),
    ))
}

fn name(path: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    path.map(|Path(name)| name).map_err(|r| bad_path(&r))
}

fn name_and_id(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), HttpError> {
    path.map(|Path(pair)| pair).map_err(|r| bad_path(&r))
}

async fn create_index(
    ctx: Ctx,
    State(service): Svc,
    ApiJson(request): ApiJson<CreateIndexRequest>,
) -> Result<Response, HttpError> {
    let info = service.create_index(&ctx, request).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn list_indexes(ctx: Ctx, State(service): Svc) -> Result<Response, HttpError> {
    Ok(Json(service.list_indexes(&ctx).await?).into_response())
}

async fn index_info(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    let name = name(path)?;
    Ok(Json(service.index_info(&ctx, &name).await?).into_response())
}

async fn drop_index(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let name = name(path)?;
    service.drop_index(&ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<AddRequest>,
) -> Result<Response, HttpError> {
    let name = name(path)?;
    Ok(Json(service.add(&ctx, &name, request).await?).into_response())
}

async fn search(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
    ApiJson(request): ApiJson<SearchRequest>,
) -> Result<Response, HttpError> {
    let name = name(path)?;
    Ok(Json(service.search(&ctx, &name, request).await?).into_response())
}

async fn get_item(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, HttpError> {
    let (name, id) = name_and_id(path)?;
    Ok(Json(service.get_item(&ctx, &name, &id).await?).into_response())
}

async fn delete_item(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let (name, id) = name_and_id(path)?;
    service.delete_item(&ctx, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
