//! [`McpServer`]: the tools as an MCP server (rmcp), for stdio and for streamable HTTP.
//!
//! The handler is written by hand rather than with rmcp's tool macros because one description is not
//! static: `query_sql` lists the datasets the caller can read, asked of the catalog when tools are listed.
//! Arguments are checked against the same types the schemas come from; a call whose arguments do not fit
//! is the protocol's invalid-params error, a tool that fails (bad SQL, an unknown dataset, a corpus the
//! role may not search) answers a tool result with `isError` and the API's code and message.

use std::borrow::Cow;
use std::sync::Arc;

use lakehouse_types::{ApiError, Caller, RequestContext};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext as McpContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::tools::{EmbedArgs, ManifestArgs, MatrixArgs, Outcome, SqlArgs, Toolbox, VectorArgs};

/// Who the tools act as.
#[derive(Debug, Clone)]
pub enum Acting {
    /// One caller for the whole session (stdio: the `--api-key` given to `lakehouse mcp`).
    As(Caller),
    /// The caller the gateway's authentication put on each HTTP request.
    PerRequest,
}

/// The MCP server over a [`Toolbox`].
#[derive(Debug, Clone)]
pub struct McpServer {
    toolbox: Arc<Toolbox>,
    acting: Acting,
}

/// An empty argument list.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

const INSTRUCTIONS: &str = "Lakehouse holds a staffing company's data as versioned tables (workers, job orders, \
placements, timesheets, ...) and finds eligible workers for job orders. Start with list_datasets and \
list_corpora. Use matrix_search to find workers (by words, or from a job order id, with eligibility reasons); \
query_sql for counts, sums and lookups (read-only SQL); get_manifest for a table's columns and history.";

fn schema<T: JsonSchema>() -> Arc<serde_json::Map<String, serde_json::Value>> {
    let schema = schemars::schema_for!(T);
    match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(map)) => Arc::new(map),
        _ => Arc::new(serde_json::Map::new()),
    }
}

fn read_only(tool: Tool) -> Tool {
    let mut hints = ToolAnnotations::new();
    hints.read_only_hint = Some(true);
    tool.with_annotations(hints)
}

/// The tools as listed; `datasets` goes into the description of `query_sql`.
fn tools(datasets: &[String]) -> Vec<Tool> {
    let readable = if datasets.is_empty() {
        "none yet".to_owned()
    } else {
        datasets.join(", ")
    };
    vec![
        Tool::new(
            "list_datasets",
            "List the datasets (tables): name, current version, rows, bytes, last update. Every dataset is a \
             table query_sql can read.",
            schema::<NoArgs>(),
        ),
        Tool::new(
            "get_manifest",
            "One dataset's manifest as JSON: its columns and their types, data files, rows, and the history of \
             versions (each with its operation and rows added). Give `version` for a past version.",
            schema::<ManifestArgs>(),
        ),
        Tool::new(
            "query_sql",
            Cow::Owned(format!(
                "Run one read-only SQL statement (Apache DataFusion dialect: SELECT, WITH, EXPLAIN, SHOW, \
                 DESCRIBE; nothing can be changed). Tables you can read: {readable}. \"name@v3\" (quoted) is \
                 version 3 of a table. Answers a tab-separated table with column types, at most 1,000 rows and \
                 64 KB, and says when it was truncated: aggregate or filter rather than reading whole tables."
            )),
            schema::<SqlArgs>(),
        ),
        Tool::new(
            "embed_text",
            "Turn texts into embedding vectors with the server's model (384 numbers each for the built-in \
             model). Useful only to pass vectors on to search_vectors; to find workers use matrix_search.",
            schema::<EmbedArgs>(),
        ),
        Tool::new(
            "search_vectors",
            "Nearest-neighbour search in one raw vector index, by text or vector, with metadata filters. Answers \
             JSON hits with score and metadata. For finding workers, matrix_search is better: it adds keyword \
             search, eligibility and job orders.",
            schema::<VectorArgs>(),
        ),
        Tool::new(
            "matrix_search",
            "Find the right eligible workers (or other corpus rows) for a need: by words (\"forklift operator \
             with OSHA 10 near Dallas\"), by a job order id (its requirements decide eligibility: certifications, \
             start date, pay, distance), or both; with filters on fields. Answers a tab-separated table of hits \
             (corpus, id, score, eligible, visible fields, reasons) and how many candidates were excluded for \
             which reason.",
            schema::<MatrixArgs>(),
        ),
        Tool::new(
            "list_corpora",
            "List the corpora matrix_search can search: name, dataset, version, status, rows, the fields hits \
             show, and the job-orders dataset whose ids matrix_search accepts as order_id.",
            schema::<NoArgs>(),
        ),
    ]
    .into_iter()
    .map(read_only)
    .collect()
}

