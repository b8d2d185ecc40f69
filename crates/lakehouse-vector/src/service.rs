//! [`VectorService`]: the domain implementation of [`VectorApi`].

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use chrono::Utc;
use lakehouse_api::{EmbedApi, VectorApi};
use lakehouse_types::embed::EmbedRequest;
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::policy::{Action, Policy, RolePolicy};
use lakehouse_types::vector::{
    AddRequest, AddResponse, CreateIndexRequest, IndexInfo, ListIndexesResponse, Metadata,
    SearchHit, SearchRequest, SearchResponse, VectorItem,
};
use lakehouse_types::{ApiError, ErrorCode, RequestContext};
use object_store::{ObjectStore, ObjectStoreExt};

use crate::codec::Op;
use crate::error::{Error, Result};
use crate::exact;
use crate::filter::Filter;
use crate::handle::{Batch, IndexHandle, SnapshotPolicy};
use crate::hnsw::HnswParams;
use crate::index::SearchParams;
use crate::persist::{self, IndexMeta};
use crate::validate::{self, ValidItem};

/// Limits and tuning of the vector service: the `[vector]` config section.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VectorConfig {
    /// Most items per add batch (more → 413).
    pub max_batch_items: usize,
    /// Largest `k` (more → 400).
    pub max_k: usize,
    /// Candidate sets at or below this size are searched exactly.
    pub exact_threshold: usize,
    /// HNSW parameters for new indexes (connectivity is fixed per index at creation).
    pub hnsw: HnswParams,
    /// When segments are folded into a snapshot.
    pub snapshot: SnapshotPolicy,
}

impl Default for VectorConfig {
    fn default() -> Self {
        VectorConfig {
            max_batch_items: 10_000,
            max_k: 1_000,
            exact_threshold: 2_000,
            hnsw: HnswParams::default(),
            snapshot: SnapshotPolicy::default(),
        }
    }
}

/// Vector indexes over an object store, optionally embedding texts through an [`EmbedApi`].
#[derive(Debug)]
pub struct VectorService {
    store: Arc<dyn ObjectStore>,
    embed: Option<Arc<dyn EmbedApi>>,
    config: VectorConfig,
    indexes: RwLock<BTreeMap<String, Arc<IndexHandle>>>,
    /// Serialises create, drop and first-time loads, which check storage and then change the map.
    admin: tokio::sync::Mutex<()>,
    /// What each role may read.
    policy: Arc<Policy>,
}

