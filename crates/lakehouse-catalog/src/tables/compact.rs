//! Compaction: a table's small data files rewritten into a few large ones, as one commit that changes no row.
//!
//! Every append adds at least one data file, and every snapshot holds every file's statistics: after a day
//! of one-row appends (a search recorded every second) a table is tens of thousands of files, each read,
//! planned and replayed on every query and append. A compaction reads the small files (in log order, up to
//! the target size), writes their rows with the same writer as ingest, and commits the new files with the
//! old ones removed, both marked `dataChange: false` (readers of the change feed see no change).
//!
//! Racing writers:
//! - an append commits beside a compaction in either order: deltalake retries the later one at the next
//!   version after checking that the two touch different files, and every row stays once;
//! - two commits that both remove existing files without adding them back (compaction, overwrite) would not
//!   be caught by deltalake's checks when one of them marks its removes `dataChange: false` (a compaction's
//!   files would survive an overwrite planned before it, or two compactions would both add the same rows).
//!   So every such commit carries the application transaction [`REWRITE_APP_ID`]: two of them racing
//!   conflict, the compaction gives way (its new files are deleted), and an overwrite plans its removes
//!   again from the table as it now is.

use deltalake::DeltaTable;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitBuilder, CommitConflictError, TransactionError};
use deltalake::protocol::DeltaOperation;
use lakehouse_types::dataset::OptimizeResponse;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{Tables, commit_properties, writer_properties, written_as_created};
use crate::schema::reconcile;
use crate::{Error, Result, datafiles, register};

/// The application id of commits that remove files they do not add back (compaction, overwrite).
pub(crate) const REWRITE_APP_ID: &str = "lakehouse.rewrite";

/// The transaction action a rewriting commit carries (its version the time, for the log's reader).
pub(crate) fn rewrite_transaction() -> deltalake::kernel::Transaction {
    let now = chrono::Utc::now().timestamp_millis();
    deltalake::kernel::Transaction::new_with_last_update(REWRITE_APP_ID, now, Some(now))
}

/// Whether a commit failed because another rewriting commit won the race.
pub(crate) fn lost_to_a_rewrite(err: &deltalake::DeltaTableError) -> bool {
    matches!(
        err,
        deltalake::DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction)
        }
    )
}

/// How many versions a compaction commit may move on past appends that landed first.
const COMMIT_ATTEMPTS: usize = 200;

/// Which files compaction rewrites, and into what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactPolicy {
    /// A data file under this many bytes is small.
    pub small_file_bytes: u64,
    /// Rewritten files are cut at about this size, and one run reads at most about this much.
    pub target_bytes: u64,
}

/// The small files of a table, in log order: (path inside the table, bytes, rows if known).
fn small_files(table: &DeltaTable, small: u64) -> Result<Vec<(String, u64, Option<usize>)>> {
    Ok(table
        .snapshot()?
        .log_data()
        .iter()
        .map(|f| {
            (
                f.path().into_owned(),
                u64::try_from(f.size()).unwrap_or(0),
                f.num_records(),
            )
        })
        .filter(|(_, size, _)| *size < small)
        .collect())
}

impl Tables {
    /// How many of the table's current files are under `small_file_bytes` (from the kept snapshot).
    pub async fn small_file_count(&self, name: &str, small_file_bytes: u64) -> Result<usize> {
        let table = self.open_current(name).await?;
        Ok(small_files(&table, small_file_bytes)?.len())
    }

