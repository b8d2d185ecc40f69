//! Upkeep of tables over time: a table whose small files pile up (one per append) is compacted in the
//! background after the write that passed the threshold, and on request (`POST .../optimize`, admin).
//!
//! A run is a task with a name in the log and counters in `/metrics`, never silent. Within one process a
//! table has one run at a time (an automatic run skips a table already being compacted; a requested one
//! waits for it). Across processes sharing the store, two runs on one table are safe: their commits carry
//! the same application transaction, so the later one gives way (see `tables/compact.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lakehouse_types::dataset::OptimizeResponse;
use serde::Deserialize;

use crate::tables::{CompactPolicy, Tables};
use crate::{Error, Result};

/// `[datasets]`: when tables are compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Compact a table once it holds this many small files (0: only on request).
    pub compact_small_files: usize,
    /// A data file under this many bytes is small.
    pub compact_small_bytes: u64,
    /// Compacted files are cut at about this size; one compaction commit rewrites about this much.
    pub compact_target_bytes: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            compact_small_files: 32,
            compact_small_bytes: 16 * 1024 * 1024,
            compact_target_bytes: 128 * 1024 * 1024,
        }
    }
}

impl MaintenanceConfig {
    fn policy(&self) -> CompactPolicy {
        CompactPolicy {
            small_file_bytes: self.compact_small_bytes,
            target_bytes: self.compact_target_bytes.max(1),
        }
    }
}

/// Counters of the compactions this process ran, for `/metrics`.
#[derive(Debug, Default)]
pub struct MaintenanceStats {
    /// Compaction commits made.
    pub compactions: AtomicU64,
    /// Files they removed from their tables.
    pub files_removed: AtomicU64,
    /// Files they wrote.
    pub files_added: AtomicU64,
    /// Bytes of the files removed (reclaimed on storage once vacuumed).
    pub bytes_removed: AtomicU64,
    /// Runs that failed, or gave way to another writer's rewrite.
    pub failures: AtomicU64,
    /// When the last compaction committed, in seconds since the epoch (0: never).
    pub last_compaction_unix: AtomicU64,
}

/// Most compaction commits one run makes (each rewrites about `compact_target_bytes`); what is left waits for
/// the next write or request.
const MAX_COMMITS_PER_RUN: usize = 64;

/// The compaction state of one catalog.
#[derive(Debug, Default)]
pub(crate) struct Maintenance {
    pub(crate) config: MaintenanceConfig,
    pub(crate) stats: MaintenanceStats,
    /// One lock per table: held by the run compacting it.
    running: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Maintenance {
    pub(crate) fn new(config: MaintenanceConfig) -> Self {
        Maintenance {
            config,
            ..Maintenance::default()
        }
    }

    fn lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.running
            .lock()
            .map(|mut r| r.entry(name.to_owned()).or_default().clone())
            .unwrap_or_default()
    }

    /// After a write to `name`: compacts it in the background when its small files passed the threshold.
    pub(crate) fn after_write(self: &Arc<Self>, tables: &Tables, name: &str) {
        if self.config.compact_small_files == 0 {
            return;
        }
        let (this, tables, name) = (Arc::clone(self), tables.clone(), name.to_owned());
        tokio::spawn(async move {
            let lock = this.lock(&name);
            let Ok(_turn) = lock.try_lock() else {
                return;
            };
            let small = match tables
                .small_file_count(&name, this.config.compact_small_bytes)
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(dataset = %name, error = %e, "small files not counted");
                    return;
                }
            };
            if small < this.config.compact_small_files {
                return;
            }
            match this.run(&tables, &name).await {
                Ok(done) => tracing::info!(
                    task = "compaction",
                    dataset = %name,
                    version = ?done.version,
                    small_files = done.small_files,
                    files_removed = done.files_removed,
                    files_added = done.files_added,
                    bytes_removed = done.bytes_removed,
                    rows = done.rows,
                    "compacted"
                ),
                Err(e) => {
                    tracing::warn!(task = "compaction", dataset = %name, error = %e, "compaction stopped")
                }
            }
        });
    }

    /// Compacts `name` now (waiting for a run in progress), until nothing small is left to combine or the
    /// run's commits are spent.
    pub(crate) async fn optimize(&self, tables: &Tables, name: &str) -> Result<OptimizeResponse> {
        let lock = self.lock(name);
        let _turn = lock.lock().await;
        self.run(tables, name).await
    }

    /// Compaction commits one after another; the answer sums them.
    async fn run(&self, tables: &Tables, name: &str) -> Result<OptimizeResponse> {
        let policy = self.config.policy();
        let mut total = OptimizeResponse {
            dataset: name.to_owned(),
            ..OptimizeResponse::default()
        };
        for commit in 0..MAX_COMMITS_PER_RUN {
            let done = match tables.compact(name, policy).await {
                Ok(done) => done,
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    // Another writer's rewrite won the race: what is done stays done.
                    if matches!(e, Error::Conflict { .. }) && commit > 0 {
                        total.skipped = Some(format!("gave way to another writer: {e}"));
                        return Ok(total);
                    }
                    return Err(e);
                }
            };
            if commit == 0 {
                total.small_files = done.small_files;
            }
            let Some(version) = done.version else {
                total.skipped = done.skipped;
                break;
            };
            let stats = &self.stats;
            stats.compactions.fetch_add(1, Ordering::Relaxed);
            stats
                .files_removed
                .fetch_add(done.files_removed as u64, Ordering::Relaxed);
            stats
                .files_added
                .fetch_add(done.files_added as u64, Ordering::Relaxed);
            stats
                .bytes_removed
                .fetch_add(done.bytes_removed, Ordering::Relaxed);
            let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
            stats.last_compaction_unix.store(now, Ordering::Relaxed);
            total.version = Some(version);
            total.files_removed += done.files_removed;
            total.files_added += done.files_added;
            total.bytes_removed += done.bytes_removed;
            total.bytes_added += done.bytes_added;
            total.rows += done.rows;
        }
        Ok(total)
    }
}
