//! `lakehouse ingest`, `lakehouse sql` and `lakehouse datasets`: the dataset commands, spoken to a running
//! server through the typed clients.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use lakehouse_api::{CatalogApi, IngestApi, QueryApi};
use lakehouse_client::{HttpCatalogClient, HttpIngestClient, HttpQueryClient};
use lakehouse_types::dataset::{
    Evolve, IngestFormat, IngestRequest, SqlRequest, VacuumQuery, WriteMode, WriteResponse,
};
use lakehouse_types::text::{aligned, cell};
use lakehouse_types::{ApiError, Caller, RequestContext};

/// Where the server is and who is asking.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// The server (gateway) URL.
    #[arg(long, env = "LAKEHOUSE_URL", default_value = "http://127.0.0.1:3110")]
    pub url: String,
    /// API key, when the server has keys configured.
    #[arg(long, env = "LAKEHOUSE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl RemoteArgs {
    /// The request context carrying the key.
    pub fn context(&self) -> RequestContext {
        let mut caller = Caller::anonymous_admin();
        caller.credential = self.api_key.clone();
        RequestContext {
            caller,
            request_id: String::new(),
        }
    }
}

/// `lakehouse ingest FILE --dataset NAME`.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// The file to ingest (CSV, NDJSON or Parquet).
    pub file: PathBuf,
    /// Target dataset.
    #[arg(long)]
    pub dataset: String,
    /// create, append or overwrite.
    #[arg(long, value_enum, default_value = "append")]
    pub mode: ModeArg,
    /// Allow new columns on append.
    #[arg(long)]
    pub add_columns: bool,
    /// The file's format (from its extension when absent: .csv, .ndjson/.jsonl, .parquet).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Idempotency key: a retry with the same key and file writes nothing twice.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// The server and the API key.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Write modes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// The dataset must not exist.
    Create,
    /// Add rows (creating the dataset when missing).
    Append,
    /// Replace every row.
    Overwrite,
}

/// Body formats on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Comma-separated values with a header.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

/// `lakehouse sql "..."`.
#[derive(Debug, Clone, Args)]
pub struct SqlArgs {
    /// One read-only statement.
    pub sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputArg,
    /// At most this many rows.
    #[arg(long)]
    pub max_rows: Option<usize>,
    /// The server and the API key.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputArg {
    /// An aligned table.
    Table,
    /// CSV with a header.
    Csv,
    /// The JSON answer of `POST /v1/sql`.
    Json,
}

/// `lakehouse datasets [optimize NAME | vacuum NAME [--apply]]`.
#[derive(Debug, Clone, Args)]
pub struct DatasetsArgs {
    /// What to do; without one, list the datasets.
    #[command(subcommand)]
    pub action: Option<DatasetsAction>,
    /// Print the JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The server and the API key.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// What `lakehouse datasets` does besides listing.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DatasetsAction {
    /// Compact a dataset's small files now (admin; tables are also compacted on their own past
    /// `[datasets] compact_small_files`).
    Optimize {
        /// The dataset.
        name: String,
        /// The server and the API key.
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Show the files no version inside the retention needs (`[datasets] keep_versions`); with `--apply`,
    /// remove them (admin; tables are also vacuumed on their own every `[datasets] vacuum_every_secs`).
    Vacuum {
        /// The dataset.
        name: String,
        /// Remove the files (without it, a dry run: nothing is removed).
        #[arg(long)]
        apply: bool,
        /// The server and the API key.
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// An API error as a command-line error.
pub(crate) fn api(err: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", err.code, err.message)
}

/// Streams a file to the server with a progress bar.
pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let format = match args.format {
        Some(FormatArg::Csv) => Some(IngestFormat::Csv),
        Some(FormatArg::Ndjson) => Some(IngestFormat::Ndjson),
        Some(FormatArg::Parquet) => Some(IngestFormat::Parquet),
        None => None,
    };
    let request = Upload {
        url: &args.remote.url,
        api_key: args.remote.api_key.clone(),
        path: &args.file,
        dataset: &args.dataset,
        mode: match args.mode {
            ModeArg::Create => WriteMode::Create,
            ModeArg::Append => WriteMode::Append,
            ModeArg::Overwrite => WriteMode::Overwrite,
        },
        evolve: args.add_columns.then_some(Evolve::AddColumns),
        format,
        idempotency_key: args.idempotency_key.clone(),
    };
    let answer = request.send(true).await?;
    println!(
        "{} version {}: {} rows, {} bytes{}",
        answer.dataset,
        answer.version,
        answer.rows,
        answer.bytes,
        if answer.replayed {
            " (replayed: already ingested with this key)"
        } else {
            ""
        }
    );
    Ok(())
}

/// One file sent to the ingest route.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// The server.
    pub url: &'a str,
    /// The API key, when the server has keys.
    pub api_key: Option<String>,
    /// The file.
    pub path: &'a std::path::Path,
    /// The dataset written.
    pub dataset: &'a str,
    /// Create, append or overwrite.
    pub mode: WriteMode,
    /// Schema evolution on append.
    pub evolve: Option<Evolve>,
    /// The body format (from the file's extension when absent).
    pub format: Option<IngestFormat>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
}

impl Upload<'_> {
    /// Streams the file, with a progress bar when `progress`; the server's answer.
    pub async fn send(self, progress: bool) -> anyhow::Result<WriteResponse> {
        let file = tokio::fs::File::open(self.path)
            .await
            .with_context(|| format!("opening {}", self.path.display()))?;
        let size = file.metadata().await?.len();
        let format = self.format.unwrap_or_else(|| {
            match self
                .path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("ndjson" | "jsonl" | "json") => IngestFormat::Ndjson,
                Some("parquet") => IngestFormat::Parquet,
                _ => IngestFormat::Csv,
            }
        });
        let bar = if progress {
            indicatif::ProgressBar::new(size)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "  {prefix:<11} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(self.dataset.to_owned());
        let counter = bar.clone();
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
            .map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    counter.inc(bytes.len() as u64);
                }
                chunk.map_err(|e| ApiError::bad_request(format!("reading the file failed: {e}")))
            })
            .boxed();
        let request = IngestRequest {
            dataset: self.dataset.to_owned(),
            mode: self.mode,
            evolve: self.evolve,
            format,
            idempotency_key: self.idempotency_key,
            content_length: Some(size),
        };
        let client = HttpIngestClient::new(self.url).map_err(api)?;
        bar.set_message("uploading");
        let mut caller = Caller::anonymous_admin();
        caller.credential = self.api_key;
        let ctx = RequestContext {
            caller,
            request_id: String::new(),
        };
        let answer = client.ingest(&ctx, request, body).await;
        bar.finish_and_clear();
        answer.map_err(api)
    }
}

