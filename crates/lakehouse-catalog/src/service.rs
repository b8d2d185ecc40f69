//! [`Catalog`]: the [`CatalogApi`] implementation.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use lakehouse_api::CatalogApi;
use lakehouse_types::dataset::{
    DatasetList, DatasetSummary, HistoryPage, HistoryQuery, Manifest, OptimizeResponse,
    RegisterRequest, VacuumQuery, VacuumResponse, WriteMode, WriteResponse,
};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::policy::{Action, Policy};
use lakehouse_types::{ApiError, RequestContext};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Deserialize;

use crate::idempotency::{Begin, IdempotencyStore, fingerprint};
use crate::maintenance::{Maintenance, MaintenanceConfig, MaintenanceStats};
use crate::manifest::{manifest_of, summary_of};
use crate::names::validate_name;
use crate::register;
use crate::tables::{Tables, WriteArgs};
use crate::{Error, Result};

/// Where registration records live (`_catalog/datasets/<name>.json`: who created a dataset, when, how).
pub const DATASET_RECORDS_PREFIX: &str = "_catalog/datasets";

/// Catalog settings (`[catalog]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// How many tables are read at once when listing.
    pub list_concurrency: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            list_concurrency: 8,
        }
    }
}

/// The dataset registry over one object store.
#[derive(Debug, Clone)]
pub struct Catalog {
    tables: Tables,
    idempotency: IdempotencyStore,
    config: CatalogConfig,
    policy: Arc<Policy>,
    maintenance: Arc<Maintenance>,
}

impl Catalog {
    /// A catalog over `store` (rooted at the data root), rebuilt from what the store holds: the datasets and
    /// versions it lists are those of the transaction logs under `datasets/`.
    pub async fn open(store: Arc<dyn ObjectStore>, config: CatalogConfig) -> Result<Self> {
        let catalog = Self::new(store, config);
        catalog.rehydrate().await?;
        Ok(catalog)
    }

    /// A catalog over `store`, without reading it yet (for synchronous composition; call
    /// [`Catalog::rehydrate`] in the background to check the store and log what it holds).
    pub fn new(store: Arc<dyn ObjectStore>, config: CatalogConfig) -> Self {
        let store_for_leases = store.clone();
        Catalog {
            tables: Tables::new(store.clone()),
            idempotency: IdempotencyStore::new(store),
            config,
            policy: Arc::new(Policy::default()),
            maintenance: Arc::new(Maintenance::new(
                MaintenanceConfig::default(),
                store_for_leases,
            )),
        }
    }

    /// The catalog keeping, compacting and vacuuming tables as `config` says (`[datasets]`; the defaults
    /// otherwise). A retention that is no number of days is refused.
    pub fn with_maintenance(mut self, config: MaintenanceConfig) -> Result<Self> {
        let retention = config.retention().map_err(Error::BadRequest)?;
        self.tables = self.tables.clone().with_retention(retention);
        let store = self.tables.store().clone();
        self.maintenance = Arc::new(Maintenance::new(config, store));
        Ok(self)
    }

    /// The `[datasets]` settings in force.
    pub fn maintenance_config(&self) -> &MaintenanceConfig {
        &self.maintenance.config
    }

    /// The counters of the compactions run here.
    pub fn maintenance_stats(&self) -> &MaintenanceStats {
        &self.maintenance.stats
    }

    /// Called after every write to `name` (ingest, register): compacts the table in the background when its
    /// small files passed the threshold. Never delays the write's answer.
    pub fn after_write(&self, name: &str) {
        self.maintenance.after_write(&self.tables, name);
    }

    /// The catalog under `policy` (the built-in roles otherwise): manifests leave out the columns a role
    /// may not see, and `matrix_recordings` is listed only for the roles that may read it.
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// Reads every dataset's current version from storage; returns how many there are.
    pub async fn rehydrate(&self) -> Result<usize> {
        let found = self.summaries().await?;
        for summary in &found {
            tracing::debug!(dataset = %summary.name, version = summary.version, rows = summary.rows, "dataset");
        }
        tracing::info!(datasets = found.len(), "catalog rehydrated from storage");
        Ok(found.len())
    }

    /// The tables this catalog reads.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The idempotency records (shared with ingest).
    pub fn idempotency(&self) -> &IdempotencyStore {
        &self.idempotency
    }

