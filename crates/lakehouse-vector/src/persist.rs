//! Where and how indexes live in the object store.
//!
//! ```text
//! vectors/<index>/meta.json                                   name, dim, metric, incarnation (written first)
//! vectors/<index>/<incarnation>/segments/<seq>.seg            one per acknowledged batch, PutMode::Create
//! vectors/<index>/<incarnation>/snapshots/<seq>/graph.hnsw    the HNSW graph with its vectors
//! vectors/<index>/<incarnation>/snapshots/<seq>/entries.bin   ids, keys, metadata
//! vectors/<index>/<incarnation>/snapshots/<seq>/manifest.json sizes and checksums of the two (written last)
//! ```
//!
//! Snapshots written while indexes were usearch graphs hold `graph.usearch` instead of `graph.hnsw`. A build
//! with the `usearch-snapshots` feature loads them (reading every vector back into a new graph) and the
//! first load rewrites the snapshot in place in the new format (see `convert_legacy_snapshot`); other
//! builds refuse them with an error that says so. The usearch library is not compiled in otherwise.
//!
//! A snapshot at `seq` covers segments `1..=seq`. Only a snapshot whose manifest exists and whose files match
//! it is ever loaded, so a crash while writing one leaves something readers skip. The incarnation (random,
//! fixed at creation) keeps a dropped-and-recreated index from ever seeing its predecessor's objects, even
//! those a straggling background task writes after the drop. Each object PUT is atomic in every store we
//! support (a rename on a local disk, a single PUT on S3).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use lakehouse_types::vector::Metric;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Segment};
use crate::error::{Error, Result};
use crate::hnsw::{Hnsw, HnswParams};
use crate::index::IndexState;

/// The root of every index.
pub const ROOT: &str = "vectors";
const GRAPH_FILE: &str = "graph.hnsw";
/// The graph file of snapshots written by the usearch-based index.
const LEGACY_GRAPH_FILE: &str = "graph.usearch";
const ENTRIES_FILE: &str = "entries.bin";
const MANIFEST_FILE: &str = "manifest.json";

/// What `meta.json` records about an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Layout version.
    pub format: u32,
    /// The name.
    pub name: String,
    /// Vector dimension.
    pub dim: usize,
    /// Metric.
    pub metric: Metric,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Random per creation; names the directory holding this incarnation's data.
    pub incarnation: String,
    /// Graph connectivity the index was built with.
    pub connectivity: usize,
}

impl IndexMeta {
    fn data(&self) -> String {
        format!("{ROOT}/{}/{}", self.name, self.incarnation)
    }

    /// Where segment `seq` is stored.
    pub fn segment_path(&self, seq: u64) -> Path {
        Path::from(format!("{}/segments/{seq:020}.seg", self.data()))
    }

    fn segments_prefix(&self) -> Path {
        Path::from(format!("{}/segments", self.data()))
    }

    fn snapshots_prefix(&self) -> Path {
        Path::from(format!("{}/snapshots", self.data()))
    }

    fn snapshot_file(&self, seq: u64, file: &str) -> Path {
        Path::from(format!("{}/snapshots/{seq:020}/{file}", self.data()))
    }
}

/// `vectors/<name>/meta.json`.
pub fn meta_path(name: &str) -> Path {
    Path::from(format!("{ROOT}/{name}/meta.json"))
}

/// `vectors/<name>`.
pub fn index_prefix(name: &str) -> Path {
    Path::from(format!("{ROOT}/{name}"))
}

