//! What the optimizer rules' tests share: seeded numbers for their tables, a session with or without a
//! rule, and a query's answer beside its plans.

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

/// Pseudo-random numbers below `n`, the same on every run (a linear congruential generator: the tables
/// need to be the same each time, not good randomness).
pub(crate) fn numbers(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    }
}

/// A table of `partitions` partitions, each of batches of the `sizes` given (uneven, so that what a rule
/// does across batch boundaries is seen), their columns made by `columns(rows)`.
pub(crate) fn uneven_table(
    schema: SchemaRef,
    partitions: usize,
    sizes: &[usize],
    mut columns: impl FnMut(usize) -> Vec<ArrayRef>,
) -> MemTable {
    let all = (0..partitions)
        .map(|_| {
            sizes
                .iter()
                .map(|&rows| RecordBatch::try_new(schema.clone(), columns(rows)).expect("batch"))
                .collect()
        })
        .collect();
    MemTable::try_new(schema, all).expect("table")
}

/// A session with DataFusion's defaults, `partitions` target partitions and batches of `batch_rows`, and
/// whatever `rules` adds to it.
pub(crate) fn session(
    partitions: usize,
    batch_rows: usize,
    rules: impl FnOnce(SessionStateBuilder) -> SessionStateBuilder,
) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_rows);
    let builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    SessionContext::new_with_state(rules(builder).build())
}

/// A query's answer as a text table, and its optimized logical and physical plans.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) text: String,
    pub(crate) logical: String,
    pub(crate) physical: String,
}

impl Answer {
    /// The answer's lines, sorted: the same rows in any order give the same lines.
    pub(crate) fn sorted_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    }
}

/// Plans and runs `sql`.
pub(crate) async fn answer(ctx: &SessionContext, sql: &str) -> Answer {
    let frame = ctx.sql(sql).await.expect("plan");
    let logical = frame
        .clone()
        .into_optimized_plan()
        .expect("optimize")
        .display_indent()
        .to_string();
    let plan = frame
        .clone()
        .create_physical_plan()
        .await
        .expect("physical plan");
    let physical = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(false)
        .to_string();
    let batches = frame.collect().await.expect("run");
    let text = pretty_format_batches(&batches).expect("format").to_string();
    Answer {
        text,
        logical,
        physical,
    }
}
