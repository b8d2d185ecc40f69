//! Deployment behaviour: the split (`--only`) deployment, request ids, metrics, health, graceful shutdown.

use std::time::Duration;

use reqwest::Client;
use serde_json::Value;

use crate::common::{expect_error, get_json, server};

#[tokio::test]
async fn a_gateway_serves_the_storage_api_of_a_separate_storaged() {
    let storaged = server().arg("--only").arg("storaged").spawn().await;
    let gateway = server()
        .config(&format!("[services]\nstoraged = \"{}\"\n", storaged.url()))
        .arg("--only")
        .arg("gateway")
        .spawn()
        .await;
    let http = Client::new();
    let url = format!("{}/v1/storage/objects/split/a.txt", gateway.url());
    let put = http
        .put(&url)
        .body("through the gateway")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);

    // The bytes live in storaged's data directory, not the gateway's.
    assert!(storaged.data_dir().join("split/a.txt").is_file());
    assert!(!gateway.data_dir().join("split/a.txt").exists());
    let direct = http
        .get(format!("{}/v1/storage/objects/split/a.txt", storaged.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.text().await.unwrap(), "through the gateway");

    let through = http
        .get(&url)
        .header("range", "bytes=8-")
        .send()
        .await
        .unwrap();
    assert_eq!(through.status().as_u16(), 206);
    assert_eq!(through.headers()["content-range"], "bytes 8-18/19");
    assert_eq!(through.text().await.unwrap(), "the gateway");
    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.headers()["content-length"], "19");
    let list: Value = crate::common::answer_json(http.get(format!(
        "{}/v1/storage/objects?prefix=split/",
        gateway.url()
    )))
    .await;
    assert_eq!(list["objects"][0]["key"], "split/a.txt");

    // Errors cross the hop unchanged.
    expect_error(
        http.get(format!("{}/v1/storage/objects/split/none", gateway.url()))
            .send()
            .await
            .unwrap(),
        404,
        "object_not_found",
    )
    .await;
    expect_error(
        http.put(format!("{}/v1/storage/objects/a%2F..%2Fb", gateway.url()))
            .body("x")
            .send()
            .await
            .unwrap(),
        400,
        "invalid_key",
    )
    .await;
    assert_eq!(
        http.delete(&url).send().await.unwrap().status().as_u16(),
        204
    );
    assert!(!storaged.data_dir().join("split/a.txt").exists());

    // The gateway's health reports storaged as remote.
    let health: Value = get_json(&http, format!("{}/health", gateway.url())).await;
    // storaged is remote and up; the other services, not started in this test, are reported down.
    assert_eq!(health["services"]["storaged"]["status"], "ok", "{health}");
    assert_eq!(health["services"]["storaged"]["location"], storaged.url());

    // storaged alone serves only its own routes.
    let health: Value = get_json(&http, format!("{}/health", storaged.url())).await;
    assert_eq!(health["services"]["storaged"]["location"], "local");
}

#[tokio::test]
async fn a_gateway_whose_storaged_is_down_answers_503_and_reports_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = server()
        .config(&format!(
            "[services]\nstoraged = \"http://127.0.0.1:{port}\"\n"
        ))
        .arg("--only")
        .arg("gateway")
        .spawn()
        .await;
    let http = Client::new();
    let message = expect_error(
        http.get(format!("{}/v1/storage/objects/x", gateway.url()))
            .send()
            .await
            .unwrap(),
        503,
        "service_unavailable",
    )
    .await;
    assert!(message.contains("storaged"), "{message}");
    let health: Value = get_json(&http, format!("{}/health", gateway.url())).await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["services"]["storaged"]["status"], "down");
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_logged() {
    let server = server().spawn().await;
    let http = Client::new();
    let url = format!("{}/v1/storage/objects/missing", server.url());
    let response = http
        .get(&url)
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let made = http.get(&url).send().await.unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let unsafe_id = http
        .get(&url)
        .header("x-request-id", "has spaces and\ttabs")
        .send()
        .await
        .unwrap();
    assert_ne!(unsafe_id.headers()["x-request-id"], "has spaces and\ttabs");

    // Unknown routes and methods get the JSON error body and an id too.
    expect_error(
        http.get(format!("{}/v1/nope", server.url()))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        http.post(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;

    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    assert!(
        log.contains("trace-abc-123"),
        "the log names the request id:\n{log}"
    );
    assert!(log.contains(&id), "the made id is logged too");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = server().spawn().await;
    let http = Client::new();
    for _ in 0..3 {
        http.put(format!("{}/v1/storage/objects/m/x", server.url()))
            .body("x")
            .send()
            .await
            .unwrap();
    }
    http.get(format!("{}/v1/storage/objects/m/none", server.url()))
        .send()
        .await
        .unwrap();
    let text = http
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle) && !l.starts_with('#'))
            .map(str::to_owned)
    };
    let puts = line("lakehouse_http_requests_total{method=\"PUT\",route=\"/v1/storage/objects/{*key}\",status=\"201\"}")
        .unwrap_or_else(|| panic!("no PUT counter in:\n{text}"));
    assert!(puts.ends_with(" 3"), "{puts}");
    assert!(
        line("status=\"404\"").is_some(),
        "404s are counted:\n{text}"
    );
    assert!(
        text.contains("lakehouse_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("lakehouse_http_requests_in_flight"), "{text}");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits() {
    let mut server = server().spawn().await;
    let http = Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tx.send(Ok(b"part one ".to_vec())).await.unwrap();
    let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let upload = tokio::spawn(
        http.put(format!("{}/v1/storage/objects/inflight.txt", server.url()))
            .body(body)
            .send(),
    );
    // Let the upload begin, then ask the server to stop while it is mid-body.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.send_sigterm();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the upload is still finishing.
    assert!(
        Client::new()
            .get(format!("{}/health", server.url()))
            .send()
            .await
            .is_err(),
        "listener closed"
    );
    tx.send(Ok(b"part two".to_vec())).await.unwrap();
    drop(tx);
    let response = upload.await.unwrap().unwrap();
    assert_eq!(
        response.status().as_u16(),
        201,
        "the in-flight upload completes"
    );
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "clean exit: {status}");
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("inflight.txt")).unwrap(),
        "part one part two"
    );
    assert!(server.log().contains("shutting down"));
}
