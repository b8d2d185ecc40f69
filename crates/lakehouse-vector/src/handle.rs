//! One open index: its in-memory state, its writer, and the write, replay and snapshot paths.
//!
//! Writes are serialised by the writer mutex; each one is logged as a segment (conditional PUT of the next
//! sequence number) before it is applied, so an acknowledged write is on storage before anyone hears of
//! it. Searches only take the state's read lock, so they run in parallel with each other and pause only
//! while a chunk of a write is being applied.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use lakehouse_types::vector::IndexInfo;
use object_store::ObjectStore;

use crate::codec::{self, Op};
use crate::error::{Error, Result};
use crate::hnsw::{Hnsw, HnswParams};
use crate::index::IndexState;
use crate::persist::{self, IndexMeta, SnapshotData};

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            every_segments: 256,
            every_items: 50_000,
        }
    }
}

/// Ops applied per write-lock acquisition, so a large batch does not stall searches for its whole length.
const APPLY_CHUNK: usize = 256;
/// Attempts at claiming a segment number before giving up on a busy concurrent writer.
const WRITE_ATTEMPTS: usize = 4;

/// When to fold segments into a snapshot (`[vector.snapshot]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotPolicy {
    /// After this many segments since the last snapshot.
    pub every_segments: u64,
    /// Or after this many items written since the last snapshot.
    pub every_items: u64,
}

#[derive(Debug)]
struct Writer {
    /// The sequence number the next segment takes.
    next_seq: u64,
    /// The last segment the newest snapshot covers.
    snapshot_seq: u64,
    /// Items logged since the index was opened, and at the newest snapshot.
    items_logged: u64,
    items_at_snapshot: u64,
}

/// An open index.
#[derive(Debug)]
pub struct IndexHandle {
    /// What `meta.json` says.
    pub meta: IndexMeta,
    state: RwLock<IndexState>,
    writer: tokio::sync::Mutex<Writer>,
    /// Bounds concurrent searches (each holds its own scratch memory while it runs).
    pub search_slots: tokio::sync::Semaphore,
    snapshotting: AtomicBool,
    dropped: AtomicBool,
    count: AtomicUsize,
    bytes: AtomicUsize,
    segments_since_snapshot: AtomicU64,
    persisted_at: Mutex<Option<DateTime<Utc>>>,
}

/// A batch ready to log: its ops carry placeholder keys until [`assign_keys`] runs under the writer lock.
#[derive(Debug)]
pub enum Batch {
    /// Upserts (distinct ids).
    Upserts(Vec<Op>),
    /// Delete one id.
    Delete(String),
}

impl IndexHandle {
    fn new(meta: IndexMeta, state: IndexState, next_seq: u64, snapshot_seq: u64) -> Self {
        IndexHandle {
            meta,
            writer: tokio::sync::Mutex::new(Writer {
                next_seq,
                snapshot_seq,
                items_logged: 0,
                items_at_snapshot: 0,
            }),
            search_slots: tokio::sync::Semaphore::new(Hnsw::THREAD_SLOTS - Hnsw::INSERT_THREADS),
            snapshotting: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            count: AtomicUsize::new(state.len()),
            bytes: AtomicUsize::new(state.memory_bytes()),
            segments_since_snapshot: AtomicU64::new(next_seq.saturating_sub(snapshot_seq + 1)),
            persisted_at: Mutex::new(None),
            state: RwLock::new(state),
        }
    }

    /// A new, empty index.
    pub fn empty(meta: IndexMeta, params: HnswParams) -> Result<Self> {
        let state = IndexState::new(meta.dim, meta.metric, params)?;
        Ok(IndexHandle::new(meta, state, 1, 0))
    }

    /// Opens a stored index: the newest intact snapshot, then every later segment in order. When the
    /// replayed segments are as many as `policy` snapshots after, a snapshot is started, so the next start
    /// loads it instead of replaying them again.
    pub async fn open(
        store: &Arc<dyn ObjectStore>,
        meta: IndexMeta,
        params: HnswParams,
        policy: SnapshotPolicy,
    ) -> Result<Arc<Self>> {
        let (state, snapshot_seq, snapshot_at) =
            match persist::load_snapshot(store, &meta, params).await? {
                Some(loaded) => (loaded.state, loaded.seq, Some(loaded.created_at)),
                None => (IndexState::new(meta.dim, meta.metric, params)?, 0, None),
            };
        let handle = Arc::new(IndexHandle::new(
            meta,
            state,
            snapshot_seq + 1,
            snapshot_seq,
        ));
        *handle
            .persisted_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snapshot_at;
        {
            let mut writer = handle.writer.lock().await;
            handle.catch_up(store, &mut writer).await?;
            handle.snapshot_if_due(store, &writer, policy);
        }
        Ok(handle)
    }

