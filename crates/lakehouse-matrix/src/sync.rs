//! Building a corpus and keeping it in step with its dataset, and the worker that does it for every corpus
//! ([`work`]: load the stored corpora, then follow their datasets on every tick).
//!
//! One procedure does the first build, the resumption of a build cut short (by `kill -9`, say), the
//! catch-up after an ingest and the load at start-up: read the dataset version, fingerprint every row's text
//! and metadata, and compare with the fingerprints of what the vector index holds. Rows whose text changed
//! (or that are new) are embedded and upserted; rows whose metadata alone changed get their stored vector
//! back with new metadata; ids that vanished are deleted. The fingerprints are checkpointed as batches land,
//! so a cut-short build resumes where it stopped. Then the rows and a fresh keyword index become the
//! corpus's new [`Snapshot`], swapped in whole: searches answer from the previous one until then.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakehouse_types::ErrorCode;
use lakehouse_types::embed::EmbedRequest;
use lakehouse_types::matrix::{CorpusStatus, Fields, SyncStats};
use lakehouse_types::vector::{AddItem, AddRequest, CreateIndexRequest, Metric};
use tokio::sync::{Notify, watch};

use crate::corpus::{Corpora, Corpus, Order, Orders, Snapshot, Work};
use crate::definition::{Plan, compile, quote_ident};
use crate::deps::{Deps, transient};
use crate::error::{Error, Result};
use crate::keyword::KeywordIndex;
use crate::rows::{self, Row};
use crate::store::Prints;

