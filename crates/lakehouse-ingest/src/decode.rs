//! The second pass: decoding a spooled body into record batches with the final schema.
//!
//! Decoding is blocking work, so it runs on the blocking pool and hands batches over a channel of two: the
//! writer pulls them as fast as it can write, and memory stays at a few batches however large the input.
//! A CSV body can also be decoded while it arrives, before its whole-input schema is known
//! ([`decode_csv_gated`]); that stream only ends once the schema it was decoded with is confirmed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use lakehouse_catalog::schema::Reconciled;
use lakehouse_catalog::{INPUT_ERROR_MARKER, InputError};
use lakehouse_types::dataset::IngestFormat;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Rows per batch.
pub const BATCH_ROWS: usize = 8192;

fn input_error(message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(Box::new(InputError(format!(
        "{INPUT_ERROR_MARKER} {message}"
    ))))
}

/// Decodes `path` (of `format`) with `reconciled.parse` and yields batches in `reconciled.output`'s shape.
pub fn decode(
    path: PathBuf,
    format: IngestFormat,
    reconciled: Reconciled,
    batch_rows: usize,
) -> SendableRecordBatchStream {
    batches_of(reconciled, None, move |reconciled| {
        open(&path, format, reconciled, batch_rows)
    })
}

/// Whether a speculative write may commit: told once its whole input has been decoded.
#[derive(Debug)]
pub struct Gate {
    /// `true` when the body was stored whole and its schema, inferred from every row, is the one decoded
    /// with; `false` or a dropped sender otherwise.
    pub open: tokio::sync::oneshot::Receiver<bool>,
    /// Set when the stream ended with the gate open: the write goes on to commit from there.
    pub passed: Arc<AtomicBool>,
}

/// Decodes a CSV body from `input` as it arrives (its header included) with `reconciled.parse`. The stream
/// does not end before `gate` opens: a closed gate ends it with an error instead, so nothing is committed.
pub fn decode_csv_gated(
    input: impl Read + Send + 'static,
    reconciled: Reconciled,
    batch_rows: usize,
    gate: Gate,
) -> SendableRecordBatchStream {
    batches_of(reconciled, Some(gate), move |reconciled| {
        csv_batches(
            BufReader::with_capacity(1 << 20, input),
            reconciled,
            batch_rows,
        )
    })
}

/// Runs `open`'s batches through `reconciled.conform` on the blocking pool and streams them; with a `gate`,
/// the end of the input waits on it.
fn batches_of(
    reconciled: Reconciled,
    gate: Option<Gate>,
    open: impl FnOnce(&Reconciled) -> Result<Batches, DataFusionError> + Send + 'static,
) -> SendableRecordBatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch, DataFusionError>>(2);
    let output = reconciled.output.clone();
    tokio::task::spawn_blocking(move || {
        let send = |item: Result<RecordBatch, DataFusionError>| tx.blocking_send(item).is_ok();
        let batches = match open(&reconciled) {
            Ok(iter) => iter,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        for batch in batches {
            let item = batch.and_then(|b| reconciled.conform(&b).map_err(input_error));
            let failed = item.is_err();
            if !send(item) || failed {
                // The writer stopped listening (it failed or was cancelled), or the input is bad: stop reading.
                return;
            }
        }
    });
    let stream = futures::stream::unfold((rx, gate), |(mut rx, gate)| async move {
        if let Some(item) = rx.recv().await {
            return Some((item, (rx, gate)));
        }
        let gate = gate?;
        if gate.open.await.unwrap_or(false) {
            gate.passed.store(true, Ordering::Release);
            return None;
        }
        let refused = DataFusionError::Execution(
            "the speculative write was called off: the body's schema or content differs from what it was \
             decoded as"
                .into(),
        );
        Some((Err(refused), (rx, None)))
    });
    Box::pin(RecordBatchStreamAdapter::new(output, stream))
}

fn csv_batches(
    input: impl Read + Send + 'static,
    reconciled: &Reconciled,
    batch_rows: usize,
) -> Result<Batches, DataFusionError> {
    let reader = arrow::csv::ReaderBuilder::new(reconciled.parse.clone())
        .with_header(true)
        .with_batch_size(batch_rows)
        .build(input)
        .map_err(input_error)?;
    Ok(Box::new(reader.map(|b| b.map_err(input_error))))
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, DataFusionError>>>;

fn open(
    path: &PathBuf,
    format: IngestFormat,
    reconciled: &Reconciled,
    batch_rows: usize,
) -> Result<Batches, DataFusionError> {
    let file = File::open(path).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let buffered = BufReader::with_capacity(1 << 20, file);
    match format {
        IngestFormat::Csv => csv_batches(buffered, reconciled, batch_rows),
        IngestFormat::Ndjson => {
            let reader = arrow::json::ReaderBuilder::new(reconciled.parse.clone())
                .with_batch_size(batch_rows)
                .with_coerce_primitive(true)
                .build(buffered)
                .map_err(input_error)?;
            Ok(Box::new(reader.map(|b| b.map_err(input_error))))
        }
        IngestFormat::Parquet => {
            let file = File::open(path).map_err(|e| DataFusionError::External(Box::new(e)))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(batch_rows).build())
                .map_err(input_error)?;
            Ok(Box::new(reader.map(|b| b.map_err(input_error))))
        }
    }
}

/// The schema of a spooled Parquet file.
pub fn parquet_schema(path: &std::path::Path) -> Result<arrow::datatypes::SchemaRef, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    Ok(builder.schema().clone())
}
