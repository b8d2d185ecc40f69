//! What each tool does, over the service traits: the answers an assistant reads (compact text tables or
//! JSON, capped in rows and bytes, saying when cut) and the errors it can act on.
//!
//! Nothing here knows MCP: `server.rs` adapts these to rmcp, so the same tools serve stdio and HTTP.

use std::fmt::Write as _;
use std::sync::Arc;

use lakehouse_api::{CatalogApi, EmbedApi, MatrixApi, QueryApi, Services, VectorApi};
use lakehouse_types::dataset::SqlRequest;
use lakehouse_types::embed::EmbedRequest;
use lakehouse_types::matrix::{MatrixSearchRequest, SearchMode};
use lakehouse_types::text::{cell, tsv};
use lakehouse_types::vector::SearchRequest;
use lakehouse_types::{ApiError, ErrorCode, RequestContext};
use serde::Deserialize;
use serde_json::Value;

/// The services the tools use (in-process in the gateway, HTTP clients for `lakehouse mcp`).
#[derive(Debug, Clone)]
struct Uses {
    /// catalogd.
    catalog: Arc<dyn CatalogApi>,
    /// queryd.
    query: Arc<dyn QueryApi>,
    /// embedd.
    embed: Arc<dyn EmbedApi>,
    /// vectord.
    vector: Arc<dyn VectorApi>,
    /// matrixd.
    matrix: Arc<dyn MatrixApi>,
}

/// How much one answer may hold (`[mcp]` in the config).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most rows a `query_sql` answer holds; the engine stops there.
    pub max_rows: usize,
    /// Most bytes of text one answer holds.
    pub max_bytes: usize,
    /// Most sessions open at once over HTTP; past it a new one is refused with 503 and `Retry-After`.
    pub max_sessions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: 1000,
            max_bytes: 64 * 1024,
            max_sessions: crate::MAX_SESSIONS,
        }
    }
}

/// A tool's outcome: text for the assistant, or an API error it can act on.
pub type Outcome = Result<String, ApiError>;

/// Arguments of `get_manifest`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestArgs {
    /// The dataset's name, as `list_datasets` shows it.
    pub name: String,
    /// A past version (time travel); the current one when left out.
    #[serde(default)]
    pub version: Option<u64>,
}

/// Arguments of `query_sql`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlArgs {
    /// One read-only statement (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE). `"name@v3"` reads version 3.
    pub sql: String,
    /// At most this many rows (capped by the server's limit, 1,000 by default).
    #[serde(default)]
    pub max_rows: Option<usize>,
}

/// Arguments of `embed_text`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedArgs {
    /// The texts to embed, in order.
    pub texts: Vec<String>,
    /// A model (`provider/model`); the server's default when left out.
    #[serde(default)]
    pub model: Option<String>,
}

/// Arguments of `search_vectors`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VectorArgs {
    /// The vector index to search.
    pub index: String,
    /// A text to search with (embedded by the server).
    #[serde(default)]
    pub text: Option<String>,
    /// A vector to search with, instead of a text.
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
    /// How many hits (default 10).
    #[serde(default)]
    pub k: Option<usize>,
    /// Metadata conditions, all ANDed: {"state": "TX", "rating": {"gte": 4}, "role": {"in": [...]}}.
    #[serde(default)]
    pub filter: Option<Value>,
}

/// Arguments of `matrix_search`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixArgs {
    /// What to look for, in words ("forklift operator with OSHA 10 near Dallas"); may be empty with order_id.
    #[serde(default)]
    pub query: String,
    /// A job order id: its text joins the query and its requirements decide who is eligible.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Corpora to search (list_corpora); all those the caller may search when left out.
    #[serde(default)]
    pub corpora: Option<Vec<String>>,
    /// How many hits (default 10, at most 100).
    #[serde(default)]
    pub k: Option<usize>,
    /// Conditions on fields, all ANDed, applied inside retrieval: {"state": "TX", "rating": {"gte": 4},
    /// "certifications": {"contains_all": ["OSHA 10"]}}.
    #[serde(default)]
    pub filters: Option<Value>,
    /// "hybrid" (default: meaning and words), "vector" (meaning) or "keyword" (words).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Also return candidates that are not eligible, with the reasons.
    #[serde(default)]
    pub include_ineligible: bool,
}

/// How matrix search retrieves candidates.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Meaning and words, fused.
    Hybrid,
    /// Meaning (embeddings).
    Vector,
    /// Words (BM25).
    Keyword,
}

impl From<Mode> for SearchMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Hybrid => SearchMode::Hybrid,
            Mode::Vector => SearchMode::Vector,
            Mode::Keyword => SearchMode::Keyword,
        }
    }
}

