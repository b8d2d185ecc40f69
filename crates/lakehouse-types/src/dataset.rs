//! Dataset types: the catalog (list, manifest, register), ingest and SQL.
//!
//! Column types are spelled the same way everywhere (manifest, ingest answer, SQL columns, drift details):
//! `boolean`, `int8`..`int64`, `uint8`..`uint64`, `float32`, `float64`, `decimal(p,s)`, `date`,
//! `timestamp` (UTC), `timestamp_ntz`, `string`, `binary`, and the Arrow name for anything rarer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One dataset in the catalog listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetSummary {
    /// The dataset's name (also its SQL table name).
    pub name: String,
    /// The current table version.
    pub version: u64,
    /// Rows in the current version.
    pub rows: u64,
    /// Bytes of data files in the current version.
    pub bytes: u64,
    /// When the current version was committed.
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/catalog/datasets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetList {
    /// Every dataset, by name.
    pub datasets: Vec<DatasetSummary>,
}

/// One column of a dataset's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Column name.
    pub column: String,
    /// Column type (see the module docs for the spelling).
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

/// One data file of a table version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path relative to the table root (`datasets/<name>/`).
    pub path: String,
    /// Rows in the file, when its statistics say.
    pub rows: Option<u64>,
    /// File size in bytes.
    pub bytes: u64,
}

/// One commit of a table's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The version this commit produced.
    pub version: u64,
    /// When it was committed.
    pub timestamp: Option<DateTime<Utc>>,
    /// The Delta operation (`WRITE`, `CREATE TABLE`, ...).
    pub operation: String,
    /// The write mode (`Append`, `Overwrite`, `ErrorIfExists`), when the operation is a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Rows the commit added, when recorded.
    pub rows_added: Option<u64>,
}

/// `GET /v1/catalog/datasets/{name}` (and `.../versions/{v}`): a table version's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Dataset name.
    pub name: String,
    /// The version described.
    pub version: u64,
    /// Columns in order.
    pub schema: Vec<ColumnInfo>,
    /// Data files of this version.
    pub files: Vec<FileInfo>,
    /// Total rows (sum over files).
    pub rows: u64,
    /// Total bytes (sum over files).
    pub bytes: u64,
    /// Commits up to this version, newest first.
    pub history: Vec<HistoryEntry>,
}

/// How an ingest (or a registration) treats an existing table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Create the dataset; it must not exist.
    Create,
    /// Add rows as a new version; creates the dataset when it does not exist.
    #[default]
    Append,
    /// Replace every row (and the schema) as a new version; older versions stay readable.
    Overwrite,
}

impl WriteMode {
    /// The query-string spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Create => "create",
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
        }
    }
}

/// Schema evolution allowed by an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evolve {
    /// New columns (nullable) may be added; missing or retyped columns are still drift.
    AddColumns,
}

impl Evolve {
    /// The query-string spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Evolve::AddColumns => "add_columns",
        }
    }
}

/// The format of an ingest body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestFormat {
    /// Comma-separated values with a header row (`text/csv`).
    Csv,
    /// One JSON object per line (`application/x-ndjson`).
    Ndjson,
    /// An Apache Parquet file (`application/vnd.apache.parquet`).
    Parquet,
}

impl IngestFormat {
    /// The format named by a `Content-Type` (parameters ignored), if any.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" | "application/csv" => Some(IngestFormat::Csv),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/json-lines" => Some(IngestFormat::Ndjson),
            "application/vnd.apache.parquet" | "application/parquet" | "application/x-parquet" => {
                Some(IngestFormat::Parquet)
            }
            _ => None,
        }
    }

    /// The canonical `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            IngestFormat::Csv => "text/csv",
            IngestFormat::Ndjson => "application/x-ndjson",
            IngestFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// The parameters of an ingest; the body travels beside it as a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRequest {
    /// Target dataset.
    pub dataset: String,
    /// Create, append or overwrite.
    pub mode: WriteMode,
    /// Schema evolution allowed on append.
    pub evolve: Option<Evolve>,
    /// Body format.
    pub format: IngestFormat,
    /// The `Idempotency-Key` header, when sent.
    pub idempotency_key: Option<String>,
    /// The declared body length, when known (lets an over-cap body be refused before reading it).
    pub content_length: Option<u64>,
}

/// Query parameters of `POST /v1/ingest/{dataset}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestParams {
    /// `create`, `append` (default) or `overwrite`.
    #[serde(default)]
    pub mode: Option<WriteMode>,
    /// `add_columns` to allow new nullable columns on append.
    #[serde(default)]
    pub evolve: Option<Evolve>,
    /// Overrides the body format the `Content-Type` implies.
    #[serde(default)]
    pub format: Option<IngestFormat>,
}

/// `201 {dataset, version, rows, bytes, schema}`: the version an ingest or registration produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResponse {
    /// The dataset written.
    pub dataset: String,
    /// The new version.
    pub version: u64,
    /// Rows written by this request.
    pub rows: u64,
    /// Bytes of data files written by this request.
    pub bytes: u64,
    /// The table's schema after the write.
    pub schema: Vec<ColumnInfo>,
    /// Whether this is the stored answer of an earlier request with the same idempotency key (HTTP 200
    /// instead of 201). Not part of the body.
    #[serde(skip)]
    pub replayed: bool,
}

