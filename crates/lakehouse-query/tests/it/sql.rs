//! SQL: round trips, joins, time travel, the read-only gate, limits.

use lakehouse_api::QueryApi;
use lakehouse_query::QueryConfig;
use lakehouse_types::ErrorCode;
use lakehouse_types::dataset::{SqlRequest, WriteMode};
use serde_json::json;

use crate::{Env, PLACEMENTS, WORKERS};

#[tokio::test]
async fn counts_sums_and_joins() {
    let env = Env::new().await;
    env.csv("workers", WriteMode::Create, WORKERS)
        .await
        .expect("workers");
    env.csv("placements", WriteMode::Create, PLACEMENTS)
        .await
        .expect("placements");
    assert_eq!(env.scalar("SELECT count(*) FROM workers").await, json!(3));
    assert_eq!(
        env.scalar("SELECT sum(rate) FROM workers WHERE state = 'TX'")
            .await,
        json!(45.25)
    );
    let r = env
        .sql(
            "SELECT w.name, sum(p.hours) AS hours FROM workers w JOIN placements p ON p.worker_id = w.worker_id \
             GROUP BY w.name ORDER BY hours DESC",
        )
        .await
        .expect("join");
    assert_eq!(
        r.rows,
        vec![vec![json!("Ana"), json!(52)], vec![json!("Cy"), json!(8)]]
    );
    assert_eq!(r.columns[1].data_type, "int64");
    let tables = env.sql("SHOW TABLES").await.expect("show");
    assert!(
        tables.rows.iter().any(|r| r.contains(&json!("workers"))),
        "{:?}",
        tables.rows
    );
    env.sql("DESCRIBE workers").await.expect("describe");
    env.sql("EXPLAIN SELECT * FROM workers")
        .await
        .expect("explain");
}

#[tokio::test]
async fn new_versions_are_visible_and_old_ones_stay_readable() {
    let env = Env::new().await;
    env.csv("workers", WriteMode::Create, WORKERS)
        .await
        .expect("v0");
    assert_eq!(env.scalar("SELECT count(*) FROM workers").await, json!(3));
    env.csv("workers", WriteMode::Append, WORKERS)
        .await
        .expect("v1");
    assert_eq!(
        env.scalar("SELECT count(*) FROM workers").await,
        json!(6),
        "visible without restart"
    );
    env.csv("workers", WriteMode::Overwrite, "id,label\n1,x\n")
        .await
        .expect("v2 overwrite");
    assert_eq!(env.scalar("SELECT count(*) FROM workers").await, json!(1));
    assert_eq!(
        env.scalar("SELECT count(*) FROM \"workers@v0\"").await,
        json!(3)
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM \"workers@v1\"").await,
        json!(6)
    );
    assert_eq!(
        env.scalar("SELECT label FROM \"workers@v2\"").await,
        json!("x")
    );
    let r = env
        .sql("SELECT name FROM \"workers@v0\" WHERE worker_id = 'w-2'")
        .await
        .expect("old schema");
    assert_eq!(r.rows, vec![vec![json!("Bo")]]);
    let err = env
        .sql("SELECT * FROM \"workers@v9\"")
        .await
        .expect_err("no such version");
    assert_eq!(err.code, ErrorCode::BadRequest);
    let err = env
        .sql("SELECT * FROM nobody")
        .await
        .expect_err("no such table");
    assert_eq!(err.code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn every_kind_of_write_is_refused() {
    let env = Env::new().await;
    env.csv("workers", WriteMode::Create, WORKERS)
        .await
        .expect("workers");
    for sql in [
        "CREATE TABLE t (a INT)",
        "CREATE TABLE t AS SELECT * FROM workers",
        "CREATE VIEW v AS SELECT 1",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "INSERT INTO workers VALUES ('w', 'n', 'TX', 1.0, true, NULL)",
        "UPDATE workers SET rate = 0",
        "DELETE FROM workers",
        "DROP TABLE workers",
        "COPY (SELECT 1) TO '/tmp/out.csv'",
        "SET datafusion.execution.batch_size = 1",
        "TRUNCATE TABLE workers",
    ] {
        let err = env.sql(sql).await.expect_err(sql);
        assert_eq!(err.code, ErrorCode::ReadOnly, "{sql}: {err:?}");
    }
    let err = env
        .sql("SELECT * INTO copy FROM workers")
        .await
        .expect_err("select into");
    assert!(
        matches!(err.code, ErrorCode::ReadOnly | ErrorCode::BadRequest),
        "{err:?}"
    );
    let err = env
        .sql("SELECT * FROM '/etc/passwd'")
        .await
        .expect_err("file");
    assert_eq!(err.code, ErrorCode::BadRequest);
    let err = env
        .sql("SELECT * FROM read_csv('/etc/passwd')")
        .await
        .expect_err("file function");
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert_eq!(env.scalar("SELECT count(*) FROM workers").await, json!(3));
}

#[tokio::test]
async fn max_rows_truncates() {
    let env = Env::new().await;
    let ctx = &env.ctx;
    let r = env
        .query
        .sql(
            ctx,
            SqlRequest {
                sql: "SELECT * FROM generate_series(1, 100000)".into(),
                max_rows: Some(10),
            },
        )
        .await
        .expect("sql");
    assert_eq!((r.row_count(), r.truncated), (10, true));
    let r = env
        .query
        .sql(
            ctx,
            SqlRequest {
                sql: "SELECT 1".into(),
                max_rows: Some(1),
            },
        )
        .await
        .expect("sql");
    assert_eq!((r.row_count(), r.truncated), (1, false));
    let err = env
        .query
        .sql(
            ctx,
            SqlRequest {
                sql: "SELECT 1".into(),
                max_rows: Some(usize::MAX),
            },
        )
        .await
        .expect_err("over cap");
    assert_eq!(err.code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn limits_end_a_query_and_the_next_one_runs() {
    let config = QueryConfig {
        timeout_ms: 300,
        ..QueryConfig::default()
    };
    let env = Env::with_query_config(config).await;
    let err = env
        .sql("SELECT count(*) FROM generate_series(1, 100000000000) a WHERE a.value % 7 = 3")
        .await
        .expect_err("too slow");
    assert_eq!(err.code, ErrorCode::Timeout);
    assert_eq!(env.scalar("SELECT 41 + 1").await, json!(42));

    let config = QueryConfig {
        memory_limit_bytes: 1024 * 1024,
        ..QueryConfig::default()
    };
    let env = Env::with_query_config(config).await;
    let err = env
        .sql(
            "SELECT count(*) FROM generate_series(1, 3000000) a \
             JOIN generate_series(1, 3000000) b ON a.value = b.value",
        )
        .await
        .expect_err("memory");
    assert_eq!(err.code, ErrorCode::PayloadTooLarge, "{err:?}");
    assert_eq!(env.scalar("SELECT 1").await, json!(1));
}
