//! A search request answered: checks, the role gate, the job order, the query vector, the passes of
//! retrieval and judging (see [`crate::search`]), masking, and the recording.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use lakehouse_types::RequestContext;
use lakehouse_types::embed::EmbedRequest;
use lakehouse_types::filter::Filter;
use lakehouse_types::matrix::{MatrixSearchRequest, MatrixSearchResponse, SearchMode};
use lakehouse_types::policy::Action;
use serde_json::Value;

use crate::cache::Answer;
use crate::corpus::Order;
use crate::error::{Error, Result};
use crate::recordings::Recording;
use crate::search::{self, Judged, Part, Retrieval};
use crate::service::Inner;

/// Longest query text accepted, in bytes.
const MAX_QUERY: usize = 10_000;

/// Answers one search.
pub(crate) async fn answer(
    inner: &Inner,
    ctx: &RequestContext,
    request: MatrixSearchRequest,
    started: Instant,
) -> Result<MatrixSearchResponse> {
    let config = &inner.config;
    let k = request.k.unwrap_or(10);
    if k == 0 || k > config.max_k {
        return Err(Error::BadRequest(format!(
            "k must be between 1 and {}, got {k}",
            config.max_k
        )));
    }
    if request.query.len() > MAX_QUERY {
        return Err(Error::BadRequest(format!(
            "the query is {} bytes; the most is {MAX_QUERY}",
            request.query.len()
        )));
    }
    let mode = request.mode.unwrap_or_default();
    let role = inner.policy.require(&ctx.caller, Action::Search)?;

    // The corpora: those asked for, or every one the role may search.
    let names: Vec<String> = match &request.corpora {
        Some(list) if list.is_empty() => {
            return Err(Error::BadRequest(
                "corpora is empty: name at least one corpus, or leave it out to search them all"
                    .into(),
            ));
        }
        Some(list) => {
            let mut names: Vec<String> = Vec::new();
            for name in list {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            names
        }
        // Left to choose, search the corpora that can answer this request: with an order, those with job
        // orders; with filters, those where every filtered field is filterable.
        None => {
            let filter_fields: Vec<String> = match &request.filters {
                Some(Value::Object(map)) => Filter::parse(request.filters.as_ref())
                    .map(|f| f.fields().into_iter().map(str::to_owned).collect())
                    .unwrap_or_else(|_| map.keys().cloned().collect()),
                _ => Vec::new(),
            };
            let candidates: Vec<_> = inner
                .all()
                .into_iter()
                .filter(|c| role.corpora.allows(c.name()))
                .filter(|c| request.order_id.is_none() || c.definition.orders.is_some())
                .collect();
            let chosen: Vec<String> = candidates
                .iter()
                .filter(|c| {
                    filter_fields.is_empty()
                        || c.snapshot().is_some_and(|s| {
                            filter_fields.iter().all(|f| s.plan.metadata.contains(f))
                        })
                })
                .map(|c| c.name().to_owned())
                .collect();
            if chosen.is_empty() && !candidates.is_empty() {
                return Err(Error::InvalidFilter(format!(
                    "no corpus you may search can filter on {}",
                    filter_fields.join(", ")
                )));
            }
            chosen
        }
    };
    if names.is_empty() {
        return Err(Error::BadRequest(
            "there is no corpus to search for this request: name one in corpora (GET /v1/matrix/corpora lists \
             them), or create one with POST /v1/matrix/corpora"
                .into(),
        ));
    }
    let mut corpora = Vec::with_capacity(names.len());
    for name in &names {
        if !role.corpora.allows(name) {
            return Err(Error::Forbidden(format!(
                "role {} may not search corpus '{name}'",
                ctx.caller.role
            )));
        }
        let corpus = inner
            .get(name)
            .ok_or_else(|| Error::CorpusNotFound(name.clone()))?;
        let snapshot = corpus.snapshot().ok_or_else(|| {
            let p = corpus.progress();
            match &p.error {
                Some(error) if p.version.is_none() => {
                    Error::NotReady(format!("corpus '{name}' has no searchable state: {error}"))
                }
                _ => Error::NotReady(format!(
                    "corpus '{name}' is still building ({} of {} rows indexed); try again shortly",
                    p.rows_indexed, p.rows_total
                )),
            }
        })?;
        corpora.push((corpus, snapshot));
    }

    // Filters: parsed once, naming no field the role may not see and only filterable ones.
    let filters = match &request.filters {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(map)) if !map.is_empty() => Some(v.clone()),
        Some(Value::Object(_)) => None,
        Some(other) => {
            return Err(Error::InvalidFilter(format!(
                "filters is a JSON object of field conditions, got {other}"
            )));
        }
    };
    let filter = Arc::new(Filter::parse(filters.as_ref())?);
    for field in filter.fields() {
        if role.hides(field) {
            return Err(Error::Forbidden(format!(
                "role {} may not filter on '{field}'",
                ctx.caller.role
            )));
        }
        for (corpus, snapshot) in &corpora {
            if !snapshot.plan.metadata.iter().any(|c| c == field) {
                return Err(Error::InvalidFilter(format!(
                    "'{field}' is not a filterable field of corpus '{}' (filterable: {})",
                    corpus.name(),
                    snapshot.plan.filterable.join(", ")
                )));
            }
        }
    }

    // The job order: its text joins the query, its fields bind the rules of the corpora it belongs to.
    let mut order_text = None;
    let mut orders: Vec<Option<Order>> = vec![None; corpora.len()];
    if let Some(order_id) = &request.order_id {
        let order_id = order_id.trim();
        if order_id.is_empty() {
            return Err(Error::BadRequest("order_id is empty".into()));
        }
        let mut any_orders = false;
        let mut datasets = Vec::new();
        for (i, (corpus, _)) in corpora.iter().enumerate() {
            let Some(source) = &corpus.definition.orders else {
                continue;
            };
            any_orders = true;
            datasets.push(source.dataset.clone());
            let loaded = corpus.orders().ok_or_else(|| {
                Error::NotReady(format!(
                    "the job orders of corpus '{}' are still loading; try again shortly",
                    corpus.name()
                ))
            })?;
            if let Some(order) = loaded.by_id.get(order_id) {
                order_text.get_or_insert_with(|| order.text.clone());
                orders[i] = Some(order.clone());
            }
        }
        if !any_orders {
            return Err(Error::BadRequest(format!(
                "none of the corpora searched ({}) has job orders; search one defined with \"orders\"",
                names.join(", ")
            )));
        }
        if order_text.is_none() {
            datasets.dedup();
            return Err(Error::OrderNotFound(format!(
                "job order '{order_id}' does not exist in {}",
                datasets.join(", ")
            )));
        }
    }
    let text = match (request.query.trim(), &order_text) {
        ("", None) => {
            return Err(Error::BadRequest(
                "query is empty: say what you are looking for, or give an order_id".into(),
            ));
        }
        (q, None) => q.to_owned(),
        ("", Some(o)) => o.clone(),
        (q, Some(o)) => format!("{q}. {o}"),
    };

    // A search asked before, against the same state, is answered as it was.
    let cache_key = inner.answers.as_ref().map(|_| {
        let mut key = format!(
            "{}\u{1}{}\u{1}{k}\u{1}{}\u{1}{}\u{1}{}\u{1}{text}",
            ctx.caller.role,
            mode.as_str(),
            request.include_ineligible,
            filters.as_ref().map(Value::to_string).unwrap_or_default(),
            request.order_id.as_deref().unwrap_or(""),
        );
        for (corpus, snapshot) in &corpora {
            let orders = corpus.orders().map_or(0, |o| o.version + 1);
            key.push_str(&format!(
                "\u{1}{}@{}@{orders}",
                corpus.name(),
                snapshot.version
            ));
        }
        key
    });
    if let (Some(cache), Some(key)) = (&inner.answers, &cache_key)
        && let Some(cached) = cache.get(key)
    {
        let answer = cached.as_ref().clone();
        return Ok(finish(
            inner,
            ctx,
            &request,
            Finished {
                names: &names,
                mode,
                k,
                filters: filters.as_ref(),
                answer,
                started,
            },
        ));
    }

    // The query vector, once per embedding model.
    let mut vectors: HashMap<Option<String>, Arc<Vec<f32>>> = HashMap::new();
    if mode != SearchMode::Keyword {
        for (_, snapshot) in &corpora {
            if vectors.contains_key(&snapshot.model) {
                continue;
            }
            let embedded = inner
                .deps
                .embed
                .embed(
                    &inner.deps.ctx,
                    EmbedRequest {
                        texts: vec![text.clone()],
                        model: snapshot.model.clone(),
                    },
                )
                .await?;
            let vector = embedded.vectors.into_iter().next().ok_or_else(|| {
                Error::Internal("the embedding service answered no vector".into())
            })?;
            vectors.insert(snapshot.model.clone(), Arc::new(vector));
        }
    }

    let parts: Vec<Part> = corpora
        .into_iter()
        .zip(&orders)
        .map(|((corpus, snapshot), order)| {
            let separator = snapshot.plan.separator.clone();
            let rules = snapshot
                .plan
                .rules
                .iter()
                .filter_map(|r| {
                    let mut bound = r.bind(order.as_ref().map(|o| &o.fields), &separator)?;
                    bound.hidden = r
                        .columns()
                        .into_iter()
                        .chain(r.order_columns())
                        .any(|c| role.hides(c));
                    Some(bound)
                })
                .collect();
            let vector = vectors.get(&snapshot.model).cloned();
            Part {
                corpus,
                snapshot,
                rules,
                vector,
            }
        })
        .collect();

    let retrieval = Retrieval {
        deps: &inner.deps,
        parts: &parts,
        mode,
        text: &text,
        filters: filters.as_ref(),
        filter,
    };
    let ctx_out = &inner.deps.ctx;
    let max_depth = config.max_depth.max(k);
    let mut depth = (k * 3).max(k + 10).min(max_depth);
    let (candidates, full) = retrieval.run(ctx_out, depth, false).await?;
    let first = search::judge(&parts, candidates, k);
    let excluded = first.excluded.clone();
    let any_rules = parts.iter().any(|p| !p.rules.is_empty());
    let second_pass = first.eligible.len() < k && full && any_rules;
    let (eligible, ineligible): (Vec<Judged>, Vec<Judged>) = if second_pass {
        // Too few eligible among the first candidates, and more exist: push the rules inside
        // retrieval and go deeper until k are found or the lists run dry.
        let mut verdict;
        loop {
            depth = (depth * 4).min(max_depth);
            let (candidates, full) = retrieval.run(ctx_out, depth, true).await?;
            verdict = search::judge(&parts, candidates, k);
            if verdict.eligible.len() >= k || !full || depth >= max_depth {
                break;
            }
        }
        (verdict.eligible, first.ineligible)
    } else {
        (first.eligible, first.ineligible)
    };

    let mut hits: Vec<_> = eligible
        .iter()
        .filter_map(|j| search::hit(&parts, j, role))
        .collect();
    if request.include_ineligible {
        // Those that failed a rule over a hidden field stay out: being shown at all would tell the
        // caller which ones they are.
        hits.extend(
            ineligible
                .iter()
                .filter(|j| !j.withheld)
                .filter_map(|j| search::hit(&parts, j, role)),
        );
        // From one pass, scores compare: best first, eligible or not. After a deeper pass the eligible
        // hits (scored in that pass) stay first.
        if !second_pass {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        }
    }
    let answer = Answer {
        hits,
        excluded,
        corpora: search::versions(&parts),
    };
    if let (Some(cache), Some(key)) = (&inner.answers, cache_key) {
        cache.insert(key, answer.clone());
    }
    Ok(finish(
        inner,
        ctx,
        &request,
        Finished {
            names: &names,
            mode,
            k,
            filters: filters.as_ref(),
            answer,
            started,
        },
    ))
}

