//! Datasets over HTTP: ingest, the catalog and SQL against the real binary; the round trip, restart and
//! recreate suites run on the local directory and on an S3 server.

use reqwest::Client;
use serde_json::{Value, json};

use crate::common::{
    Backend, expect_error, get_json, on_both_backends, post_json, server, server_on, sql,
};

const WORKERS: &str = "worker_id,name,state,rate,active,available_from\n\
w-1,Ana,TX,25.5,true,2025-01-13\n\
w-2,Bo,CA,31,false,2025-02-01\n\
w-3,Cy,TX,19.75,true,\n";

const PLACEMENTS: &str = "placement_id,worker_id,hours\n1,w-1,40\n2,w-1,12\n3,w-3,8\n";

async fn ingest(
    http: &Client,
    base: &str,
    dataset: &str,
    query: &str,
    body: &str,
) -> reqwest::Response {
    http.post(format!("{base}/v1/ingest/{dataset}?{query}"))
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn ingest_ok(http: &Client, base: &str, dataset: &str, query: &str, body: &str) -> Value {
    let response = ingest(http, base, dataset, query, body).await;
    assert_eq!(response.status().as_u16(), 201, "ingest {dataset}?{query}");
    response.json().await.unwrap()
}

/// `POST /v1/sql` asking for the answer as `accept`.
async fn sql_as(http: &Client, base: &str, accept: &str, statement: &Value) -> reqwest::Response {
    http.post(format!("{base}/v1/sql"))
        .header("accept", accept)
        .json(statement)
        .send()
        .await
        .unwrap()
}

async fn rows(http: &Client, base: &str, statement: &str) -> Vec<Value> {
    let response = sql(http, base, statement).await;
    assert_eq!(response.status().as_u16(), 200, "{statement}");
    let body: Value = response.json().await.unwrap();
    body["rows"].as_array().unwrap().clone()
}

/// One plan of `query` from `EXPLAIN`: `logical_plan` or `physical_plan` (empty when missing).
async fn explained(http: &Client, base: &str, query: &str, kind: &str) -> String {
    rows(http, base, &format!("EXPLAIN {query}"))
        .await
        .iter()
        .find(|row| row[0] == kind)
        .map(|row| row[1].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

async fn scalar(http: &Client, base: &str, statement: &str) -> Value {
    rows(http, base, statement).await[0][0].clone()
}

/// Asserts the catalog has no `dataset` (404).
async fn assert_no_dataset(http: &Client, base: &str, dataset: &str) {
    let manifest = http
        .get(format!("{base}/v1/catalog/datasets/{dataset}"))
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status().as_u16(), 404, "{dataset}");
}

async fn datasets(http: &Client, base: &str) -> Value {
    get_json(http, format!("{base}/v1/catalog/datasets")).await
}

on_both_backends!(
    ingest_then_sql_round_trip,
    idempotent_replays_and_a_restart_keep_their_answers,
    queries_follow_appends_and_a_recreated_dataset,
    repeated_long_text_reads_as_a_dictionary_and_answers_as_text,
);

async fn ingest_then_sql_round_trip(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let (http, base) = (Client::new(), server.url());
    let created = ingest_ok(&http, base, "workers", "mode=create", WORKERS).await;
    assert_eq!(created["dataset"], "workers");
    assert_eq!(created["version"], 0);
    assert_eq!(created["rows"], 3);
    assert!(created["bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        created["schema"][3],
        json!({"column": "rate", "type": "float64", "nullable": true})
    );
    ingest_ok(&http, base, "placements", "", PLACEMENTS).await;

    assert_eq!(
        scalar(&http, base, "SELECT count(*) FROM workers").await,
        json!(3)
    );
    assert_eq!(
        scalar(&http, base, "SELECT sum(hours) FROM placements").await,
        json!(60)
    );
    let joined = rows(
        &http,
        base,
        "SELECT w.name, sum(p.hours) AS hours FROM workers w JOIN placements p USING (worker_id) \
         GROUP BY w.name ORDER BY hours DESC",
    )
    .await;
    assert_eq!(joined, vec![json!(["Ana", 52]), json!(["Cy", 8])]);

    let body: Value = sql(
        &http,
        base,
        "SELECT worker_id, rate FROM workers ORDER BY worker_id",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["columns"],
        json!([{"name": "worker_id", "type": "string"}, {"name": "rate", "type": "float64"}])
    );
    assert_eq!(
        (body["row_count"].clone(), body["truncated"].clone()),
        (json!(3), json!(false))
    );
    assert!(body["elapsed_ms"].is_u64());
    let limited: Value = post_json(
        &http,
        format!("{base}/v1/sql"),
        &json!({"sql": "SELECT * FROM workers", "max_rows": 2}),
    )
    .await;
    assert_eq!(
        (limited["row_count"].clone(), limited["truncated"].clone()),
        (json!(2), json!(true))
    );

    // Other encodings by Accept.
    let statement =
        json!({"sql": "SELECT worker_id, name FROM workers ORDER BY worker_id LIMIT 2"});
    let csv = sql_as(&http, base, "text/csv", &statement).await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.text().await.unwrap(),
        "worker_id,name\nw-1,Ana\nw-2,Bo\n"
    );
    let ndjson = sql_as(&http, base, "application/x-ndjson", &statement).await;
    let text = ndjson.text().await.unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first, json!({"worker_id": "w-1", "name": "Ana"}));
    let arrow = sql_as(
        &http,
        base,
        "application/vnd.apache.arrow.stream",
        &statement,
    )
    .await;
    assert_eq!(arrow.headers()["x-lakehouse-truncated"], "false");
    let bytes = arrow.bytes().await.unwrap();
    let result = lakehouse_api::QueryResult::from_ipc(&bytes, false, 0).unwrap();
    assert_eq!(result.row_count(), 2);

    // The catalog describes both.
    let list = datasets(&http, base).await;
    let names: Vec<_> = list["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, [json!("placements"), json!("workers")]);
    let manifest: Value = get_json(&http, format!("{base}/v1/catalog/datasets/workers")).await;
    assert_eq!(
        (manifest["version"].clone(), manifest["rows"].clone()),
        (json!(0), json!(3))
    );
    assert_eq!(manifest["history"][0]["rows_added"], 3);
    assert_eq!(manifest["files"].as_array().unwrap().len(), 1);
}

/// A fact table joined to a dimension and grouped by it is summed by the join key before the join
/// (the plan shows the partial aggregate); the answer matches one computed here from the same rows.
#[tokio::test]
async fn a_fact_table_is_aggregated_before_its_join() {
    use std::collections::BTreeMap;
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    let states = ["CA", "NY", "TX", "WA"];
    let mut workers = String::from("worker_id,state\n");
    for w in 0..30 {
        workers.push_str(&format!("{w},{}\n", states[w % 4]));
    }
    let mut sheets = String::from("timesheet_id,worker_id,hours,status\n");
    let mut expected: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for i in 0..600usize {
        // Workers 0..34: a few sheets point at no worker, and every 17th has none.
        let worker = (i * 7 + i / 5) % 35;
        let hours = (i * 13 % 41) as i64;
        let status = if i % 3 == 0 { "pending" } else { "approved" };
        if i % 17 == 0 {
            sheets.push_str(&format!("{i},,{hours},{status}\n"));
            continue;
        }
        sheets.push_str(&format!("{i},{worker},{hours},{status}\n"));
        if worker < 30 && status == "approved" {
            let entry = expected.entry(states[worker % 4]).or_default();
            entry.0 += 1;
            entry.1 += hours;
        }
    }
    ingest_ok(&http, base, "workers", "mode=create", &workers).await;
    ingest_ok(&http, base, "timesheets", "mode=create", &sheets).await;

    let query = "SELECT w.state, count(*) AS sheets, sum(t.hours) AS hours \
                 FROM timesheets t JOIN workers w ON t.worker_id = w.worker_id \
                 WHERE t.status = 'approved' GROUP BY w.state ORDER BY w.state";
    let expected: Vec<Value> = expected
        .into_iter()
        .map(|(state, (n, hours))| json!([state, n, hours]))
        .collect();
    assert_eq!(rows(&http, base, query).await, expected);
    let logical = explained(&http, base, query, "logical_plan").await;
    assert!(
        logical.contains("groupBy=[[t.worker_id]], aggr=[[count(Int64(1)) AS __eager_agg"),
        "{logical}"
    );
}

/// A filter comparing short text and numbers: the plan compares the text by its view and evaluates the
/// conjunction itself, and the rows counted are the ones counted here from the same CSV (nulls included).
#[tokio::test]
async fn a_filter_on_short_text_and_numbers_keeps_the_right_rows() {
    use std::collections::BTreeMap;
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    let statuses = [
        "pending",
        "approved",
        "rejected",
        "pendinG",
        "pending review",
    ];
    let notes = ["late submission", "on time", "late again", ""];
    let mut sheets = String::from("timesheet_id,hours,status,note\n");
    let mut expected: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for i in 0..2000usize {
        let hours = (i * 13 % 41) as i64;
        let status = (i % 11 != 0).then_some(statuses[i * 7 % 5]);
        let note = notes[i * 3 % 4];
        let hours_text = if i % 9 == 0 {
            String::new()
        } else {
            hours.to_string()
        };
        sheets.push_str(&format!(
            "{i},{hours_text},{},{note}\n",
            status.unwrap_or_default()
        ));
        let kept = status.is_some_and(|s| s != "approved")
            && i % 9 != 0
            && hours > 10
            && note.contains("late");
        if let (true, Some(status)) = (kept, status) {
            let entry = expected.entry(status).or_default();
            entry.0 += 1;
            entry.1 += hours;
        }
    }
    ingest_ok(&http, base, "sheets", "mode=create", &sheets).await;
    let query = "SELECT status, count(*) AS sheets, sum(hours) AS hours FROM sheets \
                 WHERE status <> 'approved' AND hours > 10 AND note LIKE '%late%' \
                 GROUP BY status ORDER BY status";
    let expected: Vec<Value> = expected
        .into_iter()
        .map(|(status, (n, hours))| json!([status, n, hours]))
        .collect();
    assert_eq!(expected.len(), 4, "every status but approved is counted");
    assert_eq!(rows(&http, base, query).await, expected);
    let physical = explained(&http, base, query, "physical_plan").await;
    assert!(
        physical.contains(
            "FilterExec: status@1 != \"approved\" (inline) AND hours@0 > 10 AND note@2 LIKE"
        ),
        "{physical}"
    );
}

#[tokio::test]
async fn csv_oddities_and_malformed_input() {
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    let mut body = String::from("\u{feff}id,note,score\n1,\"a, b\",5\n2,\"two\nlines\",\n");
    for i in 3..3000 {
        body.push_str(&format!("{i},x,{i}\n"));
    }
    body.push_str("3000,y,N/A\n");
    let created = ingest_ok(&http, base, "odd", "mode=create", &body).await;
    assert_eq!(created["rows"], 3000);
    let types: Vec<_> = created["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].clone())
        .collect();
    assert_eq!(types, [json!("int64"), json!("string"), json!("string")]);
    assert_eq!(
        created["schema"][0]["column"], "id",
        "the byte-order mark is not part of the name"
    );
    let first = rows(
        &http,
        base,
        "SELECT note, score FROM odd WHERE id IN (1, 2) ORDER BY id",
    )
    .await;
    assert_eq!(
        first,
        vec![json!(["a, b", "5"]), json!(["two\nlines", null])]
    );

    let bad = ingest(
        &http,
        base,
        "odd",
        "mode=append",
        "id,note,score\n1,a,2\n2,b\n",
    )
    .await;
    let message = expect_error(bad, 422, "unprocessable_content").await;
    assert!(message.contains("line 3"), "{message}");
    let nothing = ingest(&http, base, "odd", "mode=append", "").await;
    expect_error(nothing, 422, "unprocessable_content").await;
    let manifest: Value = get_json(&http, format!("{base}/v1/catalog/datasets/odd")).await;
    assert_eq!(manifest["version"], 0, "a failed ingest leaves no version");
    let wrong_type = http
        .post(format!("{base}/v1/ingest/odd"))
        .header("content-type", "image/png")
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(wrong_type, 415, "unsupported_media_type").await;
}

/// `rows` rows of `id,score,late` with whole-number scores and no `late`, then `last`.
fn body_ending_with(rows: usize, last: &str) -> String {
    let mut body = String::from("id,score,late\n");
    for i in 1..=rows {
        body.push_str(&format!("{i},{i},\n"));
    }
    body.push_str(last);
    body
}

/// NDJSON and Parquet bodies: inferred and written like CSV, and a malformed one refused with nothing
/// written.
#[tokio::test]
async fn ndjson_and_parquet_bodies_are_ingested() {
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    let send = |dataset: &str, content_type: &str, body: Vec<u8>| {
        http.post(format!("{base}/v1/ingest/{dataset}?mode=create"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // NDJSON: a key missing from the first line, a null, a blank line; every line is read for the types.
    let lines = "{\"id\": 1, \"name\": \"Ana\"}\n\n{\"id\": 2, \"name\": null, \"rate\": 31.5}\n\
                 {\"id\": 3, \"name\": \"Cy\", \"rate\": 19}\n";
    let answer = send("people", "application/x-ndjson", lines.into())
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["rows"], 3);
    let types: Vec<(String, String)> = answer["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["column"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(types.contains(&("id".into(), "int64".into())), "{types:?}");
    assert!(
        types.contains(&("rate".into(), "float64".into())),
        "{types:?}"
    );
    assert_eq!(
        rows(&http, base, "SELECT id, name, rate FROM people ORDER BY id").await,
        vec![
            json!([1, "Ana", null]),
            json!([2, null, 31.5]),
            json!([3, "Cy", 19.0])
        ]
    );

    // Parquet: one of the server's own data files, sent back as a body, reads as the table it came from.
    ingest_ok(&http, base, "workers", "mode=create", WORKERS).await;
    let files: Vec<_> = std::fs::read_dir(server.data_dir().join("datasets/workers"))
        .unwrap()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let parquet = std::fs::read(&files[0]).unwrap();
    let answer = send("workers_copy", "application/vnd.apache.parquet", parquet)
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let all =
        "SELECT worker_id, name, state, rate, active, available_from FROM {} ORDER BY worker_id";
    assert_eq!(
        rows(&http, base, &all.replace("{}", "workers_copy")).await,
        rows(&http, base, &all.replace("{}", "workers")).await
    );

    // Malformed bodies of both formats are refused, naming the fault, and leave no dataset.
    for (dataset, content_type, body, fault) in [
        (
            "broken_lines",
            "application/x-ndjson",
            &b"{\"id\": 1}\n{\"id\": \n"[..],
            "line 2",
        ),
        (
            "not_parquet",
            "application/vnd.apache.parquet",
            b"a,b\n1,2\n",
            "not a readable Parquet file",
        ),
    ] {
        let answer = send(dataset, content_type, body.to_vec()).await.unwrap();
        let message = expect_error(answer, 422, "unprocessable_content").await;
        assert!(message.contains(fault), "{dataset}: {message}");
        assert_no_dataset(&http, base, dataset).await;
    }
}

/// A body is spooled to a file without a name: a server killed in the middle of an upload leaves nothing in
/// the spool directory (a named temporary file would stay there after a `kill -9`, as large as the body).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_server_killed_mid_upload_leaves_no_spool_file() {
    use tokio::io::AsyncWriteExt;
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap().to_owned();
    let mut server = server()
        .config(&format!("[ingest]\nspool_dir = {}\n", toml_string(&dir)))
        .spawn()
        .await;
    let addr = server.url().trim_start_matches("http://").to_owned();
    let body = body_ending_with(50_000, "");
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/ingest/killed?mode=create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n\
         Content-Length: {}\r\n\r\n",
        2 * body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    // The server holds the spool file open in the directory (Linux shows it among the process's open files),
    // and the directory lists nothing.
    let pid = server.pid().unwrap();
    let spooling = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .any(|target| target.starts_with(&dir))
            })
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !spooling(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "no spool file was opened in {dir}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    server.kill9();
    drop(stream);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // Started again, the server spools there and writes the dataset.
    server.start().await;
    let (http, base) = (Client::new(), server.url().to_owned());
    ingest_ok(&http, &base, "after", "mode=create", &body).await;
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// `text` as a TOML basic string.
#[cfg(target_os = "linux")]
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

#[tokio::test]
async fn a_body_found_malformed_or_cut_off_after_many_rows_writes_nothing() {
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    for (dataset, last, fault) in [
        ("extra", "20001,1,2,3\n", "line 20002"),
        ("unclosed", "20001,\"1,\n", "line 20002"),
    ] {
        let answer = ingest(
            &http,
            base,
            dataset,
            "mode=create",
            &body_ending_with(20_000, last),
        )
        .await;
        let message = expect_error(answer, 422, "unprocessable_content").await;
        assert!(message.contains(fault), "{message}");
    }
    // A body that stops short of its declared length.
    let body = body_ending_with(20_000, "");
    let addr = base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /v1/ingest/cut?mode=create HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n\
         Content-Length: {}\r\n\r\n",
        body.len() + 1000
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.starts_with("HTTP/1.1 201"), "{answer}");
    // The server still takes writes, and none of the failed bodies left a dataset behind.
    ingest_ok(
        &http,
        base,
        "after",
        "mode=create",
        &body_ending_with(300, ""),
    )
    .await;
    for dataset in ["extra", "unclosed", "cut"] {
        assert_no_dataset(&http, base, dataset).await;
    }
    let names: Vec<_> = datasets(&http, base).await["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, [json!("after")]);
}

#[tokio::test]
async fn drift_is_a_409_with_the_diff_and_nothing_changes() {
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    ingest_ok(&http, base, "workers", "mode=create", WORKERS).await;
    let drifted = "worker_id,name,state,rate,active,phone\nw-9,Di,NY,abc,true,555\n";
    let response = ingest(&http, base, "workers", "mode=append", drifted).await;
    assert_eq!(response.status().as_u16(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "schema_drift");
    assert_eq!(
        body["error"]["details"],
        json!({
            "added": [{"column": "phone", "type": "int64", "nullable": true}],
            "missing": [{"column": "available_from", "type": "date", "nullable": true}],
            "retyped": [{"column": "rate", "from": "float64", "to": "string"}],
        })
    );
    let list = datasets(&http, base).await;
    assert_eq!(list["datasets"][0]["version"], 0);
    assert_eq!(
        scalar(&http, base, "SELECT count(*) FROM workers").await,
        json!(3)
    );

    let evolved =
        "worker_id,name,state,rate,active,available_from,phone\nw-4,Di,NY,20,true,,555-1234\n";
    let refused = ingest(&http, base, "workers", "mode=append", evolved).await;
    expect_error(refused, 409, "schema_drift").await;
    let accepted = ingest_ok(
        &http,
        base,
        "workers",
        "mode=append&evolve=add_columns",
        evolved,
    )
    .await;
    assert_eq!(accepted["version"], 1);
    // The new column is the table's: empty in the rows from before it, absent from the version before.
    assert_eq!(
        scalar(
            &http,
            base,
            "SELECT phone FROM workers WHERE worker_id = 'w-4'"
        )
        .await,
        json!("555-1234")
    );
    assert_eq!(
        scalar(
            &http,
            base,
            "SELECT count(*) FROM workers WHERE phone IS NULL"
        )
        .await,
        json!(3)
    );
    let query = |sql: &str| {
        http.post(format!("{base}/v1/sql"))
            .json(&json!({ "sql": sql }))
            .send()
    };
    let before = query("SELECT phone FROM \"workers@v0\"").await.unwrap();
    assert_eq!(
        before.status().as_u16(),
        400,
        "version 0 has no phone column"
    );
}

#[tokio::test]
async fn concurrent_creations_of_one_dataset_leave_one_table() {
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    // Eight requests create one dataset at once, each with a column of its own: one creates it, and every
    // other is refused (lost the race, or arrived after and drifts from its schema).
    let answers = futures::future::join_all((0..8).map(|i| {
        let http = http.clone();
        async move {
            let answer = http
                .post(format!("{base}/v1/ingest/race?mode=append"))
                .header("content-type", "text/csv")
                .body(format!("id,col{i}\n{i},x\n"))
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (i, status, answer.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let mut created = Vec::new();
    for (i, status, body) in answers {
        match status {
            201 => created.push((i, body)),
            409 => assert!(
                matches!(
                    body["error"]["code"].as_str(),
                    Some("conflict" | "schema_drift")
                ),
                "{body}"
            ),
            other => panic!("request {i}: {other} {body}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    let (winner, answer) = &created[0];
    assert_eq!(answer["version"], 0);
    let manifest: Value = get_json(&http, format!("{base}/v1/catalog/datasets/race")).await;
    assert_eq!(manifest["version"], 0);
    assert_eq!(
        scalar(
            &http,
            base,
            &format!("SELECT count(*) FROM race WHERE col{winner} = 'x'")
        )
        .await,
        json!(1)
    );
}

async fn idempotent_replays_and_a_restart_keep_their_answers(backend: Backend) {
    let (mut server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    let base = server.url().to_owned();
    let send = |body: &'static str| {
        http.post(format!("{base}/v1/ingest/jobs?mode=append"))
            .header("content-type", "text/csv")
            .header("idempotency-key", "upload-1")
            .body(body)
            .send()
    };
    let first = send("id,title\n1,welder\n").await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let replay = send("id,title\n1,welder\n").await.unwrap();
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    expect_error(
        send("id,title\n2,fitter\n").await.unwrap(),
        409,
        "idempotency_conflict",
    )
    .await;
    ingest_ok(&http, &base, "workers", "mode=create", WORKERS).await;
    ingest_ok(
        &http,
        &base,
        "workers",
        "mode=overwrite",
        "worker_id,name\nw-7,Flo\n",
    )
    .await;
    let before = datasets(&http, &base).await;
    assert_eq!(before["datasets"].as_array().unwrap().len(), 2);

    server.terminate().await;
    server.start().await;
    let base = server.url().to_owned();
    assert_eq!(
        datasets(&http, &base).await,
        before,
        "same datasets at the same versions"
    );
    let replay = http
        .post(format!("{base}/v1/ingest/jobs?mode=append"))
        .header("content-type", "text/csv")
        .header("idempotency-key", "upload-1")
        .body("id,title\n1,welder\n")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 200, "replay after a restart");
    assert_eq!(
        scalar(&http, &base, "SELECT count(*) FROM jobs").await,
        json!(1)
    );

    // Time travel after the overwrite.
    assert_eq!(
        scalar(&http, &base, "SELECT count(*) FROM workers").await,
        json!(1)
    );
    assert_eq!(
        scalar(&http, &base, "SELECT count(*) FROM \"workers@v0\"").await,
        json!(3)
    );
    let v0: Value = get_json(
        &http,
        format!("{base}/v1/catalog/datasets/workers/versions/0"),
    )
    .await;
    assert_eq!(
        (v0["version"].clone(), v0["rows"].clone()),
        (json!(0), json!(3))
    );
    // The overwrite replaced the schema too; version 0 keeps its own.
    let columns = |manifest: &Value| -> Vec<String> {
        manifest["schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["column"].as_str().unwrap().to_owned())
            .collect()
    };
    let now: Value = get_json(&http, format!("{base}/v1/catalog/datasets/workers")).await;
    assert_eq!(columns(&now), ["worker_id", "name"]);
    assert_eq!(columns(&v0).len(), 6);
    let missing = http
        .get(format!("{base}/v1/catalog/datasets/workers/versions/9"))
        .send()
        .await
        .unwrap();
    expect_error(missing, 404, "dataset_not_found").await;
}

#[tokio::test]
async fn sql_is_read_only_and_time_limited() {
    let server = server().config("[query]\ntimeout_ms = 500\n").spawn().await;
    let (http, base) = (Client::new(), server.url());
    ingest_ok(&http, base, "workers", "mode=create", WORKERS).await;
    for statement in [
        "CREATE TABLE t (a INT)",
        "CREATE TABLE t AS SELECT * FROM workers",
        "CREATE VIEW v AS SELECT 1",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "INSERT INTO workers (worker_id) VALUES ('w-9')",
        "UPDATE workers SET rate = 0",
        "DELETE FROM workers",
        "DROP TABLE workers",
        "COPY (SELECT 1) TO 'out.csv'",
        "SET datafusion.execution.batch_size = 1",
        "TRUNCATE TABLE workers",
    ] {
        expect_error(sql(&http, base, statement).await, 400, "read_only").await;
    }
    expect_error(
        sql(&http, base, "SELECT * FROM '/etc/passwd'").await,
        400,
        "bad_request",
    )
    .await;
    expect_error(sql(&http, base, "SELEC 1").await, 400, "bad_request").await;
    assert_eq!(
        scalar(&http, base, "SELECT count(*) FROM workers").await,
        json!(3)
    );

    let slow = sql(
        &http,
        base,
        "SELECT count(*) FROM generate_series(1, 100000000000) t WHERE t.value % 7 = 3",
    )
    .await;
    expect_error(slow, 408, "timeout").await;
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        scalar(&http, base, "SELECT count(*) FROM workers").await,
        json!(3),
        "healthy after"
    );
}

/// A table written here, read by the Python `deltalake` package: the same rows. Needs a Python with `deltalake`
/// and `pyarrow` in `LAKEHOUSE_TEST_PYTHON`, which `scripts/test.sh` installs and sets.
#[tokio::test]
async fn python_deltalake_reads_our_tables() {
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    ingest_ok(&http, base, "workers", "mode=create", WORKERS).await;
    ingest_ok(
        &http,
        base,
        "workers",
        "mode=append",
        "worker_id,name,state,rate,active,available_from\nw-4,Di,NY,20,true,2025-03-01\n",
    )
    .await;
    let script = r#"
table = DeltaTable(sys.argv[1])
rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["worker_id"])
answer({"version": table.version(), "rows": rows})
"#;
    let read = python_over_table(script, &server.data_dir().join("datasets/workers"));
    assert_eq!(read["version"], 1);
    let ours = rows(
        &http,
        base,
        "SELECT worker_id, name, state, rate, active, available_from FROM workers ORDER BY worker_id",
    )
    .await;
    let theirs: Vec<Value> = read["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r["worker_id"],
                r["name"],
                r["state"],
                r["rate"],
                r["active"],
                r["available_from"]
            ])
        })
        .collect();
    assert_eq!(theirs, ours);
}

/// Runs `script` with the Python `deltalake` package on the table at `table` (its `sys.argv[1]`); the script
/// calls `answer(value)` with what it found, which is returned. Needs a Python with `deltalake` and `pyarrow`
/// in `LAKEHOUSE_TEST_PYTHON`, which `scripts/test.sh` installs and sets.
fn python_over_table(script: &str, table: &std::path::Path) -> Value {
    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").expect(
        "LAKEHOUSE_TEST_PYTHON must name a Python with `deltalake` and `pyarrow`: run the tests with \
         scripts/test.sh, which installs them",
    );
    // The Python deltalake package (1.6) sometimes aborts during interpreter teardown ("terminate called
    // without an active exception"), after its work is done, even on tables it wrote itself: flush and leave
    // with os._exit so the exit status reflects the read, not the teardown.
    let prelude = r#"
import json, os, sys
from deltalake import DeltaTable
def answer(value):
    print(json.dumps(value, default=str))
    sys.stdout.flush()
    os._exit(0)
"#;
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .arg(table)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A CSV body is read in parts side by side, in both passes (here parts of 200 bytes on 3 threads): quoted
/// line breaks, CRLF endings and blank lines at part boundaries are read as in one pass, and the table keeps
/// the body's row order. Heights written as 6'2" put quotes inside unquoted fields, which make the cuts made
/// while the body arrives go wrong, so the body is read again from its spool file. Columns whose values
/// nearly never repeat are written without a dictionary; the others with one.
#[tokio::test]
async fn a_csv_read_in_parts_keeps_its_rows_in_order() {
    let server = server()
        .config("[ingest]\nbatch_rows = 2\nthreads = 3\npart_bytes = 200\n")
        .spawn()
        .await;
    let (http, base) = (Client::new(), server.url());
    let mut body = String::from("id,note,code,stamp\n");
    let mut expected = Vec::new();
    for i in 1..=2000u32 {
        let note = match i % 7 {
            0 => format!("line one\nline {i}"),
            3 => format!("a, \"quoted\" {i}"),
            _ => format!("n{i}"),
        };
        let quoted = format!("\"{}\"", note.replace('"', "\"\""));
        let stamp = format!("s-{}", i * 7919 % 997);
        let end = if i % 5 == 0 { "\r\n" } else { "\n" };
        body.push_str(&format!("{i},{quoted},c{},{stamp}{end}", i % 4));
        if i % 11 == 0 {
            body.push('\n');
        }
        expected.push(json!([i, note, format!("c{}", i % 4), stamp]));
    }
    let created = ingest_ok(&http, base, "parts", "mode=create", &body).await;
    assert_eq!(created["rows"], 2000);
    let ours = rows(
        &http,
        base,
        "SELECT id, note, code, stamp FROM parts ORDER BY id",
    )
    .await;
    assert_eq!(ours, expected);

    let script = r#"
import pyarrow.parquet as pq
table = DeltaTable(sys.argv[1])
ids = table.to_pyarrow_table().column("id").to_pylist()
encodings = {}
for uri in table.file_uris():
    meta = pq.ParquetFile(uri.removeprefix("file://")).metadata
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            column = meta.row_group(g).column(c)
            dictionary = any("DICTIONARY" in e for e in column.encodings)
            encodings.setdefault(column.path_in_schema, set()).add(dictionary)
answer({"ids": ids, "dictionary": {k: sorted(v) for k, v in encodings.items()}})
"#;
    let read = python_over_table(script, &server.data_dir().join("datasets/parts"));
    let ids: Vec<u64> = serde_json::from_value(read["ids"].clone()).unwrap();
    assert_eq!(ids, (1..=2000).collect::<Vec<_>>(), "the body's row order");
    assert_eq!(
        read["dictionary"],
        json!({"id": [false], "note": [false], "code": [true], "stamp": [true]}),
        "ids and notes never repeat; codes and stamps do"
    );

    let mut body = String::from("id,height,note\n");
    let mut expected = Vec::new();
    for i in 1..=600u32 {
        let height = if i % 9 == 4 { "6'2\"" } else { "180" };
        body.push_str(&format!("{i},{height},\"n\n{i}\"\n"));
        expected.push(json!([i, height, format!("n\n{i}")]));
    }
    let created = ingest_ok(&http, base, "heights", "mode=create", &body).await;
    assert_eq!(created["rows"], 600);
    let ours = rows(
        &http,
        base,
        "SELECT id, height, note FROM heights ORDER BY id",
    )
    .await;
    assert_eq!(ours, expected);
}

/// Queries keep each table's state and read only new commits; a table deleted and created again (here up to
/// the same version number the old one had) must be read afresh, never patched onto the old state.
async fn queries_follow_appends_and_a_recreated_dataset(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    let base = server.url();
    ingest_ok(&http, base, "crew", "mode=create", WORKERS).await;
    let count = "SELECT count(*) FROM crew";
    assert_eq!(scalar(&http, base, count).await, json!(3));
    ingest_ok(
        &http,
        base,
        "crew",
        "mode=append",
        "worker_id,name,state,rate,active,available_from\nw-4,Di,NY,22,true,2025-03-03\n",
    )
    .await;
    assert_eq!(scalar(&http, base, count).await, json!(4));

    let deleted = http
        .delete(format!("{base}/v1/catalog/datasets/crew"))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert_eq!(sql(&http, base, count).await.status().as_u16(), 400);

    // Versions 0 and 1 again, with other rows and another schema.
    ingest_ok(&http, base, "crew", "mode=create", PLACEMENTS).await;
    let appended = ingest_ok(
        &http,
        base,
        "crew",
        "mode=append",
        "placement_id,worker_id,hours\n4,w-9,1\n5,w-9,2\n",
    )
    .await;
    assert_eq!(appended["version"], json!(1));
    assert_eq!(scalar(&http, base, count).await, json!(5));
    assert_eq!(
        scalar(&http, base, "SELECT sum(hours) FROM crew").await,
        json!(63)
    );
}

/// A text column of a few long values repeated over many rows is read as a dictionary (a function over it
/// then runs once per distinct value); every answer must be the same as for any text column, including
/// over a second version whose file holds other values, in every response encoding.
async fn repeated_long_text_reads_as_a_dictionary_and_answers_as_text(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let (http, base) = (Client::new(), server.url());
    const NOTES: [&str; 3] = [
        "Holiday OVERTIME approved by site lead",
        "no lunch break, \"paid\" per agreement",
        "",
    ];
    let mut body = String::from("sheet,shift,note\n");
    for i in 0..3000 {
        let note = NOTES[i % 3].replace('"', "\"\"");
        let shift = if i % 2 == 0 { "day" } else { "night" };
        body.push_str(&format!("{i},{shift},\"{note}\"\n"));
    }
    ingest_ok(&http, base, "sheets", "mode=create", &body).await;

    let types = rows(
        &http,
        base,
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_name = 'sheets' ORDER BY column_name",
    )
    .await;
    assert_eq!(
        types,
        vec![
            json!(["note", "Dictionary(Int32, Utf8)"]),
            json!(["sheet", "Int64"]),
            json!(["shift", "Utf8View"]),
        ]
    );
    let overtime = "SELECT count(*) FROM sheets WHERE lower(note) LIKE '%overtime%'";
    assert_eq!(scalar(&http, base, overtime).await, json!(1000));
    assert_eq!(
        rows(
            &http,
            base,
            "SELECT note, count(*) FROM sheets GROUP BY note ORDER BY note NULLS FIRST"
        )
        .await,
        vec![
            json!([null, 1000]),
            json!(["Holiday OVERTIME approved by site lead", 1000]),
            json!(["no lunch break, \"paid\" per agreement", 1000]),
        ]
    );

    // A second file with values the first one's dictionary does not hold.
    ingest_ok(
        &http,
        base,
        "sheets",
        "mode=append",
        "sheet,shift,note\n3000,day,unplanned overtime at the north gate\n3001,night,\n",
    )
    .await;
    assert_eq!(scalar(&http, base, overtime).await, json!(1001));
    let statement =
        json!({"sql": "SELECT sheet, note FROM sheets WHERE sheet IN (1, 3000) ORDER BY sheet"});
    let body = post_json(&http, format!("{base}/v1/sql"), &statement).await;
    assert_eq!(
        body["columns"],
        json!([{"name": "sheet", "type": "int64"}, {"name": "note", "type": "string"}])
    );
    assert_eq!(
        body["rows"],
        json!([
            [1, "no lunch break, \"paid\" per agreement"],
            [3000, "unplanned overtime at the north gate"]
        ])
    );
    let csv = sql_as(&http, base, "text/csv", &statement)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        "sheet,note\n1,\"no lunch break, \"\"paid\"\" per agreement\"\n3000,unplanned overtime at the north gate\n"
    );
    let arrow = sql_as(
        &http,
        base,
        "application/vnd.apache.arrow.stream",
        &statement,
    )
    .await
    .bytes()
    .await
    .unwrap();
    let result = lakehouse_api::QueryResult::from_ipc(&arrow, false, 0).unwrap();
    let decoded = serde_json::to_value(result.to_sql_response().unwrap().rows).unwrap();
    assert_eq!(decoded, body["rows"]);
}
