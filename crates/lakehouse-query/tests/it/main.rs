//! Datasets end to end in one process: ingest into real Delta tables in a temporary directory, read the
//! catalog, answer SQL.

mod catalog;
mod ingest;
mod roles;
mod sql;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use lakehouse_api::{CatalogApi, IngestApi, QueryApi};
use lakehouse_catalog::{Catalog, CatalogConfig};
use lakehouse_ingest::{Ingest, IngestConfig};
use lakehouse_query::{Query, QueryConfig};
use lakehouse_types::dataset::{
    Evolve, IngestFormat, IngestRequest, SqlRequest, WriteMode, WriteResponse,
};
use lakehouse_types::{ApiError, RequestContext};
use object_store::ObjectStore;

/// The three services over one temporary data root.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) catalog: Catalog,
    pub(crate) ingest: Ingest,
    pub(crate) query: Query,
    pub(crate) ctx: RequestContext,
}

impl Env {
    pub(crate) async fn new() -> Self {
        Self::with_query_config(QueryConfig::default()).await
    }

    pub(crate) async fn with_query_config(config: QueryConfig) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::open(dir, config).await
    }

    /// Services over an existing data root (a "restart").
    pub(crate) async fn open(dir: tempfile::TempDir, config: QueryConfig) -> Self {
        let store: Arc<dyn ObjectStore> = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("store"),
        );
        let catalog = Catalog::open(store.clone(), CatalogConfig::default())
            .await
            .expect("catalog");
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).expect("spool dir");
        let ingest = Ingest::new(
            catalog.clone(),
            IngestConfig {
                spool_dir: Some(spool),
                ..IngestConfig::default()
            },
        );
        let query = Query::new(catalog.tables().clone(), config).expect("query");
        Env {
            dir,
            store,
            catalog,
            ingest,
            query,
            ctx: RequestContext::system("test"),
        }
    }

    pub(crate) async fn ingest_as(
        &self,
        dataset: &str,
        mode: WriteMode,
        evolve: Option<Evolve>,
        format: IngestFormat,
        key: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Result<WriteResponse, ApiError> {
        let body: Vec<u8> = body.into();
        // Small chunks, so chunk boundaries fall inside rows and quotes.
        let chunks: Vec<Result<Bytes, ApiError>> = body
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let request = IngestRequest {
            dataset: dataset.to_owned(),
            mode,
            evolve,
            format,
            idempotency_key: key.map(str::to_owned),
            content_length: Some(body.len() as u64),
        };
        self.ingest
            .ingest(&self.ctx, request, futures::stream::iter(chunks).boxed())
            .await
    }

    pub(crate) async fn csv(
        &self,
        dataset: &str,
        mode: WriteMode,
        body: &str,
    ) -> Result<WriteResponse, ApiError> {
        self.ingest_as(dataset, mode, None, IngestFormat::Csv, None, body)
            .await
    }

    pub(crate) async fn sql(
        &self,
        sql: &str,
    ) -> Result<lakehouse_types::dataset::SqlResponse, ApiError> {
        let result = self
            .query
            .sql(
                &self.ctx,
                SqlRequest {
                    sql: sql.to_owned(),
                    max_rows: None,
                },
            )
            .await?;
        result.to_sql_response()
    }

    /// The single value of a one-row, one-column query.
    pub(crate) async fn scalar(&self, sql: &str) -> serde_json::Value {
        let r = self.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(r.rows.len(), 1, "{sql}: {:?}", r.rows);
        r.rows[0][0].clone()
    }

    pub(crate) async fn version(&self, dataset: &str) -> u64 {
        self.catalog
            .manifest(&self.ctx, dataset, None)
            .await
            .expect("manifest")
            .version
    }
}

pub(crate) const WORKERS: &str = "worker_id,name,state,rate,active,available_from\n\
w-1,Ana,TX,25.5,true,2025-01-13\n\
w-2,Bo,CA,31,false,2025-02-01\n\
w-3,Cy,TX,19.75,true,\n";

pub(crate) const PLACEMENTS: &str = "placement_id,worker_id,hours\n\
1,w-1,40\n\
2,w-1,12\n\
3,w-3,8\n";
