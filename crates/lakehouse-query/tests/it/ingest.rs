//! Ingest: CSV oddities, whole-input inference, malformed input, drift, idempotency, other formats.

use lakehouse_types::ErrorCode;
use lakehouse_types::dataset::{Evolve, IngestFormat, RetypedColumn, SchemaDiff, WriteMode};
use serde_json::json;

use crate::{Env, WORKERS};

fn types(r: &lakehouse_types::dataset::WriteResponse) -> Vec<(String, String)> {
    r.schema
        .iter()
        .map(|c| (c.column.clone(), c.data_type.clone()))
        .collect()
}

#[tokio::test]
async fn csv_oddities_land_as_expected() {
    let env = Env::new().await;
    let body = "\u{feff}id,note,zip,when,at,flag,score\n\
1,\"hello, world\",00501,2024-02-29,2024-01-05T10:00:00Z,true,1.5\n\
2,\"two\nlines\",10001,,2024-01-05 11:30:00,FALSE,\n\
3,,02134,2024-03-01,,,7\n\
4,x,10002,2024-03-02,2024-01-05 12:00:00+02:00,true,2\n";
    let r = env
        .csv("odd", WriteMode::Create, body)
        .await
        .expect("ingest");
    assert_eq!(r.rows, 4);
    assert_eq!(r.version, 0);
    let expected = [
        ("id", "int64"),
        ("note", "string"),
        ("zip", "string"),
        ("when", "date"),
        ("at", "timestamp"),
        ("flag", "boolean"),
        ("score", "float64"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(types(&r), expected);
    let rows = env
        .sql("SELECT id, note, zip, \"when\", flag, score FROM odd ORDER BY id")
        .await
        .expect("sql")
        .rows;
    assert_eq!(
        rows[0],
        vec![
            json!(1),
            json!("hello, world"),
            json!("00501"),
            json!("2024-02-29"),
            json!(true),
            json!(1.5)
        ]
    );
    assert_eq!(rows[1][1], json!("two\nlines"));
    assert_eq!(rows[1][3], json!(null), "empty is null");
    assert_eq!(rows[2][1], json!(null));
    assert_eq!(rows[2][5], json!(7.0));
    assert_eq!(
        env.scalar("SELECT count(*) FROM odd WHERE at IS NULL")
            .await,
        json!(1)
    );
    // Timestamps are UTC: one without an offset is read as UTC, one with an offset is moved to UTC.
    let seconds = env
        .sql("SELECT id, to_unixtime(at) FROM odd WHERE at IS NOT NULL ORDER BY id")
        .await
        .expect("sql")
        .rows;
    assert_eq!(
        seconds,
        vec![
            vec![json!(1), json!(1_704_448_800)],
            vec![json!(2), json!(1_704_454_200)],
            vec![json!(4), json!(1_704_448_800)],
        ]
    );
}

#[tokio::test]
async fn inference_sees_the_whole_input() {
    let env = Env::new().await;
    let mut body = String::from("id,score\n");
    for i in 0..3000 {
        body.push_str(&format!("{i},{}\n", i * 2));
    }
    body.push_str("3000,N/A\n");
    let r = env
        .csv("late", WriteMode::Create, &body)
        .await
        .expect("ingest");
    assert_eq!(r.rows, 3001);
    assert_eq!(types(&r)[1], ("score".to_string(), "string".to_string()));
    assert_eq!(
        env.scalar("SELECT score FROM late WHERE id = 3000").await,
        json!("N/A")
    );
}

#[tokio::test]
async fn malformed_input_names_the_line_and_writes_nothing() {
    let env = Env::new().await;
    let err = env
        .csv("bad", WriteMode::Create, "a,b\n1,2\n3,4,5\n")
        .await
        .expect_err("unequal fields");
    assert_eq!(err.code, ErrorCode::UnprocessableContent);
    assert!(err.message.contains("line 3"), "{}", err.message);
    assert!(
        env.catalog
            .tables()
            .open_if_exists("bad")
            .await
            .expect("open")
            .is_none(),
        "no table"
    );

    env.csv("good", WriteMode::Create, "a,b\n1,2\n")
        .await
        .expect("ingest");
    let err = env
        .csv("good", WriteMode::Append, "a,b\n1,\"unclosed\n")
        .await
        .expect_err("unclosed quote");
    assert!(
        matches!(
            err.code,
            ErrorCode::UnprocessableContent | ErrorCode::BadRequest
        ),
        "{err:?}"
    );
    let err = env
        .csv("good", WriteMode::Append, "")
        .await
        .expect_err("no header");
    assert!(err.message.contains("header"), "{}", err.message);
    assert_eq!(env.version("good").await, 0, "no partial version");
    assert_eq!(env.scalar("SELECT count(*) FROM good").await, json!(1));
}

#[tokio::test]
async fn a_body_wider_than_the_column_cap_is_refused_before_it_is_read_per_column() {
    let env = Env::new().await;
    let wide = |n: usize| {
        let header: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let row: Vec<&str> = vec!["1"; n];
        format!("{}\n{}\n", header.join(","), row.join(","))
    };
    let err = env
        .csv("wide", WriteMode::Create, &wide(20_000))
        .await
        .expect_err("20,000 columns");
    assert_eq!(err.code, ErrorCode::UnprocessableContent);
    assert!(
        err.message.contains("20000 columns") && err.message.contains("at most 2048"),
        "{}",
        err.message
    );
    let ndjson: String = format!(
        "{{{}}}\n",
        (0..3000)
            .map(|i| format!("\"k{i}\": 1"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let err = env
        .ingest_as(
            "wide",
            WriteMode::Create,
            None,
            IngestFormat::Ndjson,
            None,
            ndjson,
        )
        .await
        .expect_err("3,000 keys");
    assert_eq!(err.code, ErrorCode::UnprocessableContent, "{err}");
    assert!(
        env.catalog
            .tables()
            .open_if_exists("wide")
            .await
            .expect("open")
            .is_none(),
        "nothing written"
    );
    env.csv("wide", WriteMode::Create, &wide(2048))
        .await
        .expect("at the cap");
}

#[tokio::test]
async fn drift_is_refused_with_the_exact_diff() {
    let env = Env::new().await;
    env.csv("workers", WriteMode::Create, WORKERS)
        .await
        .expect("create");
    let drifted = "worker_id,name,state,rate,active,phone\nw-9,Di,NY,abc,true,555\n";
    let err = env
        .csv("workers", WriteMode::Append, drifted)
        .await
        .expect_err("drift");
    assert_eq!(err.code, ErrorCode::SchemaDrift);
    let diff: SchemaDiff =
        serde_json::from_value(err.details.clone().expect("details")).expect("diff");
    assert_eq!(
        diff.added
            .iter()
            .map(|c| c.column.as_str())
            .collect::<Vec<_>>(),
        ["phone"]
    );
    assert_eq!(
        diff.missing
            .iter()
            .map(|c| c.column.as_str())
            .collect::<Vec<_>>(),
        ["available_from"]
    );
    assert_eq!(
        diff.retyped,
        vec![RetypedColumn {
            column: "rate".into(),
            from: "float64".into(),
            to: "string".into()
        }]
    );
    assert_eq!(env.version("workers").await, 0, "nothing written");

    // New columns only: refused without evolve, accepted with it.
    let added = "worker_id,name,state,rate,active,available_from,phone\nw-4,Di,NY,20,true,2025-03-01,555-1234\n";
    let err = env
        .csv("workers", WriteMode::Append, added)
        .await
        .expect_err("added column");
    assert_eq!(err.code, ErrorCode::SchemaDrift);
    let r = env
        .ingest_as(
            "workers",
            WriteMode::Append,
            Some(Evolve::AddColumns),
            IngestFormat::Csv,
            None,
            added,
        )
        .await
        .expect("evolve");
    assert_eq!(r.version, 1);
    assert_eq!(
        env.scalar("SELECT count(*) FROM workers WHERE phone IS NULL")
            .await,
        json!(3)
    );

    // Integer rates into a float column, columns reordered: not drift.
    let reordered = "name,worker_id,rate,state,active,available_from,phone\nEd,w-5,30,TX,false,,\n";
    let r = env
        .csv("workers", WriteMode::Append, reordered)
        .await
        .expect("compatible append");
    assert_eq!(r.version, 2);
    assert_eq!(
        env.scalar("SELECT rate FROM workers WHERE worker_id = 'w-5'")
            .await,
        json!(30.0)
    );
}

#[tokio::test]
async fn idempotent_replay_returns_the_first_answer() {
    let env = Env::new().await;
    let first = env
        .ingest_as(
            "jobs",
            WriteMode::Append,
            None,
            IngestFormat::Csv,
            Some("k-1"),
            "id\n1\n2\n",
        )
        .await
        .expect("first");
    assert!(!first.replayed);
    let again = env
        .ingest_as(
            "jobs",
            WriteMode::Append,
            None,
            IngestFormat::Csv,
            Some("k-1"),
            "id\n1\n2\n",
        )
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(
        (again.version, again.rows, again.bytes),
        (first.version, first.rows, first.bytes)
    );
    assert_eq!(env.version("jobs").await, first.version, "no new version");
    let err = env
        .ingest_as(
            "jobs",
            WriteMode::Append,
            None,
            IngestFormat::Csv,
            Some("k-1"),
            "id\n3\n",
        )
        .await
        .expect_err("other body");
    assert_eq!(err.code, ErrorCode::IdempotencyConflict);
    assert_eq!(env.scalar("SELECT count(*) FROM jobs").await, json!(2));

    // A failed request releases its key.
    let err = env
        .ingest_as(
            "jobs",
            WriteMode::Append,
            None,
            IngestFormat::Csv,
            Some("k-2"),
            "nope\n1\n",
        )
        .await
        .expect_err("drift");
    assert_eq!(err.code, ErrorCode::SchemaDrift);
    env.ingest_as(
        "jobs",
        WriteMode::Append,
        None,
        IngestFormat::Csv,
        Some("k-2"),
        "id\n3\n",
    )
    .await
    .expect("retry");
}

#[tokio::test]
async fn create_twice_is_a_conflict_and_names_are_checked() {
    let env = Env::new().await;
    env.csv("once", WriteMode::Create, "a\n1\n")
        .await
        .expect("create");
    let err = env
        .csv("once", WriteMode::Create, "a\n1\n")
        .await
        .expect_err("exists");
    assert_eq!(err.code, ErrorCode::AlreadyExists);
    let err = env
        .csv("Bad/Name", WriteMode::Create, "a\n1\n")
        .await
        .expect_err("name");
    assert_eq!(err.code, ErrorCode::InvalidParameter);
}

#[tokio::test]
async fn ndjson_and_parquet_bodies() {
    let env = Env::new().await;
    let ndjson =
        "{\"id\": 1, \"name\": \"a\", \"ok\": true}\n\n{\"id\": 2, \"name\": null, \"pay\": 2.5}\n";
    let r = env
        .ingest_as(
            "events",
            WriteMode::Create,
            None,
            IngestFormat::Ndjson,
            None,
            ndjson,
        )
        .await
        .expect("ndjson");
    assert_eq!(r.rows, 2);
    assert_eq!(env.scalar("SELECT sum(pay) FROM events").await, json!(2.5));
    let err = env
        .ingest_as(
            "events",
            WriteMode::Append,
            None,
            IngestFormat::Ndjson,
            None,
            "{\"id\": 3}\n{oops\n",
        )
        .await
        .expect_err("bad json");
    assert!(err.message.contains("line 2"), "{}", err.message);

    // A Parquet body: the files of the events table itself.
    let manifest = env
        .catalog
        .manifest_at("events", None)
        .await
        .expect("manifest");
    let file = env
        .dir
        .path()
        .join("datasets/events")
        .join(&manifest.files[0].path);
    let bytes = std::fs::read(file).expect("parquet file");
    let r = env
        .ingest_as(
            "copy",
            WriteMode::Create,
            None,
            IngestFormat::Parquet,
            None,
            bytes,
        )
        .await
        .expect("parquet");
    assert_eq!(r.rows, 2);
    assert_eq!(
        env.scalar("SELECT count(*) FROM copy WHERE id IN (1, 2)")
            .await,
        json!(2)
    );
    let err = env
        .ingest_as(
            "copy2",
            WriteMode::Create,
            None,
            IngestFormat::Parquet,
            None,
            "not parquet",
        )
        .await
        .expect_err("not parquet");
    assert_eq!(err.code, ErrorCode::UnprocessableContent);
}
