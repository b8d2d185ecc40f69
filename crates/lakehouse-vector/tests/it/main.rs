//! Integration tests of the vector service over in-memory and local-disk object stores.

mod errors;
mod persistence;
mod search;

use std::sync::Arc;

use async_trait::async_trait;
use lakehouse_api::{EmbedApi, VectorApi};
use lakehouse_types::embed::{EmbedRequest, EmbedResponse};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::vector::{
    AddItem, AddRequest, CreateIndexRequest, Metadata, Metric, SearchRequest,
};
use lakehouse_types::{ApiError, RequestContext};
use lakehouse_vector::{VectorConfig, VectorService};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A deterministic stand-in for the embedding service, for the text path only: the real model is tested
/// in the embedding crate. Each text becomes a fixed pseudo-random unit vector seeded by its bytes.
#[derive(Debug)]
pub struct HashEmbedder {
    pub dim: usize,
}

impl HashEmbedder {
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let seed = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = StdRng::seed_from_u64(seed);
        let v: Vec<f32> = (0..self.dim)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    }
}

#[async_trait]
impl EmbedApi for HashEmbedder {
    async fn embed(
        &self,
        _ctx: &RequestContext,
        request: EmbedRequest,
    ) -> Result<EmbedResponse, ApiError> {
        Ok(EmbedResponse {
            model: "test-hash".to_owned(),
            dim: self.dim,
            vectors: request.texts.iter().map(|t| self.vector(t)).collect(),
        })
    }

    async fn health(&self) -> ServiceHealth {
        ServiceHealth::ok("test")
    }
}

pub fn ctx() -> &'static RequestContext {
    static CTX: std::sync::LazyLock<RequestContext> =
        std::sync::LazyLock::new(|| RequestContext::system("test"));
    &CTX
}

pub fn memory_store() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

pub async fn service(store: Arc<dyn ObjectStore>, config: VectorConfig) -> VectorService {
    VectorService::open(store, Some(Arc::new(HashEmbedder { dim: 8 })), config)
        .await
        .expect("open service")
}

pub async fn create(svc: &VectorService, name: &str, dim: usize, metric: Metric) {
    svc.create_index(
        ctx(),
        CreateIndexRequest {
            name: name.to_owned(),
            dim,
            metric,
        },
    )
    .await
    .expect("create index");
}

pub fn meta(value: serde_json::Value) -> Metadata {
    value.as_object().cloned().unwrap_or_default()
}

pub fn item(id: &str, vector: Vec<f32>, metadata: serde_json::Value) -> AddItem {
    AddItem {
        id: Some(id.to_owned()),
        vector: Some(vector),
        text: None,
        metadata: Some(meta(metadata)),
    }
}

pub async fn add(svc: &VectorService, name: &str, items: Vec<AddItem>) -> (usize, usize) {
    let r = svc
        .add(ctx(), name, AddRequest { items })
        .await
        .expect("add");
    (r.added, r.updated)
}

pub async fn search_ids(
    svc: &VectorService,
    name: &str,
    query: Vec<f32>,
    k: usize,
    filter: Option<serde_json::Value>,
) -> Vec<String> {
    let request = SearchRequest {
        vector: Some(query),
        text: None,
        k: Some(k),
        filter,
        metadata: None,
    };
    svc.search(ctx(), name, request)
        .await
        .expect("search")
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect()
}

/// `n` vectors around `clusters` random centres (the shape of real embeddings: clumpy, not uniform).
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    (0..n)
        .map(|_| {
            let centre = &centres[rng.random_range(0..clusters)];
            centre
                .iter()
                .map(|c| c + rng.random_range(-0.35f32..0.35))
                .collect()
        })
        .collect()
}
