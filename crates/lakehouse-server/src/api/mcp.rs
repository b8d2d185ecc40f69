//! `/v1/mcp`: the MCP tools over streamable HTTP, served by the gateway behind the same keys as every other
//! route. Each request acts with the role of the key it carries.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use lakehouse_types::{ApiError, ErrorCode};

use crate::HttpError;

/// The MCP route over `toolbox`.
///
/// With keys configured, every request is authenticated, so any `Host` is accepted (the server may listen
/// on a public address); in open mode the server listens on loopback only and rmcp's loopback-host check
/// stays on, against DNS rebinding from a browser page.
pub fn router(toolbox: Arc<lakehouse_mcp::Toolbox>, keys: bool) -> Router {
    let max_sessions = toolbox.limits().max_sessions;
    let (service, sessions) = lakehouse_mcp::http_service(toolbox, keys);
    Router::new()
        .nest_service("/v1/mcp", service)
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let sessions = sessions.clone();
            async move {
                // A POST without a session id opens a session.
                let opens = request.method() == Method::POST
                    && !request.headers().contains_key("mcp-session-id");
                if opens && sessions.open().await >= max_sessions {
                    let full = ApiError::new(
                        ErrorCode::Overloaded,
                        format!(
                            "{max_sessions} MCP sessions are open, the most served at once ([mcp] \
                             max_sessions); end unused sessions (DELETE with their mcp-session-id) or \
                             retry later"
                        ),
                    )
                    .with_retry_after(5);
                    return HttpError(full).into_response();
                }
                next.run(request).await
            }
        }))
}
