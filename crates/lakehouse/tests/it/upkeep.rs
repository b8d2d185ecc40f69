//! Tables over time, through the real binary: one-row appends pile up small files, and the catalog compacts
//! them on its own (a small threshold here; `scripts/bench` runs thousands), every row once, every version
//! inside the log still readable; `POST .../optimize` and `lakehouse datasets optimize` compact on request.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;

use crate::common::{Backend, get_json, on_both_backends, server_on};
use crate::datasets::sql;

async fn scalar(http: &Client, url: &str, statement: &str) -> i64 {
    let response = sql(http, url, statement).await;
    assert_eq!(response.status().as_u16(), 200, "{statement}");
    let body: Value = response.json().await.unwrap();
    body["rows"][0][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{statement}: {body}"))
}

async fn files(http: &Client, url: &str) -> usize {
    let manifest = get_json(http, format!("{url}/v1/catalog/datasets/trickle")).await;
    manifest["files"].as_array().map_or(0, Vec::len)
}

async fn many_appends_stay_few_files(backend: Backend) {
    let (server, _s3) =
        server_on(backend, &[("LAKEHOUSE_DATASETS__COMPACT_SMALL_FILES", "8")]).await;
    let url = server.url();
    let http = Client::new();
    let append = |i: usize, mode: &'static str| {
        http.post(format!("{url}/v1/ingest/trickle?mode={mode}"))
            .header("content-type", "text/csv")
            .body(format!("id,note\n{i},row {i}\n"))
            .send()
    };
    assert_eq!(append(0, "create").await.unwrap().status().as_u16(), 201);
    let appends = 120;
    for i in 1..=appends {
        let response = append(i, "append").await.unwrap();
        assert_eq!(response.status().as_u16(), 201, "append {i}");
    }
    // The last compaction runs after the last append that passed the threshold.
    let deadline = Instant::now() + Duration::from_secs(60);
    while files(&http, url).await > 16 {
        assert!(
            Instant::now() < deadline,
            "{} files after {appends} appends",
            files(&http, url).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = i64::try_from(appends + 1).unwrap();
    assert_eq!(
        scalar(&http, url, "SELECT count(*) FROM trickle").await,
        rows
    );
    assert_eq!(
        scalar(&http, url, "SELECT count(DISTINCT id) FROM trickle").await,
        rows
    );
    // A version before the compactions reads as it was.
    assert_eq!(
        scalar(&http, url, "SELECT count(*) FROM \"trickle@v5\"").await,
        6
    );
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let compactions = metrics
        .lines()
        .find(|l| l.starts_with("lakehouse_catalog_compactions"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(compactions >= 1.0, "{metrics}");

    // On request: what small files are left become one (or nothing is left to do).
    for i in 1..=5 {
        let response = append(appends + i, "append").await.unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let done: Value = http
        .post(format!("{url}/v1/catalog/datasets/trickle/optimize"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["dataset"], "trickle", "{done}");
    // The appends may have passed the threshold and been compacted on their own already.
    let compacted = done["version"].is_u64() && done["files_removed"].as_u64().unwrap() >= 2;
    let nothing_left = done["skipped"].is_string() && done["small_files"].as_u64().unwrap() <= 1;
    assert!(compacted || nothing_left, "{done}");
    assert_eq!(
        files(&http, url).await,
        1,
        "every file of the table is small: one is left"
    );
    assert_eq!(
        scalar(&http, url, "SELECT count(*) FROM trickle").await,
        rows + 5
    );
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(["datasets", "optimize", "trickle", "--url", url])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(String::from_utf8_lossy(&cli.stdout).starts_with("trickle:"));
    let missing = http
        .post(format!("{url}/v1/catalog/datasets/nothing_here/optimize"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // History is paged: newest first, each page continuing where the last stopped, read without listing
    // the log.
    let manifest = get_json(&http, format!("{url}/v1/catalog/datasets/trickle")).await;
    let current = manifest["version"].as_u64().unwrap();
    assert_eq!(
        manifest["history"].as_array().unwrap().len(),
        100,
        "the first page"
    );
    assert_eq!(manifest["history"][0]["version"].as_u64(), Some(current));
    let short = get_json(&http, format!("{url}/v1/catalog/datasets/trickle?limit=5")).await;
    assert_eq!(short["history"].as_array().unwrap().len(), 5);
    let mut seen = Vec::new();
    let mut next = format!("{url}/v1/catalog/datasets/trickle/history?limit=40");
    loop {
        let page = get_json(&http, next.clone()).await;
        seen.extend(
            page["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["version"].as_u64().unwrap()),
        );
        match page["next_before"].as_u64() {
            Some(before) => {
                next = format!("{url}/v1/catalog/datasets/trickle/history?limit=40&before={before}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..=current).rev().collect::<Vec<_>>(),
        "every version once, newest first"
    );
    for bad in ["limit=0", "limit=5000", "before=x", "since=3"] {
        let response = http
            .get(format!("{url}/v1/catalog/datasets/trickle/history?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{bad}");
    }
}

on_both_backends!(many_appends_stay_few_files);
