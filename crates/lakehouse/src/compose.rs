//! Which services run in this process and which are reached over HTTP.
//!
//! A service runs here when the process runs it (`--only` lists it, or there is no `--only`); a gateway
//! reaches every other service at its `[services]` URL; a process without the gateway serves only its own.

use std::sync::Arc;

use anyhow::Context;
use lakehouse_api::{CatalogApi, EmbedApi, IngestApi, MatrixApi, QueryApi, StorageApi, VectorApi};
use lakehouse_catalog::Catalog;
use lakehouse_client::{
    HttpCatalogClient, HttpEmbedClient, HttpIngestClient, HttpMatrixClient, HttpQueryClient,
    HttpStorageClient, HttpVectorClient,
};
use lakehouse_config::{Config, ServiceName};
use lakehouse_embed::EmbedService;
use lakehouse_ingest::Ingest;
use lakehouse_matrix::{MatrixDeps, MatrixService};
use lakehouse_query::Query;
use lakehouse_server::{Metrics, Reading, Services};
use lakehouse_storage::{StorageLimits, StorageService, build_object_store};
use lakehouse_vector::VectorService;
use object_store::ObjectStore;

/// How one service is reached from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In this process.
    Local,
    /// Over HTTP at its configured URL.
    Remote,
    /// Not at all.
    Absent,
}

/// Where `service` is, for this process.
pub fn placement(config: &Config, service: ServiceName) -> Placement {
    if config.runs(service) {
        Placement::Local
    } else if config.runs(ServiceName::Gateway) {
        Placement::Remote
    } else {
        Placement::Absent
    }
}

/// The services of this process, and those with work to finish at shutdown.
#[derive(Debug)]
pub struct Composed {
    /// Every service this process serves or routes to.
    pub services: Services,
    /// matrixd, when it runs here (its recordings are flushed at shutdown).
    pub matrix: Option<MatrixService>,
}

/// Builds the services of this process.
/// Services that keep their own counters register them with `metrics`.
pub fn services(config: &Config, metrics: &mut Metrics) -> anyhow::Result<Composed> {
    let mut store: Option<Arc<dyn ObjectStore>> = None;
    let mut object_store = || -> anyhow::Result<Arc<dyn ObjectStore>> {
        if let Some(store) = &store {
            return Ok(Arc::clone(store));
        }
        let built = build_object_store(&config.storage)
            .with_context(|| format!("opening storage {}", config.storage.backend.describe()))?;
        store = Some(Arc::clone(&built));
        Ok(built)
    };

    let storage: Option<Arc<dyn StorageApi>> = match placement(config, ServiceName::Storaged) {
        Placement::Local => Some(Arc::new(
            StorageService::new(
                object_store()?,
                StorageLimits::from_config(&config.storage),
                config.storage.backend.describe(),
            )
            .with_policy(Arc::new(config.policy.clone())),
        )),
        Placement::Remote => Some(Arc::new(HttpStorageClient::new(
            config.service_url(ServiceName::Storaged),
        )?)),
        Placement::Absent => None,
    };

    let mut services = Services {
        storage,
        ..Services::default()
    };

    // Before vectord, which embeds `text` items through it.
    services.embed = match placement(config, ServiceName::Embedd) {
        Placement::Local => {
            let embed = Arc::new(
                EmbedService::new(&config.section("embed")?)
                    .context("configuring [embed]")?
                    .with_policy(Arc::new(config.policy.clone())),
            );
            if embed.wants_preload() {
                // The model loads in the background so start-up is not held up; until then requests wait.
                let warm = Arc::clone(&embed);
                tokio::spawn(async move {
                    if let Err(e) = warm.load_model().await {
                        tracing::warn!(error = %e, "the local embedding model did not load");
                    }
                });
            }
            let stats = Arc::clone(&embed);
            metrics.read_at_scrape(move || {
                let s = stats.cache_stats();
                vec![
                    Reading::counter(
                        "embed_cache_hits",
                        "Texts answered from the embedding cache",
                        s.hits,
                    ),
                    Reading::counter(
                        "embed_cache_misses",
                        "Texts the embedding cache sent to a provider",
                        s.misses,
                    ),
                    Reading::gauge(
                        "embed_cache_entries",
                        "Embeddings held in the cache",
                        s.entries,
                    ),
                    Reading::gauge(
                        "embed_cache_bytes",
                        "Bytes held by the embedding cache, as weighed for its bound",
                        s.bytes,
                    ),
                ]
            });
            Some(embed as Arc<dyn EmbedApi>)
        }
        Placement::Remote => Some(Arc::new(HttpEmbedClient::new(
            config.service_url(ServiceName::Embedd),
        )?)),
        Placement::Absent => None,
    };

    services.vector = match placement(config, ServiceName::Vectord) {
        Placement::Local => {
            let vector = Arc::new(
                VectorService::new(
                    object_store()?,
                    services.embed.clone(),
                    config.section("vector")?,
                )
                .with_policy(Arc::new(config.policy.clone())),
            );
            // Indexes load in the background so start-up is not held up by replaying them.
            let warm = Arc::clone(&vector);
            tokio::spawn(async move {
                if let Err(e) = warm.load_all().await {
                    tracing::warn!(error = %e, "vector indexes could not be listed at start-up");
                }
            });
            Some(vector as Arc<dyn VectorApi>)
        }
        Placement::Remote => Some(Arc::new(HttpVectorClient::new(
            config.service_url(ServiceName::Vectord),
        )?)),
        Placement::Absent => None,
    };

    datasets(config, &mut services, &mut object_store, metrics)?;
    let matrix = matrix(config, &mut services, metrics)?;

    Ok(Composed { services, matrix })
}