/// The tools over `services`.
#[derive(Debug, Clone)]
pub struct Toolbox {
    services: Uses,
    limits: Limits,
}

/// Text cut at `max` bytes (at a line end when one is near), saying so.
fn capped(mut text: String, max: usize, what: &str) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(line_end) = text[..cut].rfind('\n')
        && line_end > cut / 2
    {
        cut = line_end + 1;
    }
    text.truncate(cut);
    let _ = write!(
        text,
        "\n[truncated: the answer is over {max} bytes; {what}]"
    );
    text
}

fn json(value: &impl serde::Serialize) -> Outcome {
    serde_json::to_string(value)
        .map_err(|e| ApiError::internal(format!("could not encode the answer: {e}")))
}

impl Toolbox {
    /// The tools over `services`, with `limits` on every answer; an error names a service the tools use
    /// that `services` lacks.
    pub fn new(services: &Services, limits: Limits) -> Result<Self, ApiError> {
        let services = Uses {
            catalog: services.need_catalog()?,
            query: services.need_query()?,
            embed: services.need_embed()?,
            vector: services.need_vector()?,
            matrix: services.need_matrix()?,
        };
        Ok(Toolbox { services, limits })
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The names of the datasets the caller can read, for the `query_sql` description.
    pub async fn dataset_names(&self, ctx: &RequestContext) -> Vec<String> {
        self.services
            .catalog
            .list_datasets(ctx)
            .await
            .map(|l| l.datasets.into_iter().map(|d| d.name).collect())
            .unwrap_or_default()
    }

    /// `list_datasets`: name, version, rows, bytes, updated.
    pub async fn list_datasets(&self, ctx: &RequestContext) -> Outcome {
        let list = self.services.catalog.list_datasets(ctx).await?;
        let header = ["name", "version", "rows", "bytes", "updated_at"].map(str::to_owned);
        let rows: Vec<Vec<String>> = list
            .datasets
            .iter()
            .map(|d| {
                vec![
                    d.name.clone(),
                    d.version.to_string(),
                    d.rows.to_string(),
                    d.bytes.to_string(),
                    d.updated_at.to_rfc3339(),
                ]
            })
            .collect();
        Ok(capped(
            tsv(&header, &rows),
            self.limits.max_bytes,
            "there are too many datasets to list",
        ))
    }

    /// `get_manifest`: schema, files, history of one version.
    pub async fn get_manifest(&self, ctx: &RequestContext, args: ManifestArgs) -> Outcome {
        let manifest = self
            .services
            .catalog
            .manifest(ctx, &args.name, args.version)
            .await?;
        Ok(capped(
            json(&manifest)?,
            self.limits.max_bytes,
            "ask for an older version for a shorter history, or query the table with query_sql",
        ))
    }

    /// `query_sql`: a tab-separated table, the row cap enforced by the engine.
    pub async fn query_sql(&self, ctx: &RequestContext, args: SqlArgs) -> Outcome {
        let max_rows = args
            .max_rows
            .unwrap_or(self.limits.max_rows)
            .clamp(1, self.limits.max_rows);
        let result = self
            .services
            .query
            .sql(
                ctx,
                SqlRequest {
                    sql: args.sql,
                    max_rows: Some(max_rows),
                },
            )
            .await?;
        let answer = result.to_sql_response()?;
        let header: Vec<String> = answer
            .columns
            .iter()
            .map(|c| format!("{} ({})", c.name, c.data_type))
            .collect();
        let mut text = String::new();
        let mut shown = 0usize;
        let mut cut_for_bytes = false;
        text.push_str(&header.join("\t"));
        text.push('\n');
        for row in &answer.rows {
            let line = row.iter().map(cell).collect::<Vec<_>>().join("\t");
            if text.len() + line.len() + 1 > self.limits.max_bytes {
                cut_for_bytes = true;
                break;
            }
            text.push_str(&line);
            text.push('\n');
            shown += 1;
        }
        let _ = write!(text, "({shown} rows");
        if answer.truncated || cut_for_bytes {
            let _ = write!(
                text,
                "; truncated at {}: more rows exist. Aggregate, filter or add LIMIT",
                if cut_for_bytes {
                    format!("{} bytes", self.limits.max_bytes)
                } else {
                    format!("{max_rows} rows")
                }
            );
        }
        let _ = write!(text, "; {} ms)", answer.elapsed_ms);
        Ok(text)
    }

    /// `embed_text`: the vectors as JSON.
    pub async fn embed_text(&self, ctx: &RequestContext, args: EmbedArgs) -> Outcome {
        if args.texts.is_empty() {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "texts is empty: give at least one text",
            ));
        }
        let answer = self
            .services
            .embed
            .embed(
                ctx,
                EmbedRequest {
                    texts: args.texts,
                    model: args.model,
                },
            )
            .await?;
        Ok(capped(
            json(&answer)?,
            self.limits.max_bytes,
            "embed fewer texts at once",
        ))
    }

    /// `search_vectors`: hits with scores and metadata, as JSON.
    pub async fn search_vectors(&self, ctx: &RequestContext, args: VectorArgs) -> Outcome {
        let answer = self
            .services
            .vector
            .search(
                ctx,
                &args.index,
                SearchRequest {
                    vector: args.vector,
                    text: args.text,
                    k: args.k,
                    filter: args.filter,
                    metadata: None,
                },
            )
            .await?;
        Ok(capped(
            json(&answer)?,
            self.limits.max_bytes,
            "ask for fewer hits (k)",
        ))
    }

    /// `matrix_search`: the hits as a table (id, score, eligible, fields, reasons), the excluded counts and
    /// the versions answered from.
    pub async fn matrix_search(&self, ctx: &RequestContext, args: MatrixArgs) -> Outcome {
        let answer = self
            .services
            .matrix
            .search(
                ctx,
                MatrixSearchRequest {
                    query: args.query,
                    corpora: args.corpora,
                    k: args.k,
                    filters: args.filters,
                    order_id: args.order_id,
                    mode: args.mode.map(SearchMode::from),
                    include_ineligible: args.include_ineligible,
                },
            )
            .await?;
        let mut fields: Vec<String> = Vec::new();
        for hit in &answer.hits {
            for name in hit.fields.keys() {
                if !fields.contains(name) {
                    fields.push(name.clone());
                }
            }
        }
        let mut header: Vec<String> = ["corpus", "id", "score", "eligible"]
            .map(str::to_owned)
            .to_vec();
        header.extend(fields.iter().cloned());
        header.push("reasons".to_owned());
        let rows: Vec<Vec<String>> = answer
            .hits
            .iter()
            .map(|hit| {
                let mut row = vec![
                    hit.corpus.clone(),
                    hit.id.clone(),
                    format!("{:.4}", hit.score),
                    hit.eligible.to_string(),
                ];
                row.extend(
                    fields
                        .iter()
                        .map(|f| hit.fields.get(f).map(cell).unwrap_or_default()),
                );
                row.push(hit.reasons.join("; "));
                row
            })
            .collect();
        let mut text = tsv(&header, &rows);
        let versions: Vec<String> = answer
            .corpora
            .iter()
            .map(|(name, v)| format!("{name}@v{}", v.dataset_version))
            .collect();
        let _ = write!(
            text,
            "({} hits from {}; excluded {}",
            answer.hits.len(),
            versions.join(", "),
            answer.excluded.count
        );
        if !answer.excluded.by_reason.is_empty() {
            let reasons: Vec<String> = answer
                .excluded
                .by_reason
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            let _ = write!(text, " ({})", reasons.join(", "));
        }
        let _ = write!(text, "; {:.1} ms)", answer.elapsed_ms);
        Ok(capped(
            text,
            self.limits.max_bytes,
            "ask for fewer hits (k)",
        ))
    }

    /// `list_corpora`: each corpus the caller may search, its dataset, status and fields.
    pub async fn list_corpora(&self, ctx: &RequestContext) -> Outcome {
        let list = self.services.matrix.list_corpora(ctx).await?;
        let header = [
            "name",
            "dataset",
            "version",
            "status",
            "rows",
            "fields",
            "job_orders",
        ]
        .map(str::to_owned);
        let rows: Vec<Vec<String>> = list
            .corpora
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.dataset.clone(),
                    c.dataset_version.map(|v| v.to_string()).unwrap_or_default(),
                    c.status.as_str().to_owned(),
                    c.rows_total.to_string(),
                    c.definition.fields.join(","),
                    c.definition
                        .orders
                        .as_ref()
                        .map(|o| o.dataset.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        Ok(capped(
            tsv(&header, &rows),
            self.limits.max_bytes,
            "there are too many corpora to list",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_capped_at_a_line_and_say_so() {
        let text: String = (0..100).map(|i| format!("row {i}\n")).collect();
        let cut = capped(text.clone(), 64, "add LIMIT");
        assert!(cut.len() < 64 + 80);
        assert!(cut.contains("[truncated: the answer is over 64 bytes; add LIMIT]"));
        assert!(cut.starts_with("row 0\nrow 1\n"));
        assert_eq!(capped(text.clone(), 10_000, "x"), text);
        // Never inside a character.
        let wide = "é".repeat(100);
        assert!(capped(wide, 11, "x").starts_with("ééééé"));
    }
}
