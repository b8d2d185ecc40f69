//! Search quality and semantics: recall against exact search, filters inside the search, upserts, deletes.

use lakehouse_api::VectorApi;
use lakehouse_types::vector::{Metric, SearchRequest};
use lakehouse_vector::VectorConfig;
use lakehouse_vector::exact;
use serde_json::json;

use crate::{add, clustered, create, ctx, item, memory_store, search_ids, service};

/// Metadata shared by the recall and filter tests: `group` 0..100 (so `group == 7` is a 1% filter),
/// a state, a rating, a date and a list of certifications.
fn metadata(i: usize) -> serde_json::Value {
    let states = ["TX", "CA", "NY", "FL"];
    let certs = if i.is_multiple_of(3) {
        json!(["OSHA 10", "Forklift"])
    } else {
        json!(["OSHA 10"])
    };
    json!({
        "group": i % 100,
        "state": states[i % 4],
        "rating": (i % 50) as f64 / 10.0,
        "available_from": format!("2025-01-{:02}", 1 + i % 28),
        "certifications": certs,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_at_10_against_exact_search() {
    const N: usize = 20_000;
    const DIM: usize = 384;
    // Queries come from the same distribution as the data (held out), as real queries do.
    let mut vectors = clustered(N + 100, DIM, 64, 7);
    let queries = vectors.split_off(N);
    let svc = service(
        memory_store(),
        VectorConfig {
            exact_threshold: 100,
            ..VectorConfig::default()
        },
    )
    .await;
    create(&svc, "recall", DIM, Metric::Cosine).await;
    for chunk in (0..N).collect::<Vec<_>>().chunks(5_000) {
        let items = chunk
            .iter()
            .map(|&i| item(&format!("v-{i}"), vectors[i].clone(), metadata(i)))
            .collect();
        add(&svc, "recall", items).await;
    }
    assert_eq!(
        svc.index_info(ctx(), "recall").await.expect("info").count,
        N
    );

    let (mut found, mut filtered_found, mut total, mut filtered_total) =
        (0usize, 0usize, 0usize, 0usize);
    for query in &queries {
        let truth: Vec<String> = exact::search(
            Metric::Cosine,
            query,
            10,
            vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v.as_slice())),
        )
        .into_iter()
        .map(|(i, _)| format!("v-{i}"))
        .collect();
        let got = search_ids(&svc, "recall", query.clone(), 10, None).await;
        found += got.iter().filter(|id| truth.contains(id)).count();
        total += truth.len();

        // A common filter (a quarter of the items) takes the graph walk with the filter as its predicate.
        let in_tx = vectors
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 0)
            .map(|(i, v)| (i as u64, v.as_slice()));
        let truth_tx: Vec<String> = exact::search(Metric::Cosine, query, 10, in_tx)
            .into_iter()
            .map(|(i, _)| format!("v-{i}"))
            .collect();
        let got_tx = search_ids(
            &svc,
            "recall",
            query.clone(),
            10,
            Some(json!({"state": "TX"})),
        )
        .await;
        assert_eq!(got_tx.len(), 10);
        filtered_found += got_tx.iter().filter(|id| truth_tx.contains(id)).count();
        filtered_total += truth_tx.len();
    }
    let recall = found as f64 / total as f64;
    let filtered_recall = filtered_found as f64 / filtered_total as f64;
    println!("recall@10 = {recall:.4}, filtered recall@10 = {filtered_recall:.4}");
    assert!(recall >= 0.95, "recall@10 {recall}");
    assert!(
        filtered_recall >= 0.95,
        "filtered recall@10 {filtered_recall}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_search_returns_k_hits_when_k_match() {
    const N: usize = 10_000;
    const DIM: usize = 32;
    let vectors = clustered(N, DIM, 16, 11);
    // The generator is deterministic per seed: the N + 1st vector is a held-out query from the same clusters.
    // A low exact threshold so that the graph path (and its fallback) is exercised, not just the exact scan.
    let svc = service(
        memory_store(),
        VectorConfig {
            exact_threshold: 50,
            ..VectorConfig::default()
        },
    )
    .await;
    create(&svc, "f", DIM, Metric::L2).await;
    let items = (0..N)
        .map(|i| item(&format!("v-{i}"), vectors[i].clone(), metadata(i)))
        .collect();
    add(&svc, "f", items).await;

    let query = clustered(N + 1, DIM, 16, 11).remove(N);
    let filters = [
        // 1% of the items.
        json!({"group": 7}),
        json!({"group": {"in": [7, 8]}}),
        json!({"state": "TX", "rating": {"gte": 4.0, "lt": 5}}),
        json!({"available_from": {"lte": "2025-01-03"}}),
        json!({"certifications": {"contains_all": ["Forklift", "OSHA 10"]}, "group": {"lt": 10}}),
        // Matches nothing: a search must come back empty, not fail.
        json!({"state": "ZZ"}),
    ];
    for filter in &filters {
        let parsed = lakehouse_vector::filter::Filter::parse(Some(filter)).expect("valid");
        let matching: Vec<(u64, &[f32])> = (0..N)
            .filter(|i| parsed.matches(&crate::meta(metadata(*i))))
            .map(|i| (i as u64, vectors[i].as_slice()))
            .collect();
        for k in [1, 10, 50] {
            let got = search_ids(&svc, "f", query.clone(), k, Some(filter.clone())).await;
            assert_eq!(got.len(), k.min(matching.len()), "filter {filter} k {k}");
            for id in &got {
                let i: usize = id.trim_start_matches("v-").parse().expect("id");
                assert!(
                    parsed.matches(&crate::meta(metadata(i))),
                    "{id} does not match {filter}"
                );
            }
        }
        // Rare filters walk most of the graph, so their hits are (nearly) the true nearest.
        if !matching.is_empty() && matching.len() <= 200 {
            let truth: Vec<String> =
                exact::search(Metric::L2, &query, 10, matching.iter().copied())
                    .into_iter()
                    .map(|(i, _)| format!("v-{i}"))
                    .collect();
            let got = search_ids(&svc, "f", query.clone(), 10, Some(filter.clone())).await;
            let overlap = got.iter().filter(|id| truth.contains(id)).count();
            assert!(overlap >= 9, "filter {filter}: {got:?} vs {truth:?}");
        }
    }
    let hits = svc
        .search(
            ctx(),
            "f",
            SearchRequest {
                vector: Some(query.clone()),
                k: Some(3),
                filter: Some(json!({"group": 7})),
                text: None,
                metadata: None,
            },
        )
        .await
        .expect("search")
        .hits;
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "best first"
    );
    assert_eq!(hits[0].metadata.get("group"), Some(&json!(7)));
    // Asked to leave metadata out, the same hits come back without it.
    let bare = svc
        .search(
            ctx(),
            "f",
            SearchRequest {
                vector: Some(query),
                k: Some(3),
                filter: Some(json!({"group": 7})),
                text: None,
                metadata: Some(false),
            },
        )
        .await
        .expect("search")
        .hits;
    assert_eq!(
        bare.iter().map(|h| &h.id).collect::<Vec<_>>(),
        hits.iter().map(|h| &h.id).collect::<Vec<_>>()
    );
    assert!(bare.iter().all(|h| h.metadata.is_empty()));
}