/// matrixd: over the services of this process where they run here, over HTTP clients otherwise (a
/// matrixd alone reaches every other service at its `[services]` URL).
fn matrix(
    config: &Config,
    services: &mut Services,
    metrics: &mut Metrics,
) -> anyhow::Result<Option<MatrixService>> {
    match placement(config, ServiceName::Matrixd) {
        Placement::Absent => return Ok(None),
        Placement::Remote => {
            services.matrix = Some(Arc::new(HttpMatrixClient::new(
                config.service_url(ServiceName::Matrixd),
            )?));
            return Ok(None);
        }
        Placement::Local => {}
    }
    let url = |service| config.service_url(service).to_owned();
    let deps = MatrixDeps {
        catalog: match &services.catalog {
            Some(local) => Arc::clone(local),
            None => Arc::new(HttpCatalogClient::new(&url(ServiceName::Catalogd))?),
        },
        query: match &services.query {
            Some(local) => Arc::clone(local),
            None => Arc::new(HttpQueryClient::new(&url(ServiceName::Queryd))?),
        },
        embed: match &services.embed {
            Some(local) => Arc::clone(local),
            None => Arc::new(HttpEmbedClient::new(&url(ServiceName::Embedd))?),
        },
        vector: match &services.vector {
            Some(local) => Arc::clone(local),
            None => Arc::new(HttpVectorClient::new(&url(ServiceName::Vectord))?),
        },
        storage: match &services.storage {
            Some(local) => Arc::clone(local),
            None => Arc::new(HttpStorageClient::new(&url(ServiceName::Storaged))?),
        },
        ingest: match &services.ingest {
            Some(local) => Arc::clone(local),
            None => Arc::new(HttpIngestClient::new(&url(ServiceName::Ingestd))?),
        },
    };
    let matrix = MatrixService::new(
        deps,
        Arc::new(config.policy.clone()),
        config.section("matrix").context("configuring [matrix]")?,
    );
    matrix.start();
    let stats = matrix.clone();
    metrics.read_at_scrape(move || {
        let mut readings = Vec::new();
        if let Some(r) = stats.recorder_stats() {
            use std::sync::atomic::Ordering::Relaxed;
            readings.push(Reading::counter(
                "matrix_recordings_written",
                "Searches appended to the matrix_recordings dataset",
                r.written.load(Relaxed),
            ));
            readings.push(Reading::counter(
                "matrix_recordings_dropped",
                "Search recordings dropped because the queue was full",
                r.dropped.load(Relaxed),
            ));
            readings.push(Reading::counter(
                "matrix_recordings_failed_batches",
                "Appends of recordings that failed (each retried)",
                r.failed_batches.load(Relaxed),
            ));
        }
        let (hits, misses) = stats.answer_cache_counts();
        readings.push(Reading::counter(
            "matrix_answer_cache_hits",
            "Searches answered from the answer cache",
            hits,
        ));
        readings.push(Reading::counter(
            "matrix_answer_cache_misses",
            "Searches computed (retrieval, fusion, judge)",
            misses,
        ));
        let counts = stats.corpus_counts();
        readings.push(Reading::gauge(
            "matrix_corpora",
            "Corpora defined",
            counts.values().sum::<u64>(),
        ));
        readings
    });
    services.matrix = Some(Arc::new(matrix.clone()) as Arc<dyn MatrixApi>);
    Ok(Some(matrix))
}