    /// Reads the state (blocking while a write chunk is applied: call from blocking threads).
    pub fn read(&self) -> RwLockReadGuard<'_, IndexState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the index dropped once in-flight writes finish; later writes fail as not found.
    pub async fn mark_dropped(&self) {
        let _writer = self.writer.lock().await;
        self.dropped.store(true, Ordering::SeqCst);
    }

    /// The `info` answer.
    pub fn info(&self) -> IndexInfo {
        let count = self.count.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed) as u64;
        IndexInfo {
            name: self.meta.name.clone(),
            dim: self.meta.dim,
            metric: self.meta.metric,
            count,
            created_at: self.meta.created_at,
            persisted_at: *self
                .persisted_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            bytes,
            bytes_per_vector: if count == 0 { 0 } else { bytes / count as u64 },
            segments_since_snapshot: self.segments_since_snapshot.load(Ordering::Relaxed),
        }
    }

    /// Applies ops in chunks on a blocking thread.
    async fn apply(self: &Arc<Self>, ops: Vec<Op>) -> Result<()> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut ops = ops.into_iter().peekable();
            while ops.peek().is_some() {
                // Folding deleted nodes out is planned under the read lock, beside searches, and only
                // written under the write lock: an index that keeps replacing items would otherwise stop
                // answering for the whole planning (seconds at 100k vectors). Nothing else changes the
                // state meanwhile: writes are serialised by the writer lock, held by this write.
                let plan = this.read().consolidation_plan();
                if let Some(plan) = plan {
                    let mut state = this.state.write().unwrap_or_else(PoisonError::into_inner);
                    state.finish_consolidation(plan);
                }
                let chunk: Vec<Op> = ops.by_ref().take(APPLY_CHUNK).collect();
                let mut state = this.state.write().unwrap_or_else(PoisonError::into_inner);
                let applied = state.apply(chunk);
                this.count.store(state.len(), Ordering::Relaxed);
                this.bytes.store(state.memory_bytes(), Ordering::Relaxed);
                applied?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Replays segments written after the ones this handle has seen (at open, or after losing a race for
    /// a sequence number to another writer).
    async fn catch_up(
        self: &Arc<Self>,
        store: &Arc<dyn ObjectStore>,
        writer: &mut Writer,
    ) -> Result<()> {
        let segments = persist::list_segments(store, &self.meta, writer.next_seq - 1).await?;
        for (seq, path, modified) in segments {
            if seq != writer.next_seq {
                tracing::warn!(
                    index = %self.meta.name,
                    expected = writer.next_seq,
                    found = seq,
                    "segment sequence has a gap"
                );
            }
            match persist::read_segment(store, &path, self.meta.dim).await {
                Ok(segment) => {
                    writer.items_logged += segment.ops.len() as u64;
                    self.apply(segment.ops).await?;
                }
                // A damaged segment is skipped rather than making the whole index unreadable; a storage
                // error is not damage, and must not lose the segment: it fails the load, to be retried.
                Err(e) if matches!(e, Error::Corrupt(_)) => {
                    tracing::error!(index = %self.meta.name, seq, error = %e, "skipping damaged segment")
                }
                Err(e) => return Err(e),
            }
            writer.next_seq = seq + 1;
            *self
                .persisted_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(modified);
        }
        self.segments_since_snapshot
            .store(writer.next_seq - 1 - writer.snapshot_seq, Ordering::Relaxed);
        Ok(())
    }

    /// Logs a batch as the next segment, then applies it. Returns `(added, updated)`. Run it in a spawned
    /// task: once the segment is written, the write must finish even if the caller goes away.
    pub async fn write(
        self: &Arc<Self>,
        store: &Arc<dyn ObjectStore>,
        batch: Batch,
        policy: SnapshotPolicy,
    ) -> Result<(usize, usize)> {
        let mut writer = self.writer.lock().await;
        if self.dropped.load(Ordering::SeqCst) {
            return Err(Error::IndexNotFound(self.meta.name.clone()));
        }
        let mut ops = match batch {
            Batch::Upserts(ops) => ops,
            Batch::Delete(id) => vec![Op::Delete { key: 0, id }],
        };
        for _ in 0..WRITE_ATTEMPTS {
            let counts = assign_keys(&self.read(), &mut ops, &self.meta.name)?;
            let seq = writer.next_seq;
            let dim = self.meta.dim;
            let (encoded, returned) = tokio::task::spawn_blocking(move || {
                let encoded = codec::encode_segment(seq, dim, &ops);
                (encoded, ops)
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
            ops = returned;
            if !persist::put_segment(store, &self.meta, seq, Bytes::from(encoded?)).await? {
                self.catch_up(store, &mut writer).await?;
                continue;
            }
            writer.next_seq = seq + 1;
            writer.items_logged += ops.len() as u64;
            *self
                .persisted_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Utc::now());
            self.segments_since_snapshot
                .store(writer.next_seq - 1 - writer.snapshot_seq, Ordering::Relaxed);
            self.apply(ops).await?;
            self.snapshot_if_due(store, &writer, policy);
            return Ok(counts);
        }
        Err(Error::WriteConflict(self.meta.name.clone()))
    }

    /// Starts a snapshot in the background when the log since the last one has reached the policy's size
    /// and none is running. The task waits for `writer` to be released.
    fn snapshot_if_due(
        self: &Arc<Self>,
        store: &Arc<dyn ObjectStore>,
        writer: &Writer,
        policy: SnapshotPolicy,
    ) {
        let due = writer.next_seq - 1 - writer.snapshot_seq >= policy.every_segments
            || writer.items_logged - writer.items_at_snapshot >= policy.every_items;
        if due && !self.snapshotting.swap(true, Ordering::SeqCst) {
            let (this, store) = (Arc::clone(self), Arc::clone(store));
            tokio::spawn(async move {
                if let Err(e) = this.snapshot_now(&store).await {
                    tracing::warn!(index = %this.meta.name, error = %e, "snapshot failed; segments remain the record");
                }
                this.snapshotting.store(false, Ordering::SeqCst);
            });
        }
    }

    /// Takes a snapshot now (waiting for one in progress), then compacts.
    pub async fn snapshot(self: &Arc<Self>, store: &Arc<dyn ObjectStore>) -> Result<()> {
        while self.snapshotting.swap(true, Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let result = self.snapshot_now(store).await;
        self.snapshotting.store(false, Ordering::SeqCst);
        result
    }

    /// Serialises the state at the last applied segment (holding off writes meanwhile, not searches),
    /// uploads it, then folds old segments and snapshots away. The caller holds the `snapshotting` flag.
    async fn snapshot_now(self: &Arc<Self>, store: &Arc<dyn ObjectStore>) -> Result<()> {
        let writer = self.writer.lock().await;
        let seq = writer.next_seq - 1;
        if seq == writer.snapshot_seq || self.dropped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let items_at = writer.items_logged;
        let this = Arc::clone(self);
        let data = tokio::task::spawn_blocking(move || -> Result<SnapshotData> {
            let state = this.read();
            let graph = state.hnsw().save()?;
            let entries = codec::encode_entries(state.next_key(), state.entries())?;
            Ok(SnapshotData {
                seq,
                count: state.len(),
                graph: graph.into(),
                entries: entries.into(),
            })
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        drop(writer);

        persist::write_snapshot(store, &self.meta, data).await?;
        {
            let mut writer = self.writer.lock().await;
            writer.snapshot_seq = seq;
            writer.items_at_snapshot = items_at;
            self.segments_since_snapshot
                .store(writer.next_seq - 1 - writer.snapshot_seq, Ordering::Relaxed);
        }
        if !self.dropped.load(Ordering::SeqCst) {
            persist::compact(store, &self.meta, seq).await?;
        }
        Ok(())
    }
}

/// Gives every op its key: an existing id keeps its key, new ids take fresh ones. Returns
/// `(added, updated)`; a delete of an unknown id is an error.
fn assign_keys(state: &IndexState, ops: &mut [Op], index: &str) -> Result<(usize, usize)> {
    let (mut added, mut updated) = (0, 0);
    let mut next = state.next_key();
    for op in ops {
        match op {
            Op::Upsert { key, id, .. } => match state.key_of(id) {
                Some(existing) => {
                    *key = existing;
                    updated += 1;
                }
                None => {
                    *key = next;
                    next += 1;
                    added += 1;
                }
            },
            Op::Delete { key, id } => {
                *key = state.key_of(id).ok_or_else(|| Error::ItemNotFound {
                    index: index.to_owned(),
                    id: id.clone(),
                })?;
            }
        }
    }
    Ok((added, updated))
}
