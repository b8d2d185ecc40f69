//! `lakehouse demo`: starts the server on the embedded default and shows it working.

use bytes::Bytes;
use futures::StreamExt;
use lakehouse_api::StorageApi;
use lakehouse_client::HttpStorageClient;
use lakehouse_config::Config;
use lakehouse_types::RequestContext;
use lakehouse_types::storage::ListQuery;

/// Runs the demo; with `keep_serving`, serves until Ctrl-C afterwards.
pub async fn run(config: Config, keep_serving: bool) -> anyhow::Result<()> {
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
        "Lakehouse is running at {url} (storage: {})\n",
        config.storage.backend.describe()
    );
    let shown = show(&url).await;
    match &shown {
        Ok(()) => println!("\nTry it yourself:"),
        Err(err) => println!("\nthe demo failed: {err:#}"),
    }
    println!("  curl {url}/health");
    println!("  curl -X PUT --data-binary @README.md {url}/v1/storage/objects/docs/README.md");
    println!("  curl {url}/v1/storage/objects/docs/README.md");
    println!("  curl '{url}/v1/storage/objects?prefix=docs/'");
    println!(
        "  curl -X POST {url}/v1/sql -H 'content-type: application/json' -d '{{\"sql\": \"SELECT * FROM demo_workers\"}}'"
    );
    println!(
        "  curl -X POST {url}/v1/vectors/index/demo-workers/search -H 'content-type: application/json' -d '{{\"text\": \"welder\", \"k\": 3}}'"
    );
    println!("  curl {url}/metrics");

    if keep_serving && shown.is_ok() {
        println!("\nServing until Ctrl-C.");
    } else {
        let _ = stop_tx.send(());
    }
    server.await??;
    shown
}

async fn show(url: &str) -> anyhow::Result<()> {
    let health: serde_json::Value = reqwest::get(format!("{url}/health")).await?.json().await?;
    println!("GET /health → {}", health["status"]);

    let client = HttpStorageClient::new(url)?;
    let ctx = RequestContext::system("demo");
    let text = "worker_id,name,city\nw-1,Ada,Austin\nw-2,Grace,Houston\n";
    let body =
        futures::stream::once(async move { Ok(Bytes::from_static(text.as_bytes())) }).boxed();
    let stored = client
        .put(&ctx, "demo/workers.csv", Some(text.len() as u64), body)
        .await?;
    println!(
        "PUT /v1/storage/objects/demo/workers.csv → {} bytes, etag {}",
        stored.size,
        stored.etag.unwrap_or_default()
    );

    let object = client.get(&ctx, "demo/workers.csv", None).await?;
    let chunks: Vec<Bytes> = object.body.map(|c| c.unwrap_or_default()).collect().await;
    let read = chunks.concat();
    anyhow::ensure!(
        read == text.as_bytes(),
        "read back different bytes than written"
    );
    println!(
        "GET /v1/storage/objects/demo/workers.csv → the same {} bytes",
        read.len()
    );

    let listing = client
        .list(
            &ctx,
            &ListQuery {
                prefix: Some("demo/".to_owned()),
                ..ListQuery::default()
            },
        )
        .await?;
    println!(
        "GET /v1/storage/objects?prefix=demo/ → {:?}",
        listing.objects.iter().map(|o| &o.key).collect::<Vec<_>>()
    );
    show_datasets_and_vectors(url).await
}

/// A small staffing export: each worker's profile is text to search by meaning.
const WORKERS: &str = "worker_id,name,state,rate,profile\n\
w-1,Ada,TX,31.50,\"Certified MIG and TIG welder, ten years in structural steel\"\n\
w-2,Grace,TX,22.00,\"Forklift operator, warehouse inventory and loading docks\"\n\
w-3,Katherine,CA,48.75,\"Registered nurse, intensive care unit night shifts\"\n\
w-4,Alan,CA,23.25,Forklift driver for a distribution center\n\
w-5,Edsger,TX,27.00,\"CDL class A truck driver, regional routes\"\n";

/// A request's JSON answer, or an error carrying the server's message.
async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let response = request.send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

/// The CSV becomes a table, answers SQL, and its profiles become a vector index searched in words.
async fn show_datasets_and_vectors(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let written = answer(
        http.post(format!("{url}/v1/ingest/demo_workers?mode=overwrite"))
            .header("content-type", "text/csv")
            .body(WORKERS),
    )
    .await?;
    println!(
        "POST /v1/ingest/demo_workers → version {}, {} rows",
        written["version"], written["rows"]
    );
    let sql = "SELECT state, count(*) AS workers, round(avg(rate), 2) AS avg_rate FROM demo_workers \
               GROUP BY state ORDER BY state";
    let result = answer(
        http.post(format!("{url}/v1/sql"))
            .json(&serde_json::json!({ "sql": sql })),
    )
    .await?;
    println!("POST /v1/sql {sql:?} → {}", result["rows"]);

    // One index of the profiles, embedded by the server's model; an index left by an earlier run is
    // dropped first, so the demo shows the same answers every time.
    let embedded = answer(
        http.post(format!("{url}/v1/embed"))
            .json(&serde_json::json!({ "texts": ["probe"] })),
    )
    .await?;
    let index = format!("{url}/v1/vectors/index/demo-workers");
    let dropped = http.delete(&index).send().await?;
    anyhow::ensure!(
        dropped.status().is_success() || dropped.status() == reqwest::StatusCode::NOT_FOUND,
        "dropping the old demo index: {}",
        dropped.status()
    );
    answer(
        http.post(format!("{url}/v1/vectors/index"))
            .json(&serde_json::json!({
                "name": "demo-workers", "dim": embedded["dim"], "metric": "cosine"
            })),
    )
    .await?;
    // The profiles to index come from the table just written.
    let profiles = answer(http.post(format!("{url}/v1/sql")).json(&serde_json::json!({
        "sql": "SELECT worker_id, state, profile FROM demo_workers ORDER BY worker_id"
    })))
    .await?;
    let items: Vec<serde_json::Value> = profiles["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| serde_json::json!({ "id": r[0], "text": r[2], "metadata": { "state": r[1] } }))
                .collect()
        })
        .unwrap_or_default();
    let added = answer(
        http.post(format!("{index}/add"))
            .json(&serde_json::json!({ "items": items })),
    )
    .await?;
    println!(
        "POST /v1/vectors/index/demo-workers/add → {} profiles embedded and indexed",
        added["added"]
    );
    let query =
        serde_json::json!({"text": "lift truck operator", "k": 2, "filter": {"state": "TX"}});
    let found = answer(http.post(format!("{index}/search")).json(&query)).await?;
    let hits: Vec<String> = found["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|h| {
                    format!(
                        "{} ({:.2})",
                        h["id"].as_str().unwrap_or("?"),
                        h["score"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "POST /v1/vectors/index/demo-workers/search {query} → {}",
        hits.join(", ")
    );
    Ok(())
}
