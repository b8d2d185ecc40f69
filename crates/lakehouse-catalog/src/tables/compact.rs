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
    /// Combine files of like sizes only (the background's choice), rather than every small file in log
    /// order (a request's).
    pub tiered: bool,
}

/// Files up to this size are always combined, whatever their neighbours' sizes (rewriting them is cheap).
const TIER_FLOOR: u64 = 64 * 1024;

/// The files a tiered compaction combines, as indices into `small` in log order: the smallest files, each
/// next one taken while it is at most twice the bytes taken so far (or under [`TIER_FLOOR`]).
///
/// Rewriting every small file in log order rewrote the table's one compacted file again with every 31 new
/// rows: under a search recorded every second that is up to 16 MiB rewritten every half-minute, and as
/// much kept on storage per rewrite until the retention lets a vacuum remove it (about 150 GB over the
/// default week). Taking only files of like sizes, a row's file at least grows by half each time it is
/// rewritten, so a row is rewritten a logarithmic number of times (about 14 from 64 KiB to 16 MiB) and the
/// small files stay a few per size.
fn tiered_bin(small: &[(String, u64, Option<usize>)], target: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..small.len()).collect();
    order.sort_by_key(|&i| small[i].1);
    for start in 0..order.len() {
        let mut bin = vec![order[start]];
        let mut taken = small[order[start]].1;
        for &next in &order[start + 1..] {
            let size = small[next].1;
            if size > (taken * 2).max(TIER_FLOOR) || taken + size > target {
                break;
            }
            bin.push(next);
            taken += size;
        }
        if bin.len() >= 2 {
            bin.sort_unstable();
            return bin;
        }
    }
    Vec::new()
}

/// The files a full compaction combines: the small files in log order, up to the target size.
fn log_order_bin(small: &[(String, u64, Option<usize>)], target: u64) -> Vec<usize> {
    let mut bin = Vec::new();
    let mut bytes = 0u64;
    for (i, file) in small.iter().enumerate() {
        if bin.len() >= 2 && bytes + file.1 > target {
            break;
        }
        bytes += file.1;
        bin.push(i);
    }
    bin
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
        let chosen = if policy.tiered {
            tiered_bin(&small, policy.target_bytes)
        } else {
            log_order_bin(&small, policy.target_bytes)
        };
        let bin: Vec<&(String, u64, Option<usize>)> = chosen.iter().map(|&i| &small[i]).collect();
        let bytes: u64 = bin.iter().map(|f| f.1).sum();
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
        tiered: false,
    };

    fn sized(sizes: &[u64]) -> Vec<(String, u64, Option<usize>)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| (format!("f{i}"), s, None))
            .collect()
    }

    #[test]
    fn a_tiered_bin_takes_files_of_like_sizes_and_leaves_a_large_one() {
        const K: u64 = 1024;
        // The compacted file first in the log, then new one-row files: only the new ones are combined.
        let small = sized(&[900 * K, 2 * K, 2 * K, 3 * K, 2 * K]);
        assert_eq!(tiered_bin(&small, 64 * K * K), vec![1, 2, 3, 4]);
        // Once the new ones add up to half of it, it is taken too.
        // (the lone new file waits for others of its size).
        let small = sized(&[900 * K, 300 * K, 160 * K, 2 * K]);
        assert_eq!(tiered_bin(&small, 64 * K * K), vec![0, 1, 2]);
        // Nothing alike: nothing to do; and never past the target.
        assert!(tiered_bin(&sized(&[100 * K, 900 * K, 5000 * K]), 64 * K * K).is_empty());
        assert_eq!(
            tiered_bin(&sized(&[2 * K, 2 * K, 2 * K]), 4 * K),
            vec![0, 1]
        );
        // A lone small file beside larger alike ones: the alike ones.
        let small = sized(&[10 * K, 700 * K, 800 * K]);
        assert_eq!(tiered_bin(&small, 64 * K * K), vec![1, 2]);
    }

    #[tokio::test]
    async fn tiered_compaction_under_appends_rewrites_each_row_a_few_times() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tables = Tables::new(local(dir.path()));
        let tiered = CompactPolicy {
            tiered: true,
            ..POLICY
        };
        // Appends of 4,000 values that do not compress (files of some 32 KB, so that past the first few
        // the sizes decide), two per round, a compaction after each round.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut batch = || -> Vec<i64> {
            (0..4000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as i64
                })
                .collect()
        };
        write(&tables, WriteMode::Create, &batch()).await;
        let (mut rewritten, mut rows) = (0u64, 4000u64);
        for _ in 0..24 {
            for _ in 0..2 {
                write(&tables, WriteMode::Append, &batch()).await;
                rows += 4000;
            }
            rewritten += tables.compact("t", tiered).await.expect("compact").rows;
        }
        let table = tables.open_current("t").await.expect("open");
        assert_eq!(rows_of(&table), rows);
        let files = table.snapshot().expect("loaded").log_data().num_files();
        assert!(files <= 8, "{files} files left");
        // Rewriting every small file each round would rewrite each row some 12 times on average here.
        assert!(
            rewritten <= rows * 6,
            "{rewritten} rows rewritten for {rows}"
        );
    }

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
