//! The second pass: decoding a spooled body into record batches with the final schema.
//!
//! Decoding is blocking work, so it runs on the blocking pool and hands batches over small bounded channels:
//! the writer pulls them as fast as it can write, and memory stays at a few batches however large the input.
//! A CSV body is decoded in parts (runs of rows whose starts the first pass noted) by several threads at
//! once, and the parts are handed on in order, so the table holds the rows in the body's order.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use lakehouse_catalog::schema::Reconciled;
use lakehouse_catalog::{INPUT_ERROR_MARKER, InputError};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::sync::mpsc;

use crate::csv::decode::PartReader;
use crate::infer::PartStart;
use crate::spool::read_exact_at;

/// Rows per batch.
pub const BATCH_ROWS: usize = 8192;

fn input_error(message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::External(Box::new(InputError(format!(
        "{INPUT_ERROR_MARKER} {message}"
    ))))
}

fn io_error(e: std::io::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

type Item = Result<RecordBatch, DataFusionError>;

/// How a body is decoded: its format, and for CSV where its parts start.
#[derive(Debug, Clone)]
pub enum Decoding {
    /// CSV, in parts starting at these records (none for a body with no rows).
    Csv(Vec<PartStart>),
    /// Newline-delimited JSON, in one pass.
    Ndjson,
    /// Parquet, in one pass.
    Parquet,
}

/// Decodes the spooled body in `file` (a handle of its own; `size` bytes) with `reconciled.parse` and yields
/// batches in `reconciled.output`'s shape, using up to `threads` threads where the format allows.
pub fn decode(
    file: File,
    size: u64,
    decoding: Decoding,
    reconciled: Reconciled,
    batch_rows: usize,
    threads: usize,
) -> SendableRecordBatchStream {
    match decoding {
        Decoding::Csv(parts) => {
            decode_csv_parts(file, size, parts, reconciled, batch_rows, threads)
        }
        Decoding::Ndjson => decode_whole(file, false, reconciled, batch_rows),
        Decoding::Parquet => decode_whole(file, true, reconciled, batch_rows),
    }
}

/// Decodes a whole NDJSON or Parquet body on one thread.
fn decode_whole(
    file: File,
    parquet: bool,
    reconciled: Reconciled,
    batch_rows: usize,
) -> SendableRecordBatchStream {
    let (tx, rx) = mpsc::channel::<Item>(2);
    let output = reconciled.output.clone();
    let task = tokio::task::spawn_blocking(move || {
        let send = |item: Item| tx.blocking_send(item).is_ok();
        let batches = match open(file, parquet, &reconciled.parse, batch_rows) {
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
    // The batches end when the thread drops its sender: having finished, or having panicked inside a
    // decoder. The second is an error, or the rows before it would be written as the whole body.
    let stream = futures::stream::unfold((rx, Some(task)), |(mut rx, mut task)| async move {
        if let Some(item) = rx.recv().await {
            return Some((item, (rx, task)));
        }
        match task.take()?.await {
            Ok(()) => None,
            Err(e) => {
                let failed = DataFusionError::Execution(format!("decoding the body failed: {e}"));
                Some((Err(failed), (rx, None)))
            }
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(output, stream))
}

/// Decodes a CSV body's rows from `parts` (their starts, in order; the last runs to `size`) on up to
/// `threads` threads, yielding batches in the body's order.
fn decode_csv_parts(
    file: File,
    size: u64,
    parts: Vec<PartStart>,
    reconciled: Reconciled,
    batch_rows: usize,
    threads: usize,
) -> SendableRecordBatchStream {
    let output = reconciled.output.clone();
    let reconciled = Arc::new(reconciled);
    let parts = Arc::new(parts);
    let threads = threads.clamp(1, parts.len().max(1));
    // Thread `t` decodes parts t, t + threads, ... and hands each over whole on its own channel of one, so
    // the parts are picked up in order and a thread runs at most two parts ahead of the writer.
    // The threads read their parts at offsets, side by side, from one handle.
    let file = Arc::new(file);
    let mut receivers = Vec::with_capacity(threads);
    for first in 0..threads {
        let (tx, rx) = mpsc::channel::<Result<Vec<RecordBatch>, DataFusionError>>(1);
        receivers.push(rx);
        let (file, parts, reconciled) = (file.clone(), parts.clone(), reconciled.clone());
        tokio::task::spawn_blocking(move || {
            let mut reader = PartReader::new(reconciled.parse.fields().len());
            let mut text = Vec::new();
            for index in (first..parts.len()).step_by(threads) {
                let start = parts[index];
                let end = parts.get(index + 1).map_or(size, |p| p.byte);
                let decoded = decode_part(
                    &file,
                    (start, end),
                    &mut text,
                    &mut reader,
                    &reconciled,
                    batch_rows,
                );
                let failed = decoded.is_err();
                if tx.blocking_send(decoded).is_err() || failed {
                    return;
                }
            }
        });
    }
    let state = Parts {
        receivers,
        next: 0,
        count: parts.len(),
        ready: VecDeque::new(),
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        state.next_batch().await.map(|item| (item, state))
    });
    Box::pin(RecordBatchStreamAdapter::new(output, stream))
}

/// The decoded parts, picked up in order.
struct Parts {
    receivers: Vec<mpsc::Receiver<Result<Vec<RecordBatch>, DataFusionError>>>,
    next: usize,
    count: usize,
    ready: VecDeque<RecordBatch>,
}

impl Parts {
    async fn next_batch(&mut self) -> Option<Item> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(Ok(batch));
            }
            if self.next >= self.count {
                return None;
            }
            let from = self.next % self.receivers.len();
            self.next += 1;
            match self.receivers[from].recv().await {
                Some(Ok(batches)) => self.ready.extend(batches),
                Some(Err(e)) => {
                    self.next = self.count;
                    return Some(Err(e));
                }
                None => {
                    self.next = self.count;
                    return Some(Err(DataFusionError::Execution(
                        "a decoding thread stopped before its part was decoded".into(),
                    )));
                }
            }
        }
    }
}

/// The rows of one part (`start` to `end`, read into `text`), conformed to the output shape.
fn decode_part(
    file: &File,
    (start, end): (PartStart, u64),
    text: &mut Vec<u8>,
    reader: &mut PartReader,
    reconciled: &Reconciled,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let len = usize::try_from(end.saturating_sub(start.byte))
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    // The buffer keeps its length from the last part, so only what it grows by is zeroed before the read.
    text.resize(len, 0);
    read_exact_at(file, text, start.byte).map_err(io_error)?;
    let batches = reader
        .read(text, start.line, &reconciled.parse, batch_rows)
        .map_err(input_error)?;
    batches
        .iter()
        .map(|batch| {
            reconciled
                .conform(batch)
                .map_err(|e| input_error(format!("in the rows from line {}: {e}", start.line)))
        })
        .collect()
}

type Batches = Box<dyn Iterator<Item = Item>>;

/// The batches of a whole NDJSON or Parquet file, decoded with `parse`.
pub(crate) fn open(
    mut file: File,
    parquet: bool,
    parse: &SchemaRef,
    batch_rows: usize,
) -> Result<Batches, DataFusionError> {
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    if parquet {
        let reader = guarded(|| {
            ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(batch_rows).build())
                .map_err(input_error)
        })?;
        let mut reader = reader.map(|b| b.map_err(input_error));
        let mut failed = false;
        // After a panic the reader's state is unknown: nothing more is read from it.
        return Ok(Box::new(std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let next = guarded(|| Ok(reader.next())).unwrap_or_else(|e| Some(Err(e)));
            failed = matches!(next, Some(Err(_)));
            next
        })));
    }
    let reader = arrow::json::ReaderBuilder::new(parse.clone())
        .with_batch_size(batch_rows)
        .with_coerce_primitive(true)
        .build(BufReader::with_capacity(1 << 20, file))
        .map_err(input_error)?;
    Ok(Box::new(reader.map(|b| b.map_err(input_error))))
}

/// Runs `read` over a Parquet body, turning a panic into an input error. The parquet crate asserts on some
/// damaged files instead of answering an error (the fuzz target found a bit width past its integer type in
/// a debug build); a damaged upload is the sender's fault and must fail its ingest with 422, not take a
/// thread down with a 500.
fn guarded<T>(read: impl FnOnce() -> Result<T, DataFusionError>) -> Result<T, DataFusionError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        Err(input_error(format!(
            "the Parquet file is damaged: its reader failed ({})",
            panic_message(panic.as_ref())
        )))
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The schema of a spooled Parquet file (`file`: a handle of its own).
pub fn parquet_schema(file: File) -> Result<arrow::datatypes::SchemaRef, String> {
    let read = || ParquetRecordBatchReaderBuilder::try_new(file).map(|b| b.schema().clone());
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .map_err(|panic| {
            format!(
                "not a readable Parquet file: its reader failed ({})",
                panic_message(panic.as_ref())
            )
        })?
        .map_err(|e| format!("not a readable Parquet file: {e}"))
}
