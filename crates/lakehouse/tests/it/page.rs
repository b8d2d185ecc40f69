//! The web page in a real browser: two servers with staffing data (one open, one with an admin and a client
//! key), then the end-to-end tests of `tests/browser/` run by Node with playwright-core driving Debian's
//! Chromium. The test command installs both (`scripts/test.sh`). Besides the page's own tests,
//! `attack.test.mjs` serves a hostile page from another port and checks that it can neither read from nor
//! change the open server (cross-site writes, DNS rebinding), comparing the store before and after itself.

use std::path::PathBuf;

use reqwest::Client;
use serde_json::json;

use crate::common::{
    ADMIN_KEY, CLIENT_KEY, generate, staffing_keys, wait_ready, wait_ready_as, workers_corpus,
};

/// Ingests the generated tables and creates the corpora, as `key` (when the server has keys).
async fn load(
    url: &str,
    key: Option<&str>,
    csv: &std::path::Path,
    tables: &[&str],
    orders_corpus: bool,
) {
    let http = Client::new();
    let with_key = |request: reqwest::RequestBuilder| match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    };
    for table in tables {
        let body = std::fs::read(csv.join(format!("{table}.csv"))).unwrap();
        let response = with_key(http.post(format!("{url}/v1/ingest/{table}?mode=create")))
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "{table}");
    }
    let mut corpora = vec![workers_corpus()];
    if orders_corpus {
        corpora.push(json!({"name": "job_orders", "dataset": "job_orders", "id_column": "order_id",
                            "text": "{title}. {description}",
                            "fields": ["title", "city", "state", "pay_rate", "start_date", "status"]}));
    }
    for corpus in corpora {
        let response = with_key(http.post(format!("{url}/v1/matrix/corpora")))
            .json(&corpus)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
}

fn chromium() -> PathBuf {
    PathBuf::from(
        std::env::var("LAKEHOUSE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    )
}

fn node_path() -> PathBuf {
    match std::env::var("LAKEHOUSE_NODE_PATH") {
        Ok(path) => PathBuf::from(path),
        Err(_) => PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/lakehouse/node/node_modules"),
    }
}

#[tokio::test]
async fn the_page_works_in_a_real_browser() {
    let browser = chromium();
    let modules = node_path();
    assert!(
        browser.is_file() && modules.join("playwright-core").is_dir(),
        "the browser tests need Chromium at {} and playwright-core in {}: run them with ./scripts/test.sh, which \
         installs both (apt-get install chromium; npm install playwright-core)",
        browser.display(),
        modules.display()
    );
    let csv = tempfile::tempdir().unwrap();
    generate(csv.path(), 150, 21);

    let open = crate::common::server().spawn().await;
    load(
        open.url(),
        None,
        csv.path(),
        &["workers", "job_orders", "timesheets"],
        true,
    )
    .await;
    let keyed = crate::common::server()
        .config(&staffing_keys())
        .spawn()
        .await;
    load(
        keyed.url(),
        Some(ADMIN_KEY),
        csv.path(),
        &["workers", "job_orders"],
        false,
    )
    .await;
    let http = Client::new();
    wait_ready(&http, open.url(), "workers", Some(0)).await;
    wait_ready(&http, open.url(), "job_orders", Some(0)).await;
    // The keyed server's corpus, polled as admin.
    wait_ready_as(&http, keyed.url(), Some(ADMIN_KEY), "workers", None).await;

    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("page-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mut command = std::process::Command::new("node");
    command
        .arg("--test")
        .arg("--test-concurrency=1")
        .arg(&tests)
        .env("NODE_PATH", &modules)
        .env("LAKEHOUSE_URL", open.url())
        .env("LAKEHOUSE_AUTH_URL", keyed.url())
        .env("LAKEHOUSE_ADMIN_KEY", ADMIN_KEY)
        .env("LAKEHOUSE_CLIENT_KEY", CLIENT_KEY)
        .env("LAKEHOUSE_SCREENSHOTS", &screenshots)
        .env("LAKEHOUSE_CHROMIUM", &browser);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs (Node.js is needed for the browser tests)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "browser tests failed:\n{report}");
    assert!(
        report.contains("# fail 0") && report.contains("# skipped 0"),
        "{report}"
    );
    assert!(
        report.contains("the store is unchanged and the own page still works"),
        "the hostile-page tests (attack.test.mjs) did not run:\n{report}"
    );
    println!("{report}\nscreenshots in {}", screenshots.display());
}
