//! Durability: restart from snapshot plus segments, torn snapshots, compaction, drop, concurrent writers.

use std::sync::Arc;

use futures::TryStreamExt;
use lakehouse_api::VectorApi;
use lakehouse_types::vector::{Metric, SearchRequest, SearchResponse};
use lakehouse_vector::{SnapshotPolicy, VectorConfig, VectorService};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;

use crate::{add, clustered, create, ctx, item, service};

/// Snapshots only when a test asks for one.
fn manual_snapshots(exact_threshold: usize) -> VectorConfig {
    VectorConfig {
        exact_threshold,
        snapshot: SnapshotPolicy {
            every_segments: u64::MAX,
            every_items: u64::MAX,
        },
        hnsw: lakehouse_vector::HnswParams {
            expansion_search: 256,
            ..Default::default()
        },
        ..VectorConfig::default()
    }
}

fn disk_store(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local store"))
}

async fn keys(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    let listed: Vec<_> = store
        .list(Some(&Path::from(prefix)))
        .try_collect()
        .await
        .expect("list");
    let mut keys: Vec<String> = listed.into_iter().map(|o| o.location.to_string()).collect();
    keys.sort();
    keys
}

/// Writes history for index `p`: 5 batches, a snapshot after the third, updates and deletes after it.
async fn build_history(svc: &VectorService, n: usize, dim: usize) -> Vec<Vec<f32>> {
    let vectors = clustered(n, dim, 8, 5);
    let per_batch = n / 5;
    for batch in 0..5 {
        if batch == 3 {
            svc.snapshot("p").await.expect("snapshot");
        }
        let items = (batch * per_batch..(batch + 1) * per_batch)
            .map(|i| {
                item(
                    &format!("v-{i}"),
                    vectors[i].clone(),
                    json!({"batch": batch, "odd": i % 2 == 1}),
                )
            })
            .collect();
        add(svc, "p", items).await;
    }
    // Updates and deletes of items that are in the snapshot, logged only in segments.
    let updates = (0..20)
        .map(|i| {
            item(
                &format!("v-{i}"),
                vectors[n - 1 - i].clone(),
                json!({"updated": true}),
            )
        })
        .collect();
    add(svc, "p", updates).await;
    for i in 20..30 {
        svc.delete_item(ctx(), "p", &format!("v-{i}"))
            .await
            .expect("delete");
    }
    vectors
}

async fn answers(svc: &VectorService, n: usize, dim: usize) -> Vec<SearchResponse> {
    let mut out = Vec::new();
    for (q, query) in clustered(n + 20, dim, 8, 5)
        .split_off(n)
        .into_iter()
        .enumerate()
    {
        let filter = (q % 2 == 0).then(|| json!({"odd": true}));
        let request = SearchRequest {
            vector: Some(query),
            text: None,
            k: Some(10),
            filter,
            metadata: None,
        };
        out.push(svc.search(ctx(), "p", request).await.expect("search"));
    }
    out
}

