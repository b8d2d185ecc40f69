//! matrixd's routes: `/v1/matrix/corpora` and `/v1/matrix/search`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lakehouse_api::MatrixApi;
use lakehouse_types::matrix::{CorpusDefinition, MatrixSearchRequest};
use lakehouse_types::{ApiError, ErrorCode};

use crate::{ApiJson, Ctx, HttpError};

type Svc = State<Arc<dyn MatrixApi>>;

/// The matrix routes over `service`.
pub fn router(service: Arc<dyn MatrixApi>) -> Router {
    Router::new()
        .route("/v1/matrix/corpora", post(create_corpus).get(list_corpora))
        .route(
            "/v1/matrix/corpora/{name}",
            get(corpus).delete(delete_corpus),
        )
        .route("/v1/matrix/corpora/{name}/rebuild", post(rebuild_corpus))
        .route("/v1/matrix/search", post(search))
        .with_state(service)
}

fn name(path: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    path.map(|Path(name)| name).map_err(|rejection| {
        HttpError(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("the path is not valid: {}", rejection.body_text()),
        ))
    })
}

async fn create_corpus(
    ctx: Ctx,
    State(service): Svc,
    ApiJson(definition): ApiJson<CorpusDefinition>,
) -> Result<Response, HttpError> {
    let info = service.create_corpus(&ctx, definition).await?;
    Ok((StatusCode::ACCEPTED, Json(info)).into_response())
}

async fn list_corpora(ctx: Ctx, State(service): Svc) -> Result<Response, HttpError> {
    Ok(Json(service.list_corpora(&ctx).await?).into_response())
}

async fn corpus(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    let name = name(path)?;
    Ok(Json(service.corpus(&ctx, &name).await?).into_response())
}

async fn delete_corpus(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let name = name(path)?;
    service.delete_corpus(&ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rebuild_corpus(
    ctx: Ctx,
    State(service): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    let name = name(path)?;
    let info = service.rebuild_corpus(&ctx, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(info)).into_response())
}

async fn search(
    ctx: Ctx,
    State(service): Svc,
    ApiJson(request): ApiJson<MatrixSearchRequest>,
) -> Result<Response, HttpError> {
    Ok(Json(service.search(&ctx, request).await?).into_response())
}
