//! Request limits and model selection. None of these reach a model: they are refused before inference.

use lakehouse_api::EmbedApi;
use lakehouse_embed::{EmbedConfig, EmbedService};
use lakehouse_types::embed::EmbedRequest;
use lakehouse_types::{ApiError, ErrorCode, RequestContext};

use crate::local_config;

async fn embed(
    service: &EmbedService,
    texts: Vec<String>,
    model: Option<&str>,
) -> Result<usize, ApiError> {
    let request = EmbedRequest {
        texts,
        model: model.map(str::to_owned),
    };
    service
        .embed(&RequestContext::system("test"), request)
        .await
        .map(|answer| answer.vectors.len())
}

fn service(config: EmbedConfig) -> EmbedService {
    EmbedService::new(&config).expect("service builds")
}

#[tokio::test]
async fn empty_batch_is_a_bad_request() {
    let err = embed(&service(local_config()), Vec::new(), None)
        .await
        .expect_err("empty");
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert!(err.message.contains("no texts"), "{}", err.message);
}

#[tokio::test]
async fn too_many_texts_is_payload_too_large() {
    let config = EmbedConfig {
        max_batch: 3,
        ..local_config()
    };
    let err = embed(&service(config), vec!["a".to_owned(); 4], None)
        .await
        .expect_err("too many");
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    assert_eq!(err.status(), 413);
    assert!(
        err.message.contains("4 texts") && err.message.contains("at most 3"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn too_long_text_is_payload_too_large_and_names_it() {
    let config = EmbedConfig {
        max_text_bytes: 10,
        ..local_config()
    };
    let texts = vec!["short".to_owned(), "x".repeat(11)];
    let err = embed(&service(config), texts, None)
        .await
        .expect_err("too long");
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    assert!(
        err.message.contains("text 1 is 11 bytes"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn default_limits_are_256_texts_and_32_kib() {
    let service = service(local_config());
    let err = embed(&service, vec![String::new(); 257], None)
        .await
        .expect_err("257 texts");
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    let err = embed(&service, vec!["y".repeat(32 * 1024 + 1)], None)
        .await
        .expect_err("32 KiB + 1");
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
}

#[tokio::test]
async fn unknown_models_are_bad_requests_that_list_the_choices() {
    let service = service(local_config());
    for model in [
        "gpt-9",
        "local/other-model",
        "mistral/foo",
        "openai/text-embedding-3-small",
        "openai",
    ] {
        let err = embed(&service, vec!["x".to_owned()], Some(model))
            .await
            .expect_err(model);
        assert_eq!(err.code, ErrorCode::BadRequest, "{model}: {}", err.message);
        assert_eq!(err.status(), 400);
    }
    let err = embed(&service, vec!["x".to_owned()], Some("gpt-9"))
        .await
        .expect_err("unknown");
    assert!(
        err.message.contains("gpt-9") && err.message.contains("all-MiniLM-L6-v2"),
        "{}",
        err.message
    );
    let err = embed(&service, vec!["x".to_owned()], Some("openai/x"))
        .await
        .expect_err("not configured");
    assert!(
        err.message.contains("embed.openai.base_url"),
        "{}",
        err.message
    );
}

#[test]
fn a_default_model_no_provider_serves_is_refused_at_start() {
    let config = EmbedConfig {
        default_model: Some("not-a-model".to_owned()),
        ..local_config()
    };
    let err = EmbedService::new(&config).expect_err("bad default");
    assert!(err.to_string().contains("not-a-model"), "{err}");
}

#[test]
fn config_deserialises_with_defaults_for_the_rest() {
    let config: EmbedConfig = serde_json::from_value(serde_json::json!({
        "default_provider": "ollama",
        "ollama": {"base_url": "http://gpu-box:11434"},
        "cache": {"max_entries": 10},
        "max_batch": 64
    }))
    .expect("parses");
    assert_eq!(
        config.default_provider,
        lakehouse_embed::ProviderKind::Ollama
    );
    assert_eq!(config.ollama.model, "nomic-embed-text");
    assert_eq!(config.ollama.base_url, "http://gpu-box:11434");
    assert_eq!(config.cache.max_entries, 10);
    assert_eq!(config.max_batch, 64);
    assert_eq!(config.max_text_bytes, 32 * 1024);
    assert!(
        config
            .model_dir
            .ends_with("lakehouse/models/all-MiniLM-L6-v2")
    );
}