    /// Every dataset's summary.
    pub async fn summaries(&self) -> Result<Vec<DatasetSummary>> {
        let names = self.tables.names().await?;
        let mut summaries: Vec<DatasetSummary> = futures::stream::iter(names)
            .map(|name| async move {
                match self.tables.open_current(&name).await {
                    Ok(table) => summary_of(&self.tables, &name, &table).await.map(Some),
                    // Deleted between the listing and the read.
                    Err(Error::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(self.config.list_concurrency.max(1))
            .try_filter_map(|s| async move { Ok(s) })
            .try_collect()
            .await?;
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(summaries)
    }

    /// The manifest of a dataset (at a version).
    pub async fn manifest_at(&self, name: &str, version: Option<u64>) -> Result<Manifest> {
        let table = match version {
            None => self.tables.open_current(name).await?,
            Some(_) => self.tables.open(name, version).await?,
        };
        manifest_of(&self.tables, name, &table).await
    }

    /// Writes the registration record of a dataset the first time it gets a version (kept if it exists).
    pub async fn record_dataset(&self, ctx: &RequestContext, name: &str, how: &str) -> Result<()> {
        let path = Path::from(format!("{DATASET_RECORDS_PREFIX}/{name}.json"));
        let record = serde_json::json!({
            "name": name,
            "created_at": Utc::now(),
            "created_by": ctx.caller.name,
            "created_with": how,
        });
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let body = PutPayload::from(Bytes::from(record.to_string()));
        match self.tables.store().put_opts(&path, body, opts).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn register_inner(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: &RegisterRequest,
    ) -> Result<WriteResponse> {
        let sources = register::inspect(self.tables.store(), &request.files).await?;
        let add_columns = request.evolve.is_some();
        let (table, reconciled) = self
            .tables
            .prepare(name, request.mode, add_columns, &sources.schema)
            .await?;
        let created = table.is_none();
        let batches = register::stream(self.tables.store().clone(), sources, reconciled);
        let outcome = self
            .tables
            .write(WriteArgs {
                name: name.to_owned(),
                table,
                mode: request.mode,
                merge_schema: add_columns,
                batches,
                metadata: serde_json::json!({"source": "register", "files": request.files, "caller": ctx.caller.name}),
                plain_columns: Vec::new(),
            })
            .await?;
        if created {
            self.record_dataset(ctx, name, "register").await?;
        }
        self.after_write(name);
        Ok(WriteResponse {
            dataset: name.to_owned(),
            version: outcome.version,
            rows: outcome.rows,
            bytes: outcome.bytes,
            schema: outcome.schema,
            replayed: false,
        })
    }

    /// Runs `work` under an idempotency key (when one is given): a replay returns the stored answer.
    pub async fn idempotent<F, Fut>(
        &self,
        scope: &str,
        key: Option<String>,
        request_hash: &str,
        work: F,
    ) -> std::result::Result<WriteResponse, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<WriteResponse, ApiError>>,
    {
        let Some(key) = key else { return work().await };
        let reservation = match self.idempotency.begin(scope, &key, request_hash).await? {
            Begin::Replay(answer) => {
                let mut response: WriteResponse = serde_json::from_value(answer).map_err(|e| {
                    ApiError::internal(format!("stored idempotent answer does not parse: {e}"))
                })?;
                response.replayed = true;
                return Ok(response);
            }
            Begin::Fresh(reservation) => reservation,
        };
        match work().await {
            Ok(response) => {
                let answer = serde_json::to_value(&response)
                    .map_err(|e| ApiError::internal(format!("could not store the answer: {e}")))?;
                self.idempotency.complete(reservation, answer).await?;
                Ok(response)
            }
            Err(e) => {
                self.idempotency.abandon(reservation).await;
                Err(e)
            }
        }
    }
}

/// The dataset of matrix search's recordings: every caller's searches.
pub const RECORDINGS: &str = "matrix_recordings";

/// The 403 for a write to `matrix_recordings` by anyone but matrix search (or an admin).
fn recordings_are_matrix_search_s(ctx: &RequestContext) -> ApiError {
    ApiError::new(
        lakehouse_types::ErrorCode::Forbidden,
        format!(
            "{RECORDINGS} is the audit trail of matrix search: only matrix search and the admin role \
             change it (role {} may not)",
            ctx.caller.role
        ),
    )
}

impl Catalog {
    /// Whether the caller may write `name` in `mode`: `datasets.write` to create or append,
    /// `datasets.overwrite` to replace; `matrix_recordings` is written by matrix search (or an admin) only.
    /// Ingest asks the same before it reads a body.
    pub fn may_write(
        &self,
        ctx: &RequestContext,
        name: &str,
        mode: WriteMode,
    ) -> Result<(), ApiError> {
        let action = match mode {
            WriteMode::Create | WriteMode::Append => Action::DatasetsWrite,
            WriteMode::Overwrite => Action::DatasetsOverwrite,
        };
        self.policy.require(&ctx.caller, action)?;
        if name == RECORDINGS && !ctx.caller.is_admin() {
            return Err(recordings_are_matrix_search_s(ctx));
        }
        Ok(())
    }

    /// Upkeep by hand (`what`: compacting, vacuuming) is the admin's, on an existing dataset; `otherwise` says
    /// how tables get it without one.
    async fn upkeep_target(
        &self,
        ctx: &RequestContext,
        name: &str,
        what: &str,
        otherwise: &str,
    ) -> Result<(), ApiError> {
        if !ctx.caller.is_admin() {
            return Err(ApiError::new(
                lakehouse_types::ErrorCode::Forbidden,
                format!(
                    "{what} a dataset is an admin task (role {} may not); tables are {otherwise}",
                    ctx.caller.role
                ),
            ));
        }
        validate_name(name)?;
        if !self.tables.exists(name).await? {
            return Err(Error::NotFound(name.to_owned()).into());
        }
        Ok(())
    }

    /// Whether the caller may register `files`: each a valid key outside the services' own prefixes (for
    /// every role: a Delta log or checkpoint registered as a dataset would expose other tables' file names
    /// and column statistics), each one the caller may read as a raw object (`storage.read` within its
    /// prefixes), since registering it makes its rows readable.
    fn may_register(&self, ctx: &RequestContext, files: &[String]) -> Result<(), ApiError> {
        let role = self.policy.require(&ctx.caller, Action::StorageRead)?;
        for key in files {
            lakehouse_types::keys::validate_key(key).map_err(|e| {
                ApiError::new(
                    lakehouse_types::ErrorCode::InvalidKey,
                    format!("invalid object key {key:?}: {e}"),
                )
            })?;
            if let Some(prefix) = lakehouse_types::keys::reserved_prefix(key) {
                return Err(ApiError::new(
                    lakehouse_types::ErrorCode::ReservedPrefix,
                    format!(
                        "{key:?} is under {prefix:?}, the services' own data: register reads only objects \
                         you uploaded (outside datasets/, _catalog/, vectors/ and recordings/)"
                    ),
                ));
            }
            if !role.reaches_key(key) {
                return Err(ApiError::new(
                    lakehouse_types::ErrorCode::Forbidden,
                    format!(
                        "role {} may not read {key:?} (outside its storage_prefixes), so may not register it",
                        ctx.caller.role
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The role policy this catalog enforces (ingest enforces the same).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

#[async_trait]
impl CatalogApi for Catalog {
    async fn list_datasets(&self, ctx: &RequestContext) -> lakehouse_api::Result<DatasetList> {
        let role = self.policy.require(&ctx.caller, Action::DatasetsRead)?;
        let mut datasets = self.summaries().await?;
        if !role.may(Action::RecordingsRead) {
            datasets.retain(|d| d.name != RECORDINGS);
        }
        Ok(DatasetList { datasets })
    }

    async fn manifest(
        &self,
        ctx: &RequestContext,
        name: &str,
        version: Option<u64>,
    ) -> lakehouse_api::Result<Manifest> {
        let role = self.policy.require(&ctx.caller, Action::DatasetsRead)?;
        if name == RECORDINGS {
            self.policy.require(&ctx.caller, Action::RecordingsRead)?;
        }
        let mut manifest = self.manifest_at(name, version).await?;
        manifest.schema.retain(|c| !role.hides(&c.column));
        Ok(manifest)
    }

    async fn register(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: RegisterRequest,
        idempotency_key: Option<String>,
    ) -> lakehouse_api::Result<WriteResponse> {
        validate_name(name)?;
        self.may_write(ctx, name, request.mode)?;
        self.may_register(ctx, &request.files)?;
        let canonical =
            serde_json::to_vec(&request).map_err(|e| ApiError::internal(e.to_string()))?;
        let hash = fingerprint(&[name.as_bytes(), &canonical]);
        let scope = format!("register/{name}");
        self.idempotent(&scope, idempotency_key, &hash, || async {
            self.register_inner(ctx, name, &request)
                .await
                .map_err(ApiError::from)
        })
        .await
    }

    async fn delete_dataset(&self, ctx: &RequestContext, name: &str) -> lakehouse_api::Result<()> {
        self.policy.require(&ctx.caller, Action::DatasetsDelete)?;
        if name == RECORDINGS && !ctx.caller.is_admin() {
            return Err(recordings_are_matrix_search_s(ctx));
        }
        self.tables.delete(name).await?;
        let record = Path::from(format!("{DATASET_RECORDS_PREFIX}/{name}.json"));
        match self.tables.store().delete(&record).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::from(e).into()),
        }
        // Answers stored for the deleted dataset must not be replayed into a new one of the same name.
        for kind in ["ingest", "register"] {
            self.idempotency
                .forget_scope(&format!("{kind}/{name}"))
                .await?;
        }
        Ok(())
    }

    async fn history(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: HistoryQuery,
    ) -> lakehouse_api::Result<HistoryPage> {
        self.policy.require(&ctx.caller, Action::DatasetsRead)?;
        if name == RECORDINGS {
            self.policy.require(&ctx.caller, Action::RecordingsRead)?;
        }
        validate_name(name)?;
        let limit = query.limit.unwrap_or(crate::manifest::MANIFEST_HISTORY);
        if limit == 0 || limit > crate::manifest::MAX_HISTORY_PAGE {
            return Err(Error::BadRequest(format!(
                "limit must be between 1 and {}",
                crate::manifest::MAX_HISTORY_PAGE
            ))
            .into());
        }
        let current = crate::manifest::version_of(&self.tables.open_current(name).await?);
        let upto = match query.before {
            Some(0) => {
                return Ok(HistoryPage {
                    name: name.to_owned(),
                    history: Vec::new(),
                    next_before: None,
                });
            }
            Some(before) => (before - 1).min(current),
            None => current,
        };
        let history =
            crate::manifest::history(self.tables.store().as_ref(), name, upto, Some(limit)).await?;
        let next_before = history
            .last()
            .filter(|oldest| history.len() == limit && oldest.version > 0)
            .map(|oldest| oldest.version);
        Ok(HistoryPage {
            name: name.to_owned(),
            history,
            next_before,
        })
    }

    async fn optimize(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> lakehouse_api::Result<OptimizeResponse> {
        self.upkeep_target(
            ctx,
            name,
            "compacting",
            "compacted on their own once [datasets] compact_small_files small files pile up",
        )
        .await?;
        let done = self.maintenance.optimize(&self.tables, name).await?;
        tracing::info!(
            task = "compaction",
            dataset = %name,
            caller = %ctx.caller.name,
            version = ?done.version,
            files_removed = done.files_removed,
            files_added = done.files_added,
            bytes_removed = done.bytes_removed,
            "compacted on request"
        );
        Ok(done)
    }

    async fn vacuum(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: VacuumQuery,
    ) -> lakehouse_api::Result<VacuumResponse> {
        self.upkeep_target(
            ctx,
            name,
            "vacuuming",
            "vacuumed on their own every [datasets] vacuum_every_secs",
        )
        .await?;
        let dry_run = query.dry_run.unwrap_or(false);
        let done = self.maintenance.vacuum(&self.tables, name, dry_run).await?;
        tracing::info!(
            task = "vacuum",
            dataset = %name,
            caller = %ctx.caller.name,
            dry_run,
            files = done.files,
            bytes = done.bytes,
            log_files = done.log_files,
            oldest_kept_version = done.oldest_kept_version,
            "vacuumed on request"
        );
        Ok(done)
    }

    async fn health(&self) -> ServiceHealth {
        let probe = self
            .tables
            .store()
            .list_with_delimiter(Some(&Path::from(DATASET_RECORDS_PREFIX)))
            .await;
        match probe {
            Ok(_) => ServiceHealth::ok("local"),
            Err(e) => ServiceHealth::down("local", format!("storage unreachable: {e}")),
        }
    }
}
