//! Catalog: list, manifests, history, time travel, restart, registration, deletion.

use lakehouse_api::CatalogApi;
use lakehouse_query::QueryConfig;
use lakehouse_types::dataset::{RegisterRequest, WriteMode};
use lakehouse_types::{Caller, ErrorCode, RequestContext, Role};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde_json::json;

use crate::{Env, PLACEMENTS, WORKERS};

#[tokio::test]
async fn list_and_manifest_describe_versions() {
    let env = Env::new().await;
    env.csv("workers", WriteMode::Create, WORKERS)
        .await
        .expect("create");
    env.csv("workers", WriteMode::Append, WORKERS)
        .await
        .expect("append");
    env.csv("placements", WriteMode::Create, PLACEMENTS)
        .await
        .expect("create");

    let list = env.catalog.list_datasets(&env.ctx).await.expect("list");
    let names: Vec<_> = list
        .datasets
        .iter()
        .map(|d| (d.name.as_str(), d.version, d.rows))
        .collect();
    assert_eq!(names, [("placements", 0, 3), ("workers", 1, 6)]);
    assert!(list.datasets.iter().all(|d| d.bytes > 0));

    let m = env
        .catalog
        .manifest(&env.ctx, "workers", None)
        .await
        .expect("manifest");
    assert_eq!((m.version, m.rows), (1, 6));
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.bytes, m.files.iter().map(|f| f.bytes).sum::<u64>());
    assert_eq!(m.schema[0].column, "worker_id");
    assert_eq!(
        m.history.iter().map(|h| h.version).collect::<Vec<_>>(),
        [1, 0]
    );
    assert_eq!(m.history[0].rows_added, Some(3));
    assert_eq!(m.history[0].operation, "WRITE");

    let v0 = env
        .catalog
        .manifest(&env.ctx, "workers", Some(0))
        .await
        .expect("v0");
    assert_eq!(
        (v0.version, v0.rows, v0.files.len(), v0.history.len()),
        (0, 3, 1, 1)
    );
    let err = env
        .catalog
        .manifest(&env.ctx, "workers", Some(7))
        .await
        .expect_err("no v7");
    assert_eq!(err.code, ErrorCode::DatasetNotFound);
    let err = env
        .catalog
        .manifest(&env.ctx, "nobody", None)
        .await
        .expect_err("missing");
    assert_eq!(err.code, ErrorCode::DatasetNotFound);
}

#[tokio::test]
async fn a_restart_sees_the_same_datasets_and_versions() {
    let env = Env::new().await;
    env.csv("workers", WriteMode::Create, WORKERS)
        .await
        .expect("create");
    env.csv("workers", WriteMode::Overwrite, WORKERS)
        .await
        .expect("overwrite");
    env.csv("placements", WriteMode::Create, PLACEMENTS)
        .await
        .expect("create");
    let before = env.catalog.list_datasets(&env.ctx).await.expect("list");
    let Env { dir, .. } = env;
    let env = Env::open(dir, QueryConfig::default()).await;
    let after = env.catalog.list_datasets(&env.ctx).await.expect("list");
    assert_eq!(before, after);
    assert_eq!(env.scalar("SELECT count(*) FROM workers").await, json!(3));
}

#[tokio::test]
async fn register_existing_parquet_objects_idempotently() {
    let env = Env::new().await;
    env.csv("source", WriteMode::Create, WORKERS)
        .await
        .expect("create");
    let manifest = env
        .catalog
        .manifest_at("source", None)
        .await
        .expect("manifest");
    let from = Path::from(format!("datasets/source/{}", manifest.files[0].path));
    let bytes = env
        .store
        .get(&from)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    env.store
        .put(&Path::from("uploads/w.parquet"), bytes.into())
        .await
        .expect("put");

    let request = RegisterRequest {
        files: vec!["uploads/w.parquet".into()],
        mode: WriteMode::Append,
        evolve: None,
    };
    let first = env
        .catalog
        .register(&env.ctx, "registered", request.clone(), Some("r-1".into()))
        .await
        .expect("register");
    assert_eq!((first.version, first.rows, first.replayed), (0, 3, false));
    let again = env
        .catalog
        .register(&env.ctx, "registered", request.clone(), Some("r-1".into()))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.version, 0);
    let other = RegisterRequest {
        mode: WriteMode::Overwrite,
        ..request.clone()
    };
    let err = env
        .catalog
        .register(&env.ctx, "registered", other, Some("r-1".into()))
        .await
        .expect_err("other body");
    assert_eq!(err.code, ErrorCode::IdempotencyConflict);
    assert_eq!(
        env.scalar("SELECT count(*) FROM registered").await,
        json!(3)
    );

    let missing = RegisterRequest {
        files: vec!["uploads/none.parquet".into()],
        ..request
    };
    let err = env
        .catalog
        .register(&env.ctx, "registered", missing, None)
        .await
        .expect_err("missing object");
    assert_eq!(err.code, ErrorCode::ObjectNotFound);
}

#[tokio::test]
async fn delete_is_for_admins_and_forgets_everything() {
    let env = Env::new().await;
    env.ingest_as(
        "gone",
        WriteMode::Create,
        None,
        lakehouse_types::dataset::IngestFormat::Csv,
        Some("k"),
        "a\n1\n",
    )
    .await
    .expect("create");
    let recruiter = RequestContext {
        caller: Caller {
            name: "r".into(),
            role: Role("recruiter".into()),
            credential: None,
        },
        request_id: "t".into(),
    };
    let err = env
        .catalog
        .delete_dataset(&recruiter, "gone")
        .await
        .expect_err("not admin");
    assert_eq!(err.code, ErrorCode::Forbidden);
    env.catalog
        .delete_dataset(&env.ctx, "gone")
        .await
        .expect("delete");
    assert!(
        env.catalog
            .list_datasets(&env.ctx)
            .await
            .expect("list")
            .datasets
            .is_empty()
    );
    let err = env
        .catalog
        .delete_dataset(&env.ctx, "gone")
        .await
        .expect_err("already gone");
    assert_eq!(err.code, ErrorCode::DatasetNotFound);
    // The key's stored answer went with the dataset: the same request creates it anew.
    let r = env
        .ingest_as(
            "gone",
            WriteMode::Create,
            None,
            lakehouse_types::dataset::IngestFormat::Csv,
            Some("k"),
            "a\n1\n",
        )
        .await
        .expect("recreate");
    assert!(!r.replayed);
}
