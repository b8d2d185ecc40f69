//! [`Ingest`]: the [`IngestApi`] implementation.

use std::path::PathBuf;

use async_trait::async_trait;
use lakehouse_api::IngestApi;
use lakehouse_api::storage::ByteStream;
use lakehouse_catalog::idempotency::fingerprint;
use lakehouse_catalog::names::validate_name;
use lakehouse_catalog::{Catalog, WriteArgs, WriteOutcome};
use lakehouse_types::dataset::{IngestFormat, IngestRequest, WriteResponse};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::{ApiError, RequestContext};
use serde::Deserialize;

use crate::decode::{decode, parquet_schema};
use crate::infer::{infer_csv, infer_csv_from, infer_ndjson};
use crate::speculate::{Plan, Speculation, Written};
use crate::spool::{Spooled, spool, tap};
use crate::{Error, Result};

/// Body chunks the tap holds while the inference catches up.
const TAP_CHUNKS: usize = 64;

/// A CSV inference reading the body as it arrives.
type Inferring = tokio::task::JoinHandle<Result<arrow::datatypes::SchemaRef>>;

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
    /// CSV bodies without an Idempotency-Key are written while they upload, typed by the rows in their
    /// first this many bytes, and written again from the spool if the whole body types differently; 0 writes
    /// every body only once it has arrived whole.
    pub speculative_prefix_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 16 * 1024 * 1024 * 1024,
            spool_dir: None,
            batch_rows: crate::decode::BATCH_ROWS,
            speculative_prefix_bytes: 1 << 20,
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

    /// The schema of every row of the body: from the inference that read it as it arrived, or read now.
    async fn incoming(
        &self,
        body: &Spooled,
        format: IngestFormat,
        inferring: Option<Inferring>,
    ) -> Result<arrow::datatypes::SchemaRef> {
        let path = body.file.path().to_path_buf();
        match inferring {
            Some(running) => running.await,
            None => {
                tokio::task::spawn_blocking(move || match format {
                    IngestFormat::Csv => infer_csv(&path),
                    IngestFormat::Ndjson => infer_ndjson(&path),
                    IngestFormat::Parquet => parquet_schema(&path).map_err(Error::Malformed),
                })
                .await
            }
        }
        .map_err(|e| Error::Task(e.to_string()))?
    }

    fn metadata(ctx: &RequestContext, request: &IngestRequest) -> serde_json::Value {
        serde_json::json!({
            "source": "ingest",
            "format": request.format.content_type(),
            "caller": ctx.caller.name,
        })
    }

    /// Writes the spooled body as a new version (settling a speculative write of it first, if one ran).
    async fn write(
        &self,
        ctx: &RequestContext,
        request: &IngestRequest,
        body: &Spooled,
        inferring: Option<Inferring>,
        speculation: Option<Speculation>,
    ) -> Result<WriteResponse> {
        let incoming = self.incoming(body, request.format, inferring).await?;
        if let Some(speculation) = speculation
            && let Some(Written { created, outcome }) = speculation.settle(&incoming).await?
        {
            return self.finish(ctx, request, created, outcome).await;
        }
        let add_columns = request.evolve.is_some();
        let tables = self.catalog.tables();
        let (table, reconciled) = tables
            .prepare(&request.dataset, request.mode, add_columns, &incoming)
            .await?;
        let created = table.is_none();
        let path = body.file.path().to_path_buf();
        let batches = decode(path, request.format, reconciled, self.batch_rows());
        let outcome = tables
            .write(WriteArgs {
                name: request.dataset.clone(),
                table,
                mode: request.mode,
                merge_schema: add_columns,
                batches,
                metadata: Self::metadata(ctx, request),
            })
            .await?;
        self.finish(ctx, request, created, outcome).await
    }

    fn batch_rows(&self) -> usize {
        self.config.batch_rows.max(1)
    }

    async fn finish(
        &self,
        ctx: &RequestContext,
        request: &IngestRequest,
        created: bool,
        outcome: WriteOutcome,
    ) -> Result<WriteResponse> {
        if created {
            self.catalog
                .record_dataset(ctx, &request.dataset, "ingest")
                .await?;
        }
        tracing::info!(dataset = %request.dataset, version = outcome.version, rows = outcome.rows, "ingested");
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
        let max_bytes = self.config.max_body_bytes;
        if request.content_length.is_some_and(|n| n > max_bytes) {
            return Err(Error::TooLarge { max_bytes }.into());
        }
        let strip_bom = !matches!(request.format, IngestFormat::Parquet);
        // CSV inference reads every row: it reads them as they arrive, from the spool's tap, instead of
        // from the file afterwards. (If the spool fails, the request fails with it and the inference,
        // which then sees a cut-off body, is never looked at.)
        let mut taps = Vec::new();
        let inferring = match request.format {
            IngestFormat::Csv => {
                let (tap, reader) = tap(TAP_CHUNKS);
                taps.push(tap);
                Some(tokio::task::spawn_blocking(move || infer_csv_from(reader)))
            }
            IngestFormat::Ndjson | IngestFormat::Parquet => None,
        };
        // Dropped unsettled (the body fails to arrive, or is malformed), a speculative write is called off.
        let speculation = (request.format == IngestFormat::Csv
            && request.idempotency_key.is_none()
            && self.config.speculative_prefix_bytes > 0)
            .then(|| {
                let (tap, reader) = tap(TAP_CHUNKS);
                taps.push(tap);
                let plan = Plan {
                    tables: self.catalog.tables().clone(),
                    dataset: request.dataset.clone(),
                    mode: request.mode,
                    add_columns: request.evolve.is_some(),
                    batch_rows: self.batch_rows(),
                    metadata: Self::metadata(ctx, &request),
                };
                crate::speculate::start(plan, reader, self.config.speculative_prefix_bytes)
            });
        let spooled = spool(body, &self.spool_dir(), max_bytes, strip_bom, taps).await?;
        let hash = fingerprint(&[
            request.dataset.as_bytes(),
            request.mode.as_str().as_bytes(),
            request.evolve.map_or("", |e| e.as_str()).as_bytes(),
            request.format.content_type().as_bytes(),
            spooled.sha256.as_bytes(),
        ]);
        let scope = format!("ingest/{}", request.dataset);
        self.catalog
            .idempotent(&scope, request.idempotency_key.clone(), &hash, || async {
                self.write(ctx, &request, &spooled, inferring, speculation)
                    .await
                    .map_err(ApiError::from)
            })
            .await
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