impl VectorService {
    /// A service over `store` that loads indexes on first use.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        embed: Option<Arc<dyn EmbedApi>>,
        config: VectorConfig,
    ) -> Self {
        VectorService {
            store,
            embed,
            config,
            indexes: RwLock::new(BTreeMap::new()),
            admin: Default::default(),
            policy: Arc::new(Policy::default()),
        }
    }

    /// A service over `store` with every stored index loaded (snapshot plus later segments). An index that
    /// fails to load is logged and retried on first use, so one damaged index does not stop the rest.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        embed: Option<Arc<dyn EmbedApi>>,
        config: VectorConfig,
    ) -> Result<Self> {
        let service = VectorService::new(store, embed, config);
        service.load_all().await?;
        Ok(service)
    }

    fn params(&self, meta: &IndexMeta) -> HnswParams {
        HnswParams {
            connectivity: meta.connectivity,
            ..self.config.hnsw
        }
    }

    fn loaded(&self, name: &str) -> Option<Arc<IndexHandle>> {
        self.indexes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The open index by name, loading it from storage the first time.
    async fn handle(&self, name: &str) -> Result<Arc<IndexHandle>> {
        validate::index_name(name)?;
        if let Some(handle) = self.loaded(name) {
            return Ok(handle);
        }
        let _admin = self.admin.lock().await;
        self.handle_locked(name).await
    }

    async fn handle_locked(&self, name: &str) -> Result<Arc<IndexHandle>> {
        if let Some(handle) = self.loaded(name) {
            return Ok(handle);
        }
        let meta = persist::read_meta(&self.store, name)
            .await?
            .ok_or_else(|| Error::IndexNotFound(name.to_owned()))?;
        let params = self.params(&meta);
        let handle = IndexHandle::open(&self.store, meta, params, self.config.snapshot).await?;
        self.indexes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&handle));
        Ok(handle)
    }

    /// Loads every stored index not loaded yet (at start-up, so first requests do not pay for it).
    pub async fn load_all(&self) -> Result<()> {
        for name in persist::list_names(&self.store).await? {
            if validate::index_name(&name).is_err() {
                continue;
            }
            if let Err(e) = self.handle(&name).await
                && !matches!(e, Error::IndexNotFound(_))
            {
                tracing::error!(index = %name, error = %e, "vector index failed to load");
            }
        }
        Ok(())
    }

    /// Snapshots an index now and compacts its history (normally done in the background as segments pile up).
    pub async fn snapshot(&self, name: &str) -> Result<()> {
        self.handle(name).await?.snapshot(&self.store).await
    }

    /// An item's vector and metadata.
    pub async fn item(&self, name: &str, id: &str) -> Result<VectorItem> {
        let handle = self.handle(name).await?;
        let wanted = id.to_owned();
        let found = tokio::task::spawn_blocking(move || {
            let id = wanted;
            let state = handle.read();
            let key = state.key_of(&id)?;
            let vector = state.vector(key)?;
            let metadata = state.entry(key)?.metadata.clone();
            Some(VectorItem {
                id,
                vector,
                metadata,
            })
        });
        found
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .ok_or_else(|| Error::ItemNotFound {
                index: name.to_owned(),
                id: id.to_owned(),
            })
    }

    async fn embed_one(
        &self,
        ctx: &RequestContext,
        what: &str,
        texts: Vec<String>,
    ) -> Result<(String, Vec<Vec<f32>>)> {
        let embed = self
            .embed
            .as_ref()
            .ok_or_else(|| Error::NoEmbedder(what.to_owned()))?;
        let expected = texts.len();
        let response = embed
            .embed(ctx, EmbedRequest { texts, model: None })
            .await
            .map_err(Error::Embed)?;
        if response.vectors.len() != expected {
            return Err(Error::Index(format!(
                "the embedding service returned {} vectors for {expected} texts",
                response.vectors.len()
            )));
        }
        Ok((response.model, response.vectors))
    }

    /// Fills in the vectors of items that came with text, validating each like a given vector.
    async fn embed_items(
        &self,
        ctx: &RequestContext,
        meta: &IndexMeta,
        items: &mut [ValidItem],
    ) -> Result<()> {
        let texts: Vec<String> = items.iter().filter_map(|i| i.text.clone()).collect();
        if texts.is_empty() {
            return Ok(());
        }
        let (model, vectors) = self.embed_one(ctx, "an item with text", texts).await?;
        let mut vectors = vectors.into_iter();
        for item in items.iter_mut().filter(|i| i.vector.is_none()) {
            let vector = vectors.next().unwrap_or_default();
            if let Some(problem) = validate::vector_problem(&vector, meta.dim, meta.metric) {
                return Err(Error::InvalidItem {
                    position: item.position,
                    id: Some(item.id.clone()),
                    reason: format!("the text embedded with model '{model}': {problem}"),
                    vector: true,
                });
            }
            item.vector = Some(vector);
        }
        Ok(())
    }

    async fn run_write(&self, handle: Arc<IndexHandle>, batch: Batch) -> Result<(usize, usize)> {
        let store = Arc::clone(&self.store);
        let policy = self.config.snapshot;
        // Spawned so a caller that disconnects cannot cancel a write between logging and applying it.
        tokio::spawn(async move { handle.write(&store, batch, policy).await })
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    async fn create(&self, request: CreateIndexRequest) -> Result<IndexInfo> {
        validate::index_name(&request.name)?;
        validate::dimension(request.dim)?;
        let _admin = self.admin.lock().await;
        match self.handle_locked(&request.name).await {
            Ok(_) => return Err(Error::AlreadyExists(request.name)),
            Err(Error::IndexNotFound(_)) => {}
            Err(other) => return Err(other),
        }
        // Leftovers of a dropped index whose clean-up was interrupted.
        persist::delete_prefix(&self.store, &persist::index_prefix(&request.name)).await?;
        let meta = IndexMeta {
            format: 1,
            name: request.name.clone(),
            dim: request.dim,
            metric: request.metric,
            created_at: Utc::now(),
            incarnation: incarnation(),
            connectivity: self.config.hnsw.connectivity,
        };
        let params = self.params(&meta);
        let handle = IndexHandle::empty(meta.clone(), params)?;
        persist::create_meta(&self.store, &meta).await?;
        let handle = Arc::new(handle);
        let info = handle.info();
        self.indexes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request.name, handle);
        Ok(info)
    }

    async fn drop_named(&self, name: &str) -> Result<()> {
        validate::index_name(name)?;
        let _admin = self.admin.lock().await;
        let handle = match self.handle_locked(name).await {
            Ok(handle) => Some(handle),
            // Still drop an index whose data cannot be loaded.
            Err(Error::IndexNotFound(_)) => return Err(Error::IndexNotFound(name.to_owned())),
            Err(e) => {
                tracing::warn!(index = %name, error = %e, "dropping an index that does not load");
                None
            }
        };
        self.indexes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        if let Some(handle) = handle {
            handle.mark_dropped().await;
        }
        // The meta goes first: from then on the index does not exist, whatever the rest of the clean-up does.
        match self.store.delete(&persist::meta_path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = persist::delete_prefix(&self.store, &persist::index_prefix(name)).await {
            tracing::warn!(
                index = %name,
                error = %e,
                "dropped index left objects behind; they are removed on re-create"
            );
        }
        Ok(())
    }

    async fn search_index(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: SearchRequest,
    ) -> Result<SearchResponse> {
        let handle = self.handle(name).await?;
        let k = request.k.unwrap_or(10);
        validate::k(k, self.config.max_k)?;
        let filter = Filter::parse(request.filter.as_ref())?;
        let query = match (request.vector, request.text) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidParameter(
                    "give either vector or text to search with, not both".into(),
                ));
            }
            (None, None) => {
                return Err(Error::InvalidParameter(
                    "give a vector or a text to search with".into(),
                ));
            }
            (Some(vector), None) => vector,
            (None, Some(text)) => {
                let (_, vectors) = self.embed_one(ctx, "searching by text", vec![text]).await?;
                vectors.into_iter().next().unwrap_or_default()
            }
        };
        let meta = &handle.meta;
        if let Some(problem) = validate::vector_problem(&query, meta.dim, meta.metric) {
            return Err(Error::InvalidQuery(problem));
        }
        let permit = handle
            .search_slots
            .acquire()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let params = SearchParams {
            exact_threshold: self.config.exact_threshold,
        };
        let handle = Arc::clone(&handle);
        let with_metadata = request.metadata.unwrap_or(true);
        let hits = tokio::task::spawn_blocking(move || -> Result<Vec<SearchHit>> {
            let state = handle.read();
            let found = state.search(&query, k, &filter, params)?;
            Ok(found
                .into_iter()
                .filter_map(|(key, distance)| {
                    let entry = state.entry(key)?;
                    let (score, distance) = exact::score(handle.meta.metric, distance);
                    Some(SearchHit {
                        id: entry.id.clone(),
                        score,
                        distance,
                        metadata: if with_metadata {
                            entry.metadata.clone()
                        } else {
                            Metadata::new()
                        },
                    })
                })
                .collect())
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        drop(permit);
        Ok(SearchResponse { hits })
    }
}

