//! Recordings: every search, appended in batches to the Delta dataset `matrix_recordings`.
//!
//! A search hands its recording to a bounded queue with `try_send` and never waits: a full queue drops the
//! recording and counts it. A flusher task takes what is queued about every second and appends it as one
//! Parquet body through the ingest service (one table version per batch, all or nothing, with an
//! idempotency key so a retried batch is written once). Shutdown flushes what is left; a `kill -9` loses
//! at most what was queued since the last flush.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lakehouse_api::IngestApi;
use lakehouse_types::RequestContext;
use lakehouse_types::dataset::{IngestFormat, IngestRequest, WriteMode};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};

/// The dataset recordings are appended to.
pub const DATASET: &str = "matrix_recordings";

/// One search, as recorded.
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    pub(crate) id: String,
    pub(crate) at: DateTime<Utc>,
    pub(crate) key_name: String,
    pub(crate) role: String,
    pub(crate) query: String,
    pub(crate) order_id: Option<String>,
    pub(crate) corpora: Vec<String>,
    pub(crate) mode: String,
    pub(crate) filters: Option<String>,
    pub(crate) k: usize,
    pub(crate) hit_ids: Vec<String>,
    pub(crate) hit_scores: Vec<f64>,
    pub(crate) excluded_count: u64,
    pub(crate) excluded_by_reason: String,
    pub(crate) elapsed_ms: f64,
}

/// Counts the flusher keeps, for `/metrics`.
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Recordings appended to the dataset.
    pub written: AtomicU64,
    /// Recordings dropped because the queue was full (or the flusher gone).
    pub dropped: AtomicU64,
    /// Batches whose append failed (each retried at the next flush).
    pub failed_batches: AtomicU64,
}

/// The queue searches hand recordings to, and the flusher behind it.
#[derive(Debug)]
pub(crate) struct Recorder {
    tx: mpsc::Sender<Recording>,
    stats: Arc<RecorderStats>,
    stop: watch::Sender<bool>,
    flusher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How the flusher writes.
#[derive(Debug, Clone)]
pub(crate) struct FlushSettings {
    pub(crate) ingest: Arc<dyn IngestApi>,
    pub(crate) ctx: RequestContext,
    pub(crate) every: Duration,
    pub(crate) queue: usize,
}

impl Recorder {
    /// Starts the flusher.
    pub(crate) fn start(settings: FlushSettings) -> Recorder {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(RecorderStats::default());
        let flusher = tokio::spawn(flush_loop(settings, rx, stopped, Arc::clone(&stats)));
        Recorder {
            tx,
            stats,
            stop,
            flusher: std::sync::Mutex::new(Some(flusher)),
        }
    }

    /// Queues a recording, or drops and counts it when the queue is full.
    pub(crate) fn record(&self, recording: Recording) {
        if self.tx.try_send(recording).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> Arc<RecorderStats> {
        Arc::clone(&self.stats)
    }

    /// Flushes what is queued and stops the flusher.
    pub(crate) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let handle = self
            .flusher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle
            && let Err(e) = handle.await
        {
            tracing::warn!(error = %e, "the recordings flusher ended abnormally");
        }
    }
}

/// Most recordings appended in one version.
const MAX_BATCH: usize = 50_000;

async fn flush_loop(
    settings: FlushSettings,
    mut rx: mpsc::Receiver<Recording>,
    mut stopped: watch::Receiver<bool>,
    stats: Arc<RecorderStats>,
) {
    let mut pending: Vec<Recording> = Vec::new();
    // The key of the pending batch: a retry of a batch whose append did land writes nothing twice.
    let mut batch_key = uuid::Uuid::new_v4().simple().to_string();
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(settings.every) => false,
            changed = stopped.changed() => changed.is_err() || *stopped.borrow(),
        };
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => pending.push(r),
                Err(_) => break,
            }
        }
        if !pending.is_empty() {
            let written;
            (pending, written) = write(&settings, &stats, pending, &batch_key).await;
            match written {
                Ok(()) => {
                    stats
                        .written
                        .fetch_add(pending.len() as u64, Ordering::Relaxed);
                    pending.clear();
                    batch_key = uuid::Uuid::new_v4().simple().to_string();
                }
                Err(e) => {
                    stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, recordings = pending.len(), "could not append recordings; retrying");
                }
            }
        }
        if stopping {
            rx.close();
            while let Some(r) = rx.recv().await {
                pending.push(r);
            }
            if !pending.is_empty() {
                let written;
                (pending, written) = write(&settings, &stats, pending, &batch_key).await;
                match written {
                    Ok(()) => {
                        stats
                            .written
                            .fetch_add(pending.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stats
                            .dropped
                            .fetch_add(pending.len() as u64, Ordering::Relaxed);
                        tracing::warn!(error = %e, recordings = pending.len(), "recordings lost at shutdown");
                    }
                }
            }
            tracing::debug!("recordings flushed");
            return;
        }
    }
}