async fn assert_same_state(before: &VectorService, after: &VectorService, n: usize, dim: usize) {
    let (a, b) = (
        before.index_info(ctx(), "p").await.expect("info"),
        after.index_info(ctx(), "p").await.expect("info"),
    );
    assert_eq!(
        (a.count, a.dim, a.metric, a.created_at),
        (b.count, b.dim, b.metric, b.created_at)
    );
    assert_eq!(answers(before, n, dim).await, answers(after, n, dim).await);
    for i in 0..n {
        let id = format!("v-{i}");
        let (x, y) = (
            before.get_item(ctx(), "p", &id).await,
            after.get_item(ctx(), "p", &id).await,
        );
        assert_eq!(
            x.map(|v| (v.vector, v.metadata)),
            y.map(|v| (v.vector, v.metadata)),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_snapshot_and_segments_gives_identical_results() {
    for (n, dim, exact_threshold) in [(500, 16, 10_000), (3_000, 32, 100)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = disk_store(&dir);
        let svc = service(store.clone(), manual_snapshots(exact_threshold)).await;
        create(&svc, "p", dim, Metric::Cosine).await;
        build_history(&svc, n, dim).await;
        let info = svc.index_info(ctx(), "p").await.expect("info");
        assert_eq!(info.count, n - 10);
        assert_eq!(
            info.segments_since_snapshot,
            2 + 1 + 10,
            "two batches, the updates, ten deletes"
        );

        let restarted = service(disk_store(&dir), manual_snapshots(exact_threshold)).await;
        assert_same_state(&svc, &restarted, n, dim).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_and_incomplete_snapshots_are_ignored() {
    let (n, dim) = (1_000, 16);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = disk_store(&dir);
    let svc = service(store.clone(), manual_snapshots(100)).await;
    create(&svc, "p", dim, Metric::Cosine).await;
    build_history(&svc, n, dim).await;
    svc.snapshot("p").await.expect("second snapshot");
    add(&svc, "p", vec![item("late", vec![1.0; 16], json!({}))]).await;

    let snapshots = keys(&store, "vectors/p")
        .await
        .into_iter()
        .filter(|k| k.contains("/snapshots/"))
        .collect::<Vec<_>>();
    let manifests: Vec<&String> = snapshots
        .iter()
        .filter(|k| k.ends_with("manifest.json"))
        .collect();
    assert_eq!(
        manifests.len(),
        2,
        "the newest snapshot and its fallback are kept: {snapshots:?}"
    );
    let newest_graph = snapshots
        .iter()
        .filter(|k| k.ends_with("graph.hnsw"))
        .max()
        .expect("graph")
        .clone();

    // Tear the newest snapshot's graph and leave a half-written newer snapshot with no manifest.
    let graph_path = Path::from(newest_graph.as_str());
    let bytes = store
        .get(&graph_path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    store
        .put(
            &graph_path,
            PutPayload::from(bytes.slice(..bytes.len() / 2)),
        )
        .await
        .expect("tear");
    let partial = newest_graph.replace("/snapshots/0000", "/snapshots/9999");
    store
        .put(&Path::from(partial.as_str()), PutPayload::from(bytes))
        .await
        .expect("partial");

    let restarted = service(disk_store(&dir), manual_snapshots(100)).await;
    assert_same_state(&svc, &restarted, n, dim).await;
    assert!(restarted.get_item(ctx(), "p", "late").await.is_ok());
}

#[tokio::test]
async fn compaction_folds_old_segments_away() {
    // Snapshots only when asked, so which ones exist (and so what compaction keeps) is known.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = disk_store(&dir);
    let config = VectorConfig {
        snapshot: SnapshotPolicy {
            every_segments: u64::MAX,
            every_items: u64::MAX,
        },
        ..Default::default()
    };
    let svc = service(store.clone(), config.clone()).await;
    create(&svc, "p", 4, Metric::L2).await;
    let segments = || async {
        let mut seqs: Vec<u64> = keys(&store, "vectors/p")
            .await
            .into_iter()
            .filter_map(|k| {
                let name = k.rsplit('/').next()?.strip_suffix(".seg")?.to_owned();
                name.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        seqs
    };
    for i in 0..40 {
        add(
            &svc,
            "p",
            vec![item(
                &format!("v-{i}"),
                vec![i as f32, 1.0, 2.0, 3.0],
                json!({}),
            )],
        )
        .await;
        if i == 19 || i == 39 {
            svc.snapshot("p").await.expect("snapshot");
        }
    }
    // The snapshot at segment 40 is the latest; the one at 20 stays as its fallback with the segments
    // after it; everything older is gone.
    assert_eq!(segments().await, (21..=40).collect::<Vec<u64>>());
    let info = svc.index_info(ctx(), "p").await.expect("info");
    assert_eq!((info.count, info.segments_since_snapshot), (40, 0));

    let restarted = service(disk_store(&dir), config).await;
    assert_eq!(
        restarted.index_info(ctx(), "p").await.expect("info").count,
        40
    );
    assert_eq!(
        restarted
            .get_item(ctx(), "p", "v-39")
            .await
            .expect("item")
            .vector,
        vec![39.0, 1.0, 2.0, 3.0]
    );
}

/// A start that had to replay as many segments as the policy snapshots after takes a snapshot, so the
/// next start loads it instead of replaying the same segments again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_replay_at_start_is_followed_by_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = service(disk_store(&dir), manual_snapshots(0)).await;
    create(&writer, "p", 4, Metric::L2).await;
    for i in 0..6 {
        let v = vec![i as f32, 1.0, 2.0, 3.0];
        add(&writer, "p", vec![item(&format!("v-{i}"), v, json!({}))]).await;
    }
    let snapshots = |store: Arc<dyn ObjectStore>| async move {
        keys(&store, "vectors/p")
            .await
            .into_iter()
            .filter(|k| k.ends_with("manifest.json"))
            .count()
    };
    assert_eq!(snapshots(disk_store(&dir)).await, 0);

    let policy = VectorConfig {
        snapshot: SnapshotPolicy {
            every_segments: 4,
            every_items: u64::MAX,
        },
        ..Default::default()
    };
    let restarted = service(disk_store(&dir), policy.clone()).await;
    assert_eq!(
        restarted.index_info(ctx(), "p").await.expect("info").count,
        6
    );
    // The snapshot runs in the background; wait for it (bounded, so a regression fails instead of hanging).
    let mut waited = 0;
    while restarted
        .index_info(ctx(), "p")
        .await
        .expect("info")
        .segments_since_snapshot
        > 0
    {
        assert!(waited < 600, "no snapshot after a replay of 6 segments");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(snapshots(disk_store(&dir)).await, 1);

    // A start after one that replayed less than the policy takes no snapshot.
    let quiet = tempfile::tempdir().expect("tempdir");
    let writer = service(disk_store(&quiet), manual_snapshots(0)).await;
    create(&writer, "q", 4, Metric::L2).await;
    add(
        &writer,
        "q",
        vec![item("a", vec![1.0, 2.0, 3.0, 4.0], json!({}))],
    )
    .await;
    let restarted = service(disk_store(&quiet), policy).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let info = restarted.index_info(ctx(), "q").await.expect("info");
    assert_eq!((info.count, info.segments_since_snapshot), (1, 1));
}

#[tokio::test]
async fn dropped_indexes_stay_dropped_and_recreate_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = service(disk_store(&dir), VectorConfig::default()).await;
    create(&svc, "p", 2, Metric::Cosine).await;
    add(&svc, "p", vec![item("a", vec![1.0, 0.0], json!({}))]).await;
    svc.drop_index(ctx(), "p").await.expect("drop");
    assert!(keys(&disk_store(&dir), "vectors/p").await.is_empty());
    assert_eq!(
        svc.index_info(ctx(), "p").await.expect_err("gone").status(),
        404
    );

    create(&svc, "p", 3, Metric::L2).await;
    let restarted = service(disk_store(&dir), VectorConfig::default()).await;
    let info = restarted.index_info(ctx(), "p").await.expect("info");
    assert_eq!((info.count, info.dim, info.metric), (0, 3, Metric::L2));
    assert!(
        restarted
            .list_indexes(ctx())
            .await
            .expect("list")
            .indexes
            .len()
            == 1
    );
}

#[tokio::test]
async fn two_writers_on_one_store_never_clobber_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = service(disk_store(&dir), VectorConfig::default()).await;
    create(&first, "p", 2, Metric::L2).await;
    // A second instance over the same storage picks the index up on first use.
    let second = service(disk_store(&dir), VectorConfig::default()).await;
    add(&first, "p", vec![item("a", vec![1.0, 0.0], json!({}))]).await;
    // Its view is stale; its write finds segment 1 taken, catches up, and writes segment 2.
    add(&second, "p", vec![item("b", vec![0.0, 1.0], json!({}))]).await;
    assert_eq!(second.index_info(ctx(), "p").await.expect("info").count, 2);

    let restarted = service(disk_store(&dir), VectorConfig::default()).await;
    assert_eq!(
        restarted.index_info(ctx(), "p").await.expect("info").count,
        2
    );
    assert_eq!(
        restarted.get_item(ctx(), "p", "a").await.expect("a").vector,
        vec![1.0, 0.0]
    );
    assert_eq!(
        restarted.get_item(ctx(), "p", "b").await.expect("b").vector,
        vec![0.0, 1.0]
    );
}
