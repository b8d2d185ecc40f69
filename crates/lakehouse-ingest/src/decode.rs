//! The second pass: decoding a spooled body into record batches with the final schema.
//!
//! Decoding is blocking work, so it runs on the blocking pool and hands batches over a channel of two: the
//! writer pulls them as fast as it can write, and memory stays at a few batches however large the input.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

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
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch, DataFusionError>>(2);
    let output = reconciled.output.clone();
    let reconciled = Arc::new(reconciled);
    tokio::task::spawn_blocking(move || {
        let send = |item: Result<RecordBatch, DataFusionError>| tx.blocking_send(item).is_ok();
        let batches: Box<dyn Iterator<Item = Result<RecordBatch, DataFusionError>>> =
            match open(&path, format, &reconciled, batch_rows) {
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
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Box::pin(RecordBatchStreamAdapter::new(output, stream))
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
        IngestFormat::Csv => {
            let reader = arrow::csv::ReaderBuilder::new(reconciled.parse.clone())
                .with_header(true)
                .with_batch_size(batch_rows)
                .build(buffered)
                .map_err(input_error)?;
            Ok(Box::new(reader.map(|b| b.map_err(input_error))))
        }
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
