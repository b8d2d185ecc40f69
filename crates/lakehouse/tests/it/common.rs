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

/// A server over `backend` with extra settings given as `LAKEHOUSE_*` environment variables (which also
/// exercises the environment layer of the config); the S3 server (if any) lives as long as the returned guard.
pub(crate) async fn server_on(
    backend: Backend,
    env: &[(&str, &str)],
) -> (TestServer, Option<S3Server>) {
    let with_env = |mut builder: TestServerBuilder| {
        for (key, value) in env {
            builder = builder.env(key, value);
        }
        builder
    };
    match backend {
        Backend::Local => (with_env(server()).spawn().await, None),
        Backend::S3 => {
            let bucket = format!("lakehouse-test-{}", rand::random::<u32>());
            let s3 = S3Server::start(&bucket).await;
            let dir = tempfile::tempdir().unwrap();
            let config = s3.config_toml(dir.path());
            // The secrets file must outlive the server start; keep the directory.
            let server = with_env(server().config(&config)).spawn().await;
            std::mem::forget(dir);
            (server, Some(s3))
        }
    }
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
