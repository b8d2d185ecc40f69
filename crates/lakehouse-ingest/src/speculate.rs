//! Writing a CSV body while it uploads.
//!
//! A column's type depends on every row, so a plain ingest writes the table only after the whole body has
//! arrived and been read once. A speculative write instead infers the schema of the body's first rows and
//! decodes and writes the body with it as it arrives, beside the inference over the whole body. It commits
//! only once the body is stored whole and the schema of every row is the one it was decoded with. Otherwise
//! (a later value breaks a column's type, a column empty at first gets values, the body is cut off or
//! malformed) it is called off before its commit, and the body is written again from the spool with the
//! schema of every row. A call-off commits nothing; like any failed write, it may leave data files that no
//! version references, and readers never see.
//!
//! Requests with an Idempotency-Key are not written speculatively: whether they write at all is known only
//! once the whole body is fingerprinted.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use lakehouse_catalog::{Tables, WriteArgs, WriteOutcome};
use lakehouse_types::dataset::WriteMode;
use tokio::sync::oneshot;

use crate::decode::{Gate, decode_csv_gated};
use crate::infer::infer_csv_from;
use crate::spool::TapReader;
use crate::{Error, Result};

/// What a speculative write writes, and where.
#[derive(Debug)]
pub struct Plan {
    /// The catalog's tables.
    pub tables: Tables,
    /// The dataset written.
    pub dataset: String,
    /// Create, append or overwrite.
    pub mode: WriteMode,
    /// Whether an append may add columns.
    pub add_columns: bool,
    /// Rows per decoded batch.
    pub batch_rows: usize,
    /// Recorded in the commit.
    pub metadata: serde_json::Value,
}

/// A committed speculative write.
#[derive(Debug)]
pub struct Written {
    /// Whether the write created the table.
    pub created: bool,
    /// The new version.
    pub outcome: WriteOutcome,
}

/// A speculative write under way.
#[derive(Debug)]
pub struct Speculation {
    task: tokio::task::JoinHandle<Result<Written>>,
    schema: oneshot::Receiver<SchemaRef>,
    gate: oneshot::Sender<bool>,
    passed: Arc<AtomicBool>,
}

/// Starts a speculative write of the CSV body `input` brings, typed by the rows in its first `prefix_bytes`.
/// Dropping the returned [`Speculation`] without [`settling`](Speculation::settle) it calls the write off.
pub fn start(plan: Plan, input: TapReader, prefix_bytes: usize) -> Speculation {
    let (schema_tx, schema) = oneshot::channel();
    let (gate, open) = oneshot::channel();
    let passed = Arc::new(AtomicBool::new(false));
    let gate_in = Gate {
        open,
        passed: passed.clone(),
    };
    let task = tokio::spawn(run(plan, input, prefix_bytes, schema_tx, gate_in));
    Speculation {
        task,
        schema,
        gate,
        passed,
    }
}

impl Speculation {
    /// Settles the write once the body is stored whole and `incoming` is the schema of all its rows: its
    /// outcome when it was decoded with that schema, `None` when it was called off (write it again then).
    pub async fn settle(self, incoming: &SchemaRef) -> Result<Option<Written>> {
        let right = self.schema.await.is_ok_and(|s| s == *incoming);
        // The write may have stopped already (its decoding failed); then nobody listens.
        let _ = self.gate.send(right);
        let result = self.task.await;
        let committing = self.passed.load(Ordering::Acquire);
        match result {
            Ok(Ok(written)) => Ok(Some(written)),
            // Past the gate the write was going to commit: its failure is the request's.
            Ok(Err(e)) if committing => Err(e),
            Err(e) if committing => Err(Error::Task(e.to_string())),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "speculative write called off; writing from the spool");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "speculative write failed; writing from the spool");
                Ok(None)
            }
        }
    }
}

async fn run(
    plan: Plan,
    input: TapReader,
    prefix_bytes: usize,
    schema_tx: oneshot::Sender<SchemaRef>,
    gate: Gate,
) -> Result<Written> {
    let (prefix, input, schema) =
        tokio::task::spawn_blocking(move || read_prefix(input, prefix_bytes))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
    let schema = schema.ok_or_else(|| {
        Error::Malformed("the first rows of the body could not be typed on their own".into())
    })?;
    let _ = schema_tx.send(schema.clone());
    let tables = plan.tables;
    let (table, reconciled) = tables
        .prepare(&plan.dataset, plan.mode, plan.add_columns, &schema)
        .await?;
    let created = table.is_none();
    let batches = decode_csv_gated(
        Cursor::new(prefix).chain(input),
        reconciled,
        plan.batch_rows,
        gate,
    );
    let outcome = tables
        .write(WriteArgs {
            name: plan.dataset,
            table,
            mode: plan.mode,
            merge_schema: plan.add_columns,
            batches,
            metadata: plan.metadata,
        })
        .await?;
    Ok(Written { created, outcome })
}

/// Reads up to `limit` bytes of the body and infers the schema of the whole rows among them. Returns the
/// bytes read (to be decoded again with the rest), the reader of the rest, and the schema (`None` when those
/// rows are malformed or no whole row fits).
fn read_prefix(mut input: TapReader, limit: usize) -> (Vec<u8>, TapReader, Option<SchemaRef>) {
    let mut prefix = Vec::with_capacity(limit);
    let read = (&mut input).take(limit as u64).read_to_end(&mut prefix);
    let whole_body = prefix.len() < limit;
    let end = if whole_body {
        Some(prefix.len())
    } else {
        last_row_end(&prefix)
    };
    let schema = match (read, end) {
        (Ok(_), Some(end)) => infer_csv_from(&prefix[..end]).ok(),
        _ => None,
    };
    (prefix, input, schema)
}

/// The end of the last whole row in `bytes`: just past the last line break outside quotes (in well-formed
/// CSV a quote inside a quoted value is doubled, so a line break is outside quotes when an even number of
/// quotes come before it).
fn last_row_end(bytes: &[u8]) -> Option<usize> {
    let mut quotes = 0usize;
    let mut end = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quotes += 1,
            b'\n' if quotes.is_multiple_of(2) => end = Some(i + 1),
            _ => {}
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_end_at_line_breaks_outside_quotes() {
        assert_eq!(last_row_end(b"a,b\n1,2\n3,"), Some(8));
        assert_eq!(last_row_end(b"a,b\n1,\"x\ny\"\n3,\"z\n"), Some(12));
        assert_eq!(
            last_row_end(b"a,b\n1,\"say \"\"hi\"\"\nthere\"\n"),
            Some(25)
        );
        assert_eq!(last_row_end(b"a,\"b"), None);
    }
}
