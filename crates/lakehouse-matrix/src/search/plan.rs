//! The first step of a search: the request checked and resolved into a [`SearchPlan`] — `k` and the query
//! in bounds, the role allowed to search, the corpora named (or chosen) and searchable, the filters
//! parsed and allowed, the job order found and its text joined to the query. Nothing is read but what
//! this process holds; the plan fails fast, before any embedding or retrieval.

use std::sync::Arc;

use lakehouse_types::RequestContext;
use lakehouse_types::filter::Filter;
use lakehouse_types::matrix::{MatrixSearchRequest, SearchMode};
use lakehouse_types::policy::{Action, Policy, RolePolicy};
use serde_json::Value;

use crate::corpus::{Corpora, Corpus, Order, Snapshot};
use crate::error::{Error, Result};

/// Longest query text accepted, in bytes.
const MAX_QUERY: usize = 10_000;

/// A search request, checked and resolved against the corpora.
pub(crate) struct SearchPlan<'a> {
    /// Eligible hits wanted.
    pub(crate) k: usize,
    pub(crate) mode: SearchMode,
    /// The caller's role, allowed to search.
    pub(crate) role: &'a RolePolicy,
    /// The corpora searched, as named (without repeats) or chosen.
    pub(crate) names: Vec<String>,
    /// Each of them with the snapshot searched.
    pub(crate) corpora: Vec<(Arc<Corpus>, Arc<Snapshot>)>,
    /// The caller's filters as given (an object of conditions), when there are any.
    pub(crate) filters: Option<Value>,
    /// The same, parsed.
    pub(crate) filter: Arc<Filter>,
    /// The job order, for each corpus it belongs to.
    pub(crate) orders: Vec<Option<Order>>,
    /// What is embedded and matched: the query, the job order's text, or both.
    pub(crate) text: String,
}

/// Checks `request` for `ctx` and resolves it against `corpora`.
pub(crate) fn plan<'a>(
    corpora: &Corpora,
    policy: &'a Policy,
    max_k: usize,
    ctx: &RequestContext,
    request: &MatrixSearchRequest,
) -> Result<SearchPlan<'a>> {
    let k = request.k.unwrap_or(10);
    if k == 0 || k > max_k {
        return Err(Error::BadRequest(format!(
            "k must be between 1 and {max_k}, got {k}"
        )));
    }
    if request.query.len() > MAX_QUERY {
        return Err(Error::BadRequest(format!(
            "the query is {} bytes; the most is {MAX_QUERY}",
            request.query.len()
        )));
    }
    let mode = request.mode.unwrap_or_default();
    let role = policy.require(&ctx.caller, Action::Search)?;
    let names = corpus_names(corpora, role, request)?;
    let mut searched = Vec::with_capacity(names.len());
    for name in &names {
        if !role.corpora.allows(name) {
            return Err(Error::Forbidden(format!(
                "role {} may not search corpus '{name}'",
                ctx.caller.role
            )));
        }
        let corpus = corpora
            .get(name)
            .ok_or_else(|| Error::CorpusNotFound(name.clone()))?;
        let snapshot = searchable(&corpus)?;
        searched.push((corpus, snapshot));
    }
    let filters = filters_of(request)?;
    let filter = Arc::new(Filter::parse(filters.as_ref())?);
    for field in filter.fields() {
        if role.hides(field) {
            return Err(Error::Forbidden(format!(
                "role {} may not filter on '{field}'",
                ctx.caller.role
            )));
        }
        for (corpus, snapshot) in &searched {
            if !snapshot.plan.metadata.iter().any(|c| c == field) {
                return Err(Error::InvalidFilter(format!(
                    "'{field}' is not a filterable field of corpus '{}' (filterable: {})",
                    corpus.name(),
                    snapshot.plan.filterable.join(", ")
                )));
            }
        }
    }
    let (orders, order_text) = match &request.order_id {
        Some(order_id) => {
            let (orders, text) = order(&searched, &names, order_id)?;
            (orders, Some(text))
        }
        None => (vec![None; searched.len()], None),
    };
    let text = match (request.query.trim(), order_text) {
        ("", None) => {
            return Err(Error::BadRequest(
                "query is empty: say what you are looking for, or give an order_id".into(),
            ));
        }
        (q, None) => q.to_owned(),
        ("", Some(o)) => o,
        (q, Some(o)) => format!("{q}. {o}"),
    };
    Ok(SearchPlan {
        k,
        mode,
        role,
        names,
        corpora: searched,
        filters,
        filter,
        orders,
        text,
    })
}

