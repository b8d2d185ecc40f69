//! Sentences per second of the local model at batch sizes 1, 8 and 32, and of 32 concurrent single-text
//! requests through the micro-batching pool.
//!
//! `cargo bench -p lakehouse-embed --bench local_model`; the model comes from the default model directory or
//! `LAKEHOUSE_EMBED_MODEL_DIR`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lakehouse_embed::config::default_model_dir;
use lakehouse_embed::{EmbedConfig, LocalModel};

/// Short staffing sentences of varied length, like the worker profiles and queries the service embeds.
fn sentences(count: usize) -> Vec<String> {
    let roles = [
        "forklift operator",
        "certified welder",
        "CNC machinist",
        "warehouse associate",
        "registered nurse",
    ];
    let skills = [
        "OSHA 10",
        "MIG and TIG welding",
        "reach truck and order picker",
        "blueprint reading",
        "night shift",
    ];
    let places = [
        "Houston, TX",
        "Dallas",
        "the Phoenix distribution centre",
        "Atlanta",
        "a cold-storage facility",
    ];
    (0..count)
        .map(|i| {
            let years = 1 + i % 15;
            let mut text = format!(
                "{} with {years} years of experience, {}, based in {}",
                roles[i % 5],
                skills[(i / 5) % 5],
                places[(i / 25) % 5]
            );
            if i % 3 == 0 {
                text.push_str(
                    ", available immediately for first or second shift and willing to travel",
                );
            }
            text
        })
        .collect()
}

fn model_dir() -> PathBuf {
    std::env::var_os("LAKEHOUSE_EMBED_MODEL_DIR").map_or_else(default_model_dir, PathBuf::from)
}

fn batches(c: &mut Criterion) {
    let model = match LocalModel::load(&model_dir()) {
        Ok(model) => model,
        Err(err) => panic!("{err}"),
    };
    let texts = sentences(256);
    let mut group = c.benchmark_group("local_model");
    for batch in [1usize, 8, 32] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("batch", batch), &batch, |b, &batch| {
            let mut offset = 0;
            b.iter(|| {
                let chunk: Vec<&str> = texts[offset..offset + batch]
                    .iter()
                    .map(String::as_str)
                    .collect();
                offset = (offset + batch) % (texts.len() - 32);
                black_box(model.embed(&chunk).map(|vectors| vectors.len()))
            });
        });
    }
    group.finish();
}

fn concurrent_requests(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("runtime: {err}"),
    };
    // The cache is off so every request reaches the model.
    let config = EmbedConfig {
        model_dir: model_dir(),
        cache: lakehouse_embed::config::CacheConfig {
            max_entries: 0,
            max_bytes: 0,
        },
        ..EmbedConfig::default()
    };
    let service = match runtime.block_on(lakehouse_embed::EmbedService::start(&config)) {
        Ok(service) => Arc::new(service),
        Err(err) => panic!("{err}"),
    };
    let texts = sentences(256);
    let mut group = c.benchmark_group("service");
    group.throughput(Throughput::Elements(32));
    group.bench_function("32_concurrent_single_text_requests", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let tasks: Vec<_> = texts[..32]
                    .iter()
                    .map(|text| {
                        let service = Arc::clone(&service);
                        let text = text.clone();
                        tokio::spawn(async move {
                            service.embed_texts(vec![text], None).await.map(|a| a.dim)
                        })
                    })
                    .collect();
                for task in tasks {
                    let _ = black_box(task.await);
                }
            })
        });
    });
    group.finish();
}

criterion_group!(benches, batches, concurrent_requests);
criterion_main!(benches);
