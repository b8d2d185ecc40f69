//! Tables kept open between requests and brought up to date, rather than read afresh from their logs.

use deltalake::DeltaTable;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::{DATASETS_PREFIX, Tables};
use crate::Result;
use crate::names::validate_name;

/// The object of a table's commit `version`.
pub(crate) fn commit_path(name: &str, version: u64) -> Path {
    Path::from(format!(
        "{DATASETS_PREFIX}/{name}/_delta_log/{version:020}.json"
    ))
}

/// A table as last opened, with what identified the commit of its version then.
#[derive(Debug, Clone)]
pub(super) struct Opened {
    table: DeltaTable,
    commit_tag: String,
}

/// What identifies a stored object: its ETag, or its modification time and size.
fn tag_of(meta: &object_store::ObjectMeta) -> String {
    meta.e_tag
        .clone()
        .unwrap_or_else(|| format!("{}/{}", meta.last_modified.timestamp_micros(), meta.size))
}

impl Tables {
    /// The table at its latest version, like `open(name, None)`, but reading only the commits made since this
    /// name was last opened here (a query's fixed cost was mostly reading the whole log again).
    ///
    /// The kept table is used only while the commit of its version is the object it was then (same ETag,
    /// or modification time and size): a table deleted and created again, by this process or another
    /// sharing the store, has other commits and is read from scratch; so is one whose kept version was
    /// cleaned from the log since.
    pub async fn open_current(&self, name: &str) -> Result<DeltaTable> {
        validate_name(name)?;
        let Some(kept) = self.kept(name) else {
            let table = self.open(name, None).await?;
            self.remember(name, &table).await;
            return Ok(table);
        };
        let version = kept.table.version().unwrap_or(0);
        let same = match self.store.head(&commit_path(name, version)).await {
            Ok(meta) => tag_of(&meta) == kept.commit_tag,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !same {
            self.forget(name, &kept.commit_tag);
            let table = self.open(name, None).await?;
            self.remember(name, &table).await;
            return Ok(table);
        }
        // Commits are numbered without gaps: no object for the next number means nothing to read.
        // (Bringing a snapshot up to date replays its files even when no commit is new: 9 ms for a listing
        // of four small tables, most of a soak's CPU.)
        let next = version + 1;
        match self.store.head(&commit_path(name, next)).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(kept.table),
            Err(e) => return Err(e.into()),
        }
        // One caller brings the table up to date while the others for the same table wait and take its
        // result. (Each replaying the table's files itself was most of a soak's CPU once the table it
        // appended to had hundreds of files and 32 connections asked at once.)
        let updating = self
            .updating
            .lock()
            .ok()
            .map(|mut u| u.entry(name.to_owned()).or_default().clone())
            .unwrap_or_default();
        let _turn = updating.lock().await;
        let mut table = match self.kept(name) {
            Some(o) if o.table.version().is_some_and(|v| v >= next) => return Ok(o.table),
            Some(o) if o.commit_tag == kept.commit_tag => o.table,
            _ => kept.table,
        };
        table.update_incremental(None).await?;
        self.remember(name, &table).await;
        Ok(table)
    }

