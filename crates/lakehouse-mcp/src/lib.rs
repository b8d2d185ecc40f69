//! MCP for AI assistants: the tools (`list_datasets`, `get_manifest`, `query_sql`, `embed_text`,
//! `search_vectors`, `matrix_search`, `list_corpora`) over the service traits, served with rmcp over stdio
//! (`lakehouse mcp`, through the HTTP clients) and over streamable HTTP at the gateway's `/v1/mcp`
//! (in-process). One set of tool definitions serves both.
//!
//! Modules:
//! - [`tools`]: what each tool does, with its row and byte caps.
//! - [`server`]: the rmcp handler, and who it acts as.
#![deny(missing_docs)]

pub mod server;
pub mod tools;

use std::sync::Arc;

use lakehouse_types::Caller;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use server::{Acting, McpServer};
pub use tools::{Limits, Services, Toolbox};

/// The streamable-HTTP MCP service, to nest in the gateway's router behind authentication: each request
/// acts as the caller its key names. With `any_host`, the `Host` header is not checked (keys authenticate
/// every request); otherwise only loopback hosts are served, against DNS rebinding.
pub fn http_service(
    toolbox: Arc<Toolbox>,
    any_host: bool,
) -> StreamableHttpService<McpServer, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default();
    if any_host {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || Ok(McpServer::new(Arc::clone(&toolbox), Acting::PerRequest)),
        LocalSessionManager::default().into(),
        config,
    )
}

/// Serves the tools over standard input and output, acting as `caller`, until the client closes them.
/// Standard output carries protocol messages only; logs go to standard error.
pub async fn serve_stdio(toolbox: Arc<Toolbox>, caller: Caller) -> anyhow::Result<()> {
    let running = McpServer::new(toolbox, Acting::As(caller))
        .serve(rmcp::transport::stdio())
        .await?;
    running.waiting().await?;
    Ok(())
}
