//! API keys, roles and reserved prefixes, through HTTP.

use reqwest::Client;

use crate::common::{expect_error, server};

const ADMIN_KEY: &str = "admin-key-0123456789";
const RECRUITER_KEY: &str = "recruiter-key-0123456789";

fn keys_config() -> String {
    // The built-in recruiter has no raw-object actions; this one is given them, so the reserved prefixes
    // are what refuses it.
    crate::common::keys_config(&[
        ("ops", "admin", ADMIN_KEY),
        ("rita", "recruiter", RECRUITER_KEY),
    ]) + "[roles.recruiter]\nactions = [\"search\", \"sql\", \"datasets.read\", \"datasets.write\", \
           \"storage.read\", \"storage.write\"]\ncorpora = \"*\"\n"
}

#[tokio::test]
async fn keys_are_required_when_configured() {
    let server = server().config(&keys_config()).spawn().await;
    let http = Client::new();
    let url = format!("{}/v1/storage/objects/notes/a.txt", server.url());

    let response = http.put(&url).body("x").send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    expect_error(response, 401, "missing_api_key").await;
    expect_error(
        http.put(&url)
            .bearer_auth("wrong")
            .body("x")
            .send()
            .await
            .unwrap(),
        401,
        "invalid_api_key",
    )
    .await;
    expect_error(
        http.put(&url)
            .header("authorization", "Basic abc")
            .body("x")
            .send()
            .await
            .unwrap(),
        401,
        "invalid_api_key",
    )
    .await;

    let ok = http
        .put(&url)
        .bearer_auth(RECRUITER_KEY)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 201);
    let read = http.get(&url).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert_eq!(read.text().await.unwrap(), "x");

    // Health and metrics stay open for probes and scrapers.
    assert_eq!(
        http.get(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        http.get(format!("{}/metrics", server.url()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn reserved_prefixes_are_the_admins_alone() {
    let server = server().config(&keys_config()).spawn().await;
    let http = Client::new();
    for prefix in ["datasets", "_catalog", "vectors", "recordings"] {
        let url = format!("{}/v1/storage/objects/{prefix}/x", server.url());
        let message = expect_error(
            http.put(&url)
                .bearer_auth(RECRUITER_KEY)
                .body("x")
                .send()
                .await
                .unwrap(),
            403,
            "reserved_prefix",
        )
        .await;
        assert!(message.contains(prefix), "{message}");
        expect_error(
            http.delete(&url)
                .bearer_auth(RECRUITER_KEY)
                .send()
                .await
                .unwrap(),
            403,
            "reserved_prefix",
        )
        .await;
        let admin = http
            .put(&url)
            .bearer_auth(ADMIN_KEY)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status().as_u16(), 201, "admin writes {prefix}/");
        // Their files hold every column of every dataset: only the admin reads them, or sees them listed.
        let message = expect_error(
            http.get(&url)
                .bearer_auth(RECRUITER_KEY)
                .send()
                .await
                .unwrap(),
            403,
            "reserved_prefix",
        )
        .await;
        assert!(
            message.contains("only the admin role may read"),
            "{message}"
        );
        let read = http.get(&url).bearer_auth(ADMIN_KEY).send().await.unwrap();
        assert_eq!(read.status().as_u16(), 200, "the admin reads {prefix}/");
        let listed: serde_json::Value = crate::common::answer_json(
            http.get(format!(
                "{}/v1/storage/objects?prefix={prefix}",
                server.url()
            ))
            .bearer_auth(RECRUITER_KEY),
        )
        .await;
        assert_eq!(listed["objects"], serde_json::json!([]), "{prefix}");
    }
}

#[tokio::test]
async fn open_mode_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .env_remove("LAKEHOUSE_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without API keys"),
        "{stderr}"
    );

    // With keys, the same address is allowed.
    let server = server()
        .config(&keys_config())
        .listen("0.0.0.0:0")
        .spawn()
        .await;
    assert!(
        server.url().starts_with("http://0.0.0.0:"),
        "{}",
        server.url()
    );
}
