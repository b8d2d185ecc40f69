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

use crate::decode::{decode, parquet_schema};
use crate::infer::{infer_csv, infer_ndjson};
use crate::spool::{Spooled, spool};
use crate::{Error, Result};

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
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 16 * 1024 * 1024 * 1024,
            spool_dir: None,
            batch_rows: crate::decode::BATCH_ROWS,
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
    ) -> Result<WriteResponse> {
        let path = body.file.path().to_path_buf();
        let format = request.format;
        let incoming = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || match format {
                IngestFormat::Csv => infer_csv(&path),
                IngestFormat::Ndjson => infer_ndjson(&path),
                IngestFormat::Parquet => parquet_schema(&path).map_err(Error::Malformed),
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))??
        };
        let add_columns = request.evolve.is_some();
        let tables = self.catalog.tables();
        let (table, reconciled) = tables
            .prepare(&request.dataset, request.mode, add_columns, &incoming)
            .await?;
        let created = table.is_none();
        let batches = decode(path, format, reconciled, self.config.batch_rows.max(1));
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
                    "body_sha256": body.sha256,
                    "caller": ctx.caller.name,
                }),
            })
            .await?;
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
        let spooled = spool(body, &self.spool_dir(), max_bytes, strip_bom).await?;
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
                self.write(ctx, &request, &spooled)
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
