//! `lakehouse mcp`: the MCP tools over standard input and output for an AI assistant, acting through a
//! running server (its gateway) with the key given.

use std::sync::Arc;

use clap::Args;
use lakehouse_client::{
    HttpCatalogClient, HttpEmbedClient, HttpMatrixClient, HttpQueryClient, HttpVectorClient,
};
use lakehouse_types::{Caller, Role};

use crate::datasets_cli::api;

/// `lakehouse mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// The server (gateway) the tools act through.
    #[arg(long, env = "LAKEHOUSE_URL", default_value = "http://127.0.0.1:3110")]
    pub gateway: String,
    /// API key, when the server has keys: the tools act with its role.
    #[arg(long, env = "LAKEHOUSE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Most rows a query_sql answer holds.
    #[arg(long, default_value_t = 1000)]
    pub max_rows: usize,
    /// Most bytes of text one answer holds.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_bytes: usize,
}

/// Serves until the assistant closes standard input. Only protocol messages go to standard output.
pub async fn run(args: McpArgs) -> anyhow::Result<()> {
    let url = args.gateway.as_str();
    let services = lakehouse_api::Services {
        catalog: Some(Arc::new(HttpCatalogClient::new(url).map_err(api)?)),
        query: Some(Arc::new(HttpQueryClient::new(url).map_err(api)?)),
        embed: Some(Arc::new(HttpEmbedClient::new(url).map_err(api)?)),
        vector: Some(Arc::new(HttpVectorClient::new(url).map_err(api)?)),
        matrix: Some(Arc::new(HttpMatrixClient::new(url).map_err(api)?)),
        ..lakehouse_api::Services::default()
    };
    let limits = lakehouse_mcp::Limits {
        max_rows: args.max_rows.max(1),
        max_bytes: args.max_bytes.max(1024),
        ..lakehouse_mcp::Limits::default()
    };
    let toolbox = Arc::new(lakehouse_mcp::Toolbox::new(&services, limits).map_err(api)?);
    // The server decides the role from the key; this side only carries the key.
    let caller = Caller {
        name: "mcp".to_owned(),
        role: Role("remote".to_owned()),
        credential: args.api_key,
    };
    lakehouse_mcp::serve_stdio(toolbox, caller).await
}
