//! [`MatrixService`]: the [`MatrixApi`] implementation and its config: the corpora's definitions and their
//! management, the search pipeline ([`crate::search`]) and the worker that builds corpora ([`crate::sync`]).

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lakehouse_api::{MatrixApi, Reading, Reports, Services};
use lakehouse_types::dataset::ColumnInfo;
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::matrix::{
    CorpusDefinition, CorpusInfo, CorpusList, CorpusStatus, MatrixSearchRequest,
    MatrixSearchResponse,
};
use lakehouse_types::policy::{Action, Policy, RolePolicy, forbidden};
use lakehouse_types::{Caller, ErrorCode, RequestContext, Role};
use serde::Deserialize;
use tokio::sync::{Notify, watch};

use crate::cache::AnswerCache;
use crate::corpus::{Corpora, Corpus};
use crate::definition::{check_name, compile, index_name, quote_ident};
use crate::deps::Deps;
use crate::error::{Error, Result};
use crate::recordings::{FlushSettings, Recorder, RecorderStats};
use crate::search::Pipeline;
use crate::store::{Store, StoredState};

/// Matrix settings (`[matrix]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatrixConfig {
    /// How often datasets are checked for new versions, in milliseconds.
    pub follow_interval_ms: u64,
    /// Texts embedded per request while building.
    pub embed_batch: usize,
    /// The largest `k` a search may ask for.
    pub max_k: usize,
    /// Most candidates fetched per retrieval list while looking for `k` eligible hits.
    pub max_depth: usize,
    /// Most rows a corpus may hold.
    pub max_rows: usize,
    /// Rows embedded between two checkpoints of a build's progress (a build cut short resumes from the
    /// last one).
    pub checkpoint_rows: usize,
    /// Bytes of answers kept for repeated searches (0: none). An answer is kept for the exact request,
    /// role and corpus versions it was computed for.
    pub answer_cache_bytes: u64,
    /// Whether searches are recorded in `matrix_recordings`.
    pub recordings: bool,
    /// Recordings queued before new ones are dropped (and counted).
    pub recordings_queue: usize,
    /// How often queued recordings are appended, in milliseconds.
    pub recordings_flush_ms: u64,
    /// The API key matrixd presents to services in other processes for its own work (builds, recordings),
    /// when they require keys. Set it through `LAKEHOUSE_MATRIX__SERVICE_KEY`, not in a file.
    pub service_key: Option<String>,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        MatrixConfig {
            follow_interval_ms: 1000,
            embed_batch: 64,
            max_k: 100,
            max_depth: 1000,
            max_rows: 1_000_000,
            checkpoint_rows: 4096,
            answer_cache_bytes: 32 * 1024 * 1024,
            recordings: true,
            recordings_queue: 100_000,
            recordings_flush_ms: 1000,
            service_key: None,
        }
    }
}

