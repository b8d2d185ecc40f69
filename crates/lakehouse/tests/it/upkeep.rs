//! Tables over time, through the real binary: one-row appends pile up small files, and the catalog compacts
//! them on its own (a small threshold here; `scripts/bench` runs thousands), every row once, every version
//! inside the log still readable; `POST .../optimize` and `lakehouse datasets optimize` compact on request.
//! Versions past the retention are refused, naming the oldest kept; a vacuum removes only what no kept
//! version needs; a `kill -9` in the middle of a compaction or a vacuum loses no acknowledged row, and the
//! next run finishes the job.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::Value;

use crate::common::{
    Backend, expect_error, get_json, metric, metrics_text, on_both_backends, server, server_on,
    spawn_on, sql, two_on_one_bucket,
};

async fn scalar(http: &Client, url: &str, statement: &str) -> i64 {
    let response = sql(http, url, statement).await;
    assert_eq!(response.status().as_u16(), 200, "{statement}");
    let body: Value = response.json().await.unwrap();
    body["rows"][0][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{statement}: {body}"))
}

async fn files(http: &Client, url: &str, table: &str) -> usize {
    let manifest = get_json(http, format!("{url}/v1/catalog/datasets/{table}")).await;
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
    while files(&http, url, "trickle").await > 16 {
        assert!(
            Instant::now() < deadline,
            "{} files after {appends} appends",
            files(&http, url, "trickle").await
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
    let metrics = metrics_text(&http, url).await;
    let compactions = metric(&http, url, "lakehouse_catalog_compactions").await;
    assert!(compactions >= 1.0, "{metrics}");

    // On request: what small files are left become one (or nothing is left to do).
    for i in 1..=5 {
        let response = append(appends + i, "append").await.unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let done: Value = crate::common::answer_json(
        http.post(format!("{url}/v1/catalog/datasets/trickle/optimize")),
    )
    .await;
    assert_eq!(done["dataset"], "trickle", "{done}");
    // The appends may have passed the threshold and been compacted on their own already.
    let compacted = done["version"].is_u64() && done["files_removed"].as_u64().unwrap() >= 2;
    let nothing_left = done["skipped"].is_string() && done["small_files"].as_u64().unwrap() <= 1;
    assert!(compacted || nothing_left, "{done}");
    assert_eq!(
        files(&http, url, "trickle").await,
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

/// Settings for the retention tests: versions kept no time (only the current), no removed file kept past a
/// second, nothing done in the background unless asked.
const KEEP_NOTHING: &str = "[datasets]\ncompact_small_files = 0\nkeep_versions = 0\nvacuum_grace_secs = 1\n\
                            vacuum_every_secs = 0\nupkeep_lease_secs = 2\n\
                            [datasets.tables.kept]\nkeep_versions = 7\n";

/// The data files of a table on storage (listed through the storage API, whatever the backend).
async fn stored_files(http: &Client, url: &str, table: &str) -> usize {
    let listing = get_json(
        http,
        format!("{url}/v1/storage/objects?prefix=datasets/{table}/&limit=1000"),
    )
    .await;
    listing["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("{listing}"))
        .iter()
        .filter(|o| o["key"].as_str().is_some_and(|k| k.ends_with(".parquet")))
        .count()
}

/// Creates `table` with row 0 and appends rows 1..=`appends`, one per commit.
async fn one_row_appends(http: &Client, url: &str, table: &str, appends: usize) {
    for i in 0..=appends {
        let mode = if i == 0 { "create" } else { "append" };
        let response = http
            .post(format!("{url}/v1/ingest/{table}?mode={mode}"))
            .header("content-type", "text/csv")
            .body(format!("id,note\n{i},row {i}\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "{table} row {i}");
    }
}

async fn post_value(http: &Client, url: String) -> Value {
    let response = http.post(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.json().await.unwrap()
}

fn cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn retention_and_vacuum(backend: Backend) {
    let (server, _s3) = spawn_on(backend, server().config(KEEP_NOTHING)).await;
    let url = server.url();
    let http = Client::new();
    for table in ["trail", "kept"] {
        one_row_appends(&http, url, table, 9).await;
        let done = post_value(&http, format!("{url}/v1/catalog/datasets/{table}/optimize")).await;
        assert_eq!(done["version"], 10, "{done}");
        assert_eq!(stored_files(&http, url, table).await, 11);
    }
    // Kept no time: only the current version is a target, and asking for another names it.
    let old = http
        .get(format!("{url}/v1/catalog/datasets/trail/versions/3"))
        .send()
        .await
        .unwrap();
    let message = expect_error(old, 410, "version_expired").await;
    assert!(message.contains("oldest version kept is 10"), "{message}");
    let response = sql(&http, url, "SELECT count(*) FROM \"trail@v3\"").await;
    assert_eq!(response.status().as_u16(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("oldest version kept is 10"), "{body}");
    // Kept a week by its own setting: every version reads.
    assert_eq!(
        scalar(&http, url, "SELECT count(*) FROM \"kept@v3\"").await,
        4
    );

    // Past the grace, the dry run lists the ten small files and removes nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let dry = cli(&["datasets", "vacuum", "trail", "--url", url]);
    assert!(dry.contains("would remove 10 files"), "{dry}");
    assert!(dry.contains("--apply"), "{dry}");
    assert_eq!(stored_files(&http, url, "trail").await, 11);
    let applied = cli(&["datasets", "vacuum", "trail", "--apply", "--url", url]);
    assert!(applied.contains("removed 10 files"), "{applied}");
    assert_eq!(stored_files(&http, url, "trail").await, 1);
    assert_eq!(scalar(&http, url, "SELECT count(*) FROM trail").await, 10);
    assert_eq!(
        scalar(&http, url, "SELECT sum(id) FROM trail").await,
        (0..10).sum::<i64>()
    );
    // The table kept a week loses nothing; its old versions still read.
    let kept = post_value(&http, format!("{url}/v1/catalog/datasets/kept/vacuum")).await;
    assert_eq!(
        (kept["files"].as_u64(), kept["dry_run"].as_bool()),
        (Some(0), Some(false)),
        "{kept}"
    );
    assert_eq!(stored_files(&http, url, "kept").await, 11);
    assert_eq!(
        scalar(&http, url, "SELECT count(*) FROM \"kept@v3\"").await,
        4
    );
    // Appends go on; the metrics count what went, and each table's files.
    one_row_appends_more(&http, url, "trail", 10).await;
    assert_eq!(scalar(&http, url, "SELECT count(*) FROM trail").await, 11);
    let metrics = metrics_text(&http, url).await;
    assert!(
        metrics.contains("\nlakehouse_catalog_vacuum_files_removed_total 10\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lakehouse_table_files{dataset=\"kept\"} 1\n"),
        "{metrics}"
    );
    for (path, status) in [
        ("nothing_here/vacuum", 404),
        ("trail/vacuum?dry_run=maybe", 400),
        ("trail/vacuum?keep=0", 400),
    ] {
        let response = http
            .post(format!("{url}/v1/catalog/datasets/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
    }
}

async fn one_row_appends_more(http: &Client, url: &str, table: &str, id: usize) {
    let response = http
        .post(format!("{url}/v1/ingest/{table}?mode=append"))
        .header("content-type", "text/csv")
        .body(format!("id,note\n{id},row {id}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

/// Appends one row at a time from a task until told to stop; the ids whose append was acknowledged.
fn appender(
    http: Client,
    url: String,
    first: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<usize>> {
    tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let mut id = first;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let sent = http
                .post(format!("{url}/v1/ingest/crash?mode=append"))
                .header("content-type", "text/csv")
                .body(format!("id,note\n{id},row {id}\n"))
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().as_u16() == 201) {
                acknowledged.push(id);
            }
            id += 1;
        }
        acknowledged
    })
}

/// Every acknowledged id is in the table exactly once.
async fn every_acknowledged_row_once(http: &Client, url: &str, acknowledged: &[usize]) {
    let response = sql(
        http,
        url,
        "SELECT id, count(*) AS n FROM crash GROUP BY id HAVING count(*) > 1",
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["rows"].as_array().map(Vec::len),
        Some(0),
        "repeated rows: {body}"
    );
    let response = sql(http, url, "SELECT id FROM crash").await;
    let body: Value = response.json().await.unwrap();
    let present: std::collections::HashSet<u64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect();
    for id in acknowledged {
        assert!(
            present.contains(&(*id as u64)),
            "acknowledged row {id} lost"
        );
    }
}

/// Optimizes (or vacuums) until the run is not refused for a lease a killed process left behind.
async fn until_done(http: &Client, url: &str, route: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = post_value(http, format!("{url}/v1/catalog/datasets/crash/{route}")).await;
        let held = done["skipped"]
            .as_str()
            .is_some_and(|s| s.contains("lease"));
        if !held {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "the lease was never freed: {done}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn kill_9_during_compaction_and_vacuum(backend: Backend) {
    let (mut server, _s3) = spawn_on(backend, server().config(KEEP_NOTHING)).await;
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut url = server.url().to_owned();
    one_row_appends(&http, &url, "crash", 0).await;
    let mut acknowledged = vec![0];
    let seed: u64 = rand::random();
    for (round, route) in ["optimize", "vacuum"].into_iter().enumerate() {
        // Small files to work on, appends racing the run, and a kill at a moment of the seed's choosing.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = appender(http.clone(), url.clone(), 1000 * (round + 1), stop.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if route == "vacuum" {
            let compacted = until_done(&http, &url, "optimize").await;
            assert!(compacted["version"].is_u64(), "{compacted}");
        }
        let request = {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                http.post(format!("{url}/v1/catalog/datasets/crash/{route}"))
                    .send()
                    .await
            })
        };
        let delay = (seed >> (round * 8)) % 400;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        acknowledged.extend(writer.await.unwrap());
        let _ = request.await;
        server.start().await;
        server.url().clone_into(&mut url);
        every_acknowledged_row_once(&http, &url, &acknowledged).await;
        // The next run finishes the job: a compaction leaves one file; a vacuum leaves only that file,
        // the files of the killed runs (never committed) gone with the rest.
        until_done(&http, &url, "optimize").await;
        if route == "vacuum" {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            until_done(&http, &url, "vacuum").await;
            assert_eq!(
                stored_files(&http, &url, "crash").await,
                files(&http, &url, "crash").await,
                "only the current version's files are left (seed {seed})"
            );
        }
        every_acknowledged_row_once(&http, &url, &acknowledged).await;
        let rows = scalar(&http, &url, "SELECT count(*) FROM crash").await;
        assert!(rows >= acknowledged.len() as i64, "seed {seed}");
    }
}

on_both_backends!(
    many_appends_stay_few_files,
    retention_and_vacuum,
    kill_9_during_compaction_and_vacuum
);

/// Two instances on one bucket append to one table from two tasks each while both compact it (on their own
/// past a low threshold, and by hand): every acknowledged row once, and the table ends compacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_compacting_while_appending_keep_every_row_once() {
    let (a, b, _s3) =
        two_on_one_bucket("[datasets]\ncompact_small_files = 6\nupkeep_lease_secs = 5\n").await;
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    one_row_appends(&http, a.url(), "crash", 0).await;
    let writers: Vec<_> = [a.url(), b.url(), a.url(), b.url()]
        .into_iter()
        .enumerate()
        .map(|(w, url)| {
            let (http, url) = (http.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..20 {
                    let id = 1 + w * 1000 + i;
                    // A conflict is retried, as a client would; anything else is a failure.
                    for _ in 0..20 {
                        let response = http
                            .post(format!("{url}/v1/ingest/crash?mode=append"))
                            .header("content-type", "text/csv")
                            .body(format!("id,note\n{id},row {id}\n"))
                            .send()
                            .await
                            .unwrap();
                        match response.status().as_u16() {
                            201 => {
                                acknowledged.push(id);
                                break;
                            }
                            409 | 503 => tokio::time::sleep(Duration::from_millis(50)).await,
                            other => {
                                panic!("append {id}: {other} {}", response.text().await.unwrap())
                            }
                        }
                    }
                }
                acknowledged
            })
        })
        .collect();
    let by_hand = {
        let (http, a, b) = (http.clone(), a.url().to_owned(), b.url().to_owned());
        tokio::spawn(async move {
            for round in 0..6 {
                let url = if round % 2 == 0 { &a } else { &b };
                let response = http
                    .post(format!("{url}/v1/catalog/datasets/crash/optimize"))
                    .send()
                    .await
                    .unwrap();
                assert!(
                    [200, 409].contains(&response.status().as_u16()),
                    "{}",
                    response.text().await.unwrap()
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let mut acknowledged = vec![0];
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    by_hand.await.unwrap();
    assert_eq!(
        acknowledged.len(),
        81,
        "every append acknowledged in the end"
    );
    for url in [a.url(), b.url()] {
        every_acknowledged_row_once(&http, url, &acknowledged).await;
        assert_eq!(scalar(&http, url, "SELECT count(*) FROM crash").await, 81);
    }
    let compactions = metric(&http, a.url(), "lakehouse_catalog_compactions_total").await
        + metric(&http, b.url(), "lakehouse_catalog_compactions_total").await;
    assert!(compactions >= 1.0, "no compaction committed");
    let done = until_done(&http, a.url(), "optimize").await;
    assert!(
        done["skipped"].is_null() || done["small_files"].as_u64() <= Some(1),
        "{done}"
    );
    assert_eq!(files(&http, b.url(), "crash").await, 1);
}