/// `POST /v1/catalog/datasets/{name}/register`: existing Parquet objects to add as a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Object keys of Parquet files in the store (outside `datasets/`, e.g. `uploads/x.parquet`).
    pub files: Vec<String>,
    /// `append` (default; creates the dataset when missing), `create` or `overwrite`.
    #[serde(default)]
    pub mode: WriteMode,
    /// Schema evolution allowed on append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evolve: Option<Evolve>,
}

/// A column whose type differs between a table and an incoming write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetypedColumn {
    /// Column name.
    pub column: String,
    /// The table's type.
    pub from: String,
    /// The incoming type.
    pub to: String,
}

/// The `details` of a `409 schema_drift`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaDiff {
    /// Columns in the input, not in the table.
    pub added: Vec<ColumnInfo>,
    /// Columns in the table, not in the input.
    pub missing: Vec<ColumnInfo>,
    /// Columns in both whose types cannot be reconciled.
    pub retyped: Vec<RetypedColumn>,
}

impl SchemaDiff {
    /// Whether the schemas agree.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.missing.is_empty() && self.retyped.is_empty()
    }
}

/// `POST /v1/sql`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlRequest {
    /// One read-only statement.
    pub sql: String,
    /// At most this many rows are returned (default and cap from config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<usize>,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlColumn {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// The JSON answer of `POST /v1/sql`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlResponse {
    /// Result columns in order.
    pub columns: Vec<SqlColumn>,
    /// Rows, each an array in column order.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows returned.
    pub row_count: usize,
    /// Whether more rows existed past `max_rows`.
    pub truncated: bool,
    /// Time spent planning and executing.
    pub elapsed_ms: u64,
}

/// Headers carrying the SQL metadata beside non-JSON result formats.
pub mod sql_headers {
    /// `true` when the result was cut at `max_rows`.
    pub const TRUNCATED: &str = "x-lakehouse-truncated";
    /// Milliseconds spent planning and executing.
    pub const ELAPSED_MS: &str = "x-lakehouse-elapsed-ms";
}

/// The `Content-Type` of the Arrow IPC stream format.
pub const ARROW_STREAM_CONTENT_TYPE: &str = "application/vnd.apache.arrow.stream";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_response_hides_replayed() {
        let r = WriteResponse {
            dataset: "w".into(),
            version: 1,
            rows: 2,
            bytes: 3,
            schema: vec![ColumnInfo {
                column: "a".into(),
                data_type: "int64".into(),
                nullable: true,
            }],
            replayed: true,
        };
        let json = serde_json::to_value(&r).expect("serialise");
        assert!(json.get("replayed").is_none());
        assert_eq!(json["schema"][0]["type"], "int64");
    }

    #[test]
    fn content_types_map_to_formats() {
        assert_eq!(
            IngestFormat::from_content_type("text/csv; charset=utf-8"),
            Some(IngestFormat::Csv)
        );
        assert_eq!(
            IngestFormat::from_content_type("application/x-ndjson"),
            Some(IngestFormat::Ndjson)
        );
        assert_eq!(IngestFormat::from_content_type("image/png"), None);
    }
}

/// What a compaction did: `POST /v1/catalog/datasets/{name}/optimize` (and the automatic runs, in the log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimizeResponse {
    /// The dataset.
    pub dataset: String,
    /// The last version committed; `None` when there was nothing to compact.
    pub version: Option<u64>,
    /// Small files before the run.
    pub small_files: usize,
    /// Files removed from the table (kept on storage for older versions until they are vacuumed).
    pub files_removed: usize,
    /// Files written.
    pub files_added: usize,
    /// Bytes of the files removed.
    pub bytes_removed: u64,
    /// Bytes of the files written.
    pub bytes_added: u64,
    /// Rows rewritten.
    pub rows: u64,
    /// Why (the rest) was not compacted, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// `?dry_run=`: whether `POST /v1/catalog/datasets/{name}/vacuum` only reports what it would remove.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VacuumQuery {
    /// Report the files that would be removed, and remove nothing (default false).
    pub dry_run: Option<bool>,
}

/// What a vacuum removed (or, in a dry run, would remove): files no version inside the retention needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VacuumResponse {
    /// The dataset.
    pub dataset: String,
    /// Nothing was removed: the files are those a run would remove.
    pub dry_run: bool,
    /// How long versions are kept, in days (`[datasets] keep_versions`, or the table's own).
    pub keep_versions_days: f64,
    /// The oldest version still a time-travel target.
    pub oldest_kept_version: u64,
    /// Data files removed (or to remove).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Log entries (commits and checkpoints before the oldest kept version) removed; none in a dry run.
    pub log_files: usize,
    /// Up to 20 of the data files, as paths inside the table.
    pub sample: Vec<String>,
    /// Why nothing was done, when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// `?limit=&before=`: which page of a dataset's history (`GET /v1/catalog/datasets/{name}[/history]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// At most this many commits (default 100, at most 1,000).
    pub limit: Option<usize>,
    /// Only commits older than this version (default: from the current one).
    pub before: Option<u64>,
}

/// One page of a dataset's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The dataset.
    pub name: String,
    /// The commits, newest first.
    pub history: Vec<HistoryEntry>,
    /// `before=` for the next page, when older commits remain in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}
