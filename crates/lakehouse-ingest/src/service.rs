//! [`Ingest`]: the [`IngestApi`] implementation.

use std::path::PathBuf;

use async_trait::async_trait;
use lakehouse_api::IngestApi;
use lakehouse_api::storage::ByteStream;
use lakehouse_catalog::idempotency::fingerprint;
use lakehouse_catalog::names::validate_name;
use lakehouse_catalog::{Catalog, WriteArgs};
use lakehouse_types::dataset::{IngestFormat, IngestRequest, WriteResponse};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::{ApiError, RequestContext};
use serde::Deserialize;

use crate::csv::infer::record_limit;
use crate::csv::infer::{infer_csv, infer_csv_streaming};
use crate::decode::{Decoding, decode, parquet_schema};
use crate::infer::{CsvInferred, infer_ndjson};
use crate::spool::{Spooled, spool, tap};
use crate::{Error, Result};

/// Body chunks the tap holds while the inference catches up.
const TAP_CHUNKS: usize = 64;

/// A CSV inference reading the body as it arrives (`None`: read it again from the spool file).
type Inferring = tokio::task::JoinHandle<Result<Option<CsvInferred>>>;

/// Ingest settings (`[ingest]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// The largest body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Where bodies are spooled while they are read twice (the system temporary directory when unset).
    pub spool_dir: Option<PathBuf>,
    /// Rows per record batch while decoding.
    pub batch_rows: usize,
    /// Threads reading one CSV body side by side, in both passes (0: one per core).
    pub threads: usize,
    /// Bytes of a CSV body each of those threads takes at a time (a part).
    pub part_bytes: usize,
    /// The most columns a body (and so a dataset) may have; more is refused with 422 before anything per
    /// column is allocated.
    pub max_columns: usize,
}

impl IngestConfig {
    fn threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 16 * 1024 * 1024 * 1024,
            spool_dir: None,
            batch_rows: crate::decode::BATCH_ROWS,
            threads: 0,
            part_bytes: 2 * 1024 * 1024,
            max_columns: crate::infer::DEFAULT_MAX_COLUMNS,
        }
    }
}

/// Ingest into the catalog's tables.
#[derive(Debug, Clone)]
pub struct Ingest {
    catalog: Catalog,
    config: IngestConfig,
}

impl Ingest {
    /// Ingest writing through `catalog`.
    pub fn new(catalog: Catalog, config: IngestConfig) -> Self {
        Ingest { catalog, config }
    }

    fn spool_dir(&self) -> PathBuf {
        self.config
            .spool_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
    }

    async fn write(
        &self,
        ctx: &RequestContext,
        request: &IngestRequest,
        body: &Spooled,
        inferring: Option<Inferring>,
    ) -> Result<WriteResponse> {
        let format = request.format;
        let started = std::time::Instant::now();
        let streamed = match inferring {
            Some(running) => running.await.map_err(|e| Error::Task(e.to_string()))??,
            None => None,
        };
        let (incoming, decoding, plain_columns) = match streamed {
            Some(csv) => (csv.schema, Decoding::Csv(csv.parts), csv.rarely_repeating),
            None => {
                let file = body.reader()?;
                let (part_bytes, threads) = (self.config.part_bytes, self.config.threads());
                let max_columns = self.config.max_columns;
                tokio::task::spawn_blocking(move || match format {
                    // Inference while the body arrived could not tell where its records end.
                    IngestFormat::Csv => infer_csv(file, part_bytes, threads, max_columns)
                        .map(|csv| (csv.schema, Decoding::Csv(csv.parts), csv.rarely_repeating)),
                    IngestFormat::Ndjson => infer_ndjson(file, record_limit(part_bytes))
                        .map(|s| (s, Decoding::Ndjson, Vec::new())),
                    IngestFormat::Parquet => parquet_schema(file)
                        .map(|s| (s, Decoding::Parquet, Vec::new()))
                        .map_err(Error::Malformed),
                })
                .await
                .map_err(|e| Error::Task(e.to_string()))??
            }
        };
        // NDJSON keys and Parquet columns are known only now; a CSV header was checked as it was read.
        crate::infer::check_columns(incoming.fields().len(), self.config.max_columns)?;
        let add_columns = request.evolve.is_some();
        let tables = self.catalog.tables();
        let (table, reconciled) = tables
            .prepare(&request.dataset, request.mode, add_columns, &incoming)
            .await?;
        let created = table.is_none();
        let inferred = started.elapsed();
        let batches = decode(
            body.reader()?,
            body.size,
            decoding,
            reconciled,
            self.config.batch_rows.max(1),
            self.config.threads(),
        );
        let outcome = tables
            .write(WriteArgs {
                name: request.dataset.clone(),
                table,
                mode: request.mode,
                merge_schema: add_columns,
                batches,
                metadata: serde_json::json!({
                    "source": "ingest",
                    "format": format.content_type(),
                    "body_blake3": body.blake3,
                    "caller": ctx.caller.name,
                }),
                plain_columns,
            })
            .await?;
        if created {
            self.catalog
                .record_dataset(ctx, &request.dataset, "ingest")
                .await?;
        }
        self.catalog.after_write(&request.dataset);
        tracing::info!(
            dataset = %request.dataset,
            version = outcome.version,
            rows = outcome.rows,
            // After the body arrived: waiting for its inference and reconciling, then decoding and writing.
            infer_ms = inferred.as_millis() as u64,
            write_ms = (started.elapsed() - inferred).as_millis() as u64,
            "ingested"
        );
        Ok(WriteResponse {
            dataset: request.dataset.clone(),
            version: outcome.version,
            rows: outcome.rows,
            bytes: outcome.bytes,
            schema: outcome.schema,
            replayed: false,
        })
    }
}