/// Matrix search over the other services.
#[derive(Debug, Clone)]
pub struct MatrixService {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) deps: Deps,
    pub(crate) config: MatrixConfig,
    pub(crate) policy: Arc<Policy>,
    pub(crate) corpora: Corpora,
    pub(crate) recorder: Option<Recorder>,
    pub(crate) answers: Option<AnswerCache>,
    wake: Notify,
    stop: watch::Sender<bool>,
    worker: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl MatrixService {
    /// The service over `services` (catalogd, queryd, embedd, vectord, storaged and ingestd, each local or
    /// remote; an error names one missing); call [`MatrixService::start`] to load corpora and follow
    /// datasets.
    pub fn new(
        services: &Services,
        policy: Arc<Policy>,
        config: MatrixConfig,
    ) -> lakehouse_api::Result<Self> {
        let ctx = RequestContext {
            caller: Caller {
                name: "matrixd".to_owned(),
                role: Role::admin(),
                credential: config.service_key.clone(),
            },
            request_id: String::new(),
        };
        let ingest = services.need_ingest()?;
        let recorder = config.recordings.then(|| {
            Recorder::start(FlushSettings {
                ingest,
                ctx: ctx.clone(),
                every: Duration::from_millis(config.recordings_flush_ms.max(10)),
                queue: config.recordings_queue,
            })
        });
        let (stop, _) = watch::channel(false);
        let answers =
            (config.answer_cache_bytes > 0).then(|| AnswerCache::new(config.answer_cache_bytes));
        Ok(MatrixService {
            inner: Arc::new(Inner {
                deps: Deps {
                    catalog: services.need_catalog()?,
                    query: services.need_query()?,
                    embed: services.need_embed()?,
                    vector: services.need_vector()?,
                    store: Store::new(services.need_storage()?, ctx.clone()),
                    ctx,
                    embed_batch: config.embed_batch.max(1),
                    max_rows: config.max_rows,
                    checkpoint_rows: config.checkpoint_rows.max(1),
                },
                config,
                policy,
                corpora: Corpora::default(),
                recorder,
                answers,
                wake: Notify::new(),
                stop,
                worker: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Loads the stored corpora and starts the worker that builds them and follows their datasets.
    pub fn start(&self) {
        let inner = Arc::clone(&self.inner);
        let interval = Duration::from_millis(inner.config.follow_interval_ms.max(50));
        let stopped = inner.stop.subscribe();
        let handle = tokio::spawn(async move {
            crate::sync::work(&inner.deps, &inner.corpora, interval, &inner.wake, stopped).await;
        });
        *self
            .inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }

    /// Stops the worker and flushes the recordings still queued.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let handle = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            // A build in progress stops at its next batch; its checkpoint lets the next start resume.
            handle.abort();
            let _ = handle.await;
        }
        if let Some(recorder) = &self.inner.recorder {
            recorder.shutdown().await;
        }
    }

    /// The recordings counters (written, dropped, failed batches), for metrics.
    pub fn recorder_stats(&self) -> Option<Arc<RecorderStats>> {
        self.inner.recorder.as_ref().map(Recorder::stats)
    }

    /// Searches answered from the answer cache, and those computed: (hits, misses).
    pub fn answer_cache_counts(&self) -> (u64, u64) {
        self.inner
            .answers
            .as_ref()
            .map_or((0, 0), AnswerCache::counts)
    }

    /// Corpora by status, for metrics.
    pub fn corpus_counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for corpus in self.inner.corpora.all() {
            *counts.entry(corpus.progress().status.as_str()).or_insert(0) += 1;
        }
        counts
    }
}

impl Inner {
    pub(crate) fn role(&self, ctx: &RequestContext) -> &RolePolicy {
        self.policy.role(&ctx.caller.role)
    }

    /// Whether the caller may define or rebuild corpus `name`: `corpora.manage`, the corpus among those the
    /// role may use.
    fn may_manage(&self, ctx: &RequestContext, name: &str) -> Result<()> {
        let role = self.policy.require(&ctx.caller, Action::CorporaManage)?;
        if role.corpora.allows(name) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "role {} may not manage corpus '{name}' (not among its corpora)",
                ctx.caller.role
            )))
        }
    }

    /// Whether the caller may read `dataset` in full, as a corpus over it shows its rows to every role
    /// that may search it (the build itself runs as matrixd): SQL, no column of it hidden from the role,
    /// and `recordings.read` for `matrix_recordings`.
    fn may_read_in_full(
        &self,
        ctx: &RequestContext,
        dataset: &str,
        schema: &[ColumnInfo],
    ) -> Result<()> {
        let role = self.policy.require(&ctx.caller, Action::Sql)?;
        if dataset == crate::recordings::DATASET {
            self.policy.require(&ctx.caller, Action::RecordingsRead)?;
        }
        let hidden: Vec<&str> = schema
            .iter()
            .map(|c| c.column.as_str())
            .filter(|c| role.hides(c))
            .collect();
        if hidden.is_empty() {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "role {} may not read all of dataset '{dataset}' ({} hidden from it), so may not make it \
                 searchable: a corpus is built with its creator's read rights",
                ctx.caller.role,
                hidden.join(", ")
            )))
        }
    }

    /// Whether the caller may search corpus `name`.
    fn may_search(&self, ctx: &RequestContext, name: &str) -> Result<()> {
        let role = self.policy.require(&ctx.caller, Action::Search)?;
        if role.corpora.allows(name) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "role {} may not search corpus '{name}'",
                ctx.caller.role
            )))
        }
    }

    /// Whether the caller may see corpus `name` (searching it or managing it).
    fn may_see(&self, ctx: &RequestContext, name: &str) -> Result<()> {
        let role = self.role(ctx);
        if role.may(Action::CorporaManage) && role.corpora.allows(name) {
            return Ok(());
        }
        self.may_search(ctx, name)
    }

    async fn create(
        &self,
        ctx: &RequestContext,
        definition: CorpusDefinition,
    ) -> Result<CorpusInfo> {
        self.may_manage(ctx, &definition.name)?;
        check_name(&definition.name)?;
        if self.corpora.get(&definition.name).is_some() {
            return Err(Error::AlreadyExists(definition.name));
        }
        let (_, rows, schema) = self.deps.schema(&definition.dataset, None).await?;
        self.may_read_in_full(ctx, &definition.dataset, &schema)?;
        let orders_schema = match &definition.orders {
            Some(orders) => {
                let schema = self.deps.schema(&orders.dataset, None).await?.2;
                self.may_read_in_full(ctx, &orders.dataset, &schema)?;
                Some(schema)
            }
            None => None,
        };
        let plan = compile(definition.clone(), &schema, orders_schema.as_deref())?;
        self.check_ids(&plan.definition.dataset, &plan.definition.id_column)
            .await?;
        if let Some(orders) = &definition.orders {
            self.check_ids(&orders.dataset, &orders.id_column).await?;
        }
        // Indexes named matrix-* belong to matrix search; one left by a corpus whose deletion was cut
        // short is dropped so the new corpus starts clean.
        let index = index_name(&definition.name);
        match self.deps.vector.drop_index(&self.deps.ctx, &index).await {
            Ok(()) => tracing::info!(index, "dropped a leftover vector index"),
            Err(e) if e.code == ErrorCode::IndexNotFound || e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let now = chrono::Utc::now();
        let state = StoredState {
            created_at: Some(now),
            updated_at: Some(now),
            ..StoredState::default()
        };
        self.deps.store.put_state(&definition.name, &state).await?;
        self.deps.store.put_definition(&definition).await?;
        let corpus = Arc::new(Corpus::new(definition, state));
        corpus.update(|p| p.rows_total = rows);
        let info = corpus.info();
        let name = corpus.name().to_owned();
        if !self.corpora.add(corpus) {
            return Err(Error::AlreadyExists(name));
        }
        self.wake.notify_one();
        Ok(info)
    }

    /// Refuses an id column with nulls or repeated values, naming it.
    async fn check_ids(&self, dataset: &str, column: &str) -> Result<()> {
        let c = quote_ident(column);
        let sql = format!(
            "SELECT count(*) AS n, count({c}) AS present, count(DISTINCT {c}) AS distinct_ids FROM {}",
            quote_ident(dataset)
        );
        let batches = self.deps.sql(sql).await?;
        let value = |i: usize| -> i64 {
            batches
                .first()
                .and_then(|b| {
                    b.column(i)
                        .as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                })
                .map_or(0, |a| a.value(0))
        };
        let (n, present, distinct) = (value(0), value(1), value(2));
        if present < n {
            return Err(Error::BadRequest(format!(
                "id_column '{column}' of dataset '{dataset}' has {} null values; every row needs an id",
                n - present
            )));
        }
        if distinct < present {
            return Err(Error::BadRequest(format!(
                "id_column '{column}' of dataset '{dataset}' is not unique ({} repeated values)",
                present - distinct
            )));
        }
        Ok(())
    }

    async fn delete(&self, ctx: &RequestContext, name: &str) -> Result<()> {
        let role = self.policy.require(&ctx.caller, Action::CorporaDelete)?;
        if !role.corpora.allows(name) {
            return Err(Error::Forbidden(format!(
                "role {} may not delete corpus '{name}' (not among its corpora)",
                ctx.caller.role
            )));
        }
        let corpus = self
            .corpora
            .remove(name)
            .ok_or_else(|| Error::CorpusNotFound(name.to_owned()))?;
        corpus.mark_deleted();
        // Waits for a build in progress to notice and stop.
        let _work = corpus.work.lock().await;
        self.deps.store.delete_corpus(name).await?;
        match self
            .deps
            .vector
            .drop_index(&self.deps.ctx, &index_name(name))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.code == ErrorCode::IndexNotFound || e.code == ErrorCode::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn rebuild(&self, ctx: &RequestContext, name: &str) -> Result<CorpusInfo> {
        self.may_manage(ctx, name)?;
        let corpus = self
            .corpora
            .get(name)
            .ok_or_else(|| Error::CorpusNotFound(name.to_owned()))?;
        // The caller's read rights over what the corpus reads now.
        let definition = &corpus.definition;
        let (_, _, schema) = self.deps.schema(&definition.dataset, None).await?;
        self.may_read_in_full(ctx, &definition.dataset, &schema)?;
        if let Some(orders) = &definition.orders {
            let (_, _, schema) = self.deps.schema(&orders.dataset, None).await?;
            self.may_read_in_full(ctx, &orders.dataset, &schema)?;
        }
        corpus.request_rebuild();
        if corpus.progress().status == CorpusStatus::Failed {
            corpus.update(|p| {
                p.status = if p.version.is_some() {
                    CorpusStatus::Ready
                } else {
                    CorpusStatus::Building
                };
            });
        }
        self.wake.notify_one();
        Ok(corpus.info())
    }
}

/// A corpus's state as `role` may see it: its definition without the names of fields the role may not see
/// (nor the rules that read them).
fn masked(mut info: CorpusInfo, role: &RolePolicy) -> CorpusInfo {
    if role.hidden_fields.is_empty() {
        return info;
    }
    let d = &mut info.definition;
    d.fields.retain(|f| !role.hides(f));
    if let Some(list) = &mut d.filterable {
        list.retain(|f| !role.hides(f));
    }
    if let Some(list) = &mut d.list_columns {
        list.retain(|f| !role.hides(f));
    }
    d.eligibility.retain(|rule| {
        !["field", "lat", "lon"].iter().any(|key| {
            rule.get(*key)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|f| role.hides(f))
        })
    });
    info
}