    /// Writes a checkpoint of `table` (at `version`, just committed) in the background when the log is due
    /// one ([`super::CHECKPOINT_INTERVAL`]): a failure is logged and leaves reading as it was, slower.
    pub(super) fn checkpoint_if_due(&self, table: &DeltaTable, version: u64) {
        if !(version + 1).is_multiple_of(super::CHECKPOINT_INTERVAL) {
            return;
        }
        let table = table.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match deltalake::checkpoints::create_checkpoint(&table, None).await {
                Ok(()) => tracing::debug!(
                    table = %table.table_url(),
                    version,
                    ms = started.elapsed().as_millis(),
                    "checkpoint written"
                ),
                Err(e) => {
                    tracing::warn!(table = %table.table_url(), version, error = %e, "checkpoint not written")
                }
            }
        });
    }

    /// Keeps the table a write to an existing table left, so that the next reader does not replay the
    /// table's files to reach the version just written (200 ms of CPU for a table of 1,400 files).
    pub(super) async fn remember_written(&self, name: &str, table: &DeltaTable) {
        self.remember(name, table).await;
    }

    /// The table last opened under `name`.
    fn kept(&self, name: &str) -> Option<Opened> {
        self.current.lock().ok()?.get(name).cloned()
    }

    /// Drops the kept table of `name` if it is still the one identified by `commit_tag`.
    fn forget(&self, name: &str, commit_tag: &str) {
        let removed = self.current.lock().ok().and_then(|mut current| {
            let stale = current
                .get(name)
                .is_some_and(|o| o.commit_tag == commit_tag);
            if stale { current.remove(name) } else { None }
        });
        drop(removed);
    }

    /// Keeps `table` as the one to bring up to date next time, unless a newer version of it is kept.
    async fn remember(&self, name: &str, table: &DeltaTable) {
        let Some(version) = table.version() else {
            return;
        };
        let commit_tag = match self.store.head(&commit_path(name, version)).await {
            Ok(meta) => tag_of(&meta),
            Err(_) => return,
        };
        let replaced = {
            let Ok(mut current) = self.current.lock() else {
                return;
            };
            let newer_kept = current
                .get(name)
                .is_some_and(|o| o.table.version() > table.version());
            if newer_kept {
                return;
            }
            current.insert(
                name.to_owned(),
                Opened {
                    table: table.clone(),
                    commit_tag,
                },
            )
        };
        // The state replaced may be the last reference to a table's file list: freeing it took 25 ms for a
        // table of 1,500 files, which is not to be done while every reader of any table waits on the lock.
        drop(replaced);
    }

    /// For every table kept here: its name, data files and files under `small_bytes` (for `/metrics`).
    pub fn kept_file_counts(&self, small_bytes: u64) -> Vec<(String, usize, usize)> {
        let tables: Vec<(String, DeltaTable)> = match self.current.lock() {
            Ok(current) => current
                .iter()
                .map(|(name, o)| (name.clone(), o.table.clone()))
                .collect(),
            Err(_) => return Vec::new(),
        };
        let mut counts: Vec<(String, usize, usize)> = tables
            .into_iter()
            .filter_map(|(name, table)| {
                let state = table.snapshot().ok()?;
                let (mut files, mut small) = (0, 0);
                for file in state.log_data() {
                    files += 1;
                    small += usize::from(u64::try_from(file.size()).unwrap_or(0) < small_bytes);
                }
                Some((name, files, small))
            })
            .collect();
        counts.sort();
        counts
    }
}

#[cfg(test)]
mod tests {
    use lakehouse_types::dataset::WriteMode;
    use object_store::PutPayload;

    use super::*;
    use crate::tables::testing::{local, rows_of, write};

    #[tokio::test]
    async fn a_log_is_found_by_its_first_commit_its_checkpoint_pointer_or_what_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = local(dir.path());
        let tables = Tables::new(store.clone());
        let log = "datasets/t/_delta_log";
        assert!(!tables.exists("t").await.expect("exists"));
        // A log whose early commits were cleaned up, with and without its checkpoint pointer.
        let later = Path::from(format!("{log}/{:020}.json", 7));
        store
            .put(&later, PutPayload::from_static(b"{}"))
            .await
            .expect("put");
        assert!(tables.exists("t").await.expect("exists"));
        let pointer = Path::from(format!("{log}/_last_checkpoint"));
        store
            .put(&pointer, PutPayload::from_static(b"{}"))
            .await
            .expect("put");
        store.delete(&later).await.expect("delete");
        assert!(tables.exists("t").await.expect("exists"));
        store.delete(&pointer).await.expect("delete");
        assert!(!tables.exists("t").await.expect("exists"));
        assert!(!tables.exists("other").await.expect("exists"));
    }

    #[tokio::test]
    async fn readers_at_once_all_see_a_commit_made_elsewhere_and_a_writer_sees_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = Tables::new(local(dir.path()));
        let reader = Tables::new(local(dir.path()));
        assert_eq!(write(&writer, WriteMode::Create, &[1]).await, 0);
        let kept = reader.open_current("t").await.expect("open");
        assert_eq!((kept.version(), rows_of(&kept)), (Some(0), 1));

        // The writer's own table, kept from its write: a further write reads it, not the log.
        assert_eq!(write(&writer, WriteMode::Append, &[2, 3]).await, 1);
        assert_eq!(write(&writer, WriteMode::Append, &[4]).await, 2);
        let own = writer.open_current("t").await.expect("open");
        assert_eq!((own.version(), rows_of(&own)), (Some(2), 4));

        // The reader kept version 0; eight callers at once all get version 2, whichever brought it up to date.
        let opened = futures::future::join_all((0..8).map(|_| reader.open_current("t"))).await;
        for table in opened {
            let table = table.expect("open");
            assert_eq!((table.version(), rows_of(&table)), (Some(2), 4));
        }

        // Deleted and created again elsewhere: the kept table is not used.
        writer.delete("t").await.expect("delete");
        assert_eq!(write(&writer, WriteMode::Create, &[9, 9, 9]).await, 0);
        let again = reader.open_current("t").await.expect("open");
        assert_eq!((again.version(), rows_of(&again)), (Some(0), 3));
    }
}