/// catalogd, ingestd and queryd. Ingest and query in this process share the local catalog (the tables and
/// the idempotency records); each reads the object store directly.
fn datasets(
    config: &Config,
    services: &mut Services,
    object_store: &mut dyn FnMut() -> anyhow::Result<Arc<dyn ObjectStore>>,
    metrics: &mut Metrics,
) -> anyhow::Result<()> {
    let catalogd = placement(config, ServiceName::Catalogd);
    let ingestd = placement(config, ServiceName::Ingestd);
    let queryd = placement(config, ServiceName::Queryd);
    let any_local = [catalogd, ingestd, queryd].contains(&Placement::Local);
    let local_catalog = if any_local {
        let catalog = Catalog::new(object_store()?, config.section("catalog")?)
            .with_policy(Arc::new(config.policy.clone()))
            .with_maintenance(
                config
                    .section("datasets")
                    .context("configuring [datasets]")?,
            )
            .context("configuring [datasets]")?;
        let stats = catalog.clone();
        metrics.read_at_scrape(move || {
            use std::sync::atomic::Ordering::Relaxed;
            let s = stats.maintenance_stats();
            vec![
                Reading::counter(
                    "catalog_compactions",
                    "Compaction commits made (small data files rewritten into large ones)",
                    s.compactions.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_compaction_files_removed",
                    "Data files compactions removed from their tables",
                    s.files_removed.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_compaction_files_added",
                    "Data files compactions wrote",
                    s.files_added.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_compaction_bytes_removed",
                    "Bytes of the data files compactions removed from their tables",
                    s.bytes_removed.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_compaction_failures",
                    "Compaction runs that failed or gave way to another writer",
                    s.failures.load(Relaxed),
                ),
                Reading::gauge(
                    "catalog_last_compaction_timestamp_seconds",
                    "When the last compaction committed (seconds since the epoch; 0: never)",
                    s.last_compaction_unix.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_vacuums",
                    "Vacuums that removed files no kept version needed",
                    s.vacuums.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_vacuum_files_removed",
                    "Data files vacuums removed from storage",
                    s.files_vacuumed.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_vacuum_bytes_reclaimed",
                    "Bytes vacuums reclaimed on storage",
                    s.bytes_reclaimed.load(Relaxed),
                ),
                Reading::counter(
                    "catalog_vacuum_log_files_removed",
                    "Log entries removed from before the oldest kept versions",
                    s.log_files_removed.load(Relaxed),
                ),
                Reading::gauge(
                    "catalog_last_vacuum_timestamp_seconds",
                    "When the last vacuum ran (seconds since the epoch; 0: never)",
                    s.last_vacuum_unix.load(Relaxed),
                ),
            ]
        });
        let tables = catalog.clone();
        metrics.read_at_scrape(move || {
            let small = tables.maintenance_config().compact_small_bytes;
            let counts = tables.tables().kept_file_counts(small);
            let mut readings = Vec::with_capacity(counts.len() * 2);
            for (name, files, _) in &counts {
                readings.push(
                    Reading::gauge(
                        "table_files",
                        "Data files of each table's current version (tables read since start)",
                        *files as u64,
                    )
                    .label("dataset", name.clone()),
                );
            }
            for (name, _, small) in counts {
                readings.push(
                    Reading::gauge(
                        "table_small_files",
                        "Data files under [datasets] compact_small_bytes in each table's current version",
                        small as u64,
                    )
                    .label("dataset", name),
                );
            }
            readings
        });
        let warm = catalog.clone();
        tokio::spawn(async move {
            if let Err(e) = warm.rehydrate().await {
                tracing::warn!(error = %e, "datasets could not be listed at start-up");
            }
        });
        Some(catalog)
    } else {
        None
    };
    if let Some(catalog) = &local_catalog {
        if catalogd == Placement::Local {
            services.catalog = Some(Arc::new(catalog.clone()) as Arc<dyn CatalogApi>);
        }
        if ingestd == Placement::Local {
            let ingest = Ingest::new(catalog.clone(), config.section("ingest")?);
            services.ingest = Some(Arc::new(ingest) as Arc<dyn IngestApi>);
        }
        if queryd == Placement::Local {
            let query = Query::new(catalog.tables().clone(), config.section("query")?)
                .context("configuring [query]")?
                .with_policy(Arc::new(config.policy.clone()));
            services.query = Some(Arc::new(query) as Arc<dyn QueryApi>);
        }
    }
    if catalogd == Placement::Remote {
        let url = config.service_url(ServiceName::Catalogd);
        services.catalog = Some(Arc::new(HttpCatalogClient::new(url)?));
    }
    if ingestd == Placement::Remote {
        let url = config.service_url(ServiceName::Ingestd);
        services.ingest = Some(Arc::new(HttpIngestClient::new(url)?));
    }
    if queryd == Placement::Remote {
        let url = config.service_url(ServiceName::Queryd);
        services.query = Some(Arc::new(HttpQueryClient::new(url)?));
    }
    Ok(())
}
