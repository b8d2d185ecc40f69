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
use lakehouse_matrix::MatrixService;
use lakehouse_query::Query;
use lakehouse_server::{Gateway, Metrics, Reports, Services};
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
    /// The page and MCP, when this process is the gateway.
    pub gateway: Option<Gateway>,
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
            metrics.report(Arc::clone(&embed) as Arc<dyn Reports>);
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
    let gateway = if config.runs(ServiceName::Gateway) {
        // A gateway reaches every service, here or at its URL: the tools have all they use.
        let limits = config.section("mcp").context("configuring [mcp]")?;
        let toolbox = lakehouse_mcp::Toolbox::new(&services, limits)
            .map_err(|e| anyhow::anyhow!("composing the MCP tools: {}", e.message))?;
        Some(Gateway {
            mcp: Arc::new(toolbox),
        })
    } else {
        None
    };

    Ok(Composed {
        services,
        matrix,
        gateway,
    })
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
    let mut reach = services.clone();
    if reach.catalog.is_none() {
        reach.catalog = Some(Arc::new(HttpCatalogClient::new(&url(
            ServiceName::Catalogd,
        ))?));
    }
    if reach.query.is_none() {
        reach.query = Some(Arc::new(HttpQueryClient::new(&url(ServiceName::Queryd))?));
    }
    if reach.embed.is_none() {
        reach.embed = Some(Arc::new(HttpEmbedClient::new(&url(ServiceName::Embedd))?));
    }
    if reach.vector.is_none() {
        reach.vector = Some(Arc::new(HttpVectorClient::new(&url(ServiceName::Vectord))?));
    }
    if reach.storage.is_none() {
        reach.storage = Some(Arc::new(HttpStorageClient::new(&url(
            ServiceName::Storaged,
        ))?));
    }
    if reach.ingest.is_none() {
        reach.ingest = Some(Arc::new(HttpIngestClient::new(&url(ServiceName::Ingestd))?));
    }
    let matrix = MatrixService::new(
        &reach,
        Arc::new(config.policy.clone()),
        config.section("matrix").context("configuring [matrix]")?,
    )
    .map_err(|e| anyhow::anyhow!("composing matrixd: {}", e.message))?;
    matrix.start();
    metrics.report(Arc::new(matrix.clone()));
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
        metrics.report(Arc::new(catalog.clone()));
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