    /// Rewrites the table's first small files (up to `policy.target_bytes` of them) into large ones, as one
    /// commit. Losing a race to another rewrite is [`Error::Conflict`], with nothing left behind.
    pub async fn compact(&self, name: &str, policy: CompactPolicy) -> Result<OptimizeResponse> {
        let table = self.open(name, None).await?;
        let small = small_files(&table, policy.small_file_bytes)?;
        let mut report = OptimizeResponse {
            dataset: name.to_owned(),
            small_files: small.len(),
            ..OptimizeResponse::default()
        };
        let schema = table.snapshot()?.snapshot().arrow_schema();
        if !written_as_created(&table) || !datafiles::handles(&schema) {
            report.skipped = Some("the table is not one this system writes its files for".into());
            return Ok(report);
        }
        let mut bin = Vec::new();
        let mut bytes = 0u64;
        for file in small {
            if bin.len() >= 2 && bytes + file.1 > policy.target_bytes {
                break;
            }
            bytes += file.1;
            bin.push(file);
        }
        if bin.len() < 2 {
            report.skipped = Some("fewer than two small files".into());
            return Ok(report);
        }
        let keys: Vec<String> = bin
            .iter()
            .map(|(path, _, _)| format!("{}/{path}", Tables::table_path(name)))
            .collect();
        // Files of an older schema (before columns were added) are left as they are.
        let sources = match register::inspect(self.store(), &keys).await {
            Ok(sources) => sources,
            Err(Error::Unprocessable(why)) => {
                report.skipped = Some(why);
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        let Ok(reconciled) = reconcile(&schema, &sources.schema, false) else {
            report.skipped = Some("the small files are of an older schema".into());
            return Ok(report);
        };
        let expected: Option<usize> = bin.iter().map(|f| f.2).sum();
        let log_store = table.log_store();
        let table_store = log_store.object_store(None);
        let batches = register::stream(self.store().clone(), sources, reconciled);
        let (mut adds, rows) = datafiles::write(
            table_store.clone(),
            batches,
            writer_properties(&[]),
            usize::try_from(policy.target_bytes).unwrap_or(usize::MAX),
        )
        .await?;
        let written: Vec<Path> = adds.iter().map(|a| Path::from(a.path.as_str())).collect();
        if expected.is_some_and(|n| u64::try_from(n).ok() != Some(rows)) {
            forget(&table_store, &written).await;
            return Err(Error::Integrity(format!(
                "compacting {name}: read {rows} rows from files whose statistics count {expected:?}; nothing committed"
            )));
        }
        for add in &mut adds {
            add.data_change = false;
        }
        let state = table.snapshot()?;
        let removed: std::collections::HashSet<&str> =
            bin.iter().map(|(path, _, _)| path.as_str()).collect();
        let mut actions: Vec<Action> = state
            .log_data()
            .iter()
            .filter(|f| removed.contains(f.path().as_ref()))
            .map(|f| Action::Remove(f.remove_action(false)))
            .collect();
        actions.extend(adds.iter().cloned().map(Action::Add));
        let metrics = serde_json::json!({
            "numFilesAdded": adds.len(),
            "numFilesRemoved": bin.len(),
            "filesAdded": {"totalSize": adds.iter().map(|a| a.size).sum::<i64>()},
            "filesRemoved": {"totalSize": bytes},
        });
        let properties = commit_properties(
            [
                (
                    "lakehouse".to_owned(),
                    serde_json::json!({"source": "compaction"}),
                ),
                ("operationMetrics".to_owned(), metrics),
            ],
            false,
        )
        .with_application_transaction(rewrite_transaction())
        // Appends landing meanwhile never conflict with it, only move it to the next version: under a steady
        // stream of them deltalake's default of 15 attempts ran out (seen in `scripts/bench/appends.py`).
        .with_max_retries(COMMIT_ATTEMPTS);
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size: i64::try_from(policy.target_bytes).unwrap_or(i64::MAX),
        };
        let committed = match CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(state), log_store, operation)
            .await
        {
            Ok(committed) => committed,
            Err(e) => {
                // The files written are referenced by no commit: remove them now rather than leave them
                // to a vacuum.
                forget(&table_store, &written).await;
                return Err(Error::from_write(name, e));
            }
        };
        let mut after = table;
        after.state = Some(committed.snapshot.clone());
        self.remember_written(name, &after).await;
        self.checkpoint_if_due(&after, committed.version);
        report.version = Some(committed.version);
        report.files_removed = bin.len();
        report.files_added = adds.len();
        report.bytes_removed = bytes;
        report.bytes_added = adds
            .iter()
            .map(|a| u64::try_from(a.size).unwrap_or(0))
            .sum();
        report.rows = rows;
        Ok(report)
    }
}

/// Deletes files no commit references, best-effort (a leftover is unreferenced, so never read).
async fn forget(store: &std::sync::Arc<dyn ObjectStore>, paths: &[Path]) {
    for path in paths {
        if let Err(e) = store.delete(path).await {
            tracing::debug!(path = %path, error = %e, "an unreferenced data file was left behind");
        }
    }
}

#[cfg(test)]
mod tests {
    use lakehouse_types::dataset::WriteMode;