impl Reports for MatrixService {
    fn readings(&self) -> Vec<Reading> {
        let mut readings = Vec::new();
        if let Some(r) = self.recorder_stats() {
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
        let (hits, misses) = self.answer_cache_counts();
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
        let counts = self.corpus_counts();
        readings.push(Reading::gauge(
            "matrix_corpora",
            "Corpora defined",
            counts.values().sum::<u64>(),
        ));
        readings
    }
}

#[async_trait]
impl MatrixApi for MatrixService {
    async fn create_corpus(
        &self,
        ctx: &RequestContext,
        definition: CorpusDefinition,
    ) -> lakehouse_api::Result<CorpusInfo> {
        Ok(self.inner.create(ctx, definition).await?)
    }

    async fn list_corpora(&self, ctx: &RequestContext) -> lakehouse_api::Result<CorpusList> {
        let role = self.inner.role(ctx);
        if !role.may(Action::Search) && !role.may(Action::CorporaManage) {
            return Err(forbidden(&ctx.caller.role, Action::Search));
        }
        Ok(CorpusList {
            corpora: self
                .inner
                .corpora
                .all()
                .iter()
                .filter(|c| role.corpora.allows(c.name()))
                .map(|c| masked(c.info(), role))
                .collect(),
        })
    }

    async fn corpus(&self, ctx: &RequestContext, name: &str) -> lakehouse_api::Result<CorpusInfo> {
        self.inner.may_see(ctx, name)?;
        let corpus = self
            .inner
            .corpora
            .get(name)
            .ok_or_else(|| Error::CorpusNotFound(name.to_owned()))?;
        Ok(masked(corpus.info(), self.inner.role(ctx)))
    }

    async fn delete_corpus(&self, ctx: &RequestContext, name: &str) -> lakehouse_api::Result<()> {
        Ok(self.inner.delete(ctx, name).await?)
    }

    async fn rebuild_corpus(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> lakehouse_api::Result<CorpusInfo> {
        Ok(self.inner.rebuild(ctx, name).await?)
    }

    async fn search(
        &self,
        ctx: &RequestContext,
        request: MatrixSearchRequest,
    ) -> lakehouse_api::Result<MatrixSearchResponse> {
        let started = Instant::now();
        let inner = &self.inner;
        let pipeline = Pipeline {
            deps: &inner.deps,
            corpora: &inner.corpora,
            policy: &inner.policy,
            config: &inner.config,
            answers: inner.answers.as_ref(),
            recorder: inner.recorder.as_ref(),
        };
        Ok(pipeline.answer(ctx, request, started).await?)
    }

    async fn health(&self) -> ServiceHealth {
        let mut health = ServiceHealth::ok("local");
        for (status, count) in self.corpus_counts() {
            health = health.with_detail(&format!("corpora_{status}"), count);
        }
        health
    }
}