/// An answer, computed or cached, and what its recording needs.
struct Finished<'a> {
    names: &'a [String],
    mode: SearchMode,
    k: usize,
    filters: Option<&'a Value>,
    answer: Answer,
    started: Instant,
}

/// Records the search and builds the response.
fn finish(
    inner: &Inner,
    ctx: &RequestContext,
    request: &MatrixSearchRequest,
    done: Finished<'_>,
) -> MatrixSearchResponse {
    let Answer {
        mut hits,
        excluded,
        corpora,
    } = done.answer;
    let elapsed_ms = (done.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let recording_id = uuid::Uuid::new_v4().simple().to_string();
    if let Some(recorder) = &inner.recorder {
        recorder.record(Recording {
            id: recording_id.clone(),
            at: chrono::Utc::now(),
            key_name: ctx.caller.name.clone(),
            role: ctx.caller.role.to_string(),
            query: request.query.clone(),
            order_id: request.order_id.clone(),
            corpora: done.names.to_vec(),
            mode: done.mode.as_str().to_owned(),
            filters: done.filters.map(Value::to_string),
            k: done.k,
            hit_ids: hits.iter().map(|h| h.id.clone()).collect(),
            hit_scores: hits.iter().map(|h| h.score).collect(),
            excluded_count: excluded.count,
            excluded_by_reason: serde_json::to_string(&excluded.by_reason).unwrap_or_default(),
            elapsed_ms,
        });
    }
    // Recorded with their ids; shown without them where the id column is hidden from the caller.
    let role = inner.role(ctx);
    if !role.hidden_fields.is_empty() {
        for hit in &mut hits {
            if inner
                .get(&hit.corpus)
                .is_some_and(|c| role.hides(&c.definition.id_column))
            {
                hit.id.clear();
            }
        }
    }
    MatrixSearchResponse {
        hits,
        excluded,
        corpora,
        elapsed_ms,
        recording_id,
    }
}
