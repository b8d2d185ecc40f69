//! Vacuum: the files no kept version needs, removed from storage; the log's entries before the oldest kept
//! version, removed from the log.
//!
//! deltalake's vacuum decides (in its full mode, which also finds files no commit ever referenced: those
//! of writes cut short by a crash). A file goes when it is referenced by no kept version and is older than
//! both the retention and the grace:
//! - a file a compaction or overwrite removed is listed in the log with when it was removed; versions
//!   older than that are the only ones that read it, so once it was removed before the cutoff, no kept
//!   version does (see `retention.rs`);
//! - the grace (`[datasets] vacuum_grace_secs`) protects what the retention cannot: a query still reading
//!   a version that was replaced a moment ago, and an ingest still writing the files it has not committed.
//!   It must exceed the longest query and the longest ingest.
//!
//! The log remembers removed files as long as the table's `delta.deletedFileRetentionDuration` (7 days by
//! default): a checkpoint leaves out older ones, and the full mode would then take their files for
//! never-committed ones. So a vacuum first sets that property to the retention (or the grace, if longer)
//! when it differs, as one metadata commit: kept longer, no file a kept version needs is taken; kept
//! shorter, checkpoints stop carrying a week of removed files (a week of search recordings is some 600,000).
//!
//! Commits before the oldest kept version are removed up to the last checkpoint before it, as deltalake's
//! log clean-up does; the table then opens from that checkpoint.

use std::collections::HashMap;
use std::time::Duration;

use deltalake::operations::vacuum::VacuumMode;
use deltalake::table::config::TablePropertiesExt as _;
use futures::TryStreamExt;
use lakehouse_types::dataset::VacuumResponse;
use object_store::ObjectStore;

use super::{Tables, commit_properties};
use crate::{Error, Result};

/// The table property that says how long the log remembers removed files.
pub(super) const TOMBSTONE_RETENTION: &str = "delta.deletedFileRetentionDuration";

/// Files of a table younger than this are never removed, whatever the retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VacuumPolicy {
    /// How long after its removal (or, for a file never committed, its writing) a file may still be read.
    pub grace: Duration,
}

/// Most paths a response lists.
const SAMPLE: usize = 20;

impl Tables {
    /// Removes the files no kept version of `name` needs and the log entries before the oldest kept
    /// version; with `dry_run`, only says which files those are.
    pub async fn vacuum(
        &self,
        name: &str,
        policy: VacuumPolicy,
        dry_run: bool,
    ) -> Result<VacuumResponse> {
        let keep = self.retention.keep(name);
        let mut table = self.open(name, None).await?;
        let current = table.version().unwrap_or(0);
        let mut report = VacuumResponse {
            dataset: name.to_owned(),
            dry_run,
            keep_versions_days: self.retention.keep_days(name),
            oldest_kept_version: self.oldest_kept(name, current).await?,
            ..VacuumResponse::default()
        };
        let remembered = table
            .snapshot()?
            .table_config()
            .deleted_file_retention_duration();
        let wanted = whole_seconds(keep.max(policy.grace));
        if remembered != wanted {
            if !dry_run {
                table = self.remember_removed_files_for(name, table, wanted).await?;
            } else if remembered < keep {
                report.skipped = Some(format!(
                    "the log remembers removed files for {} days, less than the retention; a vacuum first \
                     raises that (one commit), then removes what it finds",
                    remembered.as_secs_f64() / 86_400.0
                ));
                return Ok(report);
            }
        }
        let store = table.log_store().object_store(None);
        let sizes = file_sizes(&store).await?;
        let retention =
            chrono::Duration::from_std(keep.max(policy.grace)).unwrap_or(chrono::Duration::MAX);
        let (after, metrics) = table
            .vacuum()
            .with_mode(VacuumMode::Full)
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_dry_run(dry_run)
            .with_commit_properties(vacuum_commit())
            .await
            .map_err(|e| Error::from_write(name, e))?;
        report.files = metrics.files_deleted.len();
        report.bytes = metrics
            .files_deleted
            .iter()
            .filter_map(|p| sizes.get(p.as_str()))
            .sum();
        report.sample = metrics.files_deleted.iter().take(SAMPLE).cloned().collect();
        if !dry_run {
            if let Some(version) = after.version() {
                self.remember_written(name, &after).await;
                self.checkpoint_if_due(&after, version);
            }
            let cutoff = self.retention.cutoff(name).timestamp_millis();
            report.log_files = deltalake::checkpoints::cleanup_expired_logs_for(
                report.oldest_kept_version,
                after.log_store().as_ref(),
                cutoff,
                None,
            )
            .await?;
        }
        Ok(report)
    }

    /// Sets how long the table's log remembers removed files, as one commit.
    async fn remember_removed_files_for(
        &self,
        name: &str,
        table: deltalake::DeltaTable,
        wanted: Duration,
    ) -> Result<deltalake::DeltaTable> {
        let value = format!("interval {} seconds", wanted.as_secs());
        tracing::info!(
            dataset = %name,
            property = TOMBSTONE_RETENTION,
            %value,
            "the log's memory of removed files set to the retention"
        );
        let table = table
            .set_tbl_properties()
            .with_properties(HashMap::from([(TOMBSTONE_RETENTION.to_owned(), value)]))
            .with_commit_properties(vacuum_commit())
            .await
            .map_err(|e| Error::from_write(name, e))?;
        self.remember_written(name, &table).await;
        Ok(table)
    }
}