/// A random name for one creation of an index.
fn incarnation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl VectorService {
    /// The service under `policy` (the built-in roles otherwise): a role reads only the indexes it is given,
    /// never sees its hidden fields in metadata, and may not filter on them.
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// The caller's role, when it may do `action` on index `name`: the action, the index among the role's
    /// `indexes`, and for changes to matrix search's own indexes (`matrix-*`, kept in step with their
    /// corpora by matrixd) the admin role.
    fn may(
        &self,
        ctx: &RequestContext,
        name: &str,
        action: Action,
    ) -> lakehouse_api::Result<&RolePolicy> {
        let role = self.policy.require(&ctx.caller, action)?;
        if !role.indexes.allows(name) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "role {} may not use vector index '{name}' (not among its indexes)",
                    ctx.caller.role
                ),
            ));
        }
        let changes = action == Action::VectorsWrite || action == Action::VectorsDelete;
        if changes && name.starts_with(MATRIX_INDEX_PREFIX) && !ctx.caller.is_admin() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "vector index '{name}' belongs to matrix search, which keeps it in step with its corpus; \
                     role {} may not change it (change the dataset, or manage the corpus)",
                    ctx.caller.role
                ),
            ));
        }
        Ok(role)
    }
}

/// The prefix of the indexes matrix search keeps for its corpora.
const MATRIX_INDEX_PREFIX: &str = "matrix-";

