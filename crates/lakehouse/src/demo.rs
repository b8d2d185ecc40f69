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
    Ok(())
}