/// Runs a statement and prints the result.
pub async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let client = HttpQueryClient::new(&args.remote.url).map_err(api)?;
    let request = SqlRequest {
        sql: args.sql.clone(),
        max_rows: args.max_rows,
    };
    let result = client
        .sql(&args.remote.context(), request)
        .await
        .map_err(api)?;
    match args.format {
        OutputArg::Csv => print!(
            "{}",
            String::from_utf8_lossy(&result.to_csv().map_err(api)?)
        ),
        OutputArg::Json => println!(
            "{}",
            serde_json::to_string_pretty(&result.to_sql_response().map_err(api)?)?
        ),
        OutputArg::Table => {
            let response = result.to_sql_response().map_err(api)?;
            let header: Vec<String> = response.columns.iter().map(|c| c.name.clone()).collect();
            let rows: Vec<Vec<String>> = response
                .rows
                .iter()
                .map(|r| r.iter().map(cell).collect())
                .collect();
            print!("{}", aligned(&header, &rows));
            let more = if response.truncated {
                " (truncated: more rows exist; --max-rows)"
            } else {
                ""
            };
            println!(
                "{} rows in {} ms{more}",
                response.row_count, response.elapsed_ms
            );
        }
    }
    Ok(())
}

/// Vacuums a dataset (a dry run unless `apply`).
async fn vacuum(name: &str, apply: bool, remote: &RemoteArgs, json: bool) -> anyhow::Result<()> {
    let client = HttpCatalogClient::new(&remote.url).map_err(api)?;
    let query = VacuumQuery {
        dry_run: Some(!apply),
    };
    let done = client
        .vacuum(&remote.context(), name, query)
        .await
        .map_err(api)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(());
    }
    if let Some(why) = &done.skipped {
        println!("{name}: nothing removed: {why}");
        return Ok(());
    }
    let verb = if apply { "removed" } else { "would remove" };
    println!(
        "{name}: {verb} {} files ({} bytes) no version since {} needs (kept {} days){}",
        done.files,
        done.bytes,
        done.oldest_kept_version,
        done.keep_versions_days,
        if apply {
            format!(", and {} log entries", done.log_files)
        } else {
            String::new()
        }
    );
    for path in &done.sample {
        println!("  {path}");
    }
    if done.files > done.sample.len() {
        println!("  ... and {} more", done.files - done.sample.len());
    }
    if !apply && done.files > 0 {
        println!("run again with --apply to remove them");
    }
    Ok(())
}

/// Lists the datasets, or compacts or vacuums one.
pub async fn datasets(args: DatasetsArgs) -> anyhow::Result<()> {
    if let Some(DatasetsAction::Vacuum {
        name,
        apply,
        remote,
    }) = &args.action
    {
        return vacuum(name, *apply, remote, args.json).await;
    }
    if let Some(DatasetsAction::Optimize { name, remote }) = &args.action {
        let client = HttpCatalogClient::new(&remote.url).map_err(api)?;
        let done = client
            .optimize(&remote.context(), name)
            .await
            .map_err(api)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&done)?);
            return Ok(());
        }
        match done.version {
            Some(version) => println!(
                "{name}: version {version}; {} small files rewritten into {} ({} rows, {} bytes into {})",
                done.files_removed,
                done.files_added,
                done.rows,
                done.bytes_removed,
                done.bytes_added
            ),
            None => println!(
                "{name}: nothing to compact ({} small files{})",
                done.small_files,
                done.skipped.map(|s| format!(": {s}")).unwrap_or_default()
            ),
        }
        return Ok(());
    }
    let client = HttpCatalogClient::new(&args.remote.url).map_err(api)?;
    let list = client
        .list_datasets(&args.remote.context())
        .await
        .map_err(api)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let header = ["name", "version", "rows", "bytes", "updated_at"]
        .map(str::to_owned)
        .to_vec();
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
    print!("{}", aligned(&header, &rows));
    Ok(())
}
