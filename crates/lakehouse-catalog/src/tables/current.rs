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

/// A table as last opened, with what identified its first commit then.
#[derive(Debug, Clone)]
pub(super) struct Opened {
    table: DeltaTable,
    first_commit: String,
}

impl Tables {
    /// The table at its latest version, like `open(name, None)`, but reading only the commits made since this
    /// name was last opened here (a query's fixed cost was mostly reading the whole log again).
    ///
    /// The cached state is used only while the table's first commit is the object it was then (same ETag,
    /// or modification time and size): a table deleted and created again, by this process or another
    /// sharing the store, has a new first commit and is read from scratch. Where the first commit cannot be
    /// read (removed by log clean-up), nothing is cached.
    pub async fn open_current(&self, name: &str) -> Result<DeltaTable> {
        validate_name(name)?;
        let Some(identity) = self.first_commit(name).await? else {
            if let Ok(mut current) = self.current.lock() {
                current.remove(name);
            }
            return self.open(name, None).await;
        };
        let Some(cached) = self.cached(name, &identity) else {
            let table = self.open(name, None).await?;
            self.remember(name, &identity, &table);
            return Ok(table);
        };
        // Commits are numbered without gaps: no object for the next number means nothing to read.
        // (Bringing a snapshot up to date replays its files even when no commit is new: 9 ms for a listing
        // of four small tables, most of a soak's CPU.)
        let next = cached.version().map_or(0, |v| v + 1);
        match self.store.head(&commit_path(name, next)).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(cached),
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
        let mut table = match self.cached(name, &identity) {
            Some(t) if t.version().is_some_and(|v| v >= next) => return Ok(t),
            Some(t) => t,
            None => cached,
        };
        table.update_incremental(None).await?;
        self.remember(name, &identity, &table);
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
        if let Ok(Some(identity)) = self.first_commit(name).await {
            self.remember(name, &identity, table);
        }
    }

    /// What identifies a table's first commit (its ETag, or its modification time and size), when it
    /// exists.
    async fn first_commit(&self, name: &str) -> Result<Option<String>> {
        match self.store.head(&commit_path(name, 0)).await {
            Ok(meta) => Ok(Some(meta.e_tag.unwrap_or_else(|| {
                format!("{}/{}", meta.last_modified.timestamp_micros(), meta.size)
            }))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The table last opened under `name`, when its first commit is still the one identified.
    fn cached(&self, name: &str, identity: &str) -> Option<DeltaTable> {
        let current = self.current.lock().ok()?;
        let opened = current.get(name)?;
        (opened.first_commit == identity).then(|| opened.table.clone())
    }

    /// Keeps `table` as the one to bring up to date next time, unless a newer version of it is kept.
    fn remember(&self, name: &str, identity: &str, table: &DeltaTable) {
        let replaced = {
            let Ok(mut current) = self.current.lock() else {
                return;
            };
            let newer_kept = current
                .get(name)
                .is_some_and(|o| o.first_commit == identity && o.table.version() > table.version());
            if newer_kept {
                return;
            }
            current.insert(
                name.to_owned(),
                Opened {
                    table: table.clone(),
                    first_commit: identity.to_owned(),
                },
            )
        };
        // The state replaced may be the last reference to a table's file list: freeing it took 25 ms for a
        // table of 1,500 files, which is not to be done while every reader of any table waits on the lock.
        drop(replaced);
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
