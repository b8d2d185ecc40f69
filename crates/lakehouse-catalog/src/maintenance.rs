//! Upkeep of tables over time: a table whose small files pile up (one per append) is compacted in the
//! background after the write that passed the threshold, and on request (`POST .../optimize`, admin); the
//! files no kept version needs are vacuumed in the background at most every `vacuum_every_secs` per table,
//! and on request (`POST .../vacuum`, admin).
//!
//! A run is a task with a name in the log and counters in `/metrics`, never silent. Within one process a
//! table has one run at a time (an automatic run skips a table already being worked on; a requested one
//! waits for it). Across processes sharing the store, a lease in storage (`upkeep/<table>`, see
//! [`crate::lease`]) gives a table's upkeep to one of them; were two compactions to run anyway, their
//! commits carry the same application transaction, so the later one gives way (see `tables/compact.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lakehouse_types::dataset::{OptimizeResponse, VacuumResponse};
use object_store::ObjectStore;
use serde::Deserialize;

use crate::lease::{Lease, Leases};
use crate::tables::{CompactPolicy, Retention, Tables, VacuumPolicy};
use crate::{Error, Result};

/// `[datasets]`: when tables are compacted and vacuumed, and how long their versions are kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Compact a table once it holds this many small files (0: only on request).
    pub compact_small_files: usize,
    /// A data file under this many bytes is small.
    pub compact_small_bytes: u64,
    /// Compacted files are cut at about this size; one compaction commit rewrites about this much.
    pub compact_target_bytes: u64,
    /// Days a replaced version stays a time-travel target (fractions allowed; 0 keeps only the current).
    pub keep_versions: f64,
    /// Seconds a removed file is kept whatever the retention: longer than the longest query and ingest.
    pub vacuum_grace_secs: u64,
    /// A table is vacuumed in the background at most this often, in seconds (0: only on request).
    pub vacuum_every_secs: u64,
    /// Seconds a table's upkeep lease outlives its holder (renewed every third of it while held).
    pub upkeep_lease_secs: u64,
    /// Tables with settings of their own (`[datasets.tables.NAME]`).
    pub tables: HashMap<String, TableConfig>,
}

/// `[datasets.tables.NAME]`: one table's own settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableConfig {
    /// Days this table's replaced versions are kept (instead of `[datasets] keep_versions`).
    pub keep_versions: Option<f64>,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            compact_small_files: 32,
            compact_small_bytes: 16 * 1024 * 1024,
            compact_target_bytes: 128 * 1024 * 1024,
            keep_versions: 7.0,
            vacuum_grace_secs: 6 * 3600,
            vacuum_every_secs: 3600,
            upkeep_lease_secs: 60,
            tables: HashMap::new(),
        }
    }
}

impl MaintenanceConfig {
    fn policy(&self, tiered: bool) -> CompactPolicy {
        CompactPolicy {
            small_file_bytes: self.compact_small_bytes,
            target_bytes: self.compact_target_bytes.max(1),
            tiered,
        }
    }

    fn vacuum_policy(&self) -> VacuumPolicy {
        VacuumPolicy {
            grace: Duration::from_secs(self.vacuum_grace_secs),
        }
    }

    /// How long versions are kept; a retention that is not a number of days at least 0 is refused.
    pub fn retention(&self) -> std::result::Result<Retention, String> {
        let valid = |days: f64, what: &str| {
            if days.is_finite() && days >= 0.0 {
                Ok(days)
            } else {
                Err(format!(
                    "{what} = {days} is not a number of days (0 or more; fractions allowed)"
                ))
            }
        };
        let keep_days = valid(self.keep_versions, "[datasets] keep_versions")?;
        let mut per_table = HashMap::new();
        for (name, table) in &self.tables {
            crate::names::validate_name(name)
                .map_err(|e| format!("[datasets.tables.{name}]: {e}"))?;
            if let Some(days) = table.keep_versions {
                let what = format!("[datasets.tables.{name}] keep_versions");
                per_table.insert(name.clone(), valid(days, &what)?);
            }
        }
        Ok(Retention {
            keep_days,
            per_table,
        })
    }
}