/// Writes `meta.json` unless it exists: the step that makes creation durable and exclusive.
pub async fn create_meta(store: &Arc<dyn ObjectStore>, meta: &IndexMeta) -> Result<()> {
    let json = serde_json::to_vec_pretty(meta)
        .map_err(|e| Error::Corrupt(format!("index meta does not serialise: {e}")))?;
    let options = PutOptions::from(PutMode::Create);
    match store
        .put_opts(&meta_path(&meta.name), PutPayload::from(json), options)
        .await
    {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {
            Err(Error::AlreadyExists(meta.name.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads an index's `meta.json`, if the index exists.
pub async fn read_meta(store: &Arc<dyn ObjectStore>, name: &str) -> Result<Option<IndexMeta>> {
    let bytes = match store.get(&meta_path(name)).await {
        Ok(found) => found.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt(format!("meta.json of index '{name}' is unreadable: {e}")))
}

/// Names of every directory under `vectors/` (indexes, and leftovers of dropped ones without a meta).
pub async fn list_names(store: &Arc<dyn ObjectStore>) -> Result<Vec<String>> {
    let listing = store.list_with_delimiter(Some(&Path::from(ROOT))).await?;
    Ok(listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_owned))
        .collect())
}

/// Deletes every object under a prefix; missing objects are fine (someone else got there first).
pub async fn delete_prefix(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<()> {
    let objects: Vec<_> = store.list(Some(prefix)).try_collect().await?;
    for object in objects {
        delete_quietly(store, &object.location).await?;
    }
    Ok(())
}

async fn delete_quietly(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes segment `seq`; `false` when that sequence number is taken (another writer got there first).
pub async fn put_segment(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    seq: u64,
    bytes: Bytes,
) -> Result<bool> {
    let options = PutOptions::from(PutMode::Create);
    match store
        .put_opts(&meta.segment_path(seq), PutPayload::from(bytes), options)
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sequence number from a segment file (`00000000000000000042.seg`) or snapshot directory name
/// (`00000000000000000042`); anything else (a store's staging file, a stray object) is not ours.
fn seq_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg").unwrap_or(name);
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segments after `after`, in order, with their last-modified times.
pub async fn list_segments(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    after: u64,
) -> Result<Vec<(u64, Path, DateTime<Utc>)>> {
    let objects: Vec<_> = store
        .list(Some(&meta.segments_prefix()))
        .try_collect()
        .await?;
    let mut segments: Vec<_> = objects
        .into_iter()
        .filter_map(|o| {
            let seq = o.location.filename().and_then(seq_of)?;
            (seq > after).then_some((seq, o.location, o.last_modified))
        })
        .collect();
    segments.sort_by_key(|s| s.0);
    Ok(segments)
}

/// Reads and verifies one segment.
pub async fn read_segment(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    dim: usize,
) -> Result<Segment> {
    let bytes = store.get(path).await?.bytes().await?;
    tokio::task::spawn_blocking(move || codec::decode_segment(&bytes, dim))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotFile {
    name: String,
    size: u64,
    checksum: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotManifest {
    format: u32,
    seq: u64,
    created_at: DateTime<Utc>,
    count: usize,
    files: Vec<SnapshotFile>,
}

/// A serialised index, ready to upload.
#[derive(Debug)]
pub struct SnapshotData {
    /// The last segment it covers.
    pub seq: u64,
    /// Items in it.
    pub count: usize,
    /// [`Hnsw::save`] output.
    pub graph: Bytes,
    /// [`codec::encode_entries`] output.
    pub entries: Bytes,
}

/// Uploads a snapshot: its files first, the manifest naming them last.
pub async fn write_snapshot(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    data: SnapshotData,
) -> Result<()> {
    let mut files = Vec::new();
    for (name, bytes) in [(GRAPH_FILE, data.graph), (ENTRIES_FILE, data.entries)] {
        files.push(put_snapshot_file(store, meta, data.seq, name, bytes).await?);
    }
    let manifest = SnapshotManifest {
        format: 1,
        seq: data.seq,
        created_at: Utc::now(),
        count: data.count,
        files,
    };
    put_manifest(store, meta, &manifest).await
}

/// Uploads one file of snapshot `seq` (its checksum computed off the async threads) and describes it for
/// the manifest.
async fn put_snapshot_file(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    seq: u64,
    name: &str,
    bytes: Bytes,
) -> Result<SnapshotFile> {
    let size = bytes.len() as u64;
    let checksum = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || codec::checksum(&bytes))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    };
    store
        .put(&meta.snapshot_file(seq, name), PutPayload::from(bytes))
        .await?;
    Ok(SnapshotFile {
        name: name.to_owned(),
        size,
        checksum,
    })
}

/// Writes a snapshot's manifest (one PUT: the snapshot is readable from this moment).
async fn put_manifest(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    manifest: &SnapshotManifest,
) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Corrupt(format!("snapshot manifest does not serialise: {e}")))?;
    store
        .put(
            &meta.snapshot_file(manifest.seq, MANIFEST_FILE),
            PutPayload::from(json),
        )
        .await?;
    Ok(())
}

/// Snapshot sequence numbers that have a manifest, newest first, and all snapshot directories seen.
async fn snapshot_listing(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let objects: Vec<_> = store
        .list(Some(&meta.snapshots_prefix()))
        .try_collect()
        .await?;
    let mut complete = Vec::new();
    let mut all = Vec::new();
    for object in objects {
        let mut parts = object
            .location
            .parts()
            .collect::<Vec<_>>()
            .into_iter()
            .rev();
        let (Some(file), Some(dir)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(seq) = seq_of(dir.as_ref()) else {
            continue;
        };
        all.push(seq);
        if file.as_ref() == MANIFEST_FILE {
            complete.push(seq);
        }
    }
    complete.sort_unstable_by(|a, b| b.cmp(a));
    all.sort_unstable();
    all.dedup();
    Ok((complete, all))
}

/// A snapshot read back: the state, the last segment it covers, and when it was written.
#[derive(Debug)]
pub struct LoadedSnapshot {
    /// The index state.
    pub state: IndexState,
    /// The last segment it covers.
    pub seq: u64,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// The newest complete, intact snapshot; incomplete or damaged ones are skipped with a warning, one in a
/// format this build does not read is an error.
pub async fn load_snapshot(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    params: HnswParams,
) -> Result<Option<LoadedSnapshot>> {
    let (complete, _) = snapshot_listing(store, meta).await?;
    for seq in complete {
        match load_one_snapshot(store, meta, seq, params).await {
            Ok(loaded) => return Ok(Some(loaded)),
            // Skipping it would open the index without the vectors it holds.
            Err(e @ Error::UnreadableFormat(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(index = %meta.name, seq, error = %e, "skipping unreadable snapshot")
            }
        }
    }
    Ok(None)
}

async fn load_one_snapshot(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    seq: u64,
    params: HnswParams,
) -> Result<LoadedSnapshot> {
    let raw = store
        .get(&meta.snapshot_file(seq, MANIFEST_FILE))
        .await?
        .bytes()
        .await?;
    let manifest: SnapshotManifest = serde_json::from_slice(&raw)
        .map_err(|e| Error::Corrupt(format!("snapshot manifest {seq} is unreadable: {e}")))?;
    if manifest.seq != seq {
        return Err(Error::Corrupt(format!(
            "snapshot manifest {seq} names sequence {}",
            manifest.seq
        )));
    }
    let has = |name: &str| manifest.files.iter().any(|f| f.name == name);
    let legacy = !has(GRAPH_FILE) && has(LEGACY_GRAPH_FILE);
    let graph_file = if legacy {
        LEGACY_GRAPH_FILE
    } else {
        GRAPH_FILE
    };
    let mut contents = Vec::new();
    for name in [graph_file, ENTRIES_FILE] {
        let file = manifest
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| Error::Corrupt(format!("snapshot {seq} lists no {name}")))?
            .clone();
        let bytes = store
            .get(&meta.snapshot_file(seq, name))
            .await?
            .bytes()
            .await?;
        contents.push((file, bytes));
    }
    let (dim, metric) = (meta.dim, meta.metric);
    let (state, converted) =
        tokio::task::spawn_blocking(move || -> Result<(IndexState, Option<Bytes>)> {
            for (file, bytes) in &contents {
                if bytes.len() as u64 != file.size || codec::checksum(bytes) != file.checksum {
                    return Err(Error::Corrupt(format!(
                        "snapshot {seq}: {} is torn or damaged",
                        file.name
                    )));
                }
            }
            let [(_, graph), (_, entries)] = <[_; 2]>::try_from(contents)
                .map_err(|_| Error::Corrupt(format!("snapshot {seq} is incomplete")))?;
            let (next_key, records) = codec::decode_entries(&entries)?;
            let hnsw = if legacy {
                load_legacy(&graph, &records, dim, metric, params, seq)?
            } else {
                Hnsw::load(&graph, dim, metric, params)?
            };
            if hnsw.len() != records.len() {
                return Err(Error::Corrupt(format!(
                    "snapshot {seq}: the graph holds {} vectors, the entry table {}",
                    hnsw.len(),
                    records.len()
                )));
            }
            let converted = if legacy {
                Some(Bytes::from(hnsw.save()?))
            } else {
                None
            };
            Ok((
                IndexState::from_snapshot(hnsw, next_key, records),
                converted,
            ))
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    if let Some(graph) = converted {
        // Converted once, so later loads read the new format instead of rebuilding the graph each time.
        if let Err(e) = convert_legacy_snapshot(store, meta, &manifest, graph).await {
            tracing::warn!(
                index = %meta.name,
                seq,
                error = %e,
                "could not rewrite a usearch snapshot in the new graph format; it is read again next time"
            );
        }
    }
    Ok(LoadedSnapshot {
        state,
        seq,
        created_at: manifest.created_at,
    })
}

/// The graph of a snapshot in the usearch format of earlier versions, rebuilt (the `usearch-snapshots`
/// feature); without the feature, an error that says how to convert it.
fn load_legacy(
    graph: &[u8],
    records: &[codec::EntryRecord],
    dim: usize,
    metric: Metric,
    params: HnswParams,
    seq: u64,
) -> Result<Hnsw> {
    #[cfg(feature = "usearch-snapshots")]
    {
        let _ = seq;
        let keys: Vec<u64> = records.iter().map(|r| r.key).collect();
        Hnsw::load_usearch(graph, &keys, dim, metric, params)
    }
    #[cfg(not(feature = "usearch-snapshots"))]
    {
        let _ = (graph, records, dim, metric, params);
        Err(Error::UnreadableFormat(format!(
            "snapshot {seq} is in the usearch format of earlier versions, which this build does not read: \
             start a lakehouse built with `cargo build --release -p lakehouse --features usearch-snapshots` \
             once on this storage, and it converts every such snapshot in place"
        )))
    }
}

/// Adds `graph.hnsw` (the graph rebuilt from the snapshot's `graph.usearch`, at the same sequence number)
/// to a usearch snapshot, then points its manifest at it and deletes `graph.usearch`. The entry table is
/// left as it is. Each step leaves a readable snapshot: until the manifest is replaced (one atomic PUT) it
/// still names the usearch graph, which is deleted only after. The rebuilt graph is built on one thread,
/// so it is the same bytes whichever instance converts the snapshot, and two converting at once agree.
async fn convert_legacy_snapshot(
    store: &Arc<dyn ObjectStore>,
    meta: &IndexMeta,
    manifest: &SnapshotManifest,
    graph: Bytes,
) -> Result<()> {
    let seq = manifest.seq;
    let graph_file = put_snapshot_file(store, meta, seq, GRAPH_FILE, graph).await?;
    let mut files: Vec<SnapshotFile> = manifest
        .files
        .iter()
        .filter(|f| f.name != LEGACY_GRAPH_FILE)
        .cloned()
        .collect();
    files.insert(0, graph_file);
    let rewritten = SnapshotManifest {
        files,
        ..manifest.clone()
    };
    put_manifest(store, meta, &rewritten).await?;
    delete_quietly(store, &meta.snapshot_file(seq, LEGACY_GRAPH_FILE)).await
}

/// Folds old history away once snapshot `latest` is complete: keeps it and the complete snapshot before it
/// (the fallback should `latest` ever prove unreadable), with the segments that fallback needs; deletes
/// older snapshots (manifest first, so a crash midway leaves only ignorable leftovers), abandoned partial
/// snapshots, and segments the fallback covers.
pub async fn compact(store: &Arc<dyn ObjectStore>, meta: &IndexMeta, latest: u64) -> Result<()> {
    let (complete, all) = snapshot_listing(store, meta).await?;
    let fallback = complete
        .iter()
        .copied()
        .find(|seq| *seq < latest)
        .unwrap_or(0);
    for seq in all
        .into_iter()
        .filter(|seq| *seq < fallback || (*seq > fallback && *seq < latest))
    {
        delete_quietly(store, &meta.snapshot_file(seq, MANIFEST_FILE)).await?;
        for file in [GRAPH_FILE, LEGACY_GRAPH_FILE, ENTRIES_FILE] {
            delete_quietly(store, &meta.snapshot_file(seq, file)).await?;
        }
    }
    for (seq, path, _) in list_segments(store, meta, 0).await? {
        if seq > fallback {
            break;
        }
        delete_quietly(store, &path).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_parse_from_names() {
        assert_eq!(seq_of("00000000000000000042.seg"), Some(42));
        assert_eq!(seq_of("00000000000000000007"), Some(7));
        assert_eq!(seq_of("manifest.json"), None);
        assert_eq!(seq_of("00000000000000000042.seg#3"), None);
        assert_eq!(seq_of("42.seg"), None);
    }

    /// An index over 8-dimensional vectors under the cosine metric.
    fn legacy_meta() -> IndexMeta {
        IndexMeta {
            format: 1,
            name: "legacy".into(),
            dim: 8,
            metric: Metric::Cosine,
            created_at: Utc::now(),
            incarnation: "i1".into(),
            connectivity: 16,
        }
    }

    /// Stores snapshot `seq` of `count` items as the usearch-based index wrote them: `graph` in
    /// `graph.usearch`, the entry table, then the manifest.
    async fn put_legacy_snapshot(
        store: &Arc<dyn ObjectStore>,
        meta: &IndexMeta,
        seq: u64,
        count: usize,
        graph: Vec<u8>,
        entries: Vec<u8>,
    ) {
        let mut files = Vec::new();
        for (name, bytes) in [(LEGACY_GRAPH_FILE, graph), (ENTRIES_FILE, entries)] {
            files.push(SnapshotFile {
                name: name.to_owned(),
                size: bytes.len() as u64,
                checksum: codec::checksum(&bytes),
            });
            store
                .put(&meta.snapshot_file(seq, name), PutPayload::from(bytes))
                .await
                .expect("put");
        }
        let manifest = SnapshotManifest {
            format: 1,
            seq,
            created_at: Utc::now(),
            count,
            files,
        };
        store
            .put(
                &meta.snapshot_file(seq, MANIFEST_FILE),
                PutPayload::from(serde_json::to_vec(&manifest).expect("json")),
            )
            .await
            .expect("put");
    }

    /// Without the `usearch-snapshots` feature, a snapshot in the usearch format is refused, saying how to
    /// convert it; nothing is rewritten.
    #[cfg(not(feature = "usearch-snapshots"))]
    #[tokio::test]
    async fn usearch_snapshots_are_refused_with_the_way_to_convert_them() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let meta = legacy_meta();
        let metadata = lakehouse_types::vector::Metadata::new();
        let entries =
            codec::encode_entries(2, [(1, "item-1", &metadata, 1.0)].into_iter()).expect("entries");
        put_legacy_snapshot(&store, &meta, 3, 1, b"a usearch graph".to_vec(), entries).await;
        let refused = load_snapshot(&store, &meta, HnswParams::default()).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("--features usearch-snapshots"),
            "{message}"
        );
        assert!(
            store
                .head(&meta.snapshot_file(3, LEGACY_GRAPH_FILE))
                .await
                .is_ok()
        );
        assert!(
            store
                .head(&meta.snapshot_file(3, GRAPH_FILE))
                .await
                .is_err()
        );
    }

    /// A snapshot written by the usearch-based index (unit vectors under the inner-product metric, the
    /// graph in `graph.usearch`) loads into the new graph with every vector intact, and the next snapshot
    /// is written in the new format.
    #[cfg(feature = "usearch-snapshots")]
    #[tokio::test]
    async fn usearch_snapshots_load_into_the_new_graph() {
        use lakehouse_types::vector::Metadata;
        use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let meta = legacy_meta();
        let originals: Vec<Vec<f32>> = (0..300u32)
            .map(|i| {
                (0..8u32)
                    .map(|j| ((i * 31 + j * 7) % 17) as f32 - 8.5)
                    .collect()
            })
            .collect();
        let norms: Vec<f32> = originals.iter().map(|v| crate::hnsw::norm(v)).collect();
        let units: Vec<Vec<f32>> = originals
            .iter()
            .zip(&norms)
            .map(|(v, n)| {
                v.iter()
                    .map(|x| (f64::from(*x) / f64::from(*n)) as f32)
                    .collect()
            })
            .collect();
        let legacy = Index::new(&IndexOptions {
            dimensions: 8,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
            multi: false,
        })
        .expect("index");
        legacy.reserve(units.len()).expect("reserve");
        for (key, v) in units.iter().enumerate() {
            legacy.add(key as u64 + 1, v).expect("add");
        }
        let mut graph = vec![0u8; legacy.serialized_length()];
        legacy.save_to_buffer(&mut graph).expect("save");
        let metadata = Metadata::new();
        let ids: Vec<String> = (0..units.len()).map(|i| format!("item-{i}")).collect();
        let entries = codec::encode_entries(
            units.len() as u64 + 1,
            ids.iter()
                .zip(&norms)
                .enumerate()
                .map(|(i, (id, norm))| (i as u64 + 1, id.as_str(), &metadata, *norm)),
        )
        .expect("entries");
        put_legacy_snapshot(&store, &meta, 7, units.len(), graph, entries).await;

        let loaded = load_snapshot(&store, &meta, HnswParams::default())
            .await
            .expect("load")
            .expect("a snapshot");
        assert_eq!(loaded.seq, 7);
        let state = loaded.state;
        assert_eq!(state.len(), units.len());
        assert!(state.hnsw().stores_unit_vectors());
        let mut stored = vec![0.0; 8];
        for (i, v) in units.iter().enumerate() {
            assert!(state.hnsw().get(i as u64 + 1, &mut stored));
            assert_eq!(&stored, v);
            let restored = state.vector(i as u64 + 1).expect("vector");
            for (a, b) in restored.iter().zip(&originals[i]) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
            }
        }
        let hits = state.hnsw().search(&originals[5], 1).expect("search");
        assert_eq!(hits[0].0, 6);

        // Loading converted the snapshot in place: same sequence number, the new graph file, no usearch
        // file, and the next load reads the new format with the same vectors and answers.
        assert!(store.head(&meta.snapshot_file(7, GRAPH_FILE)).await.is_ok());
        assert!(
            store
                .head(&meta.snapshot_file(7, LEGACY_GRAPH_FILE))
                .await
                .is_err()
        );
        let again = load_snapshot(&store, &meta, HnswParams::default())
            .await
            .expect("load")
            .expect("a snapshot");
        assert_eq!(again.seq, 7);
        assert!(again.state.hnsw().stores_unit_vectors());
        for (i, v) in units.iter().enumerate() {
            assert!(again.state.hnsw().get(i as u64 + 1, &mut stored));
            assert_eq!(&stored, v);
        }
        for q in originals.iter().step_by(10) {
            assert_eq!(
                again.state.hnsw().search(q, 5).expect("search"),
                state.hnsw().search(q, 5).expect("search")
            );
        }

        // The next snapshot is a graph.hnsw, and it is the one loaded from then on.
        let data = SnapshotData {
            seq: 9,
            count: state.len(),
            graph: Bytes::from(state.hnsw().save().expect("save")),
            entries: Bytes::from(
                codec::encode_entries(state.next_key(), state.entries()).expect("entries"),
            ),
        };
        write_snapshot(&store, &meta, data).await.expect("write");
        compact(&store, &meta, 9).await.expect("compact");
        let reloaded = load_snapshot(&store, &meta, HnswParams::default())
            .await
            .expect("load")
            .expect("a snapshot");
        assert_eq!(reloaded.seq, 9);
        assert!(store.head(&meta.snapshot_file(9, GRAPH_FILE)).await.is_ok());
        assert!(reloaded.state.hnsw().get(300, &mut stored));
        assert_eq!(stored, units[299]);
    }
}
