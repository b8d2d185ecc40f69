//! The HTTP layer of every Lakehouse service.
//!
//! Domain crates know nothing of HTTP; this crate turns each service trait into an axum router, and adds what
//! every deployment shares: API-key auth, `X-Request-Id`, Prometheus metrics, `/health`, the JSON error body,
//! and graceful shutdown. The same [`app`] serves the all-in-one process, a single service (`--only
//! storaged`), and the gateway in front of remote services: what differs is only whether each
//! `Arc<dyn ...Api>` in [`Services`] is the domain crate or its HTTP client.
//!
//! Modules:
//! - [`api`]: one router per service.
//! - [`auth`]: API keys → caller.
//! - [`browsers`]: what a web page may make the server do (`Host`, `Origin`, CORS for allowed origins).
//! - [`error`]: [`HttpError`], the one place an error becomes a response.
//! - [`extract`]: [`Ctx`] and [`ApiJson`], the extractors handlers use.
//! - [`metrics`]: the Prometheus registry.
//! - [`observe`]: request ids, request logs and request metrics.
//! - [`page`]: the web page, compiled in.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod browsers;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod observe;
pub mod page;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use lakehouse_types::policy::Policy;
use tokio::net::TcpListener;

pub use auth::Authenticator;
pub use browsers::Browsers;
pub use error::HttpError;
pub use extract::{ApiJson, Ctx};
/// The services one process serves, each local or remote; a `None` service has no routes here.
pub use lakehouse_api::Services;
pub use lakehouse_api::metrics::{Reading, ReadingValue, Reports};
pub use metrics::Metrics;

/// What the application shares beside the services.
#[derive(Debug, Clone)]
pub struct Shared {
    /// API keys → callers.
    pub auth: Arc<Authenticator>,
    /// The Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// What each role may do (for `/v1/whoami`).
    pub policy: Arc<Policy>,
    /// What this process serves as the gateway (the process users reach), when it is one.
    pub gateway: Option<Gateway>,
    /// Which hosts and origins browsers may reach the server under.
    pub browsers: Arc<Browsers>,
}

/// What the gateway serves beside the services' routes: the web page, and MCP at `/v1/mcp`.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The MCP tools, over the services this process reaches.
    pub mcp: Arc<lakehouse_mcp::Toolbox>,
}

/// The whole HTTP application over `services`.
pub fn app(services: Services, shared: Shared) -> Router {
    let Shared {
        auth,
        metrics,
        policy,
        gateway,
        browsers,
    } = shared;
    let mut api = Router::new().merge(api::session::router(policy, !auth.is_open()));
    if let Some(gateway) = &gateway {
        api = api.merge(api::mcp::router(Arc::clone(&gateway.mcp), !auth.is_open()));
    }
    if let Some(storage) = &services.storage {
        api = api.merge(api::storage::router(Arc::clone(storage)));
    }
    if let Some(vector) = &services.vector {
        api = api.merge(api::vector::router(Arc::clone(vector)));
    }
    if let Some(catalog) = &services.catalog {
        api = api.merge(api::catalog::router(Arc::clone(catalog)));
    }
    if let Some(ingest) = &services.ingest {
        api = api.merge(api::ingest::router(Arc::clone(ingest)));
    }
    if let Some(query) = &services.query {
        api = api.merge(api::query::router(Arc::clone(query)));
    }
    if let Some(embed) = &services.embed {
        api = api.merge(api::embed::router(Arc::clone(embed)));
    }
    if let Some(matrix) = &services.matrix {
        api = api.merge(api::matrix::router(Arc::clone(matrix)));
    }
    let api = api.layer(axum::middleware::from_fn_with_state(
        auth,
        auth::require_caller,
    ));

    let mut root = Router::new();
    if gateway.is_some() {
        root = root.merge(page::router());
    }
    root.route(
        "/health",
        get(health::health).with_state(Arc::new(services)),
    )
    .route(
        "/metrics",
        get(metrics::render).with_state(Arc::clone(&metrics)),
    )
    .merge(api)
    .fallback(error::not_found)
    .method_not_allowed_fallback(error::method_not_allowed)
    .layer(axum::middleware::from_fn_with_state(
        browsers,
        browsers::guard,
    ))
    .layer(axum::middleware::from_fn_with_state(
        metrics,
        observe::observe,
    ))
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
///
/// The caller binds the listener (tests bind port 0) and owns the shutdown signal.
///
/// Every accepted connection has `TCP_NODELAY`: an answer streamed as a head and then a small body would
/// otherwise wait for the client's delayed acknowledgement (40 ms per object read measured on loopback).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set on an accepted connection: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
