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
pub use tools::{Limits, Toolbox};

/// The most MCP sessions open at once over HTTP unless `[mcp] max_sessions` says otherwise. A session lives
/// until its client ends it or it has been idle for five minutes (rmcp's default), so a client that opens
/// sessions and never ends them would otherwise hold memory (some 50 KB) for each one it opened in the last
/// five minutes: 4,096 sessions took 200 MB.
pub const MAX_SESSIONS: usize = 1024;

/// The sessions of an HTTP MCP service: how many are open.
#[derive(Clone)]
pub struct Sessions(Arc<LocalSessionManager>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

impl Sessions {
    /// How many sessions are open now.
    pub async fn open(&self) -> usize {
        self.0.sessions.read().await.len()
    }
}

/// The streamable-HTTP MCP service, to nest in the gateway's router behind authentication: each request
/// acts as the caller its key names. With `any_host`, the `Host` header is not checked (keys authenticate
/// every request); otherwise only loopback hosts are served, against DNS rebinding. Its [`Sessions`] let
/// the router refuse new ones past `max_sessions`.
pub fn http_service(
    toolbox: Arc<Toolbox>,
    any_host: bool,
) -> (
    StreamableHttpService<McpServer, LocalSessionManager>,
    Sessions,
) {
    let mut config = StreamableHttpServerConfig::default();
    if any_host {
        config = config.disable_allowed_hosts();
    }
    let sessions = Arc::new(LocalSessionManager::default());
    let service = StreamableHttpService::new(
        move || Ok(McpServer::new(Arc::clone(&toolbox), Acting::PerRequest)),
        Arc::clone(&sessions),
        config,
    );
    (service, Sessions(sessions))
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
