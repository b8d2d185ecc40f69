//! Shared set-up: servers on either backend, API keys and roles, requests and their answers, metrics, and
//! staffing data made searchable.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lakehouse_test_helpers::{S3Server, TestServer, TestServerBuilder};
use reqwest::Client;
use serde_json::{Value, json};

/// A builder for the binary under test.
pub(crate) fn server() -> TestServerBuilder {
    TestServer::builder(env!("CARGO_BIN_EXE_lakehouse"))
}

/// Which object store a suite runs against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Local,
    S3,
}

/// What an S3-backed test server needs alive beside it: the S3 server and the directory holding the
/// secrets file the config names (read again on every restart).
#[derive(Debug)]
pub(crate) struct S3Guard {
    _s3: S3Server,
    _secrets: tempfile::TempDir,
}

/// A server over `backend` with extra settings given as `LAKEHOUSE_*` environment variables (which also
/// exercises the environment layer of the config); the S3 server (if any) lives as long as the returned guard.
pub(crate) async fn server_on(
    backend: Backend,
    env: &[(&str, &str)],
) -> (TestServer, Option<S3Guard>) {
    let mut builder = server();
    for (key, value) in env {
        builder = builder.env(key, value);
    }
    spawn_on(backend, builder).await
}

/// Starts `builder`'s server over `backend`: as it is for the local directory, or with a fresh bucket on a
/// new S3 server added to its config.
pub(crate) async fn spawn_on(
    backend: Backend,
    builder: TestServerBuilder,
) -> (TestServer, Option<S3Guard>) {
    match backend {
        Backend::Local => (builder.spawn().await, None),
        Backend::S3 => {
            let bucket = format!("lakehouse-test-{}", rand::random::<u32>());
            let s3 = S3Server::start(&bucket).await;
            let secrets = tempfile::tempdir().unwrap();
            let config = s3.config_toml(secrets.path());
            let server = builder.config(&config).spawn().await;
            (
                server,
                Some(S3Guard {
                    _s3: s3,
                    _secrets: secrets,
                }),
            )
        }
    }
}

/// Two servers over one fresh bucket on a new S3 server, as two instances of one deployment; each with its
/// own data directory (its local caches) and `extra` config.
pub(crate) async fn two_on_one_bucket(extra: &str) -> (TestServer, TestServer, S3Guard) {
    let bucket = format!("lakehouse-test-{}", rand::random::<u32>());
    let s3 = S3Server::start(&bucket).await;
    let secrets = tempfile::tempdir().unwrap();
    let config = s3.config_toml(secrets.path());
    let a = server().config(&config).config(extra).spawn().await;
    let b = server().config(&config).config(extra).spawn().await;
    (
        a,
        b,
        S3Guard {
            _s3: s3,
            _secrets: secrets,
        },
    )
}

/// Sends a request and reads the answer as JSON (for answers a test inspects whatever their status).
pub(crate) async fn answer_json(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body")
}

/// GETs `url` and reads the body as JSON.
pub(crate) async fn get_json(http: &reqwest::Client, url: String) -> Value {
    answer_json(http.get(url)).await
}

/// POSTs `body` as JSON to `url` and reads the JSON answer.
pub(crate) async fn post_json(http: &reqwest::Client, url: String, body: &Value) -> Value {
    answer_json(http.post(url).json(body)).await
}

/// Asserts the response is the JSON error body with `code`, and returns the message.
pub(crate) async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status for expected {code}"
    );
    assert!(
        response.headers().get("x-request-id").is_some(),
        "every response carries a request id"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    let message = body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(!message.is_empty());
    message
}

/// `POST /v1/sql` with `sql`; the response as it comes.
pub(crate) async fn sql(http: &Client, base: &str, sql: &str) -> reqwest::Response {
    http.post(format!("{base}/v1/sql"))
        .json(&json!({"sql": sql}))
        .send()
        .await
        .unwrap()
}