    use super::*;
    use crate::tables::testing::{local, rows, rows_of, try_write, values_of, write};

    const POLICY: CompactPolicy = CompactPolicy {
        small_file_bytes: 1024 * 1024,
        target_bytes: 64 * 1024 * 1024,
    };

    #[tokio::test]
    async fn small_files_become_one_and_every_version_still_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tables = Tables::new(local(dir.path()));
        write(&tables, WriteMode::Create, &[0]).await;
        for i in 1..40 {
            write(&tables, WriteMode::Append, &[i]).await;
        }
        let before = tables.open("t", None).await.expect("open");
        assert_eq!(
            before.snapshot().expect("loaded").log_data().num_files(),
            40
        );
        let done = tables.compact("t", POLICY).await.expect("compact");
        assert_eq!(
            (
                done.version,
                done.files_removed,
                done.files_added,
                done.rows
            ),
            (Some(40), 40, 1, 40)
        );
        let after = tables.open_current("t").await.expect("open");
        assert_eq!(after.snapshot().expect("loaded").log_data().num_files(), 1);
        assert_eq!(values_of(&after).await, (0..40).collect::<Vec<_>>());
        // Time travel reads the files the version had, which compaction left in place.
        let old = tables.open("t", Some(20)).await.expect("v20");
        assert_eq!(values_of(&old).await, (0..21).collect::<Vec<_>>());
        // Nothing small is left to combine.
        let again = tables.compact("t", POLICY).await.expect("compact");
        assert_eq!(again.version, None);
        assert!(again.skipped.is_some());
        // Appends go on after it.
        assert_eq!(write(&tables, WriteMode::Append, &[40]).await, 41);
        assert_eq!(rows_of(&tables.open_current("t").await.expect("open")), 41);
    }

    #[tokio::test]
    async fn compaction_racing_appends_keeps_every_row_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tables = Tables::new(local(dir.path()));
        write(&tables, WriteMode::Create, &[0]).await;
        let writers: Vec<_> = (0..2i64)
            .map(|w| {
                let tables = tables.clone();
                tokio::spawn(async move {
                    for i in 0..30i64 {
                        let value = 1 + w * 1000 + i;
                        // A lost race is retried as a client would.
                        while try_write(&tables, WriteMode::Append, &[value])
                            .await
                            .is_err()
                        {}
                    }
                })
            })
            .collect();
        let compactor = {
            let tables = tables.clone();
            tokio::spawn(async move {
                let mut commits = 0;
                for _ in 0..40 {
                    if let Ok(done) = tables.compact("t", POLICY).await
                        && done.version.is_some()
                    {
                        commits += 1;
                    }
                    tokio::task::yield_now().await;
                }
                commits
            })
        };
        for writer in writers {
            writer.await.expect("writer");
        }
        let commits = compactor.await.expect("compactor");
        assert!(commits > 0, "no compaction committed among the appends");
        let mut expected: Vec<i64> = (0..2i64)
            .flat_map(|w| (0..30).map(move |i| 1 + w * 1000 + i))
            .collect();
        expected.push(0);
        expected.sort_unstable();
        let table = tables.open("t", None).await.expect("open");
        assert_eq!(values_of(&table).await, expected);
    }

    #[tokio::test]
    async fn an_overwrite_planned_before_a_compaction_leaves_exactly_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tables = Tables::new(local(dir.path()));
        write(&tables, WriteMode::Create, &[0]).await;
        for i in 1..20 {
            write(&tables, WriteMode::Append, &[i]).await;
        }
        // The overwrite plans its removes from the table as it was; a compaction then commits first.
        let stale = tables.open_if_exists("t").await.expect("open");
        let done = tables.compact("t", POLICY).await.expect("compact");
        assert!(done.version.is_some());
        let overwrite = crate::tables::WriteArgs {
            name: "t".into(),
            table: stale,
            mode: WriteMode::Overwrite,
            merge_schema: false,
            batches: rows(&[100, 101]),
            metadata: serde_json::json!({}),
            plain_columns: Vec::new(),
        };
        tables.write(overwrite).await.expect("overwrite");
        let table = tables.open("t", None).await.expect("open");
        assert_eq!(
            values_of(&table).await,
            vec![100, 101],
            "no compacted row survives the overwrite"
        );
    }
}