/// A call's arguments as `T`, or the protocol's invalid-params error naming what is wrong.
fn args<T: DeserializeOwned>(request: &CallToolRequestParams) -> Result<T, McpError> {
    let value = serde_json::Value::Object(request.arguments.clone().unwrap_or_default());
    serde_json::from_value(value).map_err(|e| {
        McpError::invalid_params(
            format!("arguments of {} do not fit its schema: {e}", request.name),
            None,
        )
    })
}

fn answer(outcome: Outcome) -> CallToolResult {
    match outcome {
        Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        Err(ApiError { code, message, .. }) => {
            CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))])
        }
    }
}

impl McpServer {
    /// The server over `toolbox`, acting as `acting`.
    pub fn new(toolbox: Arc<Toolbox>, acting: Acting) -> Self {
        McpServer { toolbox, acting }
    }

    /// The request context a call runs with: the session's caller, or the HTTP request's.
    fn ctx(&self, context: &McpContext<RoleServer>) -> Result<RequestContext, McpError> {
        let caller = match &self.acting {
            Acting::As(caller) => caller.clone(),
            Acting::PerRequest => context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Caller>())
                .cloned()
                .ok_or_else(|| {
                    McpError::internal_error("the request carries no authenticated caller", None)
                })?,
        };
        Ok(RequestContext {
            caller,
            request_id: uuid::Uuid::new_v4().to_string(),
        })
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lakehouse", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: McpContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let ctx = self.ctx(&context)?;
        let datasets = self.toolbox.dataset_names(&ctx).await;
        Ok(ListToolsResult::with_all_items(tools(&datasets)))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools(&[]).into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: McpContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let ctx = self.ctx(&context)?;
        let tools = &self.toolbox;
        let outcome = match request.name.as_ref() {
            "list_datasets" => {
                args::<NoArgs>(&request)?;
                tools.list_datasets(&ctx).await
            }
            "get_manifest" => tools.get_manifest(&ctx, args(&request)?).await,
            "query_sql" => tools.query_sql(&ctx, args(&request)?).await,
            "embed_text" => tools.embed_text(&ctx, args(&request)?).await,
            "search_vectors" => tools.search_vectors(&ctx, args(&request)?).await,
            "matrix_search" => tools.matrix_search(&ctx, args(&request)?).await,
            "list_corpora" => {
                args::<NoArgs>(&request)?;
                tools.list_corpora(&ctx).await
            }
            other => {
                return Err(McpError::invalid_params(
                    format!("no tool named {other:?}; tools/list lists them"),
                    None,
                ));
            }
        };
        Ok(answer(outcome).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        let listed = tools(&["workers".to_owned()]);
        let names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            vec![
                "list_datasets",
                "get_manifest",
                "query_sql",
                "embed_text",
                "search_vectors",
                "matrix_search",
                "list_corpora"
            ]
        );
        for tool in &listed {
            assert_eq!(
                tool.input_schema.get("type"),
                Some(&serde_json::json!("object")),
                "{}",
                tool.name
            );
            assert!(tool.description.as_ref().is_some_and(|d| d.len() > 40));
        }
        let sql = &listed[2];
        assert!(
            sql.description
                .as_ref()
                .is_some_and(|d| d.contains("Tables you can read: workers"))
        );
        let required = listed[2]
            .input_schema
            .get("required")
            .cloned()
            .unwrap_or_default();
        assert_eq!(required, serde_json::json!(["sql"]));
    }

    #[test]
    fn errors_keep_the_api_code() {
        let response = answer(Err(ApiError::new(
            lakehouse_types::ErrorCode::ReadOnly,
            "only read-only statements",
        )));
        let text = serde_json::to_string(&response).unwrap_or_default();
        assert!(
            text.contains("read_only: only read-only statements"),
            "{text}"
        );
        assert!(text.contains("\"isError\":true"), "{text}");
    }
}