/// The properties of the commits a vacuum makes (marked as its own in the history).
fn vacuum_commit() -> deltalake::kernel::transaction::CommitProperties {
    commit_properties(
        [(
            "lakehouse".to_owned(),
            serde_json::json!({"source": "vacuum"}),
        )],
        false,
    )
}

/// `d` rounded up to a whole second (the property's unit here).
fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)))
}

/// Every data file under a table's root with its size, by path inside the table (the log left out: a
/// table of a week of recordings has 600,000 commits there).
async fn file_sizes(store: &std::sync::Arc<dyn ObjectStore>) -> Result<HashMap<String, u64>> {
    Ok(store
        .list(None)
        .try_filter_map(|meta| async move {
            let path = meta.location.to_string();
            Ok((!path.starts_with("_delta_log/")).then_some((path, meta.size)))
        })
        .try_collect()
        .await?)
}

#[cfg(test)]
mod tests {
    use lakehouse_types::dataset::WriteMode;

    use super::*;
    use crate::tables::Retention;
    use crate::tables::compact::CompactPolicy;
    use crate::tables::testing::{local, values_of, write};

    const NO_GRACE: VacuumPolicy = VacuumPolicy {
        grace: Duration::ZERO,
    };

    fn data_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir.join("datasets/t"))
            .expect("table dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            })
            .count()
    }

    #[tokio::test]
    async fn compacted_files_go_once_no_kept_version_needs_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = local(dir.path());
        let week = Tables::new(store.clone());
        write(&week, WriteMode::Create, &[0]).await;
        for i in 1..10 {
            write(&week, WriteMode::Append, &[i]).await;
        }
        let policy = CompactPolicy {
            small_file_bytes: 1 << 20,
            target_bytes: 1 << 26,
            tiered: false,
        };
        assert_eq!(
            week.compact("t", policy).await.expect("compact").version,
            Some(10)
        );
        assert_eq!(data_files(dir.path()), 11);

        // Kept a week: every version is kept, nothing goes.
        let kept = week.vacuum("t", NO_GRACE, false).await.expect("vacuum");
        assert_eq!((kept.files, kept.oldest_kept_version), (0, 0));
        assert_eq!(data_files(dir.path()), 11);

        // Kept no time: the dry run names the ten small files and removes nothing.
        let none = Tables::new(store.clone()).with_retention(Retention {
            keep_days: 0.0,
            per_table: HashMap::new(),
        });
        let dry = none.vacuum("t", NO_GRACE, true).await.expect("dry run");
        assert_eq!((dry.files, dry.oldest_kept_version), (10, 10));
        assert!(dry.bytes > 0 && dry.sample.len() == 10, "{dry:?}");
        assert_eq!(data_files(dir.path()), 11);
        // A grace longer than the files' age keeps them.
        let graced = VacuumPolicy {
            grace: Duration::from_secs(3600),
        };
        assert_eq!(
            none.vacuum("t", graced, false).await.expect("vacuum").files,
            0
        );
        let done = none.vacuum("t", NO_GRACE, false).await.expect("vacuum");
        assert_eq!((done.files, done.bytes), (10, dry.bytes));
        assert_eq!(data_files(dir.path()), 1);
        let table = none.open_current("t").await.expect("open");
        assert_eq!(values_of(&table).await, (0..10).collect::<Vec<_>>());
        assert!(matches!(
            none.open("t", Some(3)).await,
            Err(Error::VersionExpired { .. })
        ));
        // Appends go on after it.
        let next = write(&none, WriteMode::Append, &[10]).await;
        let table = none.open("t", Some(next)).await.expect("open");
        assert_eq!(values_of(&table).await, (0..11).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_log_before_the_oldest_kept_version_goes_and_the_table_still_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = local(dir.path());
        let none = Tables::new(store.clone()).with_retention(Retention {
            keep_days: 0.0,
            per_table: HashMap::new(),
        });
        write(&none, WriteMode::Create, &[0]).await;
        for i in 1..=120 {
            write(&none, WriteMode::Append, &[i]).await;
        }
        // The checkpoint of version 99 is written in the background.
        let pointer = dir.path().join("datasets/t/_delta_log/_last_checkpoint");
        for _ in 0..200 {
            if pointer.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(pointer.exists(), "no checkpoint was written");
        let reader = Tables::new(store.clone());
        assert_eq!(
            reader.open_current("t").await.expect("open").version(),
            Some(120)
        );

        let done = none.vacuum("t", NO_GRACE, false).await.expect("vacuum");
        assert!(done.log_files >= 99, "{done:?}");
        let first = dir
            .path()
            .join("datasets/t/_delta_log/00000000000000000000.json");
        assert!(!first.exists(), "commit 0 is gone once past the retention");
        // Readers, new or kept, still open the table and follow it.
        let version = write(&none, WriteMode::Append, &[121]).await;
        for tables in [&reader, &Tables::new(store.clone())] {
            let table = tables.open_current("t").await.expect("open");
            assert_eq!(table.version(), Some(version));
            assert_eq!(values_of(&table).await, (0..=121).collect::<Vec<_>>());
        }
        let old = none.open("t", Some(5)).await;
        assert!(
            matches!(old, Err(Error::VersionExpired { .. })),
            "{:?}",
            old.map(|t| t.version())
        );
        let history = crate::manifest::history(store.as_ref(), "t", version, Some(1000))
            .await
            .expect("history");
        assert!(
            !history.is_empty() && history.len() < 100,
            "{}",
            history.len()
        );
    }
}
