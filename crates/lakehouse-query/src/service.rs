//! [`Query`]: the [`QueryApi`] implementation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use lakehouse_api::{QueryApi, QueryResult};
use lakehouse_catalog::Tables;
use lakehouse_catalog::tables::root_url;
use lakehouse_types::RequestContext;
use lakehouse_types::dataset::SqlRequest;
use lakehouse_types::health::ServiceHealth;
use serde::Deserialize;

use crate::bounded::bounded_functions;
use crate::provider::{DatasetSchema, Visibility};
use crate::readonly;
use crate::rules::eager::EagerAggregation;
use crate::rules::filter::FastFilters;
use crate::rules::window::ShiftWindows;
use crate::{Error, Result};
use lakehouse_types::policy::{Action, Policy};

/// Query settings (`[query]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Per-query time limit, planning and execution, in milliseconds.
    pub timeout_ms: u64,
    /// Memory all running queries may hold together, in bytes; past it operators spill to disk or fail.
    pub memory_limit_bytes: usize,
    /// Rows returned when the request names no `max_rows`.
    pub default_max_rows: usize,
    /// The most rows a request may ask for.
    pub max_rows_cap: usize,
    /// Parallelism of one query (the number of CPUs when unset).
    pub target_partitions: Option<usize>,
    /// Bytes of Arrow data an answer may hold; past it the answer is cut (`truncated`) while it is read.
    pub max_answer_bytes: u64,
    /// Bytes one call of a function whose output an argument sizes (`repeat`, `lpad`, `range`, ...) may
    /// build; past it the query is refused (413) before the function runs.
    pub max_function_bytes: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout_ms: 30_000,
            memory_limit_bytes: 1024 * 1024 * 1024,
            default_max_rows: 10_000,
            max_rows_cap: 1_000_000,
            target_partitions: None,
            max_answer_bytes: 32 * 1024 * 1024,
            max_function_bytes: 256 * 1024 * 1024,
        }
    }
}

/// SQL over the datasets of one store.
#[derive(Debug, Clone)]
pub struct Query {
    tables: Tables,
    runtime: Arc<RuntimeEnv>,
    config: QueryConfig,
    /// The Parquet settings table scans take (see [`scan_session`]).
    scan: Arc<SessionState>,
    /// What each role may see.
    policy: Arc<Policy>,
    /// DataFusion's functions that build values sized by an argument, bounded (see [`crate::bounded`]).
    bounded: Arc<Vec<ScalarUDF>>,
}

/// Delta scans left to themselves evaluate a query's filters row by row while decoding Parquet
/// (`pushdown_filters`), and DataFusion then pushes the same filter into the scan a second time, so each
/// predicate ran twice, row at a time: a LIKE over 1M rows took 5× DuckDB's time. Scans built from this
/// session take DataFusion's defaults instead: filters prune files, row groups and pages by statistics, and
/// rows are filtered once, a batch at a time, above the scan; strings are read as `Utf8View`.
fn scan_session() -> Arc<SessionState> {
    Arc::new(
        SessionStateBuilder::new()
            .with_config(SessionConfig::new())
            .build(),
    )
}

/// Rows per batch inside a query: four times DataFusion's default. Operators with a cost per batch gain
/// most: `lag` over 50,000 window partitions of 20 rows each (a sort, then `BoundedWindowAggExec`) took 198 ms
/// at 8,192 rows and 172–175 ms at 32,768 (168 ms at 65,536); the other staffing benchmark queries stayed
/// within noise (`docs/benchmarks.md`).
const QUERY_BATCH_ROWS: usize = 32 * 1024;

const CATALOG: &str = "lakehouse";
const SCHEMA: &str = "public";