/// Metadata without the fields `role` may not see.
fn visible(role: &RolePolicy, metadata: &mut Metadata) {
    if !role.hidden_fields.is_empty() {
        metadata.retain(|field, _| !role.hides(field));
    }
}

#[async_trait]
impl VectorApi for VectorService {
    async fn create_index(
        &self,
        ctx: &RequestContext,
        request: CreateIndexRequest,
    ) -> lakehouse_api::Result<IndexInfo> {
        self.may(ctx, &request.name, Action::VectorsWrite)?;
        Ok(self.create(request).await?)
    }

    async fn list_indexes(
        &self,
        ctx: &RequestContext,
    ) -> lakehouse_api::Result<ListIndexesResponse> {
        let role = self.policy.require(&ctx.caller, Action::VectorsRead)?;
        // Indexes created by another instance over the same storage appear here too.
        self.load_all().await?;
        let indexes = self.indexes.read().unwrap_or_else(PoisonError::into_inner);
        Ok(ListIndexesResponse {
            indexes: indexes
                .iter()
                .filter(|(name, _)| role.indexes.allows(name))
                .map(|(_, h)| h.info())
                .collect(),
        })
    }

    async fn index_info(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> lakehouse_api::Result<IndexInfo> {
        self.may(ctx, name, Action::VectorsRead)?;
        Ok(self.handle(name).await?.info())
    }

    async fn drop_index(&self, ctx: &RequestContext, name: &str) -> lakehouse_api::Result<()> {
        self.may(ctx, name, Action::VectorsDelete)?;
        Ok(self.drop_named(name).await?)
    }

    async fn add(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: AddRequest,
    ) -> lakehouse_api::Result<AddResponse> {
        self.may(ctx, name, Action::VectorsWrite)?;
        let handle = self.handle(name).await?;
        let meta = &handle.meta;
        let mut items = validate::batch(
            request.items,
            meta.dim,
            meta.metric,
            self.config.max_batch_items,
        )?;
        if items.is_empty() {
            return Ok(AddResponse {
                added: 0,
                updated: 0,
            });
        }
        self.embed_items(ctx, meta, &mut items).await?;
        let ops = items
            .into_iter()
            .map(|item| Op::Upsert {
                key: 0,
                id: item.id,
                vector: item.vector.unwrap_or_default(),
                metadata: item.metadata,
            })
            .collect();
        let (added, updated) = self.run_write(handle, Batch::Upserts(ops)).await?;
        Ok(AddResponse { added, updated })
    }

    async fn delete_item(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
    ) -> lakehouse_api::Result<()> {
        self.may(ctx, name, Action::VectorsDelete)?;
        let handle = self.handle(name).await?;
        self.run_write(handle, Batch::Delete(id.to_owned())).await?;
        Ok(())
    }

    async fn get_item(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
    ) -> lakehouse_api::Result<VectorItem> {
        let role = self.may(ctx, name, Action::VectorsRead)?;
        let mut item = self.item(name, id).await?;
        visible(role, &mut item.metadata);
        Ok(item)
    }

    async fn search(
        &self,
        ctx: &RequestContext,
        name: &str,
        request: SearchRequest,
    ) -> lakehouse_api::Result<SearchResponse> {
        let role = self.may(ctx, name, Action::VectorsRead)?;
        if !role.hidden_fields.is_empty() {
            let filter = Filter::parse(request.filter.as_ref()).map_err(Error::from)?;
            if let Some(field) = filter.fields().into_iter().find(|f| role.hides(f)) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!("role {} may not filter on '{field}'", ctx.caller.role),
                ));
            }
        }
        let mut answer = self.search_index(ctx, name, request).await?;
        for hit in &mut answer.hits {
            visible(role, &mut hit.metadata);
        }
        Ok(answer)
    }

    async fn health(&self) -> ServiceHealth {
        match persist::list_names(&self.store).await {
            Ok(_) => {
                let count = self
                    .indexes
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len();
                ServiceHealth::ok("local")
                    .with_detail("indexes_loaded", count)
                    .with_detail("embedding", self.embed.is_some())
            }
            Err(e) => ServiceHealth::down("local", format!("vector storage is unreachable: {e}")),
        }
    }
}