impl SearchPlan<'_> {
    /// The key of this search's answer: the request, the role, and the version of every snapshot and
    /// job-order table read, so that a key is never asked again once any of them moved on.
    pub(crate) fn cache_key(&self, ctx: &RequestContext, request: &MatrixSearchRequest) -> String {
        let mut key = format!(
            "{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}",
            ctx.caller.role,
            self.mode.as_str(),
            self.k,
            request.include_ineligible,
            self.filters
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default(),
            request.order_id.as_deref().unwrap_or(""),
            self.text,
        );
        for (corpus, snapshot) in &self.corpora {
            let orders = corpus.orders().map_or(0, |o| o.version + 1);
            key.push_str(&format!(
                "\u{1}{}@{}@{orders}",
                corpus.name(),
                snapshot.version
            ));
        }
        key
    }
}

/// The corpora a request names (each once), or, left to choose, those the role may search that can answer
/// it: with an order, those with job orders; with filters, those where every filtered field is filterable.
fn corpus_names(
    corpora: &Corpora,
    role: &RolePolicy,
    request: &MatrixSearchRequest,
) -> Result<Vec<String>> {
    let names = match &request.corpora {
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
        None => {
            let filter_fields: Vec<String> = match &request.filters {
                Some(Value::Object(map)) => Filter::parse(request.filters.as_ref())
                    .map(|f| f.fields().into_iter().map(str::to_owned).collect())
                    .unwrap_or_else(|_| map.keys().cloned().collect()),
                _ => Vec::new(),
            };
            let candidates: Vec<_> = corpora
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
    Ok(names)
}

/// The snapshot a search of `corpus` reads, or why there is none yet.
fn searchable(corpus: &Corpus) -> Result<Arc<Snapshot>> {
    corpus.snapshot().ok_or_else(|| {
        let p = corpus.progress();
        let name = corpus.name();
        match &p.error {
            Some(error) if p.version.is_none() => {
                Error::NotReady(format!("corpus '{name}' has no searchable state: {error}"))
            }
            _ => Error::NotReady(format!(
                "corpus '{name}' is still building ({} of {} rows indexed); try again shortly",
                p.rows_indexed, p.rows_total
            )),
        }
    })
}

/// The request's filters: an object of field conditions, or none (null and `{}` alike).
fn filters_of(request: &MatrixSearchRequest) -> Result<Option<Value>> {
    match &request.filters {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(map)) if !map.is_empty() => Ok(Some(v.clone())),
        Some(Value::Object(_)) => Ok(None),
        Some(other) => Err(Error::InvalidFilter(format!(
            "filters is a JSON object of field conditions, got {other}"
        ))),
    }
}

/// The job order `order_id` in each searched corpus it belongs to (its fields bind that corpus's rules),
/// and its text (joined to the query).
fn order(
    searched: &[(Arc<Corpus>, Arc<Snapshot>)],
    names: &[String],
    order_id: &str,
) -> Result<(Vec<Option<Order>>, String)> {
    let order_id = order_id.trim();
    if order_id.is_empty() {
        return Err(Error::BadRequest("order_id is empty".into()));
    }
    let mut orders: Vec<Option<Order>> = vec![None; searched.len()];
    let mut text = None;
    let mut any_orders = false;
    let mut datasets = Vec::new();
    for (i, (corpus, _)) in searched.iter().enumerate() {
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
            text.get_or_insert_with(|| order.text.clone());
            orders[i] = Some(order.clone());
        }
    }
    if !any_orders {
        return Err(Error::BadRequest(format!(
            "none of the corpora searched ({}) has job orders; search one defined with \"orders\"",
            names.join(", ")
        )));
    }
    match text {
        Some(text) => Ok((orders, text)),
        None => {
            datasets.dedup();
            Err(Error::OrderNotFound(format!(
                "job order '{order_id}' does not exist in {}",
                datasets.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::search::testing::{ctx, five_workers, holding, workers};

    fn request(raw: Value) -> MatrixSearchRequest {
        serde_json::from_value(raw).expect("a request")
    }

    fn refused(corpora: &Corpora, role: &str, raw: Value) -> Error {
        let policy = Policy::default();
        match plan(corpora, &policy, 100, &ctx(role), &request(raw)) {
            Ok(_) => panic!("planned"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_request_is_resolved_against_the_corpora() {
        let corpora = holding(workers(&five_workers(), true));
        let policy = Policy::default();
        let raw = json!({"query": " forklift ", "corpora": ["workers", "workers"], "order_id": "o1",
                         "filters": {"city": "Austin"}, "k": 3});
        let planned =
            plan(&corpora, &policy, 100, &ctx("recruiter"), &request(raw)).expect("planned");
        assert_eq!(planned.k, 3);
        assert_eq!(
            planned.names,
            vec!["workers"],
            "a corpus named twice is searched once"
        );
        assert_eq!(
            planned.text, "forklift. Forklift operator",
            "the order's text joins the query"
        );
        assert!(planned.orders[0].is_some());
        assert_eq!(planned.filter.fields(), vec!["city"]);
        // Left to choose, the corpora that can answer; the key moves with the snapshot's version.
        let chosen = plan(
            &corpora,
            &policy,
            100,
            &ctx("admin"),
            &request(json!({"query": "x"})),
        )
        .expect("planned");
        assert_eq!(chosen.names, vec!["workers"]);
        let key = chosen.cache_key(&ctx("admin"), &request(json!({"query": "x"})));
        assert!(key.contains("workers@3@2"), "{key}");
    }

    #[test]
    fn every_bad_request_fails_before_any_work() {
        let corpora = holding(workers(&five_workers(), true));
        let bad = |raw: Value| refused(&corpora, "recruiter", raw);
        assert!(
            matches!(bad(json!({"query": "x", "k": 0})), Error::BadRequest(m) if m.contains("k must"))
        );
        assert!(matches!(
            bad(json!({"query": "x", "k": 101})),
            Error::BadRequest(_)
        ));
        let long = "x".repeat(MAX_QUERY + 1);
        assert!(matches!(bad(json!({"query": long})), Error::BadRequest(m) if m.contains("bytes")));
        assert!(matches!(
            bad(json!({"query": "x", "corpora": []})),
            Error::BadRequest(_)
        ));
        assert!(
            matches!(bad(json!({"query": " "})), Error::BadRequest(m) if m.contains("query is empty"))
        );
        assert!(matches!(
            bad(json!({"query": "x", "corpora": ["nope"]})),
            Error::CorpusNotFound(_)
        ));
        assert!(matches!(
            bad(json!({"query": "x", "filters": [1]})),
            Error::InvalidFilter(_)
        ));
        assert!(
            matches!(bad(json!({"query": "x", "corpora": ["workers"], "filters": {"role": "welder"}})),
                Error::InvalidFilter(m) if m.contains("not a filterable field"))
        );
        // Left to choose, no corpus can filter on it.
        assert!(
            matches!(bad(json!({"query": "x", "filters": {"role": "welder"}})), Error::InvalidFilter(m)
                if m.contains("no corpus you may search can filter on role"))
        );
        assert!(
            matches!(bad(json!({"query": "x", "order_id": "o9"})), Error::OrderNotFound(m)
                if m.contains("job_orders"))
        );
        assert!(matches!(
            bad(json!({"query": "x", "order_id": "  "})),
            Error::BadRequest(_)
        ));
        // A role that may not search, a corpus outside the role's, a filter on a field it may not see.
        assert!(matches!(
            refused(&corpora, "nobody", json!({"query": "x"})),
            Error::Upstream(_)
        ));
        assert!(matches!(
            refused(
                &corpora,
                "client",
                json!({"query": "x", "filters": {"pay_rate_min": 3}})
            ),
            Error::Forbidden(_)
        ));
        let other = Corpora::default();
        assert!(matches!(
            refused(&other, "recruiter", json!({"query": "x"})),
            Error::BadRequest(m) if m.contains("no corpus to search")
        ));
        let building = holding(workers(&[], false));
        assert!(matches!(
            refused(&building, "recruiter", json!({"query": "x"})),
            Error::NotReady(m) if m.contains("still building")
        ));
    }
}