#[tokio::test]
async fn upserts_and_deletes_show_in_search() {
    let svc = service(memory_store(), VectorConfig::default()).await;
    create(&svc, "u", 3, Metric::Cosine).await;
    let (added, updated) = add(
        &svc,
        "u",
        vec![
            item("a", vec![1.0, 0.0, 0.0], json!({"v": 1})),
            item("b", vec![0.0, 1.0, 0.0], json!({"v": 1})),
            item("c", vec![0.0, 0.0, 1.0], json!({"v": 1})),
        ],
    )
    .await;
    assert_eq!((added, updated), (3, 0));
    assert_eq!(
        search_ids(&svc, "u", vec![1.0, 0.1, 0.0], 1, None).await,
        ["a"]
    );

    // Replace a's vector and metadata: it now sits where c was.
    let (added, updated) = add(
        &svc,
        "u",
        vec![
            item("a", vec![0.0, 0.1, 1.0], json!({"v": 2})),
            item("d", vec![1.0, 0.0, 0.1], json!({})),
        ],
    )
    .await;
    assert_eq!((added, updated), (1, 1));
    assert_eq!(svc.index_info(ctx(), "u").await.expect("info").count, 4);
    assert_eq!(
        search_ids(&svc, "u", vec![1.0, 0.0, 0.0], 1, None).await,
        ["d"]
    );
    assert_eq!(
        search_ids(&svc, "u", vec![0.0, 0.0, 1.0], 4, Some(json!({"v": 2}))).await,
        ["a"]
    );
    let stored = svc.get_item(ctx(), "u", "a").await.expect("item");
    assert_eq!(stored.vector, vec![0.0, 0.1, 1.0]);
    assert_eq!(stored.metadata.get("v"), Some(&json!(2)));

    svc.delete_item(ctx(), "u", "c").await.expect("delete");
    assert_eq!(
        search_ids(&svc, "u", vec![0.0, 0.0, 1.0], 10, None).await,
        ["a", "d", "b"]
    );
    assert_eq!(svc.index_info(ctx(), "u").await.expect("info").count, 3);
    assert_eq!(
        svc.delete_item(ctx(), "u", "c")
            .await
            .expect_err("gone")
            .status(),
        404
    );

    // A deleted id can come back.
    add(&svc, "u", vec![item("c", vec![0.0, 0.0, 1.0], json!({}))]).await;
    assert_eq!(
        search_ids(&svc, "u", vec![0.0, 0.0, 1.0], 1, None).await,
        ["c"]
    );
}

#[tokio::test]
async fn metrics_rank_and_score_as_documented() {
    let svc = service(memory_store(), VectorConfig::default()).await;
    for (name, metric) in [
        ("cos", Metric::Cosine),
        ("l2", Metric::L2),
        ("ip", Metric::Ip),
    ] {
        create(&svc, name, 2, metric).await;
        add(
            &svc,
            name,
            vec![
                item("near", vec![1.0, 0.1], json!({})),
                item("far", vec![-1.0, 0.5], json!({})),
            ],
        )
        .await;
        let hits = svc
            .search(
                ctx(),
                name,
                SearchRequest {
                    vector: Some(vec![1.0, 0.0]),
                    k: Some(2),
                    ..Default::default()
                },
            )
            .await
            .expect("search")
            .hits;
        assert_eq!(
            hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["near", "far"],
            "{name}"
        );
        assert!(
            hits[0].score > hits[1].score && hits[0].distance < hits[1].distance,
            "{name}: {hits:?}"
        );
    }
    let l2 = svc.search(
        ctx(),
        "l2",
        SearchRequest {
            vector: Some(vec![1.0, 0.1]),
            k: Some(1),
            ..Default::default()
        },
    );
    let hit = l2.await.expect("search").hits.remove(0);
    assert!(
        hit.distance.abs() < 1e-6 && (hit.score - 1.0).abs() < 1e-6,
        "{hit:?}"
    );
    let info = svc.list_indexes(ctx()).await.expect("list").indexes;
    assert_eq!(
        info.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["cos", "ip", "l2"]
    );
    assert!(
        info.iter()
            .all(|i| i.count == 2 && i.bytes_per_vector > 0 && i.persisted_at.is_some())
    );
}