/// The table's schema.
pub(crate) fn schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("recording_id", false),
        Field::new(
            "recorded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("key_name", false),
        text("role", false),
        text("query", false),
        text("order_id", true),
        text("corpora", false),
        text("mode", false),
        text("filters", true),
        Field::new("k", DataType::Int64, false),
        text("hit_ids", false),
        text("hit_scores", false),
        Field::new("hit_count", DataType::Int64, false),
        Field::new("excluded_count", DataType::Int64, false),
        text("excluded_by_reason", false),
        Field::new("elapsed_ms", DataType::Float64, false),
    ]))
}

/// The recordings as one record batch.
pub(crate) fn batch(recordings: &[Recording]) -> Result<RecordBatch> {
    let strings = |f: &dyn Fn(&Recording) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(recordings.iter().map(f)))
    };
    let optional = |f: &dyn Fn(&Recording) -> Option<String>| -> ArrayRef {
        Arc::new(recordings.iter().map(f).collect::<StringArray>())
    };
    let ints = |f: &dyn Fn(&Recording) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(recordings.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| r.id.clone()),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                recordings.iter().map(|r| r.at.timestamp_micros()),
            )
            .with_timezone("UTC"),
        ),
        strings(&|r| r.key_name.clone()),
        strings(&|r| r.role.clone()),
        strings(&|r| r.query.clone()),
        optional(&|r| r.order_id.clone()),
        strings(&|r| r.corpora.join(",")),
        strings(&|r| r.mode.clone()),
        optional(&|r| r.filters.clone()),
        ints(&|r| i64::try_from(r.k).unwrap_or(i64::MAX)),
        strings(&|r| serde_json::to_string(&r.hit_ids).unwrap_or_default()),
        strings(&|r| serde_json::to_string(&r.hit_scores).unwrap_or_default()),
        ints(&|r| i64::try_from(r.hit_ids.len()).unwrap_or(i64::MAX)),
        ints(&|r| i64::try_from(r.excluded_count).unwrap_or(i64::MAX)),
        strings(&|r| r.excluded_by_reason.clone()),
        Arc::new(Float64Array::from_iter_values(
            recordings.iter().map(|r| r.elapsed_ms),
        )),
    ];
    RecordBatch::try_new(schema(), columns)
        .map_err(|e| Error::Internal(format!("building the recordings batch: {e}")))
}

/// The recordings as a Parquet file.
pub(crate) fn parquet(recordings: &[Recording]) -> Result<Vec<u8>> {
    let batch = batch(recordings)?;
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None)
        .map_err(|e| Error::Internal(format!("encoding recordings: {e}")))?;
    writer
        .write(&batch)
        .map_err(|e| Error::Internal(format!("encoding recordings: {e}")))?;
    writer
        .close()
        .map_err(|e| Error::Internal(format!("encoding recordings: {e}")))?;
    Ok(out)
}

/// Appends `recordings` as one version, handing them back for a retry. Encoding a second's worth of
/// searches takes tens of milliseconds of CPU, so it runs on the blocking pool, off the threads that answer.
async fn write(
    settings: &FlushSettings,
    stats: &RecorderStats,
    recordings: Vec<Recording>,
    key: &str,
) -> (Vec<Recording>, Result<()>) {
    let count = recordings.len() as u64;
    let encoded = tokio::task::spawn_blocking(move || {
        let body = parquet(&recordings);
        (recordings, body)
    })
    .await;
    let (recordings, body) = match encoded {
        Ok(done) => done,
        Err(e) => {
            // The encoder panicked and the batch went with it: count it as dropped.
            stats.dropped.fetch_add(count, Ordering::Relaxed);
            tracing::error!(error = %e, recordings = count, "encoding recordings failed; they are lost");
            return (
                Vec::new(),
                Err(Error::Internal(format!("encoding recordings: {e}"))),
            );
        }
    };
    let appended = match body {
        Ok(body) => append(settings, Bytes::from(body), key).await,
        Err(e) => Err(e),
    };
    (recordings, appended)
}

async fn append(settings: &FlushSettings, body: Bytes, key: &str) -> Result<()> {
    let len = body.len() as u64;
    let stream = futures::stream::once(async move { Ok(body) }).boxed();
    settings
        .ingest
        .ingest(
            &settings.ctx,
            IngestRequest {
                dataset: DATASET.to_owned(),
                mode: WriteMode::Append,
                evolve: None,
                format: IngestFormat::Parquet,
                idempotency_key: Some(format!("matrix-recordings-{key}")),
                content_length: Some(len),
            },
            stream,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_encode_as_parquet() {
        let r = Recording {
            id: "r1".into(),
            at: Utc::now(),
            key_name: "ops".into(),
            role: "admin".into(),
            query: "forklift".into(),
            order_id: None,
            corpora: vec!["workers".into()],
            mode: "hybrid".into(),
            filters: Some("{\"state\":\"TX\"}".into()),
            k: 10,
            hit_ids: vec!["W-1".into(), "W-2".into()],
            hit_scores: vec![0.5, 0.25],
            excluded_count: 1,
            excluded_by_reason: "{\"not active\":1}".into(),
            elapsed_ms: 1.5,
        };
        let batch = batch(&[r.clone(), r]).expect("batch");
        assert_eq!(batch.num_rows(), 2);
        let bytes = parquet(&[]).expect("empty file");
        assert!(bytes.starts_with(b"PAR1"));
    }
}
