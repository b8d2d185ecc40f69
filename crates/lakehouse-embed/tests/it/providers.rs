//! The Ollama and OpenAI-compatible providers.
//!
//! Neither service can be installed where these tests run, so each test starts a small local HTTP server
//! (axum on `127.0.0.1:0`) that speaks the provider's documented wire format: Ollama's `POST /api/embed`
//! (`{"model", "input": [...]}` → `{"model", "embeddings": [[...]]}`, errors `{"error": "..."}`, and
//! `GET /api/version`) and OpenAI's `POST /v1/embeddings` (`{"model", "input": [...]}` → `{"object": "list",
//! "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}`, errors
//! `{"error": {"message", "type"}}`, bearer-key auth). The vectors they return are derived from the text so
//! the tests can check that each text got its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use lakehouse_api::EmbedApi;
use lakehouse_embed::config::{OllamaConfig, OpenAiConfig};
use lakehouse_embed::{EmbedConfig, EmbedService, ProviderKind};
use lakehouse_types::health::Status;
use lakehouse_types::{ErrorCode, RequestContext};
use serde_json::{Value, json};

/// A deterministic fake embedding: the text's length and first byte, spread over `dim` values.
fn fake_vector(text: &str, dim: usize) -> Vec<f32> {
    let first = text.bytes().next().map_or(0.0, f32::from);
    (0..dim)
        .map(|i| {
            if i == 0 {
                text.len() as f32
            } else {
                first + i as f32
            }
        })
        .collect()
}

#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    /// Calls answered 503 before the server starts answering properly.
    fail_first: usize,
    /// How long each answer takes.
    delay: Duration,
}

fn inputs(body: &Value) -> Vec<String> {
    match &body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => Vec::new(),
    }
}

async fn ollama_embed(
    State(fake): State<Arc<Fake>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let call = fake.calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(fake.delay).await;
    if call < fake.fail_first {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "server busy"})),
        );
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if model != "nomic-embed-text" && model != "mxbai-embed-large" {
        let message = format!("model \"{model}\" not found, try pulling it first");
        return (StatusCode::NOT_FOUND, Json(json!({"error": message})));
    }
    let dim = if model == "nomic-embed-text" {
        768
    } else {
        1024
    };
    let embeddings: Vec<Vec<f32>> = inputs(&body)
        .iter()
        .map(|text| fake_vector(text, dim))
        .collect();
    (
        StatusCode::OK,
        Json(json!({"model": model, "embeddings": embeddings, "total_duration": 1000})),
    )
}

async fn openai_embed(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some("Bearer sk-test");
    if !authorised {
        let error = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}});
        return (StatusCode::UNAUTHORIZED, Json(error));
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    // Answer in reverse order: the items' `index` is what places them.
    let data: Vec<Value> = inputs(&body)
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": fake_vector(text, 1536)}))
        .collect();
    (
        StatusCode::OK,
        Json(
            json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
        ),
    )
}

/// Starts the fake servers on an ephemeral port; returns the base URL.
async fn serve(fake: Arc<Fake>) -> String {
    let app = axum::Router::new()
        .route("/api/embed", post(ollama_embed))
        .route(
            "/api/version",
            get(|| async { Json(json!({"version": "0.12.0"})) }),
        )
        .route("/v1/embeddings", post(openai_embed))
        .route(
            "/v1/models",
            get(|| async {
                Json(json!({"object": "list", "data": [{"id": "text-embedding-3-small"}]}))
            }),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn config(base_url: &str) -> EmbedConfig {
    EmbedConfig {
        default_provider: ProviderKind::Ollama,
        ollama: OllamaConfig {
            base_url: base_url.to_owned(),
            timeout_secs: 0.5,
            retries: 2,
            ..OllamaConfig::default()
        },
        openai: OpenAiConfig {
            base_url: Some(format!("{base_url}/v1")),
            api_key: Some("sk-test".to_owned()),
            timeout_secs: 0.5,
            ..OpenAiConfig::default()
        },
        preload: false,
        ..crate::local_config()
    }
}

#[tokio::test]
async fn ollama_embeds_a_batch_in_order_and_caches() {
    let fake = Arc::new(Fake::default());
    let service = EmbedService::new(&config(&serve(Arc::clone(&fake)).await)).expect("builds");
    let texts = vec!["alpha".to_owned(), String::new(), "beta gamma".to_owned()];
    let answer = service
        .embed_texts(texts.clone(), None)
        .await
        .expect("embeds");
    assert_eq!(answer.model, "nomic-embed-text");
    assert_eq!(answer.dim, 768);
    for (text, vector) in texts.iter().zip(&answer.vectors) {
        assert_eq!(vector, &fake_vector(text, 768));
    }
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "one batch call for three texts"
    );

    let again = service
        .embed_texts(texts, Some("ollama/nomic-embed-text"))
        .await
        .expect("embeds");
    assert_eq!(again.vectors, answer.vectors);
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "the repeat came from the cache"
    );
    assert_eq!(service.cache_stats().hits, 3);

    // Any model pulled on the server can be named with the provider prefix.
    let other = service
        .embed_texts(vec!["x".to_owned()], Some("ollama/mxbai-embed-large"))
        .await
        .expect("embeds");
    assert_eq!(
        (other.model.as_str(), other.dim),
        ("mxbai-embed-large", 1024)
    );
}

