//! Matrix search requests and responses: corpora (datasets made searchable) and the staffing co-pilot's
//! search with its eligibility judge.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The fields of a hit: column name → value.
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// `POST /v1/matrix/corpora`: a dataset made searchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusDefinition {
    /// The corpus name: 1–48 characters of `a-z 0-9 _ -`, starting with a letter or digit.
    pub name: String,
    /// The dataset it follows.
    pub dataset: String,
    /// The column that identifies a row (unique, never null).
    pub id_column: String,
    /// What is embedded and keyword-indexed: a column name (`"profile_text"`) or a template naming
    /// columns in braces (`"{primary_role} in {city}, {state}. {profile_text}"`; `{{` is a brace).
    pub text: String,
    /// The columns a hit shows.
    #[serde(default)]
    pub fields: Vec<String>,
    /// The columns filters may name; by default every column but the id and those holding prose (text
    /// longer than 200 characters somewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filterable: Option<Vec<String>>,
    /// How list columns (certifications) are split; `;` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_separator: Option<String>,
    /// The list columns; by default the columns of `contains_all` rules and the filterable text columns
    /// in which some value holds the separator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_columns: Option<Vec<String>>,
    /// Where job orders come from, for searches with an `order_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<OrdersSource>,
    /// The eligibility rules, each a JSON object naming a field, a test and the reason shown when it
    /// fails (see `docs/matrix.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eligibility: Vec<serde_json::Value>,
}

/// A corpus's job orders: the dataset, its id column and the text an order adds to the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersSource {
    /// The dataset of job orders.
    pub dataset: String,
    /// Its id column.
    pub id_column: String,
    /// A column or template, as for the corpus text.
    pub text: String,
}

/// Where a corpus stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorpusStatus {
    /// The first build (or, after a start, the load) is running; searches wait for it.
    Building,
    /// Searchable (it may be catching up with a newer dataset version meanwhile).
    Ready,
    /// The last build or catch-up failed; `error` says why. Searches answer from the last good state, if any.
    Failed,
}

impl CorpusStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CorpusStatus::Building => "building",
            CorpusStatus::Ready => "ready",
            CorpusStatus::Failed => "failed",
        }
    }
}

/// `GET /v1/matrix/corpora/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    /// The corpus name.
    pub name: String,
    /// The dataset it follows.
    pub dataset: String,
    /// The dataset version searches answer from (absent before the first build ends).
    pub dataset_version: Option<u64>,
    /// Building, ready or failed.
    pub status: CorpusStatus,
    /// Rows of the version being built (or of `dataset_version` when idle).
    pub rows_total: u64,
    /// Rows of that version already indexed.
    pub rows_indexed: u64,
    /// Why the last build failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A newer dataset version being caught up with, while searches answer from `dataset_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catching_up_to: Option<u64>,
    /// When the corpus last changed state.
    pub updated_at: DateTime<Utc>,
    /// What the last build or catch-up did, and where its time went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<SyncStats>,
    /// The definition it was created with.
    pub definition: CorpusDefinition,
}

/// One build or catch-up of a corpus: what it changed, and where the time went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncStats {
    /// The dataset version it brought the corpus to.
    pub version: u64,
    /// Rows of that version.
    pub rows: u64,
    /// Rows embedded (new, or whose text changed).
    pub embedded: u64,
    /// Rows whose metadata alone changed (their vector kept).
    pub metadata_updated: u64,
    /// Ids removed (gone from the dataset).
    pub deleted: u64,
    /// Milliseconds reading the dataset version and fingerprinting its rows.
    pub read_ms: u64,
    /// Milliseconds embedding.
    pub embed_ms: u64,
    /// Milliseconds writing vectors (and checkpoints).
    pub index_ms: u64,
    /// Milliseconds building the keyword index and the snapshot.
    pub keyword_ms: u64,
    /// Milliseconds in all.
    pub total_ms: u64,
}

/// `GET /v1/matrix/corpora`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusList {
    /// The corpora the caller may search, by name.
    pub corpora: Vec<CorpusInfo>,
}

/// How candidates are retrieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Vector and keyword retrieval fused by reciprocal rank.
    #[default]
    Hybrid,
    /// Vector retrieval only (by meaning).
    Vector,
    /// BM25 keyword retrieval only (by words).
    Keyword,
}

impl SearchMode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Vector => "vector",
            SearchMode::Keyword => "keyword",
        }
    }
}

/// `POST /v1/matrix/search`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSearchRequest {
    /// What the recruiter typed; may be empty when `order_id` is given.
    #[serde(default)]
    pub query: String,
    /// The corpora to search; every corpus the caller may search when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpora: Option<Vec<String>>,
    /// How many hits (default 10, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Conditions in the vector filter language, applied inside retrieval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<serde_json::Value>,
    /// A job order: its text joins the query and its fields parameterise the eligibility rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Hybrid (default), vector or keyword.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SearchMode>,
    /// Return ineligible hits too, marked `eligible: false` with their reasons.
    #[serde(default)]
    pub include_ineligible: bool,
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixHit {
    /// The corpus it came from.
    pub corpus: String,
    /// The row's id.
    pub id: String,
    /// Higher is better: the fused reciprocal-rank score in hybrid mode (and across corpora), the cosine
    /// similarity in vector mode, the BM25 score in keyword mode over one corpus.
    pub score: f64,
    /// The corpus's fields the caller may see.
    pub fields: Fields,
    /// Whether every eligibility rule holds.
    pub eligible: bool,
    /// The reasons of the rules that failed.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// Candidates left out by the eligibility judge.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Excluded {
    /// Ineligible candidates among those judged.
    pub count: u64,
    /// How many failed each reason (a candidate failing two rules counts under both).
    pub by_reason: BTreeMap<String, u64>,
}

/// The dataset version a corpus answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusVersion {
    /// The dataset version.
    pub dataset_version: u64,
}

/// The answer to a matrix search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixSearchResponse {
    /// At most `k` eligible hits, best first (and ineligible ones marked, with `include_ineligible`).
    pub hits: Vec<MatrixHit>,
    /// Candidates the judge left out, by reason.
    pub excluded: Excluded,
    /// Each corpus searched, with the dataset version it answered from.
    pub corpora: BTreeMap<String, CorpusVersion>,
    /// Time spent answering, in milliseconds.
    pub elapsed_ms: f64,
    /// The id of this search's recording in `matrix_recordings`.
    pub recording_id: String,
}