/// Counters of the compactions and vacuums this process ran, for `/metrics`.
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
    /// Vacuums that removed something.
    pub vacuums: AtomicU64,
    /// Data files vacuums removed from storage.
    pub files_vacuumed: AtomicU64,
    /// Bytes reclaimed on storage by vacuums.
    pub bytes_reclaimed: AtomicU64,
    /// Log entries removed from before the oldest kept versions.
    pub log_files_removed: AtomicU64,
    /// When the last vacuum ran, in seconds since the epoch (0: never).
    pub last_vacuum_unix: AtomicU64,
}

/// Most compaction commits one run makes (each rewrites about `compact_target_bytes`); what is left waits for
/// the next write or request.
const MAX_COMMITS_PER_RUN: usize = 64;

/// The upkeep state of one catalog.
#[derive(Debug)]
pub(crate) struct Maintenance {
    pub(crate) config: MaintenanceConfig,
    pub(crate) stats: MaintenanceStats,
    leases: Leases,
    /// One lock per table: held by the run compacting or vacuuming it.
    running: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When each table was last vacuumed in the background here.
    vacuumed: std::sync::Mutex<HashMap<String, Instant>>,
    /// Tables written since their upkeep last looked.
    pending: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Maintenance {
    pub(crate) fn new(config: MaintenanceConfig, store: Arc<dyn ObjectStore>) -> Self {
        Maintenance {
            config,
            stats: MaintenanceStats::default(),
            leases: Leases::new(store),
            running: std::sync::Mutex::default(),
            vacuumed: std::sync::Mutex::default(),
            pending: std::sync::Mutex::default(),
        }
    }

    /// The table's upkeep lease, unless another instance holds it.
    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let ttl = Duration::from_secs(self.config.upkeep_lease_secs.max(1));
        self.leases.try_acquire("upkeep", name, ttl).await
    }