impl Query {
    /// Queries over `tables`.
    pub fn new(tables: Tables, config: QueryConfig) -> Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(config.memory_limit_bytes)))
            .build_arc()?;
        runtime.register_object_store(&root_url(), tables.store().clone());
        let defaults = SessionStateBuilder::new().with_default_features().build();
        let bounded = Arc::new(bounded_functions(&defaults, config.max_function_bytes));
        Ok(Query {
            tables,
            runtime,
            config,
            scan: scan_session(),
            policy: Arc::new(Policy::default()),
            bounded,
        })
    }

    /// Queries under `policy` (the built-in roles otherwise): a role without `sql` is refused, a role's
    /// hidden columns are left out of every table, and `matrix_recordings` is readable by the roles given it.
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// The limits in force.
    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    async fn session(&self, visibility: Visibility) -> Result<SessionContext> {
        let mut config = SessionConfig::new()
            .with_batch_size(QUERY_BATCH_ROWS)
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, SCHEMA);
        if let Some(p) = self.config.target_partitions {
            config = config.with_target_partitions(p.max(1));
        }
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .with_optimizer_rule(Arc::new(EagerAggregation))
            .with_physical_optimizer_rule(Arc::new(ShiftWindows))
            .with_physical_optimizer_rule(Arc::new(FastFilters))
            .build();
        let ctx = SessionContext::new_with_state(state);
        for function in self.bounded.iter() {
            ctx.register_udf(function.clone());
        }
        // Only `SHOW TABLES` and information_schema read this list; checking each directory for a log
        // would cost one more listing per dataset on every query.
        let names = self.tables.directory_names().await?;
        let catalog = ctx
            .catalog(CATALOG)
            .ok_or_else(|| Error::BadRequest("the default catalog is missing".into()))?;
        catalog.register_schema(
            SCHEMA,
            Arc::new(DatasetSchema::new(
                self.tables.clone(),
                names,
                Arc::clone(&self.scan),
                self.runtime.clone(),
                visibility,
            )),
        )?;
        Ok(ctx)
    }

    /// Runs one statement with everything visible: the rows (at most `max_rows`), whether there were more.
    pub async fn run(&self, request: &SqlRequest) -> Result<QueryResult> {
        self.run_as(request, Visibility::all()).await
    }

    /// Runs one statement seeing what `visibility` allows.
    pub async fn run_as(
        &self,
        request: &SqlRequest,
        visibility: Visibility,
    ) -> Result<QueryResult> {
        let started = Instant::now();
        readonly::check(&request.sql)?;
        let max_rows = request.max_rows.unwrap_or(self.config.default_max_rows);
        if max_rows > self.config.max_rows_cap {
            return Err(Error::BadRequest(format!(
                "max_rows {max_rows} is over the limit of {}",
                self.config.max_rows_cap
            )));
        }
        let limit_ms = self.config.timeout_ms;
        let work = async {
            let ctx = self.session(visibility).await?;
            let options = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let frame = ctx.sql_with_options(&request.sql, options).await?;
            let stream = frame.execute_stream().await?;
            collect(stream, max_rows, self.config.max_answer_bytes).await
        };
        let (schema, batches, truncated) =
            tokio::time::timeout(Duration::from_millis(limit_ms), work)
                .await
                .map_err(|_| Error::Timeout { limit_ms })??;
        Ok(QueryResult {
            schema,
            batches,
            truncated,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// Reads up to `max_rows` rows and about `max_bytes` of Arrow data; more than that means the result is
/// truncated (and the rest is never computed: dropping the stream cancels the query). A batch that would
/// pass the byte limit is cut at the rows that fit, by its average row size.
async fn collect(
    mut stream: SendableRecordBatchStream,
    max_rows: usize,
    max_bytes: u64,
) -> Result<(
    arrow::datatypes::SchemaRef,
    Vec<arrow::record_batch::RecordBatch>,
    bool,
)> {
    let schema = stream.schema();
    let mut batches = Vec::new();
    let mut rows = 0usize;
    let mut bytes = 0u64;
    let mut truncated = false;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let batch_bytes = answer_bytes(&batch);
        let mut room = max_rows - rows;
        if bytes.saturating_add(batch_bytes) > max_bytes && batch.num_rows() > 0 {
            let per_row = (batch_bytes / batch.num_rows() as u64).max(1);
            let fit =
                usize::try_from(max_bytes.saturating_sub(bytes) / per_row).unwrap_or(usize::MAX);
            room = room.min(fit);
        }
        if batch.num_rows() > room {
            truncated = true;
            if room > 0 {
                batches.push(batch.slice(0, room));
            }
            break;
        }
        rows += batch.num_rows();
        bytes = bytes.saturating_add(batch_bytes);
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    Ok((schema, batches, truncated))
}

/// The bytes of data `batch` holds: only its rows' share of buffers it may share with a bigger batch (a
/// `LIMIT`'s slice); the whole buffers where a type's share cannot be told.
fn answer_bytes(batch: &arrow::record_batch::RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|column| {
            let data = column.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size()) as u64
        })
        .sum()
}

#[async_trait]
impl QueryApi for Query {
    async fn sql(
        &self,
        ctx: &RequestContext,
        request: SqlRequest,
    ) -> lakehouse_api::Result<QueryResult> {
        let role = self.policy.require(&ctx.caller, Action::Sql)?;
        let visibility = Visibility {
            role: ctx.caller.role.to_string(),
            hidden: role.hidden_fields.clone(),
            recordings: role.may(Action::RecordingsRead),
        };
        Ok(self.run_as(&request, visibility).await?)
    }

    async fn health(&self) -> ServiceHealth {
        // Planning needs the dataset listing; a listing is what can fail.
        match self.tables.directory_names().await {
            Ok(_) => ServiceHealth::ok("local"),
            Err(e) => ServiceHealth::down("local", format!("cannot list datasets: {e}")),
        }
    }
}