#[async_trait]
impl IngestApi for Ingest {
    async fn ingest(
        &self,
        ctx: &RequestContext,
        request: IngestRequest,
        body: ByteStream,
    ) -> lakehouse_api::Result<WriteResponse> {
        validate_name(&request.dataset).map_err(Error::from)?;
        // Before a byte of the body is read.
        self.catalog
            .may_write(ctx, &request.dataset, request.mode)?;
        let max_bytes = self.config.max_body_bytes;
        if request.content_length.is_some_and(|n| n > max_bytes) {
            return Err(Error::TooLarge { max_bytes }.into());
        }
        let strip_bom = !matches!(request.format, IngestFormat::Parquet);
        // CSV inference reads every row: it reads them as they arrive, from the spool's tap, instead of
        // from the file afterwards. (If the spool fails, the request fails with it and the inference,
        // which then sees a cut-off body, is never looked at.)
        let (tap, inferring) = match request.format {
            IngestFormat::Csv => {
                let (tap, reader) = tap(TAP_CHUNKS);
                let (part_bytes, threads) = (self.config.part_bytes, self.config.threads());
                let max_columns = self.config.max_columns;
                let running = tokio::task::spawn_blocking(move || {
                    infer_csv_streaming(reader, part_bytes, threads, max_columns)
                });
                (Some(tap), Some(running))
            }
            IngestFormat::Ndjson | IngestFormat::Parquet => (None, None),
        };
        let spooled = spool(body, &self.spool_dir(), max_bytes, strip_bom, tap).await?;
        let hash = fingerprint(&[
            request.dataset.as_bytes(),
            request.mode.as_str().as_bytes(),
            request.evolve.map_or("", |e| e.as_str()).as_bytes(),
            request.format.content_type().as_bytes(),
            spooled.blake3.as_bytes(),
        ]);
        let scope = format!("ingest/{}", request.dataset);
        let answer = self
            .catalog
            .idempotent(&scope, request.idempotency_key.clone(), &hash, || async {
                self.write(ctx, &request, &spooled, inferring)
                    .await
                    .map_err(ApiError::from)
            })
            .await;
        // Closing the spool file frees its pages in the page cache, about 5 ms for 100 MB: done beside the
        // answer rather than before it. (A task the runtime drops unrun at shutdown closes the file too.)
        drop(tokio::task::spawn_blocking(move || drop(spooled)));
        answer
    }

    async fn health(&self) -> ServiceHealth {
        let dir = self.spool_dir();
        match tempfile::tempfile_in(&dir) {
            Ok(_) => ServiceHealth::ok("local"),
            Err(e) => ServiceHealth::down(
                "local",
                format!("cannot write spool files in {}: {e}", dir.display()),
            ),
        }
    }
}
