//! Corpora over time: following appends and overwrites, resuming a build after `kill -9`, recordings
//! surviving `kill -9`, bad definitions and searches, the split deployment, and the `search` command.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};

use crate::common::{
    Backend, expect_error, generate, get_json, ingest, metric, search, server, sql_rows, staffing,
    start_staffing, wait_ready, workers_corpus,
};

/// A CSV with the line of one id changed by `edit` (fields split on commas: only the leading, unquoted
/// fields may be edited), or dropped when `edit` answers `None`.
fn edit_csv(text: &str, id: &str, edit: impl Fn(Vec<String>) -> Option<Vec<String>>) -> String {
    let prefix = format!("{id},");
    text.lines()
        .filter_map(|line| {
            if !line.starts_with(&prefix) {
                return Some(line.to_owned());
            }
            let fields: Vec<String> = line.splitn(15, ',').map(str::to_owned).collect();
            edit(fields).map(|f| f.join(","))
        })
        .map(|l| l + "\n")
        .collect()
}

fn vector_count(info: &Value) -> u64 {
    info["count"].as_u64().unwrap_or(u64::MAX)
}

/// After an append the corpus catches up by itself, embedding only the new rows; after an overwrite it
/// embeds the row whose text changed, updates the one whose metadata changed, and removes vanished ids.
#[tokio::test]
async fn corpora_follow_appends_and_overwrites() {
    let s = staffing(Backend::Local, server(), 200).await;
    let (http, url) = (&s.http, s.url().to_owned());

    // 220 workers of the same seed: the first 200 are the ones already ingested.
    let more = tempfile::tempdir().unwrap();
    generate(more.path(), 220, 7);
    let all = std::fs::read_to_string(more.path().join("workers.csv")).unwrap();
    let mut lines = all.lines();
    let header = lines.next().unwrap().to_owned();
    let appended: String = std::iter::once(header.clone())
        .chain(lines.skip(200).map(str::to_owned))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(appended.lines().count(), 21);
    ingest(http, &url, "workers", "append", appended.into_bytes()).await;

    // Searches keep answering while it catches up, from version 0 and then from version 1.
    let mut versions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = search(http, &url, json!({"query": "welder", "k": 5})).await;
        let version = answer["corpora"]["workers"]["dataset_version"]
            .as_u64()
            .unwrap();
        versions.push(version);
        if version == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {versions:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "{versions:?}");
    let info = wait_ready(http, &url, "workers", Some(1)).await;
    let sync = &info["last_sync"];
    assert_eq!(sync["embedded"], 20, "{info}");
    assert_eq!(sync["metadata_updated"], 0);
    assert_eq!(sync["deleted"], 0);
    assert_eq!(info["rows_total"], 220);
    let index = get_json(http, format!("{url}/v1/vectors/index/matrix-workers")).await;
    assert_eq!(vector_count(&index), 220);

    // An overwrite: W-000001's role changes (its text), W-000002's rating (metadata only), W-000003 is gone,
    // and so are the 20 appended rows.
    let original = std::fs::read_to_string(s.file("workers")).unwrap();
    let edited = edit_csv(&original, "W-000001", |mut f| {
        f[9] = "Registered Nurse".into();
        Some(f)
    });
    let edited = edit_csv(&edited, "W-000002", |mut f| {
        f[13] = "1.1".into();
        Some(f)
    });
    let edited = edit_csv(&edited, "W-000003", |_| None);
    ingest(http, &url, "workers", "overwrite", edited.into_bytes()).await;
    let info = wait_ready(http, &url, "workers", Some(2)).await;
    let sync = &info["last_sync"];
    assert_eq!(sync["embedded"], 1, "{info}");
    assert_eq!(sync["metadata_updated"], 1, "{info}");
    assert_eq!(sync["deleted"], 21, "{info}");
    assert_eq!(info["rows_total"], 199);
    let index = get_json(http, format!("{url}/v1/vectors/index/matrix-workers")).await;
    assert_eq!(vector_count(&index), 199);
    expect_error(
        http.get(format!(
            "{url}/v1/vectors/index/matrix-workers/items/W-000003"
        ))
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;

    // The new metadata is what both retrievals filter on.
    for mode in ["hybrid", "vector", "keyword"] {
        let answer = search(
            http,
            &url,
            json!({"query": "years of experience", "k": 10, "mode": mode, "include_ineligible": true,
                   "filters": {"rating": {"lte": 1.5}}}),
        )
        .await;
        let ids: Vec<&str> = answer["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["W-000002"], "{mode}: {answer}");
        assert_eq!(answer["corpora"]["workers"]["dataset_version"], 2);
    }
    let nurse = search(
        http,
        &url,
        json!({"query": "registered nurse", "k": 100, "include_ineligible": true,
               "filters": {"primary_role": "Registered Nurse"}}),
    )
    .await;
    assert!(
        nurse["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == "W-000001")
    );
}

/// A build killed with `kill -9` resumes at start and ends with every row indexed once.
#[tokio::test]
async fn a_build_killed_midway_resumes_where_it_stopped() {
    let csv = tempfile::tempdir().unwrap();
    generate(csv.path(), 400, 5);
    let mut server = server()
        .config("[matrix]\nembed_batch = 8\ncheckpoint_rows = 16\n")
        .spawn()
        .await;
    let http = Client::new();
    let url = server.url().to_owned();
    start_staffing(&http, &url, csv.path()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let info = get_json(&http, format!("{url}/v1/matrix/corpora/workers")).await;
        let indexed = info["rows_indexed"].as_u64().unwrap();
        if indexed >= 64 {
            assert!(
                indexed < 400,
                "the build finished before it could be killed: {info}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{info}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    server.start().await;
    let url = server.url().to_owned();
    let info = wait_ready(&http, &url, "workers", Some(0)).await;
    assert_eq!(info["rows_indexed"], 400);
    let embedded = info["last_sync"]["embedded"].as_u64().unwrap();
    assert!(
        embedded <= 400 - 48,
        "the resumed build embedded {embedded} rows: it did not resume"
    );
    let index = get_json(&http, format!("{url}/v1/vectors/index/matrix-workers")).await;
    assert_eq!(vector_count(&index), 400, "every row once: {index}");
    let answer = search(&http, &url, json!({"query": "forklift", "k": 5})).await;
    assert_eq!(answer["hits"].as_array().unwrap().len(), 5);
}

/// Every recording flushed before a `kill -9` is readable by SQL afterwards, and the table is intact.
#[tokio::test]
async fn recordings_flushed_before_a_kill_survive_it() {
    let mut s = staffing(Backend::Local, server(), 120).await;
    let url = s.url().to_owned();
    let http = s.http.clone();
    let stream_url = url.clone();
    let stream = tokio::spawn(async move {
        let http = Client::new();
        let queries = [
            "forklift",
            "welder",
            "nurse",
            "line cook",
            "electrician",
            "driver",
        ];
        for i in 0.. {
            let body = json!({"query": queries[i % queries.len()], "k": 3});
            if http
                .post(format!("{stream_url}/v1/matrix/search"))
                .json(&body)
                .send()
                .await
                .is_err()
            {
                return i;
            }
        }
        0
    });
    // Let a few flushes happen, read how many were written, then kill mid-stream.
    let written = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let written =
            metric(&http, &url, "lakehouse_matrix_recordings_written_total ").await as u64;
        if written >= 30 {
            break written;
        }
    };
    s.server.kill9();
    let sent = stream.await.unwrap();
    assert!(sent as u64 >= written);
    s.server.start().await;
    let url = s.server.url().to_owned();
    let rows = sql_rows(
        &http,
        &url,
        "SELECT count(*), count(DISTINCT recording_id) FROM matrix_recordings",
    )
    .await;
    let (count, distinct) = (rows[0][0].as_u64().unwrap(), rows[0][1].as_u64().unwrap());
    assert!(
        count >= written,
        "{count} recordings readable, {written} were flushed"
    );
    assert_eq!(count, distinct, "no recording twice");
    let every_column = sql_rows(
        &http,
        &url,
        "SELECT * FROM matrix_recordings ORDER BY recorded_at LIMIT 3",
    )
    .await;
    assert_eq!(every_column[0].len(), 16);
    // The table takes new recordings after the restart.
    wait_ready(&http, &url, "workers", None).await;
    search(&http, &url, json!({"query": "after restart", "k": 1})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sql_rows(
        &http,
        &url,
        "SELECT count(*) FROM matrix_recordings WHERE query = 'after restart'",
    )
    .await[0][0]
        != 1
    {
        assert!(Instant::now() < deadline, "new recordings are not appended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create(http: &Client, url: &str, definition: Value) -> reqwest::Response {
    http.post(format!("{url}/v1/matrix/corpora"))
        .json(&definition)
        .send()
        .await
        .unwrap()
}

/// Bad definitions name what is wrong and create nothing; bad searches are 4xx; a failed build reports
/// failed with the reason, keeps answering from its last state, and recovers.
#[tokio::test]
async fn bad_input_is_refused_and_a_failed_build_recovers() {
    let server = server().spawn().await;
    let http = Client::new();
    let url = server.url().to_owned();
    ingest(
        &http,
        &url,
        "people",
        "create",
        b"pid,bio,city\np1,forklift driver,Dallas\np2,welder,Austin\n".to_vec(),
    )
    .await;
    ingest(
        &http,
        &url,
        "dups",
        "create",
        b"pid,bio\np1,a\np1,b\n".to_vec(),
    )
    .await;
    ingest(
        &http,
        &url,
        "holes",
        "create",
        b"pid,bio\np1,a\n,b\n".to_vec(),
    )
    .await;
    let base = json!({"name": "people", "dataset": "people", "id_column": "pid", "text": "bio", "fields": ["city"]});
    let with = |change: Value| {
        let mut d = base.clone();
        for (k, v) in change.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };
    for (definition, status, code, says) in [
        (
            with(json!({"dataset": "nobody"})),
            404,
            "dataset_not_found",
            "nobody",
        ),
        (with(json!({"id_column": "id"})), 400, "bad_request", "'id'"),
        (
            with(json!({"text": "{bio} in {town}"})),
            400,
            "bad_request",
            "town",
        ),
        (
            with(json!({"fields": ["city", "zip"]})),
            400,
            "bad_request",
            "zip",
        ),
        (
            with(json!({"eligibility": [{"field": "city", "near": "x"}]})),
            400,
            "bad_request",
            "near",
        ),
        (
            with(json!({"eligibility": [{"field": "state", "equals": "TX"}]})),
            400,
            "bad_request",
            "state",
        ),
        (
            with(json!({"eligibility": [{"field": "city", "lte": {"order": "x"}}]})),
            400,
            "bad_request",
            "orders",
        ),
        (
            with(json!({"dataset": "dups", "fields": []})),
            400,
            "bad_request",
            "not unique",
        ),
        (
            with(json!({"dataset": "holes", "fields": []})),
            400,
            "bad_request",
            "null",
        ),
        (
            with(json!({"name": "No Spaces"})),
            400,
            "bad_request",
            "name",
        ),
        (
            with(json!({"colour": "red"})),
            400,
            "invalid_json",
            "colour",
        ),
    ] {
        let message =
            expect_error(create(&http, &url, definition.clone()).await, status, code).await;
        assert!(message.contains(says), "{definition}: {message}");
    }
    let listed = get_json(&http, format!("{url}/v1/matrix/corpora")).await;
    assert_eq!(listed["corpora"], json!([]), "nothing created");

    assert_eq!(
        create(&http, &url, base.clone()).await.status().as_u16(),
        202
    );
    expect_error(
        create(&http, &url, base.clone()).await,
        409,
        "already_exists",
    )
    .await;
    wait_ready(&http, &url, "people", Some(0)).await;
    let bad_searches = [
        (json!({"query": "x", "k": 0}), 400, "bad_request"),
        (json!({"query": "x", "k": 101}), 400, "bad_request"),
        (json!({"query": "  "}), 400, "bad_request"),
        (
            json!({"query": "x", "corpora": ["nobody"]}),
            404,
            "not_found",
        ),
        (json!({"query": "x", "corpora": []}), 400, "bad_request"),
        (
            json!({"query": "x", "filters": {"city": {"near": 1}}}),
            400,
            "invalid_filter",
        ),
        (
            json!({"query": "x", "filters": {"zip": "75001"}}),
            400,
            "invalid_filter",
        ),
        (
            json!({"query": "x", "filters": "city = Dallas"}),
            400,
            "invalid_filter",
        ),
        (json!({"query": "x", "mode": "fuzzy"}), 400, "invalid_json"),
        (
            json!({"query": "x", "order_id": "JO-1"}),
            400,
            "bad_request",
        ),
        (json!({"query": "x", "limit": 3}), 400, "invalid_json"),
    ];
    for (body, status, code) in bad_searches {
        let response = http
            .post(format!("{url}/v1/matrix/search"))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, status, code).await;
    }

    // The dataset loses the text column: the catch-up fails and says why; searches answer from version 0.
    ingest(
        &http,
        &url,
        "people",
        "overwrite",
        b"pid,city\np1,Dallas\n".to_vec(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let info = get_json(&http, format!("{url}/v1/matrix/corpora/people")).await;
        if info["status"] == "failed" {
            break info;
        }
        assert!(Instant::now() < deadline, "{info}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        failed["error"].as_str().unwrap().contains("bio"),
        "{failed}"
    );
    let answer = search(&http, &url, json!({"query": "forklift"})).await;
    assert_eq!(answer["corpora"]["people"]["dataset_version"], 0);
    assert_eq!(answer["hits"][0]["id"], "p1");
    // Fixed at the source, it follows again; a rebuild is accepted at any time.
    ingest(
        &http,
        &url,
        "people",
        "overwrite",
        b"pid,bio,city\np1,forklift driver,Dallas\np3,nurse,Reno\n".to_vec(),
    )
    .await;
    wait_ready(&http, &url, "people", Some(2)).await;
    let rebuilt = http
        .post(format!("{url}/v1/matrix/corpora/people/rebuild"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebuilt.status().as_u16(), 202);
    wait_ready(&http, &url, "people", Some(2)).await;

    let deleted = http
        .delete(format!("{url}/v1/matrix/corpora/people"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    expect_error(
        http.get(format!("{url}/v1/matrix/corpora/people"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        http.get(format!("{url}/v1/vectors/index/matrix-people"))
            .send()
            .await
            .unwrap(),
        404,
        "index_not_found",
    )
    .await;
}

/// matrixd alone (`--only matrixd`), over the other services in another process, behind a gateway.
#[tokio::test]
async fn matrixd_runs_alone_behind_a_gateway() {
    let backend = server()
        .arg("--only")
        .arg("storaged,catalogd,ingestd,queryd,vectord,embedd")
        .spawn()
        .await;
    let b = backend.url();
    let services = format!(
        "[services]\nstoraged = \"{b}\"\ncatalogd = \"{b}\"\ningestd = \"{b}\"\nqueryd = \"{b}\"\n\
         vectord = \"{b}\"\nembedd = \"{b}\"\n"
    );
    let matrixd = server()
        .config(&services)
        .arg("--only")
        .arg("matrixd")
        .spawn()
        .await;
    let gateway = server()
        .config(&format!("{services}matrixd = \"{}\"\n", matrixd.url()))
        .arg("--only")
        .arg("gateway")
        .spawn()
        .await;
    let http = Client::new();
    let url = gateway.url().to_owned();
    let csv = tempfile::tempdir().unwrap();
    generate(csv.path(), 100, 3);
    for table in ["workers", "job_orders"] {
        ingest(
            &http,
            &url,
            table,
            "create",
            std::fs::read(csv.path().join(format!("{table}.csv"))).unwrap(),
        )
        .await;
    }
    assert_eq!(
        create(&http, &url, workers_corpus())
            .await
            .status()
            .as_u16(),
        202
    );
    wait_ready(&http, &url, "workers", Some(0)).await;
    let answer = search(&http, &url, json!({"query": "welder", "k": 3})).await;
    assert_eq!(answer["hits"].as_array().unwrap().len(), 3);
    let order = sql_rows(
        &http,
        &url,
        "SELECT order_id FROM job_orders ORDER BY order_id LIMIT 1",
    )
    .await;
    search(
        &http,
        &url,
        json!({"order_id": order[0][0], "k": 3, "include_ineligible": true}),
    )
    .await;
    expect_error(
        http.post(format!("{url}/v1/matrix/search"))
            .json(&json!({"order_id": "JO-404"}))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    // The corpus and the recordings live with the backend's storage.
    let health = get_json(&http, format!("{url}/health")).await;
    assert_eq!(health["services"]["matrixd"]["status"], "ok", "{health}");
    assert!(
        backend
            .data_dir()
            .join("_catalog/matrix/corpora/workers/definition.json")
            .is_file()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = get_json(&http, format!("{url}/v1/catalog/datasets")).await;
        if listed.to_string().contains("matrix_recordings") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recordings never reached the backend: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `lakehouse search` prints an aligned table with eligibility and reasons.
#[tokio::test]
async fn the_search_command_prints_a_table_with_reasons() {
    let s = staffing(Backend::Local, server(), 120).await;
    let order = sql_rows(
        &s.http,
        s.url(),
        "SELECT order_id FROM job_orders ORDER BY order_id LIMIT 1",
    )
    .await;
    let order = order[0][0].as_str().unwrap().to_owned();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args([
            "search",
            "forklift operator",
            "--k",
            "3",
            "--include-ineligible",
            "--order",
            &order,
        ])
        .args(["--url", s.url()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = text.lines().next().unwrap();
    for column in ["#", "id", "score", "eligible", "primary_role", "reasons"] {
        assert!(header.split_whitespace().any(|c| c == column), "{header}");
    }
    assert!(text.contains(" no "), "an ineligible row: {text}");
    assert!(text.contains("workers@v0"), "{text}");
    let json_out = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args([
            "search",
            "welder",
            "--format",
            "json",
            "--filter",
            "{\"state\": \"TX\"}",
            "--url",
            s.url(),
        ])
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert!(
        answer["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["fields"]["state"] == "TX")
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(["search", "x", "--k", "0", "--url", s.url()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("k must be between"));
}