/// Longest time between two checkpoints during a build.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// The worker: loads stored corpora, then on every tick of `interval` (or wake-up) brings each corpus to its
/// dataset's current version and refreshes its job orders, until `stopped`.
pub(crate) async fn work(
    deps: &Deps,
    corpora: &Corpora,
    interval: Duration,
    wake: &Notify,
    mut stopped: watch::Receiver<bool>,
) {
    let mut loaded = false;
    loop {
        if !loaded {
            match load(deps, corpora).await {
                Ok(()) => loaded = true,
                Err(e) => tracing::warn!(error = %e, "corpora could not be listed; retrying"),
            }
        }
        if loaded && let Err(e) = follow(deps, corpora).await {
            tracing::debug!(error = %e, "datasets could not be checked; retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wake.notified() => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Reads the stored definitions and states.
async fn load(deps: &Deps, corpora: &Corpora) -> Result<()> {
    let definitions = deps.store.definitions().await?;
    for definition in definitions {
        if corpora.get(&definition.name).is_some() {
            continue;
        }
        let state = deps
            .store
            .state(&definition.name)
            .await?
            .unwrap_or_default();
        corpora.add(Arc::new(Corpus::new(definition, state)));
    }
    Ok(())
}

/// Brings every corpus to its dataset's current version, and its job orders to theirs.
async fn follow(deps: &Deps, corpora: &Corpora) -> Result<()> {
    let all = corpora.all();
    if all.is_empty() {
        return Ok(());
    }
    let listing = deps.catalog.list_datasets(&deps.ctx).await?;
    let versions: HashMap<&str, u64> = listing
        .datasets
        .iter()
        .map(|d| (d.name.as_str(), d.version))
        .collect();
    for corpus in all {
        if corpus.is_deleted() {
            continue;
        }
        let Some(&target) = versions.get(corpus.definition.dataset.as_str()) else {
            if corpus.progress().status != CorpusStatus::Failed {
                let message = format!(
                    "dataset '{}' does not exist; ingest it, then rebuild the corpus",
                    corpus.definition.dataset
                );
                corpus.update(|p| {
                    p.status = CorpusStatus::Failed;
                    p.error = Some(message);
                });
            }
            continue;
        };
        let rebuild = corpus.take_rebuild();
        let loaded = corpus.snapshot().map(|s| s.version);
        let failed_at = corpus.work.lock().await.failed_version;
        if rebuild || (loaded != Some(target) && failed_at != Some(target)) {
            // Errors are recorded on the corpus itself.
            let _ = sync(deps, &corpus, target).await;
        }
        if let Some(orders) = &corpus.definition.orders {
            let have = corpus.orders().map(|o| o.version);
            if let Some(&version) = versions.get(orders.dataset.as_str())
                && have != Some(version)
                && let Err(e) = load_orders(deps, &corpus, version).await
            {
                tracing::warn!(corpus = corpus.name(), error = %e, "job orders could not be read");
            }
        }
    }
    Ok(())
}

/// Brings `corpus` to `target`, the version of its dataset to answer from.
pub(crate) async fn sync(deps: &Deps, corpus: &Corpus, target: u64) -> Result<()> {
    let mut work = corpus.work.lock().await;
    if corpus.is_deleted() {
        return Ok(());
    }
    let first = corpus.snapshot().is_none() && work.stored.version.is_none();
    corpus.update(|p| {
        if first {
            p.status = CorpusStatus::Building;
        } else if p.version != Some(target) {
            p.catching_up_to = Some(target);
        }
    });
    let started = Instant::now();
    let result = build(deps, corpus, &mut work, target).await;
    match &result {
        Ok(()) => {
            let snapshot_rows = corpus.snapshot().map_or(0, |s| s.rows.len());
            tracing::info!(
                corpus = corpus.name(),
                version = target,
                rows = snapshot_rows,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "corpus in step with its dataset"
            );
        }
        Err(err) if corpus.is_deleted() => {
            tracing::debug!(corpus = corpus.name(), error = %err, "build stopped: corpus deleted");
        }
        Err(err) if transient(err) => {
            tracing::warn!(corpus = corpus.name(), error = %err, "build interrupted; retrying shortly");
            corpus.update(|p| p.error = Some(format!("retrying: {err}")));
        }
        Err(err) => {
            tracing::warn!(corpus = corpus.name(), version = target, error = %err, "corpus build failed");
            let message = err.to_string();
            work.failed_version = Some(target);
            work.stored.error = Some(message.clone());
            work.stored.failed_version = Some(target);
            work.stored.updated_at = Some(chrono::Utc::now());
            let prints = work.prints.clone();
            work.stored.set_prints(&prints);
            if let Err(e) = deps.store.put_state(corpus.name(), &work.stored).await {
                tracing::warn!(corpus = corpus.name(), error = %e, "could not record the failure");
            }
            corpus.update(|p| {
                p.status = CorpusStatus::Failed;
                p.error = Some(message);
                p.catching_up_to = None;
            });
        }
    }
    result
}

/// What a version's rows need: embedding, a metadata update, or nothing.
struct Diff {
    embed: Vec<(usize, Fields, Prints)>,
    metadata: Vec<(usize, Fields, Prints)>,
    vanished: Vec<String>,
}

fn diff(plan: &Plan, rows: &[Row], prints: &HashMap<String, Prints>) -> Diff {
    let mut embed = Vec::new();
    let mut metadata = Vec::new();
    let mut present = HashSet::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        present.insert(row.id.as_str());
        let (meta, meta_print) = rows::metadata(plan, row);
        let now = Prints {
            text: row.text_fingerprint(),
            meta: meta_print,
        };
        match prints.get(&row.id) {
            Some(before) if *before == now => {}
            Some(before) if before.text == now.text => metadata.push((i, meta, now)),
            _ => embed.push((i, meta, now)),
        }
    }
    let vanished = prints
        .keys()
        .filter(|id| !present.contains(id.as_str()))
        .cloned()
        .collect();
    Diff {
        embed,
        metadata,
        vanished,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn build(deps: &Deps, corpus: &Corpus, work: &mut Work, target: u64) -> Result<()> {
    let started = Instant::now();
    let mut stats = SyncStats {
        version: target,
        ..SyncStats::default()
    };
    let mut embed_time = Duration::ZERO;
    let mut index_time = Duration::ZERO;
    let definition = corpus.definition.clone();
    let (_, _, schema) = deps.schema(&definition.dataset, Some(target)).await?;
    let orders_schema = match &definition.orders {
        Some(orders) => Some(deps.schema(&orders.dataset, None).await?.2),
        None => None,
    };
    let plan = compile(definition, &schema, orders_schema.as_deref())?;
    let batches = deps
        .read(&plan.definition.dataset, target, &plan.columns)
        .await?;
    let (plan, rows) = tokio::task::spawn_blocking(move || -> Result<(Plan, Vec<Row>)> {
        let mut plan = plan;
        let mut rows = rows::read_rows(&plan, &batches)?;
        drop(batches);
        rows::check_unique(&plan.definition.id_column, &rows)?;
        plan.drop_prose(&rows::prose_columns(&rows));
        let lists = rows::list_columns(&plan, &rows);
        rows::split_lists(&mut rows, &lists, &plan.separator);
        Ok((plan, rows))
    })
    .await
    .map_err(|e| Error::Internal(format!("reading rows: {e}")))??;
    let plan = Arc::new(plan);

    let index = plan.index_name();
    let mut index_exists = match deps.vector.index_info(&deps.ctx, &index).await {
        Ok(_) => true,
        Err(e) if e.code == ErrorCode::IndexNotFound || e.code == ErrorCode::NotFound => false,
        Err(e) => return Err(e.into()),
    };
    if !index_exists && !work.prints.is_empty() {
        // The index went away (dropped through the vector API): everything is embedded again.
        tracing::warn!(
            corpus = corpus.name(),
            "the corpus's vector index is missing; rebuilding it"
        );
        work.prints.clear();
    }

    let Diff {
        mut embed,
        metadata,
        vanished,
    } = diff(&plan, &rows, &work.prints);
    stats.read_ms = ms(started.elapsed());
    let total = rows.len() as u64;
    stats.rows = total;
    let pending = (embed.len() + metadata.len()) as u64;
    corpus.update(|p| {
        p.rows_total = total;
        p.rows_indexed = total - pending;
    });

    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0usize;

    // Metadata-only changes keep their stored vector; one the index no longer has is embedded instead.
    for chunk in metadata.chunks(deps.embed_batch.max(1)) {
        stop_if_deleted(corpus)?;
        let mut items = Vec::with_capacity(chunk.len());
        let mut done = Vec::with_capacity(chunk.len());
        for (i, meta, prints) in chunk {
            let id = &rows[*i].id;
            match deps.vector.get_item(&deps.ctx, &index, id).await {
                Ok(item) => {
                    items.push(AddItem {
                        id: Some(id.clone()),
                        vector: Some(item.vector),
                        text: None,
                        metadata: Some(meta.clone()),
                    });
                    done.push((id.clone(), *prints));
                }
                Err(e) if e.code == ErrorCode::NotFound || e.code == ErrorCode::IndexNotFound => {
                    embed.push((*i, meta.clone(), *prints));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !items.is_empty() {
            let t = Instant::now();
            deps.vector
                .add(&deps.ctx, &index, AddRequest { items })
                .await?;
            index_time += t.elapsed();
        }
        let n = done.len() as u64;
        stats.metadata_updated += n;
        for (id, prints) in done {
            work.prints.insert(id, prints);
        }
        corpus.update(|p| p.rows_indexed += n);
        since_checkpoint += chunk.len();
    }

    for chunk in embed.chunks(deps.embed_batch.max(1)) {
        stop_if_deleted(corpus)?;
        let texts: Vec<String> = chunk
            .iter()
            .map(|(i, _, _)| rows[*i].text.clone())
            .collect();
        let t = Instant::now();
        let embedded = deps
            .embed
            .embed(
                &deps.ctx,
                EmbedRequest {
                    texts,
                    model: work.stored.model.clone(),
                },
            )
            .await?;
        embed_time += t.elapsed();
        let t = Instant::now();
        if embedded.vectors.len() != chunk.len() {
            return Err(Error::Internal(format!(
                "the embedding service answered {} vectors for {} texts",
                embedded.vectors.len(),
                chunk.len()
            )));
        }
        if !index_exists {
            let created = deps
                .vector
                .create_index(
                    &deps.ctx,
                    CreateIndexRequest {
                        name: index.clone(),
                        dim: embedded.dim,
                        metric: Metric::Cosine,
                    },
                )
                .await;
            match created {
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            index_exists = true;
        }
        if work.stored.model.is_none() {
            work.stored.model = Some(embedded.model.clone());
        }
        let items = chunk
            .iter()
            .zip(embedded.vectors)
            .map(|((i, meta, _), vector)| AddItem {
                id: Some(rows[*i].id.clone()),
                vector: Some(vector),
                text: None,
                metadata: Some(meta.clone()),
            })
            .collect();
        deps.vector
            .add(&deps.ctx, &index, AddRequest { items })
            .await?;
        for (i, _, prints) in chunk {
            work.prints.insert(rows[*i].id.clone(), *prints);
        }
        corpus.update(|p| p.rows_indexed += chunk.len() as u64);
        stats.embedded += chunk.len() as u64;
        since_checkpoint += chunk.len();
        if since_checkpoint >= deps.checkpoint_rows || last_checkpoint.elapsed() >= CHECKPOINT_EVERY
        {
            checkpoint(deps, corpus, work).await?;
            since_checkpoint = 0;
            last_checkpoint = Instant::now();
        }
        index_time += t.elapsed();
    }

    let t = Instant::now();
    for id in &vanished {
        stop_if_deleted(corpus)?;
        match deps.vector.delete_item(&deps.ctx, &index, id).await {
            Ok(()) => {}
            Err(e) if e.code == ErrorCode::NotFound || e.code == ErrorCode::IndexNotFound => {}
            Err(e) => return Err(e.into()),
        }
        work.prints.remove(id);
        stats.deleted += 1;
    }
    index_time += t.elapsed();

    // The new snapshot: rows by id and their keyword index.
    let t = Instant::now();
    let model = work.stored.model.clone();
    let snapshot_plan = Arc::clone(&plan);
    let snapshot = tokio::task::spawn_blocking(move || -> Result<Snapshot> {
        let keyword = KeywordIndex::build(rows.iter().map(|r| r.text.as_str()))?;
        let by_id = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i as u32))
            .collect();
        Ok(Snapshot {
            version: target,
            plan: snapshot_plan,
            model,
            rows,
            by_id,
            keyword,
            admitted: std::sync::Mutex::default(),
        })
    })
    .await
    .map_err(|e| Error::Internal(format!("building the keyword index: {e}")))??;
    stop_if_deleted(corpus)?;
    stats.keyword_ms = ms(t.elapsed());
    corpus.set_snapshot(Arc::new(snapshot));

    work.failed_version = None;
    work.stored.version = Some(target);
    work.stored.error = None;
    work.stored.failed_version = None;
    let t = Instant::now();
    checkpoint(deps, corpus, work).await?;
    index_time += t.elapsed();
    stats.embed_ms = ms(embed_time);
    stats.index_ms = ms(index_time);
    stats.total_ms = ms(started.elapsed());
    corpus.update(|p| {
        p.last_sync = Some(stats);
        p.status = CorpusStatus::Ready;
        p.version = Some(target);
        p.error = None;
        p.catching_up_to = None;
        p.rows_total = total;
        p.rows_indexed = total;
    });
    Ok(())
}

fn stop_if_deleted(corpus: &Corpus) -> Result<()> {
    if corpus.is_deleted() {
        Err(Error::CorpusNotFound(corpus.name().to_owned()))
    } else {
        Ok(())
    }
}

async fn checkpoint(deps: &Deps, corpus: &Corpus, work: &mut Work) -> Result<()> {
    stop_if_deleted(corpus)?;
    let prints = std::mem::take(&mut work.prints);
    work.stored.set_prints(&prints);
    work.prints = prints;
    work.stored.updated_at = Some(chrono::Utc::now());
    deps.store.put_state(corpus.name(), &work.stored).await
}

/// Loads the job orders of `corpus` as of `version` of their dataset.
pub(crate) async fn load_orders(deps: &Deps, corpus: &Corpus, version: u64) -> Result<()> {
    let Some(source) = &corpus.definition.orders else {
        return Ok(());
    };
    let template = crate::definition::Template::parse(&source.text)?;
    let table = quote_ident(&format!("{}@v{version}", source.dataset));
    let batches = deps.sql(format!("SELECT * FROM {table}")).await?;
    let id_column = source.id_column.clone();
    let orders = tokio::task::spawn_blocking(move || -> Result<Orders> {
        let rows = rows::read_with(&id_column, &template, &batches, |_| true)?;
        let by_id = rows
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    Order {
                        text: r.text,
                        fields: r.values,
                    },
                )
            })
            .collect();
        Ok(Orders { version, by_id })
    })
    .await
    .map_err(|e| Error::Internal(format!("reading job orders: {e}")))??;
    corpus.set_orders(Arc::new(orders));
    Ok(())
}