/// `[[auth.keys]]` entries for `(name, role, key)`: the key stored as its SHA-256, as an operator writes it.
pub(crate) fn keys_config(keys: &[(&str, &str, &str)]) -> String {
    let mut config = String::new();
    for (name, role, key) in keys {
        let hash: String = lakehouse_config::hash_key(key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        config.push_str(&format!(
            "[[auth.keys]]\nname = \"{name}\"\nrole = \"{role}\"\nkey_sha256 = \"{hash}\"\n\n"
        ));
    }
    config
}

/// The keys of a staffing company's server: its operator (admin), a recruiter and a client.
pub(crate) const ADMIN_KEY: &str = "staffing-admin-key-0123456789";
/// See [`ADMIN_KEY`].
pub(crate) const RECRUITER_KEY: &str = "staffing-recruiter-key-0123456789";
/// See [`ADMIN_KEY`].
pub(crate) const CLIENT_KEY: &str = "staffing-client-key-0123456789";

/// [`ADMIN_KEY`] as `ops`, [`RECRUITER_KEY`] as `rita` and [`CLIENT_KEY`] as `acme`, with [`CLIENT_ROLE`].
pub(crate) fn staffing_keys() -> String {
    keys_config(&[
        ("ops", "admin", ADMIN_KEY),
        ("rita", "recruiter", RECRUITER_KEY),
        ("acme", "client", CLIENT_KEY),
    ]) + CLIENT_ROLE
}

/// The client role as a staffing company configures it: searches the workers corpus, never sees contact
/// details or pay.
pub(crate) const CLIENT_ROLE: &str = "[roles.client]\ncorpora = [\"workers\"]\n\
    hidden_fields = [\"email\", \"phone\", \"last_name\", \"pay_rate_min\"]\nactions = [\"search\"]\n";

/// The `/metrics` text.
pub(crate) async fn metrics_text(http: &Client, url: &str) -> String {
    http.get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the first `/metrics` sample whose line starts with `name` (labels included or not); 0 when
/// there is none.
pub(crate) async fn metric(http: &Client, url: &str, name: &str) -> f64 {
    metrics_text(http, url)
        .await
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// Staffing data: generated, ingested, made searchable.

/// The workers corpus with the staffing eligibility rules: the demo's own definition.
pub(crate) fn workers_corpus() -> Value {
    serde_json::from_str(include_str!("../../src/demo/workers_corpus.json")).unwrap()
}

/// Runs `lakehouse generate` into `dir`.
pub(crate) fn generate(dir: &Path, workers: usize, seed: u64) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args([
            "generate",
            "--workers",
            &workers.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg("--out")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "lakehouse generate failed");
}

/// POSTs a CSV file (or text) to the ingest route; the JSON answer.
pub(crate) async fn ingest(
    http: &Client,
    url: &str,
    dataset: &str,
    mode: &str,
    body: Vec<u8>,
) -> Value {
    let response = http
        .post(format!("{url}/v1/ingest/{dataset}?mode={mode}"))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "ingest {dataset}: {status} {answer}");
    answer
}

/// Waits until a corpus is ready at `version` (any version when `None`); its state.
pub(crate) async fn wait_ready(
    http: &Client,
    url: &str,
    corpus: &str,
    version: Option<u64>,
) -> Value {
    wait_ready_as(http, url, None, corpus, version).await
}

/// [`wait_ready`], asking with API key `key` (when the server has keys).
pub(crate) async fn wait_ready_as(
    http: &Client,
    url: &str,
    key: Option<&str>,
    corpus: &str,
    version: Option<u64>,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    // A corpus that failed at an earlier version stays failed until the worker picks up the next one.
    let mut failed_since: Option<Instant> = None;
    loop {
        let mut request = http.get(format!("{url}/v1/matrix/corpora/{corpus}"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let info = answer_json(request).await;
        let at_version = version.is_none_or(|v| info["dataset_version"] == json!(v));
        if info["status"] == "ready" && at_version && info.get("catching_up_to").is_none() {
            return info;
        }
        if info["status"] == "failed" {
            let since = *failed_since.get_or_insert_with(Instant::now);
            assert!(
                since.elapsed() < Duration::from_secs(15),
                "corpus build failed: {info}"
            );
        } else {
            failed_since = None;
        }
        assert!(
            Instant::now() < deadline,
            "corpus {corpus} not ready in time: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A search that must succeed.
pub(crate) async fn search(http: &Client, url: &str, body: Value) -> Value {
    let response = http
        .post(format!("{url}/v1/matrix/search"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status.as_u16(), 200, "search {body}: {answer}");
    answer
}

/// The rows of a SQL answer (which must succeed).
pub(crate) async fn sql_rows(http: &Client, url: &str, statement: &str) -> Vec<Vec<Value>> {
    let answer = post_json(http, format!("{url}/v1/sql"), &json!({ "sql": statement })).await;
    answer["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{statement}: {answer}"))
        .iter()
        .map(|r| r.as_array().cloned().unwrap_or_default())
        .collect()
}

/// A staffing server: generated data ingested, the workers corpus built.
pub(crate) struct Staffing {
    pub(crate) server: TestServer,
    pub(crate) _s3: Option<S3Guard>,
    pub(crate) csv: tempfile::TempDir,
    pub(crate) http: Client,
}

impl Staffing {
    pub(crate) fn url(&self) -> &str {
        self.server.url()
    }

    pub(crate) fn file(&self, table: &str) -> PathBuf {
        self.csv.path().join(format!("{table}.csv"))
    }
}

/// Creates the datasets `workers` and `job_orders` from the CSV files `lakehouse generate` wrote into
/// `csv`, and the workers corpus over them (accepted, not yet built).
pub(crate) async fn start_staffing(http: &Client, url: &str, csv: &Path) {
    for table in ["workers", "job_orders"] {
        let body = std::fs::read(csv.join(format!("{table}.csv"))).unwrap();
        ingest(http, url, table, "create", body).await;
    }
    let created = http
        .post(format!("{url}/v1/matrix/corpora"))
        .json(&workers_corpus())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 202);
}

/// Starts `builder` over `backend`, ingests `workers` generated workers and their job orders, and builds
/// the workers corpus.
pub(crate) async fn staffing(
    backend: Backend,
    builder: TestServerBuilder,
    workers: usize,
) -> Staffing {
    let csv = tempfile::tempdir().unwrap();
    generate(csv.path(), workers, 7);
    let (server, s3) = spawn_on(backend, builder).await;
    let http = Client::new();
    let url = server.url().to_owned();
    start_staffing(&http, &url, csv.path()).await;
    wait_ready(&http, &url, "workers", Some(0)).await;
    Staffing {
        server,
        _s3: s3,
        csv,
        http,
    }
}

/// Generates one test per backend from a suite function `async fn(Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::Backend::Local).await;
                }
            )+
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(crate::common::Backend::S3).await;
                }
            )+
        }
    };
}
pub(crate) use on_both_backends;
