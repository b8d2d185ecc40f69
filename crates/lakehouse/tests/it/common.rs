//! Shared set-up.

use lakehouse_test_helpers::{S3Server, TestServer, TestServerBuilder};
use serde_json::Value;

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
async fn answer_json(request: reqwest::RequestBuilder) -> Value {
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
