//! `GET /health`: this process and every service it serves or routes to.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use futures::future::{BoxFuture, join_all};
use lakehouse_types::health::{HealthReport, ServiceHealth, Status};

use crate::Services;

/// `GET /health`: 200 with each service's status; `status` is `degraded` when any service is not ok.
pub async fn health(State(services): State<Arc<Services>>) -> Json<HealthReport> {
    let mut checks: Vec<(&str, BoxFuture<'_, ServiceHealth>)> = Vec::new();
    if let Some(storage) = &services.storage {
        checks.push(("storaged", storage.health()));
    }
    if let Some(catalog) = &services.catalog {
        checks.push(("catalogd", catalog.health()));
    }
    if let Some(ingest) = &services.ingest {
        checks.push(("ingestd", ingest.health()));
    }
    if let Some(query) = &services.query {
        checks.push(("queryd", query.health()));
    }
    if let Some(embed) = &services.embed {
        checks.push(("embedd", embed.health()));
    }
    if let Some(vector) = &services.vector {
        checks.push(("vectord", vector.health()));
    }
    if let Some(matrix) = &services.matrix {
        checks.push(("matrixd", matrix.health()));
    }
    let (names, futures): (Vec<_>, Vec<_>) = checks.into_iter().unzip();
    let reports = join_all(futures).await;
    let services: BTreeMap<String, ServiceHealth> =
        names.into_iter().map(str::to_owned).zip(reports).collect();
    let status = if services.values().all(|s| s.status == Status::Ok) {
        Status::Ok
    } else {
        Status::Degraded
    };
    Json(HealthReport {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        services,
    })
}
