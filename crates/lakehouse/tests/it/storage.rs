//! The storage suite, run against the local directory and against a real S3-compatible server.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Client;
use serde_json::Value;

use crate::common::{Backend, expect_error, get_json, on_both_backends, server_on};

on_both_backends!(
    every_verb_round_trips,
    listing_filters_by_prefix_and_pages,
    over_cap_bodies_are_refused_with_413,
    concurrency_cap_answers_503_with_retry_after,
    bad_keys_are_refused_with_400,
    range_requests_follow_http,
    large_streamed_object_round_trips,
);

fn object_url(base: &str, key: &str) -> String {
    format!("{base}/v1/storage/objects/{key}")
}

async fn every_verb_round_trips(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    let url = object_url(server.url(), "reports/2025/jan.csv");
    let body = "worker_id,hours\nw-1,38.5\n";

    let put = http.put(&url).body(body).send().await.unwrap();
    assert_eq!(put.status().as_u16(), 201);
    let stored: Value = put.json().await.unwrap();
    assert_eq!(stored["key"], "reports/2025/jan.csv");
    assert_eq!(stored["size"], body.len());
    assert!(stored["etag"].is_string(), "etag: {stored}");

    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(
        head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert!(head.headers().get("etag").is_some());
    assert!(head.headers().get("last-modified").is_some());

    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 200);
    assert_eq!(get.text().await.unwrap(), body);

    // Overwrite: the new bytes win.
    http.put(&url).body("replaced").send().await.unwrap();
    assert_eq!(
        http.get(&url).send().await.unwrap().text().await.unwrap(),
        "replaced"
    );

    // Empty objects are objects too.
    let empty = object_url(server.url(), "empty");
    assert_eq!(
        http.put(&empty)
            .body("")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    assert_eq!(
        http.get(&empty)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len(),
        0
    );

    let delete = http.delete(&url).send().await.unwrap();
    assert_eq!(delete.status().as_u16(), 204);
    expect_error(
        http.get(&url).send().await.unwrap(),
        404,
        "object_not_found",
    )
    .await;
    expect_error(
        http.delete(&url).send().await.unwrap(),
        404,
        "object_not_found",
    )
    .await;
    assert_eq!(http.head(&url).send().await.unwrap().status().as_u16(), 404);
}

async fn listing_filters_by_prefix_and_pages(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    for key in [
        "exports/2025-02.csv",
        "exports/2025-01.csv",
        "exports/2024-12.csv",
        "exports/old/x.csv",
        "other.csv",
    ] {
        let put = http
            .put(object_url(server.url(), key))
            .body(key.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status().as_u16(), 201);
    }
    let list = |query: &str| {
        let url = format!("{}/v1/storage/objects?{query}", server.url());
        let http = http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let body: Value = response.json().await.unwrap();
            let keys: Vec<String> = body["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["key"].as_str().unwrap().to_owned())
                .collect();
            for object in body["objects"].as_array().unwrap() {
                assert!(
                    object["size"].as_u64().is_some() && object["last_modified"].is_string(),
                    "{object}"
                );
            }
            (keys, body["truncated"].as_bool().unwrap())
        }
    };
    let (keys, truncated) = list("prefix=exports/").await;
    assert_eq!(
        keys,
        [
            "exports/2024-12.csv",
            "exports/2025-01.csv",
            "exports/2025-02.csv",
            "exports/old/x.csv"
        ]
    );
    assert!(!truncated);
    let (keys, _) = list("prefix=exports/2025-").await;
    assert_eq!(keys, ["exports/2025-01.csv", "exports/2025-02.csv"]);
    let (keys, truncated) = list("prefix=exports/&limit=2").await;
    assert_eq!(keys, ["exports/2024-12.csv", "exports/2025-01.csv"]);
    assert!(truncated);
    let (keys, truncated) = list("prefix=exports/&limit=2&after=exports/2025-01.csv").await;
    assert_eq!(keys, ["exports/2025-02.csv", "exports/old/x.csv"]);
    assert!(!truncated);
    let (keys, _) = list("").await;
    assert_eq!(keys.len(), 5);
    let (keys, _) = list("prefix=nothing-here/").await;
    assert!(keys.is_empty());

    let url = format!("{}/v1/storage/objects?limit=0", server.url());
    expect_error(
        http.get(url).send().await.unwrap(),
        400,
        "invalid_parameter",
    )
    .await;
    let url = format!("{}/v1/storage/objects?limit=lots", server.url());
    expect_error(
        http.get(url).send().await.unwrap(),
        400,
        "invalid_parameter",
    )
    .await;
    let url = format!("{}/v1/storage/objects?prefix=../", server.url());
    expect_error(http.get(url).send().await.unwrap(), 400, "invalid_key").await;
}

async fn over_cap_bodies_are_refused_with_413(backend: Backend) {
    let (server, _s3) =
        server_on(backend, &[("LAKEHOUSE_STORAGE__MAX_OBJECT_BYTES", "1000")]).await;
    let http = Client::new();
    let url = object_url(server.url(), "big");

    // Declared too large: refused before reading.
    let message = expect_error(
        http.put(&url).body(vec![b'x'; 1001]).send().await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    assert!(message.contains("1000"), "{message}");

    // Streamed without a length: refused once the count crosses the cap.
    let chunks = futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 100])));
    let response = http
        .put(&url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "payload_too_large").await;

    // Nothing was stored, and exactly the cap is fine.
    assert_eq!(http.head(&url).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(
        http.put(&url)
            .body(vec![b'x'; 1000])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
}

async fn concurrency_cap_answers_503_with_retry_after(backend: Backend) {
    let (server, _s3) = server_on(
        backend,
        &[("LAKEHOUSE_STORAGE__MAX_CONCURRENT_TRANSFERS", "2")],
    )
    .await;
    let http = Client::new();
    // Two uploads that send a first chunk and then wait hold both transfer slots.
    let mut senders = Vec::new();
    let mut uploads = Vec::new();
    for i in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        tx.send(Ok(b"first".to_vec())).await.unwrap();
        senders.push(tx);
        let request = http
            .put(object_url(server.url(), &format!("slow/{i}")))
            .body(reqwest::Body::wrap_stream(tokio_stream(rx)));
        uploads.push(tokio::spawn(request.send()));
    }
    // Wait until both are in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health: Value = get_json(&http, format!("{}/health", server.url())).await;
        if health["services"]["storaged"]["details"]["transfers_in_flight"] == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "uploads never started: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = http
        .put(object_url(server.url(), "third"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["retry-after"], "1");
    expect_error(refused, 503, "overloaded").await;
    let refused = http
        .get(object_url(server.url(), "slow/0"))
        .send()
        .await
        .unwrap();
    expect_error(refused, 503, "overloaded").await;

    // Finishing the uploads frees the slots.
    drop(senders);
    for upload in uploads {
        assert_eq!(upload.await.unwrap().unwrap().status().as_u16(), 201);
    }
    assert_eq!(
        http.put(object_url(server.url(), "third"))
            .body("x")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn bad_keys_are_refused_with_400(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    let long = "k".repeat(1025);
    // Percent-encoding keeps the URL parser from resolving dot segments before the server sees them.
    let cases = [
        ("a%2F..%2Fb", "\"..\""),
        ("..%2Fsecret", "\"..\""),
        ("a%2F.%2Fb", "\".\""),
        ("%2Fabs", "starts with '/'"),
        ("a//b", "empty path segment"),
        ("a%0Ab", "'\\n'"),
        ("a%00b", "'\\0'"),
        ("a%20b", "' '"),
        ("caf%C3%A9", "'é'"),
        ("%FF", "UTF-8"),
        (long.as_str(), "1024"),
    ];
    for (key, expected) in cases {
        let url = object_url(server.url(), key);
        let message = expect_error(
            http.put(&url).body("x").send().await.unwrap(),
            400,
            "invalid_key",
        )
        .await;
        assert!(
            message.contains(expected),
            "{key}: {message:?} should mention {expected}"
        );
        expect_error(http.get(&url).send().await.unwrap(), 400, "invalid_key").await;
        expect_error(http.delete(&url).send().await.unwrap(), 400, "invalid_key").await;
    }
    let message = expect_error(
        http.put(format!("{}/v1/storage/objects/", server.url()))
            .body("x")
            .send()
            .await
            .unwrap(),
        400,
        "invalid_key",
    )
    .await;
    assert!(message.contains("empty"), "{message}");

    // A raw request line with `..` (no client-side normalisation) is refused too.
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            b"PUT /v1/storage/objects/a/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\n\
              Connection: close\r\n\r\nx",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_key"), "{answer}");
}

async fn range_requests_follow_http(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    let url = object_url(server.url(), "digits");
    http.put(&url).body("0123456789").send().await.unwrap();
    for (range, status, body, content_range) in [
        ("bytes=2-4", 206, "234", Some("bytes 2-4/10")),
        ("bytes=7-", 206, "789", Some("bytes 7-9/10")),
        ("bytes=-3", 206, "789", Some("bytes 7-9/10")),
        ("bytes=8-100", 206, "89", Some("bytes 8-9/10")),
    ] {
        let response = http.get(&url).header("range", range).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{range}");
        assert_eq!(
            response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok()),
            content_range,
            "{range}"
        );
        assert_eq!(response.text().await.unwrap(), body, "{range}");
    }
    for range in ["bytes=10-", "bytes=5-2", "bytes=0-1,4-5", "lines=1-2"] {
        expect_error(
            http.get(&url).header("range", range).send().await.unwrap(),
            416,
            "invalid_range",
        )
        .await;
    }
}

async fn large_streamed_object_round_trips(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    let url = object_url(server.url(), "large/blob.bin");
    // 24 MiB in 64 KiB chunks: several multipart parts on either backend.
    let chunk =
        |i: u32| -> Vec<u8> { (0..65_536u32).map(|j| ((i * 31 + j) % 251) as u8).collect() };
    let total_chunks = 384u32;
    let body =
        futures::stream::iter((0..total_chunks).map(move |i| Ok::<_, std::io::Error>(chunk(i))));
    let put = http
        .put(&url)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    let stored: Value = put.json().await.unwrap();
    assert_eq!(stored["size"], u64::from(total_chunks) * 65_536);

    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut stream = response.bytes_stream();
    let mut expected = (0..total_chunks).flat_map(chunk);
    let mut read = 0u64;
    while let Some(piece) = stream.next().await {
        for byte in piece.unwrap() {
            assert_eq!(Some(byte), expected.next(), "byte {read}");
            read += 1;
        }
    }
    assert_eq!(read, u64::from(total_chunks) * 65_536);
    assert!(expected.next().is_none());
}
