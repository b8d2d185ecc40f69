//! `lakehouse search` and `lakehouse generate`: matrix search from the command line, and the staffing data
//! set for demos, tests and benchmarks.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use lakehouse_api::MatrixApi;
use lakehouse_client::HttpMatrixClient;
use lakehouse_types::matrix::{MatrixSearchRequest, MatrixSearchResponse, SearchMode};
use lakehouse_types::text::{aligned, cell};

use crate::datasets_cli::{RemoteArgs, api};

/// Widest cell of a search result table (profiles are long).
const MAX_CELL: usize = 48;

/// `lakehouse search "..."`.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// What you are looking for ("forklift operator with OSHA 10 near Dallas"); may be empty with --order.
    #[arg(default_value = "")]
    pub query: String,
    /// A job order: its text joins the query and its fields decide who is eligible.
    #[arg(long = "order")]
    pub order_id: Option<String>,
    /// A corpus to search (repeat for several); every corpus you may search by default.
    #[arg(long = "corpus")]
    pub corpora: Vec<String>,
    /// How many hits.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Retrieval: hybrid (meaning and words), vector (meaning) or keyword (words).
    #[arg(long, value_enum, default_value = "hybrid")]
    pub mode: ModeArg,
    /// Filters as JSON, e.g. '{"state": "TX", "rating": {"gte": 4}}'.
    #[arg(long)]
    pub filter: Option<String>,
    /// Also show candidates that are not eligible, with their reasons.
    #[arg(long)]
    pub include_ineligible: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: SearchFormat,
    /// The server and the API key.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Retrieval modes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Vector and keyword, fused.
    Hybrid,
    /// Vector only.
    Vector,
    /// Keyword (BM25) only.
    Keyword,
}

/// How search results are printed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SearchFormat {
    /// An aligned table with eligibility reasons.
    Table,
    /// The JSON answer of `POST /v1/matrix/search`.
    Json,
}

/// `lakehouse generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Workers to generate (clients, job orders, placements and timesheets are sized from it).
    #[arg(long, default_value_t = 5000)]
    pub workers: usize,
    /// Directory to write the CSV files into.
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed: the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the faults of real exports (BOM, CRLF, quoted line breaks, padded values, mixed phone
    /// formats, empty vs missing values).
    #[arg(long)]
    pub messy: bool,
}

/// Writes the staffing data set and says what it wrote.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let written = lakehouse_generate::generate(
        &args.out,
        &lakehouse_generate::Options {
            workers: args.workers,
            seed: args.seed,
            messy: args.messy,
        },
    )
    .with_context(|| format!("writing into {}", args.out.display()))?;
    let header = ["file", "rows", "bytes"].map(str::to_owned).to_vec();
    let rows: Vec<Vec<String>> = written
        .iter()
        .map(|w| {
            vec![
                args.out
                    .join(format!("{}.csv", w.table))
                    .display()
                    .to_string(),
                w.rows.to_string(),
                w.bytes.to_string(),
            ]
        })
        .collect();
    print!("{}", aligned(&header, &rows));
    Ok(())
}

/// Runs a search on a running server and prints the answer.
pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let filters = match &args.filter {
        Some(text) => Some(
            serde_json::from_str::<serde_json::Value>(text)
                .context("--filter is not valid JSON")?,
        ),
        None => None,
    };
    let request = MatrixSearchRequest {
        query: args.query.clone(),
        corpora: (!args.corpora.is_empty()).then(|| args.corpora.clone()),
        k: Some(args.k),
        filters,
        order_id: args.order_id.clone(),
        mode: Some(match args.mode {
            ModeArg::Hybrid => SearchMode::Hybrid,
            ModeArg::Vector => SearchMode::Vector,
            ModeArg::Keyword => SearchMode::Keyword,
        }),
        include_ineligible: args.include_ineligible,
    };
    let client = HttpMatrixClient::new(&args.remote.url).map_err(api)?;
    let answer = client
        .search(&args.remote.context(), request)
        .await
        .map_err(api)?;
    match args.format {
        SearchFormat::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
        SearchFormat::Table => print!("{}", render(&answer)),
    }
    Ok(())
}

fn shorten(text: String) -> String {
    let text = text.replace(['\n', '\r'], " ");
    if text.chars().count() <= MAX_CELL {
        return text;
    }
    let cut: String = text.chars().take(MAX_CELL - 1).collect();
    format!("{cut}…")
}

/// The answer as an aligned table (rank, id, score, eligibility, the visible fields, reasons), then the
/// excluded counts and where the answer came from.
pub fn render(answer: &MatrixSearchResponse) -> String {
    let several = answer.corpora.len() > 1;
    let mut fields: Vec<String> = Vec::new();
    for hit in &answer.hits {
        for name in hit.fields.keys() {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
    }
    let mut header: Vec<String> = vec!["#".into()];
    if several {
        header.push("corpus".into());
    }
    header.extend(["id", "score", "eligible"].map(str::to_owned));
    header.extend(fields.iter().cloned());
    header.push("reasons".into());
    let rows: Vec<Vec<String>> = answer
        .hits
        .iter()
        .enumerate()
        .map(|(i, hit)| {
            let mut row = vec![(i + 1).to_string()];
            if several {
                row.push(hit.corpus.clone());
            }
            row.push(hit.id.clone());
            row.push(format!("{:.4}", hit.score));
            row.push(if hit.eligible { "yes" } else { "no" }.to_owned());
            for name in &fields {
                row.push(shorten(hit.fields.get(name).map(cell).unwrap_or_default()));
            }
            row.push(hit.reasons.join("; "));
            row
        })
        .collect();
    let mut out = if rows.is_empty() {
        "no hits\n".to_owned()
    } else {
        aligned(&header, &rows)
    };
    if answer.excluded.count > 0 {
        let reasons: Vec<String> = answer
            .excluded
            .by_reason
            .iter()
            .map(|(reason, n)| format!("{reason}: {n}"))
            .collect();
        out.push_str(&format!(
            "excluded {} ({})\n",
            answer.excluded.count,
            reasons.join(", ")
        ));
    }
    let versions: Vec<String> = answer
        .corpora
        .iter()
        .map(|(name, v)| format!("{name}@v{}", v.dataset_version))
        .collect();
    out.push_str(&format!(
        "{} hits from {} in {:.1} ms\n",
        answer.hits.len(),
        versions.join(", "),
        answer.elapsed_ms
    ));
    out
}