#[tokio::test]
async fn ollama_model_not_pulled_is_a_bad_request_with_its_message() {
    let service = EmbedService::new(&config(&serve(Arc::default()).await)).expect("builds");
    let err = service
        .embed_texts(vec!["x".to_owned()], Some("ollama/llama9"))
        .await
        .expect_err("no such model");
    let err = lakehouse_types::ApiError::from(err);
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert!(
        err.message.contains("try pulling it first") && err.message.contains("ollama"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let fake = Arc::new(Fake {
        fail_first: 2,
        ..Fake::default()
    });
    let service = EmbedService::new(&config(&serve(Arc::clone(&fake)).await)).expect("builds");
    let answer = service
        .embed_texts(vec!["retry me".to_owned()], None)
        .await
        .expect("third attempt succeeds");
    assert_eq!(answer.vectors[0], fake_vector("retry me", 768));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_are_bounded_then_503_naming_the_provider() {
    let fake = Arc::new(Fake {
        fail_first: usize::MAX,
        ..Fake::default()
    });
    let service = EmbedService::new(&config(&serve(Arc::clone(&fake)).await)).expect("builds");
    let err = service
        .embed(
            &RequestContext::system("test"),
            lakehouse_types::embed::EmbedRequest {
                texts: vec!["x".to_owned()],
                model: None,
            },
        )
        .await
        .expect_err("always failing");
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert_eq!(err.status(), 503);
    assert!(err.retry_after_secs.is_some());
    assert!(
        err.message.contains("ollama") && err.message.contains("server busy"),
        "{}",
        err.message
    );
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        3,
        "one try and two retries"
    );
}

#[tokio::test]
async fn a_provider_that_is_down_is_503_naming_it() {
    // Bind then drop a listener: the port is closed, so connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let service = EmbedService::new(&config(&url)).expect("builds");
    let err = lakehouse_types::ApiError::from(
        service
            .embed_texts(vec!["x".to_owned()], None)
            .await
            .expect_err("down"),
    );
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert!(
        err.message.contains("`ollama`") && err.message.contains(&url),
        "{}",
        err.message
    );
    let health = service.health().await;
    assert_eq!(health.status, Status::Down);
}

#[tokio::test]
async fn a_provider_that_hangs_times_out_as_503() {
    let fake = Arc::new(Fake {
        delay: Duration::from_secs(5),
        ..Fake::default()
    });
    let service = EmbedService::new(&config(&serve(Arc::clone(&fake)).await)).expect("builds");
    let err = lakehouse_types::ApiError::from(
        service
            .embed_texts(vec!["x".to_owned()], None)
            .await
            .expect_err("slow"),
    );
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert!(err.message.contains("timed out"), "{}", err.message);
}

#[tokio::test]
async fn openai_compatible_embeds_in_index_order_with_the_key() {
    let fake = Arc::new(Fake::default());
    let service = EmbedService::new(&config(&serve(Arc::clone(&fake)).await)).expect("builds");
    let texts = vec!["one".to_owned(), "two words".to_owned(), "three".to_owned()];
    let answer = service
        .embed_texts(texts.clone(), Some("openai/text-embedding-3-small"))
        .await
        .expect("embeds");
    assert_eq!(
        (answer.model.as_str(), answer.dim),
        ("text-embedding-3-small", 1536)
    );
    for (text, vector) in texts.iter().zip(&answer.vectors) {
        assert_eq!(vector, &fake_vector(text, 1536));
    }
    // The bare name of the configured model resolves to the provider too.
    let bare = service
        .embed_texts(vec!["four".to_owned()], Some("text-embedding-3-small"))
        .await
        .expect("embeds");
    assert_eq!(bare.vectors[0], fake_vector("four", 1536));
}

#[tokio::test]
async fn openai_refusing_the_key_is_a_bad_gateway_naming_the_setting() {
    let base = serve(Arc::default()).await;
    let mut config = config(&base);
    config.openai.api_key = Some("sk-wrong".to_owned());
    let service = EmbedService::new(&config).expect("builds");
    let err = lakehouse_types::ApiError::from(
        service
            .embed_texts(vec!["x".to_owned()], Some("openai"))
            .await
            .expect_err("bad key"),
    );
    assert_eq!(err.code, ErrorCode::BadGateway);
    assert!(
        err.message.contains("embed.openai.api_key"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn health_of_a_remote_default_provider() {
    let service = EmbedService::new(&config(&serve(Arc::default()).await)).expect("builds");
    let health = service.health().await;
    assert_eq!(health.status, Status::Ok, "{health:?}");
    assert_eq!(health.details["provider"], "ollama");
}
