//! Every error the service answers, with its code, and that a refused batch leaves nothing behind.

use std::sync::Arc;

use lakehouse_api::VectorApi;
use lakehouse_types::ErrorCode;
use lakehouse_types::vector::{AddItem, AddRequest, CreateIndexRequest, Metric, SearchRequest};
use lakehouse_vector::{VectorConfig, VectorService};
use serde_json::json;

use crate::{HashEmbedder, add, create, ctx, item, memory_store, service};

fn code<T: std::fmt::Debug>(result: Result<T, lakehouse_types::ApiError>) -> ErrorCode {
    result.expect_err("must fail").code
}

#[tokio::test]
async fn index_management_errors() {
    let svc = service(memory_store(), VectorConfig::default()).await;
    create(&svc, "workers", 4, Metric::Cosine).await;
    let again = svc.create_index(
        ctx(),
        CreateIndexRequest {
            name: "workers".into(),
            dim: 4,
            metric: Metric::L2,
        },
    );
    let err = again.await.expect_err("duplicate");
    assert_eq!((err.code, err.status()), (ErrorCode::AlreadyExists, 409));

    for bad in ["", "Workers", "a b", "../x", "x/y", &"a".repeat(65)] {
        let r = svc.create_index(
            ctx(),
            CreateIndexRequest {
                name: bad.into(),
                dim: 4,
                metric: Metric::Cosine,
            },
        );
        assert_eq!(code(r.await), ErrorCode::InvalidParameter, "name {bad:?}");
    }
    for dim in [0, 4097] {
        let r = svc.create_index(
            ctx(),
            CreateIndexRequest {
                name: "d".into(),
                dim,
                metric: Metric::Cosine,
            },
        );
        assert_eq!(code(r.await), ErrorCode::InvalidParameter, "dim {dim}");
    }

    assert_eq!(
        code(svc.index_info(ctx(), "nope").await),
        ErrorCode::IndexNotFound
    );
    assert_eq!(
        code(svc.drop_index(ctx(), "nope").await),
        ErrorCode::IndexNotFound
    );
    assert_eq!(
        code(svc.add(ctx(), "nope", AddRequest::default()).await),
        ErrorCode::IndexNotFound
    );
    let search = SearchRequest {
        vector: Some(vec![1.0; 4]),
        ..Default::default()
    };
    assert_eq!(
        code(svc.search(ctx(), "nope", search).await),
        ErrorCode::IndexNotFound
    );
    assert_eq!(
        code(svc.delete_item(ctx(), "workers", "w-404").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(svc.get_item(ctx(), "workers", "w-404").await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn a_bad_item_refuses_the_whole_batch() {
    let config = VectorConfig {
        max_batch_items: 5,
        ..VectorConfig::default()
    };
    let svc = service(memory_store(), config).await;
    create(&svc, "w", 3, Metric::Cosine).await;
    add(&svc, "w", vec![item("w-0", vec![1.0, 0.0, 0.0], json!({}))]).await;

    let good = || item("w-1", vec![0.0, 1.0, 0.0], json!({"state": "TX"}));
    let no_id = AddItem {
        id: None,
        ..item("x", vec![0.0, 0.0, 1.0], json!({}))
    };
    let both = AddItem {
        text: Some("welder".into()),
        ..item("w-2", vec![0.0, 0.0, 1.0], json!({}))
    };
    let neither = AddItem {
        vector: None,
        ..item("w-2", vec![], json!({}))
    };
    let cases: Vec<(AddItem, ErrorCode)> = vec![
        (
            item("w-2", vec![1.0, 2.0], json!({})),
            ErrorCode::InvalidVector,
        ),
        (
            item("w-2", vec![1.0, f32::NAN, 0.0], json!({})),
            ErrorCode::InvalidVector,
        ),
        (
            item("w-2", vec![f32::INFINITY, 1.0, 0.0], json!({})),
            ErrorCode::InvalidVector,
        ),
        (
            item("w-2", vec![0.0, 0.0, 0.0], json!({})),
            ErrorCode::InvalidVector,
        ),
        (no_id, ErrorCode::BadRequest),
        (
            item("w-1", vec![0.0, 0.0, 1.0], json!({})),
            ErrorCode::BadRequest,
        ),
        (both, ErrorCode::BadRequest),
        (neither, ErrorCode::InvalidVector),
    ];
    for (bad, expected) in cases {
        let err = svc
            .add(
                ctx(),
                "w",
                AddRequest {
                    items: vec![good(), bad.clone()],
                },
            )
            .await
            .expect_err("refused");
        assert_eq!(err.code, expected, "{bad:?}: {}", err.message);
        assert!(
            err.message.contains("items[1]"),
            "message names the item: {}",
            err.message
        );
        assert_eq!(
            err.details.as_ref().and_then(|d| d.get("item")),
            Some(&json!(1))
        );
    }
    let too_many = (0..6)
        .map(|i| item(&format!("t-{i}"), vec![1.0, 1.0, 0.0], json!({})))
        .collect();
    let err = svc
        .add(ctx(), "w", AddRequest { items: too_many })
        .await
        .expect_err("too large");
    assert_eq!((err.code, err.status()), (ErrorCode::PayloadTooLarge, 413));

    // Nothing of any refused batch was applied: w-1 came first in each and is absent.
    assert_eq!(svc.index_info(ctx(), "w").await.expect("info").count, 1);
    assert_eq!(
        code(svc.get_item(ctx(), "w", "w-1").await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn search_errors() {
    let config = VectorConfig {
        max_k: 50,
        ..VectorConfig::default()
    };
    let svc = service(memory_store(), config).await;
    create(&svc, "w", 3, Metric::Cosine).await;
    add(
        &svc,
        "w",
        vec![item("w-1", vec![1.0, 0.0, 0.0], json!({"rating": 4}))],
    )
    .await;
    let with = |vector: Option<Vec<f32>>, k: Option<usize>, filter: Option<serde_json::Value>| {
        SearchRequest {
            vector,
            text: None,
            k,
            filter,
            metadata: None,
        }
    };
    let v = || Some(vec![1.0, 0.0, 0.0]);
    let cases = vec![
        (with(v(), Some(0), None), ErrorCode::InvalidParameter),
        (with(v(), Some(51), None), ErrorCode::InvalidParameter),
        (
            with(Some(vec![1.0, 0.0]), None, None),
            ErrorCode::InvalidVector,
        ),
        (
            with(Some(vec![f32::NAN, 0.0, 0.0]), None, None),
            ErrorCode::InvalidVector,
        ),
        (
            with(Some(vec![0.0, 0.0, 0.0]), None, None),
            ErrorCode::InvalidVector,
        ),
        (with(None, None, None), ErrorCode::InvalidParameter),
        (
            with(v(), None, Some(json!({"rating": {"approximately": 4}}))),
            ErrorCode::InvalidFilter,
        ),
        (
            with(v(), None, Some(json!({"rating": {"gt": "tomorrow"}}))),
            ErrorCode::InvalidFilter,
        ),
        (
            with(v(), None, Some(json!([1, 2]))),
            ErrorCode::InvalidFilter,
        ),
        (
            SearchRequest {
                text: Some("x".into()),
                ..with(v(), None, None)
            },
            ErrorCode::InvalidParameter,
        ),
    ];
    for (request, expected) in cases {
        let err = svc
            .search(ctx(), "w", request.clone())
            .await
            .expect_err("refused");
        assert_eq!(err.code, expected, "{request:?}: {}", err.message);
        assert_eq!(err.status(), 400);
    }
    let ok = svc
        .search(
            ctx(),
            "w",
            with(v(), Some(50), Some(json!({"rating": {"gte": 4}}))),
        )
        .await;
    assert_eq!(ok.expect("valid search").hits.len(), 1);
}

#[tokio::test]
async fn text_needs_an_embedder_of_the_right_dimension() {
    let store = memory_store();
    let without = VectorService::open(store.clone(), None, VectorConfig::default())
        .await
        .expect("open");
    create(&without, "w", 8, Metric::Cosine).await;
    let text_item = AddItem {
        id: Some("w-1".into()),
        text: Some("certified welder".into()),
        ..Default::default()
    };
    let err = without
        .add(
            ctx(),
            "w",
            AddRequest {
                items: vec![text_item.clone()],
            },
        )
        .await
        .expect_err("no embedder");
    assert_eq!(err.code, ErrorCode::BadRequest);
    let search = SearchRequest {
        text: Some("welder".into()),
        ..Default::default()
    };
    assert_eq!(
        code(without.search(ctx(), "w", search.clone()).await),
        ErrorCode::BadRequest
    );

    let wrong_dim = VectorService::open(
        store.clone(),
        Some(Arc::new(HashEmbedder { dim: 5 })),
        VectorConfig::default(),
    );
    let wrong_dim = wrong_dim.await.expect("open");
    let err = wrong_dim
        .add(
            ctx(),
            "w",
            AddRequest {
                items: vec![text_item.clone()],
            },
        )
        .await
        .expect_err("dim");
    assert_eq!(err.code, ErrorCode::InvalidVector);
    assert!(
        err.message.contains("test-hash"),
        "names the model: {}",
        err.message
    );

    // With a fitting embedder, text items and text queries work, mixed with vector items.
    let svc = service(store, VectorConfig::default()).await;
    let embedder = HashEmbedder { dim: 8 };
    let mut vector_item = item("w-2", embedder.vector("forklift driver"), json!({}));
    vector_item.metadata = None;
    let (added, updated) = add(&svc, "w", vec![text_item, vector_item]).await;
    assert_eq!((added, updated), (2, 0));
    let hits = svc
        .search(
            ctx(),
            "w",
            SearchRequest {
                k: Some(1),
                ..search
            },
        )
        .await
        .expect("search")
        .hits;
    assert_eq!(hits.len(), 1);
    let by_text = SearchRequest {
        text: Some("forklift driver".into()),
        k: Some(1),
        ..Default::default()
    };
    let hits = svc.search(ctx(), "w", by_text).await.expect("search").hits;
    assert_eq!(hits[0].id, "w-2");
    assert!(
        hits[0].score > 0.999,
        "same text, same vector: {}",
        hits[0].score
    );
}
