//! [`OrderedList`]: an object store whose listings come back in key order.
//!
//! The Delta kernel reads a table's log by listing `_delta_log/` and expects commits in version order, as S3
//! and other object stores list them; a local directory lists in whatever order the file system keeps. The
//! tables are handed to deltalake under a `memory:` URL (see [`crate::tables`]), which tells the kernel the
//! listing is ordered, so this wrapper makes it so. Listings are collected and sorted, which is cheap for logs
//! and table directories.
//!
//! A local directory has a second cost: it cannot list from an offset without reading the whole directory,
//! and the kernel lists a table's log from a version after every commit and at every refresh. A table
//! appended to once a second keeps a week of commits (600,000 files) within the default retention, so
//! every append read 600,000 directory entries. Over a local directory, a log listed from a version
//! (`…/_delta_log/<20 digits>`, the kernel's form) is instead found by name, version after version, until
//! neither a commit nor a checkpoint is there: a few file lookups for the commits since the last refresh.
//! A log whose first files were cleaned up since that version (nothing found at it) is listed in full.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Wraps a store so `list` and `list_with_offset` return keys in order.
#[derive(Debug, Clone)]
pub struct OrderedList {
    inner: Arc<dyn ObjectStore>,
    /// Whether logs listed from a version are found by name (a local directory; see the module docs).
    probe_logs: bool,
}

impl OrderedList {
    /// Wraps `inner`; a local directory's logs are listed from a version by name.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        // object_store's local store names itself so; any store listing from an offset natively (S3 and
        // its kind) keeps the listing, one request for the new commits.
        let probe_logs = inner.to_string().starts_with("LocalFileSystem(");
        OrderedList { inner, probe_logs }
    }
}

/// The version a listing starts at when it lists a Delta log from a version: `prefix` is a `_delta_log`
/// directory and `offset` a name in it of 20 digits.
fn log_start(prefix: Option<&Path>, offset: &Path) -> Option<u64> {
    let prefix = prefix?;
    if prefix.filename()? != "_delta_log" {
        return None;
    }
    let mut rest = offset.prefix_match(prefix)?;
    let name = rest.next()?;
    if rest.next().is_some() {
        return None;
    }
    let name = name.as_ref();
    if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The log files in `prefix` from version `start` on, in key order: each version's checkpoint and commit,
/// looked up by name until a version has neither. When `start` has neither and the version before it has
/// no commit either, the log's first files were cleaned up since (or there is no log): the directory is
/// listed after all.
fn probe_log(
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    offset: Path,
    start: u64,
) -> BoxStream<'static, Result<ObjectMeta>> {
    futures::stream::once(async move {
        let mut found = Vec::new();
        let mut version = start;
        loop {
            let before = found.len();
            // A checkpoint sorts before its version's commit (`.c` < `.j`).
            for suffix in ["checkpoint.parquet", "json"] {
                let path = prefix.clone().join(format!("{version:020}.{suffix}"));
                match inner.head(&path).await {
                    Ok(meta) => found.push(meta),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if found.len() == before {
                break;
            }
            version += 1;
        }
        // Nothing at `start` but the version before it there: the log ends before `start`.
        let ends_before = match start.checked_sub(1) {
            Some(last) if found.is_empty() => {
                match inner
                    .head(&prefix.clone().join(format!("{last:020}.json")))
                    .await
                {
                    Ok(_) => true,
                    Err(object_store::Error::NotFound { .. }) => false,
                    Err(e) => return Err(e),
                }
            }
            _ => false,
        };
        if found.is_empty() && !ends_before {
            found = inner
                .list_with_offset(Some(&prefix), &offset)
                .try_collect()
                .await?;
            found.sort_by(|a, b| a.location.cmp(&b.location));
        }
        Ok::<_, object_store::Error>(futures::stream::iter(found.into_iter().map(Ok)))
    })
    .try_flatten()
    .boxed()
}

impl fmt::Display for OrderedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderedList({})", self.inner)
    }
}

fn sorted(
    stream: BoxStream<'static, Result<ObjectMeta>>,
) -> BoxStream<'static, Result<ObjectMeta>> {
    futures::stream::once(async move {
        let mut all: Vec<ObjectMeta> = stream.try_collect().await?;
        all.sort_by(|a, b| a.location.cmp(&b.location));
        Ok::<_, object_store::Error>(futures::stream::iter(all.into_iter().map(Ok)))
    })
    .try_flatten()
    .boxed()
}

#[async_trait]
impl ObjectStore for OrderedList {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        sorted(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.probe_logs
            && let (Some(prefix), Some(start)) = (prefix, log_start(prefix, offset))
        {
            return probe_log(
                Arc::clone(&self.inner),
                prefix.clone(),
                offset.clone(),
                start,
            );
        }
        sorted(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.sort_by(|a, b| a.location.cmp(&b.location));
        result.common_prefixes.sort();
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::local::LocalFileSystem;

    use super::*;

    async fn listed(store: &dyn ObjectStore, prefix: &Path, offset: &Path) -> Vec<String> {
        store
            .list_with_offset(Some(prefix), offset)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("listed")
    }

    /// Found by name, a log lists as the directory does: commits and checkpoints from the offset on, a
    /// log cleaned up before the offset listed in full, and any other offset left to the store.
    #[tokio::test]
    async fn a_log_found_by_name_lists_as_the_directory_does() {
        let dir = tempfile::tempdir().expect("dir");
        let local: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local"));
        let probing = OrderedList::new(Arc::clone(&local));
        assert!(probing.probe_logs, "a local directory is probed");
        let plain = OrderedList {
            inner: Arc::clone(&local),
            probe_logs: false,
        };
        let log = Path::from("datasets/t/_delta_log");
        let put = |name: String| {
            let local = Arc::clone(&local);
            let path = log.clone().join(name);
            async move { local.put(&path, PutPayload::from("{}")).await.expect("put") }
        };
        for version in 0..7u64 {
            put(format!("{version:020}.json")).await;
        }
        put(format!("{:020}.checkpoint.parquet", 3)).await;
        put("_last_checkpoint".to_owned()).await;
        let offset = |version: u64| log.clone().join(format!("{version:020}"));
        // The directory also lists `_last_checkpoint` (after the versions), which the kernel skips.
        let versions = |mut list: Vec<String>| {
            list.retain(|p| !p.ends_with("_last_checkpoint"));
            list
        };
        for version in [0, 2, 3, 4, 6, 7, 40] {
            let found = listed(&probing, &log, &offset(version)).await;
            let expected = listed(&plain, &log, &offset(version)).await;
            assert_eq!(
                versions(found),
                versions(expected),
                "from version {version}"
            );
        }
        // Commits before the checkpoint cleaned up: from version 0 nothing is there by name, and the
        // directory is listed.
        for version in 0..3u64 {
            let path = log.clone().join(format!("{version:020}.json"));
            local.delete(&path).await.expect("delete");
        }
        let found = listed(&probing, &log, &offset(0)).await;
        assert_eq!(found, listed(&plain, &log, &offset(0)).await);
        assert_eq!(found.len(), 6, "{found:?}");
        assert_eq!(
            log_start(Some(&log), &log.clone().join("_last_checkpoint")),
            None
        );
        assert_eq!(log_start(Some(&Path::from("datasets/t")), &offset(3)), None);
        assert_eq!(log_start(Some(&log), &offset(3)), Some(3));
    }
}
