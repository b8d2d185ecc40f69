//! `/v1/mcp`: the MCP tools over streamable HTTP, served by the gateway behind the same keys as every other
//! route. Each request acts with the role of the key it carries.

use std::sync::Arc;

use axum::Router;

use crate::Services;

/// The MCP route, when this process reaches every service the tools use (a gateway always does).
///
/// With keys configured, every request is authenticated, so any `Host` is accepted (the server may listen
/// on a public address); in open mode the server listens on loopback only and rmcp's loopback-host check
/// stays on, against DNS rebinding from a browser page.
pub fn router(services: &Services, limits: lakehouse_mcp::Limits, keys: bool) -> Router {
    let (Some(catalog), Some(query), Some(embed), Some(vector), Some(matrix)) = (
        &services.catalog,
        &services.query,
        &services.embed,
        &services.vector,
        &services.matrix,
    ) else {
        return Router::new();
    };
    let toolbox = Arc::new(lakehouse_mcp::Toolbox::new(
        lakehouse_mcp::Services {
            catalog: Arc::clone(catalog),
            query: Arc::clone(query),
            embed: Arc::clone(embed),
            vector: Arc::clone(vector),
            matrix: Arc::clone(matrix),
        },
        limits,
    ));
    Router::new().nest_service("/v1/mcp", lakehouse_mcp::http_service(toolbox, keys))
}
