//! MCP through the official MCP Python SDK: `lakehouse mcp` over stdio and `/v1/mcp` over streamable HTTP,
//! with a recruiter and a client key, against a real server with staffing data (`tests/mcp/mcp_client.py`).

use std::path::PathBuf;

use reqwest::Client;
use serde_json::json;

use crate::common::{
    ADMIN_KEY, CLIENT_KEY, RECRUITER_KEY, generate, staffing_keys, wait_ready_as, workers_corpus,
};

#[tokio::test]
async fn the_official_sdk_uses_every_tool_over_stdio_and_http() {
    let python = std::env::var("LAKEHOUSE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let server = crate::common::server()
        .config(&staffing_keys())
        .spawn()
        .await;
    let url = server.url().to_owned();
    let http = Client::new();
    let csv = tempfile::tempdir().unwrap();
    generate(csv.path(), 150, 4);
    for table in ["workers", "job_orders"] {
        let response = http
            .post(format!("{url}/v1/ingest/{table}?mode=create"))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "text/csv")
            .body(std::fs::read(csv.path().join(format!("{table}.csv"))).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let orders = json!({"name": "job_orders", "dataset": "job_orders", "id_column": "order_id",
                        "text": "{title}. {description}", "fields": ["title", "city"]});
    for corpus in [workers_corpus(), orders] {
        let response = http
            .post(format!("{url}/v1/matrix/corpora"))
            .bearer_auth(ADMIN_KEY)
            .json(&corpus)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    for name in ["workers", "job_orders"] {
        wait_ready_as(&http, &url, Some(ADMIN_KEY), name, None).await;
    }

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/mcp_client.py");
    let mut command = std::process::Command::new(&python);
    command
        .arg(&script)
        .env("LAKEHOUSE_BIN", env!("CARGO_BIN_EXE_lakehouse"))
        .env("LAKEHOUSE_URL", &url)
        .env("LAKEHOUSE_RECRUITER_KEY", RECRUITER_KEY)
        .env("LAKEHOUSE_CLIENT_KEY", CLIENT_KEY)
        .env_remove("LAKEHOUSE_API_KEY");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {python}: {e}. Run the tests with ./scripts/test.sh, which installs the MCP SDK \
                 (pip install mcp) into its virtualenv"
            )
        });
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "MCP client failed:\n{report}\nserver log:\n{}",
        server.log()
    );
    assert!(report.contains("ok: "), "{report}");
}
