//! Limits through the real binary: requests that would make the server build a huge value, hold a huge
//! answer or read a huge header get a 4xx, the server's memory stays within a bound set from its config,
//! and it answers normally right after.

use reqwest::Client;
use serde_json::{Value, json};

use crate::common::{expect_error, server, sql};

/// The server's resident memory now and at its peak, in bytes, from `/proc`.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

const MIB: u64 = 1024 * 1024;
/// The limits the server runs with here: query memory, one function call's output, one answer.
const POOL: u64 = 256 * MIB;
const FUNCTION: u64 = 64 * MIB;
const ANSWER: u64 = 8 * MIB;

#[tokio::test]
async fn no_request_takes_the_servers_memory() {
    let config = format!(
        "[query]\nmemory_limit_bytes = {POOL}\nmax_function_bytes = {FUNCTION}\nmax_answer_bytes = {ANSWER}\n\
         [ingest]\nmax_columns = 1000\n"
    );
    let server = server().config(&config).spawn().await;
    let (http, base) = (Client::new(), server.url());
    let pid = server.pid().unwrap();
    let csv = "worker_id,name,state\nw-1,Ana,TX\nw-2,Bo,CA\nw-3,Cy,TX\n";
    let created = http
        .post(format!("{base}/v1/ingest/workers?mode=create"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let (before, _) = memory(pid);

    // Values sized by a number in the query: refused before they are built.
    for statement in [
        "SELECT repeat('a', 1000000000)",
        "SELECT repeat(name, 100000000) FROM workers",
        "SELECT lpad('x', 2000000000)",
        "SELECT rpad(name, 500000000, '-') FROM workers",
        "SELECT array_repeat(1, 1000000000)",
        "SELECT range(1, 10000000000)",
        "SELECT generate_series(-5000000000, 5000000000, 1)",
        "SELECT length(repeat('ab', 600000000)) AS n",
        "SELECT * FROM workers WHERE name = repeat('a', 1000000000)",
    ] {
        let message =
            expect_error(sql(&http, base, statement).await, 413, "payload_too_large").await;
        assert!(message.contains("over the limit"), "{statement}: {message}");
    }
    // Values built from many rows: the memory pool's accounting of aggregation state.
    for statement in [
        "SELECT string_agg(repeat('y', 1000), ',') FROM generate_series(1, 2000000)",
        "SELECT array_agg(repeat('z', 1000)) FROM generate_series(1, 2000000)",
    ] {
        expect_error(sql(&http, base, statement).await, 413, "payload_too_large").await;
    }
    // Within the function limit but over the answer's: cut while it is read, and said so.
    let response = sql(
        &http,
        base,
        "SELECT value, repeat('x', 1000000) AS big FROM generate_series(1, 100)",
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["truncated"], json!(true), "{}", answer["row_count"]);
    let kept = answer["row_count"].as_u64().unwrap();
    assert!(
        (1..=8).contains(&kept),
        "{kept} rows of 1 MB under an 8 MiB cap"
    );
    // An endless series: cut at max_rows, and the rest never computed.
    let answer: Value = sql(
        &http,
        base,
        "SELECT * FROM generate_series(1, 100000000000)",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["truncated"], json!(true));
    assert_eq!(answer["row_count"], json!(10_000));

    // A chain of operators builds a tree as deep as the chain: at the limit it is planned and answered,
    // past it refused before any tree exists (100,000 terms once overflowed the stack and killed the server).
    let chain = |terms: usize| format!("SELECT 1{} AS n", "+1".repeat(terms));
    let answer: Value = sql(&http, base, &chain(1024)).await.json().await.unwrap();
    assert_eq!(answer["rows"], json!([[1025]]), "{answer}");
    for terms in [1025, 100_000] {
        let message = expect_error(sql(&http, base, &chain(terms)).await, 400, "bad_request").await;
        assert!(message.contains("the limit is 1024"), "{message}");
    }

    // A CSV header wider than the column cap: refused naming the limit, nothing created.
    let header: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
    let row: Vec<&str> = vec!["1"; 20_000];
    let wide = format!("{}\n{}\n", header.join(","), row.join(","));
    let response = http
        .post(format!("{base}/v1/ingest/wide?mode=create"))
        .header("content-type", "text/csv")
        .body(wide)
        .send()
        .await
        .unwrap();
    let message = expect_error(response, 422, "unprocessable_content").await;
    assert!(message.contains("1000"), "{message}");
    let missing = http
        .get(format!("{base}/v1/catalog/datasets/wide"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // Memory stayed within what the limits allow (the 1 GB string alone would pass it), and the server
    // answers as before.
    let (after, peak) = memory(pid);
    let bound = before + POOL + FUNCTION + 8 * ANSWER + 256 * MIB;
    assert!(
        peak < bound,
        "peak RSS {} MiB over the bound {} MiB (before: {} MiB)",
        peak / MIB,
        bound / MIB,
        before / MIB
    );
    assert!(after < bound, "RSS after: {} MiB", after / MIB);
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let answer: Value = sql(
        &http,
        base,
        "SELECT count(*) AS n FROM workers WHERE state = 'TX'",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["rows"], json!([[2]]));
}

/// JSON bodies are counted before they are decoded: a body of many tiny values (each decoding into far more
/// memory than its bytes) is refused whole, lists are decoded up to their cap, and MCP sessions are capped.
#[tokio::test]
async fn json_bodies_and_sessions_are_bounded_before_anything_is_built() {
    let server = server().config("[mcp]\nmax_sessions = 2\n").spawn().await;
    let (http, base) = (Client::new(), server.url());
    let pid = server.pid().unwrap();
    let created = http
        .post(format!("{base}/v1/vectors/index"))
        .json(&json!({"name": "tiny", "dim": 2, "metric": "cosine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let (before, _) = memory(pid);

    let bodies = [
        // 20 million empty items in 60 MB: some 2 GB once decoded, refused before.
        (
            "vectors/index/tiny/add",
            format!("{{\"items\": [{}{{}}]}}", "{},".repeat(20_000_000)),
            (413, "payload_too_large", "8000000 JSON values"),
        ),
        // 10 million empty texts in 30 MB.
        (
            "embed",
            format!("{{\"texts\": [{}\"\"]}}", "\"\",".repeat(10_000_000)),
            (413, "payload_too_large", "1000000 JSON values"),
        ),
        // Within the count, a batch is decoded up to 100,000 items and no further.
        (
            "vectors/index/tiny/add",
            format!(
                "{{\"items\": [{}{{\"id\": \"a\"}}]}}",
                "{\"id\": \"a\"},".repeat(150_000)
            ),
            (400, "invalid_json", "more than 100000 elements"),
        ),
    ];
    for (path, body, (status, code, says)) in bodies {
        let response = http
            .post(format!("{base}/v1/{path}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let message = expect_error(response, status, code).await;
        assert!(message.contains(says), "{path}: {message}");
    }
    let (_, peak) = memory(pid);
    assert!(
        peak < before + 512 * MIB,
        "peak RSS {} MiB (before: {} MiB)",
        peak / MIB,
        before / MIB
    );

    // MCP: two sessions open, a third refused with Retry-After until one is ended.
    let initialize = || {
        http.post(format!("{base}/v1/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-03-26", "capabilities": {},
                "clientInfo": {"name": "limits", "version": "0"}}}),
            )
            .send()
    };
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let response = initialize().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        sessions.push(id);
    }
    let refused = initialize().await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    let message = expect_error(refused, 503, "overloaded").await;
    assert!(message.contains("max_sessions"), "{message}");
    let ended = http
        .delete(format!("{base}/v1/mcp"))
        .header("mcp-session-id", &sessions[0])
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    assert_eq!(initialize().await.unwrap().status().as_u16(), 200);
}
