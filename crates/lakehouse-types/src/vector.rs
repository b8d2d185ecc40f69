//! Vector index requests and responses.
//!
//! Scores are "higher is better" whatever the metric, so hits from several indexes can be merged; the raw
//! distance the metric defines is returned beside them (lower is better).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Metadata stored with an item: a JSON object.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine similarity (score = cosine similarity, distance = 1 − similarity).
    #[default]
    Cosine,
    /// Euclidean distance (score = 1 / (1 + distance), distance = Euclidean distance).
    L2,
    /// Inner product (score = dot product, distance = 1 − dot product).
    Ip,
}

impl Metric {
    /// The name used on the wire and in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Ip => "ip",
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/vectors/index`: creates an empty index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateIndexRequest {
    /// The index name: 1–64 characters of `a-z 0-9 _ -`.
    pub name: String,
    /// The dimension of every vector (1–4096).
    pub dim: usize,
    /// How vectors are compared; cosine when absent.
    #[serde(default)]
    pub metric: Metric,
}

/// What `GET /v1/vectors/index/{name}` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// The index name.
    pub name: String,
    /// The dimension of its vectors.
    pub dim: usize,
    /// How vectors are compared.
    pub metric: Metric,
    /// Items in the index.
    pub count: usize,
    /// When the index was created.
    pub created_at: DateTime<Utc>,
    /// When the last acknowledged change was written to storage (absent while the index is empty of changes).
    pub persisted_at: Option<DateTime<Utc>>,
    /// Memory the index holds: vectors, graph, ids and metadata.
    pub bytes: u64,
    /// `bytes / count` (0 for an empty index).
    pub bytes_per_vector: u64,
    /// Change segments written since the last snapshot (start-up replays these).
    pub segments_since_snapshot: u64,
}

/// `GET /v1/vectors/index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListIndexesResponse {
    /// Every index, by name.
    pub indexes: Vec<IndexInfo>,
}

/// One item of an add batch: an id, a vector or a text to embed, and metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AddItem {
    /// The item's id (any non-empty string up to 512 bytes); an existing id is replaced.
    #[serde(default)]
    pub id: Option<String>,
    /// The vector; exactly one of `vector` and `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// A text embedded by the embedding service; exactly one of `vector` and `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Metadata returned with hits and matched by filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `POST /v1/vectors/index/{name}/add`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AddRequest {
    /// The batch; validated whole before any of it is applied. At most
    /// [`MAX_BATCH_ITEMS`](crate::bounded::MAX_BATCH_ITEMS) are decoded.
    #[serde(
        deserialize_with = "crate::bounded::list::<_, _, { crate::bounded::MAX_BATCH_ITEMS }>"
    )]
    pub items: Vec<AddItem>,
}

/// The answer to an add: how many ids were new and how many replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddResponse {
    /// Ids that were not in the index.
    pub added: usize,
    /// Ids that were, and whose vector and metadata were replaced.
    pub updated: usize,
}

/// `POST /v1/vectors/index/{name}/search`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The query vector; exactly one of `vector` and `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// A query text, embedded first; exactly one of `vector` and `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// How many hits (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Conditions on metadata, all ANDed: `{"state": "TX", "rating": {"gte": 4}, "role": {"in": [...]},
    /// "certs": {"contains_all": [...]}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
    /// `false` leaves each hit's metadata out (a caller that holds the rows itself saves the copies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<bool>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The item's id.
    pub id: String,
    /// Similarity, higher is better (see [`Metric`]).
    pub score: f32,
    /// The metric's distance, lower is better.
    pub distance: f32,
    /// The item's metadata.
    pub metadata: Metadata,
}

/// The answer to a search: hits, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// At most `k` hits, best first.
    pub hits: Vec<SearchHit>,
}

/// One stored item, as `GET /v1/vectors/index/{name}/items/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorItem {
    /// The item's id.
    pub id: String,
    /// Its vector, exactly as stored.
    pub vector: Vec<f32>,
    /// Its metadata.
    pub metadata: Metadata,
}