    /// Whether the table is due a background vacuum (and, if so, marks it as vacuumed now).
    fn vacuum_due(&self, name: &str) -> bool {
        let every = self.config.vacuum_every_secs;
        if every == 0 {
            return false;
        }
        let Ok(mut vacuumed) = self.vacuumed.lock() else {
            return false;
        };
        let due = vacuumed
            .get(name)
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(every));
        if due {
            vacuumed.insert(name.to_owned(), Instant::now());
        }
        due
    }

    fn lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.running
            .lock()
            .map(|mut r| r.entry(name.to_owned()).or_default().clone())
            .unwrap_or_default()
    }

    /// After a write to `name`: in the background, compacts it when its small files passed the threshold,
    /// and vacuums it when it is due.
    pub(crate) fn after_write(self: &Arc<Self>, tables: &Tables, name: &str) {
        let compact = self.config.compact_small_files > 0;
        if !compact && self.config.vacuum_every_secs == 0 {
            return;
        }
        let (this, tables, name) = (Arc::clone(self), tables.clone(), name.to_owned());
        // The write is marked; whoever holds the table's turn after the mark looks again (a write that
        // landed during a run would otherwise wait for the next write to be compacted).
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(name.clone());
        }
        tokio::spawn(async move {
            loop {
                let lock = this.lock(&name);
                let Ok(_turn) = lock.try_lock() else {
                    return;
                };
                let marked = this
                    .pending
                    .lock()
                    .map(|mut p| p.remove(&name))
                    .unwrap_or(false);
                if !marked {
                    return;
                }
                this.upkeep(&tables, &name, compact).await;
            }
        });
    }

    /// One round of background upkeep of a table: compaction when due, then a vacuum when due.
    async fn upkeep(&self, tables: &Tables, name: &str, compact: bool) {
        if compact {
            self.compact_if_due(tables, name).await;
        }
        if self.vacuum_due(name) {
            match self.vacuum_leased(tables, name, false).await {
                Ok(done) if done.files > 0 || done.log_files > 0 => tracing::info!(
                    task = "vacuum",
                    dataset = %name,
                    files = done.files,
                    bytes = done.bytes,
                    log_files = done.log_files,
                    oldest_kept_version = done.oldest_kept_version,
                    "vacuumed"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(task = "vacuum", dataset = %name, error = %e, "vacuum stopped")
                }
            }
        }
    }

    async fn compact_if_due(&self, tables: &Tables, name: &str) {
        let small = match tables
            .small_file_count(name, self.config.compact_small_bytes)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(dataset = %name, error = %e, "small files not counted");
                return;
            }
        };
        if small < self.config.compact_small_files {
            return;
        }
        match self.run(tables, name, true).await {
            Ok(done) => tracing::info!(
                task = "compaction",
                dataset = %name,
                version = ?done.version,
                small_files = done.small_files,
                files_removed = done.files_removed,
                files_added = done.files_added,
                bytes_removed = done.bytes_removed,
                rows = done.rows,
                skipped = ?done.skipped,
                "compacted"
            ),
            Err(e) => {
                tracing::warn!(task = "compaction", dataset = %name, error = %e, "compaction stopped")
            }
        }
    }

    /// Compacts `name` now (waiting for a run in progress here), until nothing small is left to combine or
    /// the run's commits are spent.
    pub(crate) async fn optimize(&self, tables: &Tables, name: &str) -> Result<OptimizeResponse> {
        let lock = self.lock(name);
        let _turn = lock.lock().await;
        self.run(tables, name, false).await
    }

    /// Vacuums `name` now (waiting for a run in progress here); with `dry_run`, only reports.
    pub(crate) async fn vacuum(
        &self,
        tables: &Tables,
        name: &str,
        dry_run: bool,
    ) -> Result<VacuumResponse> {
        let lock = self.lock(name);
        let _turn = lock.lock().await;
        self.vacuum_leased(tables, name, dry_run).await
    }

    /// A vacuum under the table's lease (a dry run needs none).
    async fn vacuum_leased(
        &self,
        tables: &Tables,
        name: &str,
        dry_run: bool,
    ) -> Result<VacuumResponse> {
        let lease = if dry_run {
            None
        } else {
            match self.lease(name).await? {
                Some(lease) => Some(lease),
                None => {
                    return Ok(VacuumResponse {
                        dataset: name.to_owned(),
                        keep_versions_days: tables.retention().keep_days(name),
                        skipped: Some(HELD_ELSEWHERE.into()),
                        ..VacuumResponse::default()
                    });
                }
            }
        };
        let done = tables
            .vacuum(name, self.config.vacuum_policy(), dry_run)
            .await;
        if let Some(lease) = lease {
            lease.release().await;
        }
        let done = done?;
        if !dry_run {
            let stats = &self.stats;
            if done.files > 0 || done.log_files > 0 {
                stats.vacuums.fetch_add(1, Ordering::Relaxed);
            }
            stats
                .files_vacuumed
                .fetch_add(done.files as u64, Ordering::Relaxed);
            stats
                .bytes_reclaimed
                .fetch_add(done.bytes, Ordering::Relaxed);
            stats
                .log_files_removed
                .fetch_add(done.log_files as u64, Ordering::Relaxed);
            stats.last_vacuum_unix.store(unix_now(), Ordering::Relaxed);
        }
        Ok(done)
    }

    /// Compaction commits one after another (of like-sized files only when `tiered`); the answer sums them.
    async fn run(&self, tables: &Tables, name: &str, tiered: bool) -> Result<OptimizeResponse> {
        let mut total = OptimizeResponse {
            dataset: name.to_owned(),
            ..OptimizeResponse::default()
        };
        let Some(lease) = self.lease(name).await? else {
            total.skipped = Some(HELD_ELSEWHERE.into());
            return Ok(total);
        };
        let done = self
            .compactions(tables, name, &lease, total, self.config.policy(tiered))
            .await;
        lease.release().await;
        done
    }

    async fn compactions(
        &self,
        tables: &Tables,
        name: &str,
        lease: &Lease,
        mut total: OptimizeResponse,
        policy: CompactPolicy,
    ) -> Result<OptimizeResponse> {
        for commit in 0..MAX_COMMITS_PER_RUN {
            if lease.lost() {
                total.skipped = Some(HELD_ELSEWHERE.into());
                return Ok(total);
            }
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
            stats
                .last_compaction_unix
                .store(unix_now(), Ordering::Relaxed);
            total.version = Some(version);
            total.files_removed += done.files_removed;
            total.files_added += done.files_added;
            total.bytes_removed += done.bytes_removed;
            total.bytes_added += done.bytes_added;
            total.rows += done.rows;
            // A run takes on the small files there were when it began: under a steady stream of appends
            // it would otherwise go on to its last commit, rewriting a few new files each time.
            if total.files_removed >= total.small_files {
                break;
            }
        }
        Ok(total)
    }
}

/// Why a run did nothing: another instance is working on the table.
const HELD_ELSEWHERE: &str =
    "another instance holds this table's upkeep lease; it will compact and vacuum the table";

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}
