//! Manifests, summaries and history, read from a table's transaction log.

use chrono::{DateTime, TimeZone, Utc};
use deltalake::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use lakehouse_types::dataset::{DatasetSummary, FileInfo, HistoryEntry, Manifest};
use object_store::{ObjectStore, ObjectStoreExt};

use crate::schema::columns_of;
use crate::tables::{Tables, commit_path};
use crate::{Error, Result};

/// The manifest of a loaded table.
pub async fn manifest_of(tables: &Tables, name: &str, table: &DeltaTable) -> Result<Manifest> {
    let state = table.snapshot()?;
    let version = version_of(table);
    let files = files_of(table)?;
    let history = history(
        tables.store().as_ref(),
        name,
        version,
        Some(MANIFEST_HISTORY),
    )
    .await?;
    Ok(Manifest {
        name: name.to_owned(),
        version,
        schema: columns_of(&state.snapshot().arrow_schema()),
        rows: files.iter().filter_map(|f| f.rows).sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        files,
        history,
    })
}

/// The listing entry of a loaded table.
pub async fn summary_of(tables: &Tables, name: &str, table: &DeltaTable) -> Result<DatasetSummary> {
    let version = version_of(table);
    let (mut rows, mut bytes) = (0, 0);
    for file in table.snapshot()?.log_data() {
        rows += file.num_records().map_or(0, |n| n as u64);
        bytes += u64::try_from(file.size()).unwrap_or(0);
    }
    // The loaded version's own commit, read by its name: listing the log to find the newest took longer
    // with every commit (a table appended to for 10 minutes has thousands).
    let commit = commit_path(name, version);
    let timestamp = match tables.store().get_opts(&commit, Default::default()).await {
        Ok(found) => parse_commit(version, &found.bytes().await?).timestamp,
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let updated_at = match timestamp {
        Some(t) => t,
        None => tables.store().head(&commit).await?.last_modified,
    };
    Ok(DatasetSummary {
        name: name.to_owned(),
        version,
        rows,
        bytes,
        updated_at,
    })
}

/// The loaded version of a table.
pub fn version_of(table: &DeltaTable) -> u64 {
    table.version().unwrap_or(0)
}

/// The data files of a loaded table.
pub fn files_of(table: &DeltaTable) -> Result<Vec<FileInfo>> {
    let mut files: Vec<FileInfo> = table
        .snapshot()?
        .log_data()
        .into_iter()
        .map(|f| FileInfo {
            path: f.path().into_owned(),
            rows: f.num_records().map(|n| n as u64),
            bytes: u64::try_from(f.size()).unwrap_or(0),
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Commits the manifest shows without paging: the newest ones (`GET .../history` pages further).
pub const MANIFEST_HISTORY: usize = 100;

/// Most commits one history page holds.
pub const MAX_HISTORY_PAGE: usize = 1000;

/// Commits up to `upto`, newest first, at most `limit` of them, read by their names (versions have no
/// gaps): no listing of the log, which holds every commit ever made. It stops at the first commit no
/// longer in the log (cleaned up after a checkpoint).
pub async fn history(
    store: &dyn ObjectStore,
    name: &str,
    upto: u64,
    limit: Option<usize>,
) -> Result<Vec<HistoryEntry>> {
    let limit = limit.unwrap_or(MANIFEST_HISTORY).min(MAX_HISTORY_PAGE);
    let versions = (0..=upto).rev().take(limit);
    let read = futures::stream::iter(versions)
        .map(|version| {
            let path = commit_path(name, version);
            async move {
                match store.get_opts(&path, Default::default()).await {
                    Ok(found) => Ok(Some(parse_commit(version, &found.bytes().await?))),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(Error::from(e)),
                }
            }
        })
        .buffered(8);
    futures::pin_mut!(read);
    let mut entries = Vec::new();
    while let Some(entry) = read.try_next().await? {
        match entry {
            Some(entry) => entries.push(entry),
            None => break,
        }
    }
    Ok(entries)
}

/// Reads the `commitInfo` action of one commit file.
fn parse_commit(version: u64, bytes: &[u8]) -> HistoryEntry {
    let mut entry = HistoryEntry {
        version,
        timestamp: None,
        operation: "UNKNOWN".into(),
        mode: None,
        rows_added: None,
    };
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let Some(info) = action.get("commitInfo") else {
            continue;
        };
        entry.timestamp = info
            .get("inCommitTimestamp")
            .or_else(|| info.get("timestamp"))
            .and_then(serde_json::Value::as_i64)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        if let Some(op) = info.get("operation").and_then(|o| o.as_str()) {
            entry.operation = op.to_owned();
        }
        entry.mode = info
            .pointer("/operationParameters/mode")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        entry.rows_added = info
            .pointer("/operationMetrics/num_added_rows")
            .or_else(|| info.pointer("/operationMetrics/numOutputRows"))
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
        break;
    }
    entry
}

/// The commit timestamp as a `DateTime`, for callers that only have milliseconds.
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_info_is_read() {
        let commit = concat!(
            r#"{"add":{"path":"x"}}"#,
            "\n",
            r#"{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE","#,
            r#""operationParameters":{"mode":"Append"},"operationMetrics":{"num_added_rows":42}}}"#,
        )
        .as_bytes();
        let e = parse_commit(3, commit);
        assert_eq!(
            (
                e.version,
                e.operation.as_str(),
                e.mode.as_deref(),
                e.rows_added
            ),
            (3, "WRITE", Some("Append"), Some(42))
        );
        assert!(e.timestamp.is_some());
    }
}
