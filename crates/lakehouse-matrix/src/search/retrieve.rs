//! Retrieval: the query vector (once per embedding model), then for each corpus a vector list (the
//! caller's filters inside the vector walk) and a keyword list (BM25, the filters inside the collector),
//! fused by reciprocal rank. A pass with the rules pushed in also puts each corpus's bound rules inside
//! both retrievals.

use std::collections::HashMap;
use std::sync::Arc;

use lakehouse_types::embed::EmbedRequest;
use lakehouse_types::filter::{AND, Filter};
use lakehouse_types::matrix::SearchMode;
use lakehouse_types::vector::SearchRequest;
use lakehouse_types::{ErrorCode, RequestContext};
use serde_json::Value;

use super::plan::SearchPlan;
use crate::corpus::{Corpus, Snapshot};
use crate::deps::Deps;
use crate::error::{Error, Result};
use crate::rules::BoundRule;

/// The reciprocal-rank-fusion constant (the usual 60).
const RRF_K: f64 = 60.0;

/// One corpus taking part in a search.
pub(crate) struct Part {
    pub(crate) corpus: Arc<Corpus>,
    pub(crate) snapshot: Arc<Snapshot>,
    /// Its rules bound to the job order (skipped rules left out).
    pub(crate) rules: Vec<BoundRule>,
    /// The query vector, when vectors are searched.
    pub(crate) vector: Option<Arc<Vec<f32>>>,
}

/// What retrieval returns for one list: candidates best first, and whether it came back full.
pub(crate) struct Ranked {
    pub(crate) part: usize,
    pub(crate) rows: Vec<(u32, f32)>,
    pub(crate) full: bool,
}

/// A candidate after fusion.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) part: usize,
    pub(crate) row: u32,
    pub(crate) score: f64,
}

/// The query vector for each embedding model among the searched corpora (none in keyword mode).
pub(crate) async fn query_vectors(
    deps: &Deps,
    plan: &SearchPlan<'_>,
) -> Result<HashMap<Option<String>, Arc<Vec<f32>>>> {
    let mut vectors: HashMap<Option<String>, Arc<Vec<f32>>> = HashMap::new();
    if plan.mode == SearchMode::Keyword {
        return Ok(vectors);
    }
    for (_, snapshot) in &plan.corpora {
        if vectors.contains_key(&snapshot.model) {
            continue;
        }
        let request = EmbedRequest {
            texts: vec![plan.text.clone()],
            model: snapshot.model.clone(),
        };
        let embedded = deps.embed.embed(&deps.ctx, request).await?;
        let vector =
            embedded.vectors.into_iter().next().ok_or_else(|| {
                Error::Internal("the embedding service answered no vector".into())
            })?;
        vectors.insert(snapshot.model.clone(), Arc::new(vector));
    }
    Ok(vectors)
}

/// The searched corpora as parts of a search: each with its rules bound to the job order (marked hidden
/// where they read a field hidden from the role) and its model's query vector.
pub(crate) fn parts(
    plan: &SearchPlan<'_>,
    vectors: &HashMap<Option<String>, Arc<Vec<f32>>>,
) -> Vec<Part> {
    plan.corpora
        .iter()
        .zip(&plan.orders)
        .map(|((corpus, snapshot), order)| {
            let separator = &snapshot.plan.separator;
            let rules = snapshot
                .plan
                .rules
                .iter()
                .filter_map(|r| {
                    let mut bound = r.bind(order.as_ref().map(|o| &o.fields), separator)?;
                    bound.hidden = r
                        .columns()
                        .into_iter()
                        .chain(r.order_columns())
                        .any(|c| plan.role.hides(c));
                    Some(bound)
                })
                .collect();
            Part {
                corpus: Arc::clone(corpus),
                snapshot: Arc::clone(snapshot),
                rules,
                vector: vectors.get(&snapshot.model).cloned(),
            }
        })
        .collect()
}

/// The retrieval of one pass.
pub(crate) struct Retrieval<'a> {
    pub(crate) deps: &'a Deps,
    pub(crate) parts: &'a [Part],
    pub(crate) mode: SearchMode,
    pub(crate) text: &'a str,
    pub(crate) filters: Option<&'a Value>,
    pub(crate) filter: Arc<Filter>,
}

impl Retrieval<'_> {
    /// Retrieves `depth` candidates per list and fuses them; `pushed` puts the rules inside retrieval.
    /// Also says whether any list came back full.
    pub(crate) async fn run(
        &self,
        ctx: &RequestContext,
        depth: usize,
        pushed: bool,
    ) -> Result<(Vec<Candidate>, bool)> {
        let mut lists = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            if self.mode != SearchMode::Keyword {
                lists.push(self.vector(ctx, i, part, depth, pushed).await?);
            }
            if self.mode != SearchMode::Vector {
                lists.push(keyword(i, part, self.text, &self.filter, depth, pushed)?);
            }
        }
        let full = lists.iter().any(|l| l.full);
        Ok((fuse(self.parts, &lists, self.mode), full))
    }

    async fn vector(
        &self,
        ctx: &RequestContext,
        i: usize,
        part: &Part,
        depth: usize,
        pushed: bool,
    ) -> Result<Ranked> {
        let Some(vector) = &part.vector else {
            return Ok(Ranked {
                part: i,
                rows: Vec::new(),
                full: false,
            });
        };
        let filter = if pushed && !part.rules.is_empty() {
            let mut all: Vec<Value> = self.filters.into_iter().cloned().collect();
            all.extend(part.rules.iter().map(|r| r.pushdown.clone()));
            let mut combined = serde_json::Map::new();
            combined.insert(AND.to_owned(), Value::Array(all));
            Some(Value::Object(combined))
        } else {
            self.filters.cloned()
        };
        let request = SearchRequest {
            vector: Some(vector.as_ref().clone()),
            text: None,
            k: Some(depth),
            filter,
            // The snapshot holds the rows.
            metadata: Some(false),
        };
        let index = part.snapshot.plan.index_name();
        let found = match self.deps.vector.search(ctx, &index, request).await {
            Ok(found) => found.hits,
            // A corpus of an empty dataset has no index yet.
            Err(e) if e.code == ErrorCode::IndexNotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let full = found.len() >= depth;
        let rows = found
            .into_iter()
            // Ids added by a catch-up still running are not in this snapshot yet.
            .filter_map(|hit| {
                part.snapshot
                    .by_id
                    .get(&hit.id)
                    .map(|&row| (row, hit.score))
            })
            .collect();
        Ok(Ranked {
            part: i,
            rows,
            full,
        })
    }
}

/// The keyword list of part `i`: BM25 over its rows, the caller's `filter` (and, `pushed`, the part's bound
/// rules) applied inside the collector.
fn keyword(
    i: usize,
    part: &Part,
    text: &str,
    filter: &Filter,
    depth: usize,
    pushed: bool,
) -> Result<Ranked> {
    let snapshot = Arc::clone(&part.snapshot);
    // The caller's filter is looked up by row (kept per snapshot); pushed rules, bound to one order,
    // are evaluated on the rows that pass it.
    let admitted = (!filter.is_empty()).then(|| part.snapshot.admitted(filter));
    let rules: Arc<Vec<BoundRule>> = Arc::new(if pushed {
        part.rules.clone()
    } else {
        Vec::new()
    });
    let allow = move |row: u64| {
        let Ok(r) = usize::try_from(row) else {
            return false;
        };
        if admitted
            .as_ref()
            .is_some_and(|admitted| !admitted.get(r).copied().unwrap_or(false))
        {
            return false;
        }
        if rules.is_empty() {
            return true;
        }
        let Some(values) = snapshot.rows.get(r).map(|row| &row.values) else {
            return false;
        };
        let get = |f: &str| values.get(f);
        rules.iter().all(|rule| rule.passes(&get))
    };
    let rows = part.snapshot.keyword.search(text, depth, allow)?;
    let full = rows.len() >= depth;
    Ok(Ranked {
        part: i,
        rows,
        full,
    })
}

/// Fuses ranked lists: reciprocal rank fusion in hybrid mode (and in keyword mode over several corpora),
/// the best raw score otherwise. A row found through two corpora of the same dataset counts once.
pub(crate) fn fuse(parts: &[Part], lists: &[Ranked], mode: SearchMode) -> Vec<Candidate> {
    let rrf = match mode {
        SearchMode::Hybrid => true,
        SearchMode::Vector => false,
        SearchMode::Keyword => parts.len() > 1,
    };
    let mut by_key: HashMap<(&str, &str), Candidate> = HashMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for list in lists {
        let part = &parts[list.part];
        let dataset = part.corpus.definition.dataset.as_str();
        for (rank, &(row, raw)) in list.rows.iter().enumerate() {
            let Some(r) = part.snapshot.rows.get(row as usize) else {
                continue;
            };
            let contribution = if rrf {
                1.0 / (RRF_K + rank as f64 + 1.0)
            } else {
                f64::from(raw)
            };
            let key = (dataset, r.id.as_str());
            match by_key.get_mut(&key) {
                Some(c) if rrf => c.score += contribution,
                Some(c) => c.score = c.score.max(contribution),
                None => {
                    order.push(key);
                    by_key.insert(
                        key,
                        Candidate {
                            part: list.part,
                            row,
                            score: contribution,
                        },
                    );
                }
            }
        }
    }
    let mut out: Vec<Candidate> = order
        .into_iter()
        .filter_map(|key| by_key.remove(&key))
        .collect();
    out.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| {
            let id = |c: &Candidate| parts[c.part].snapshot.rows[c.row as usize].id.clone();
            id(a).cmp(&id(b))
        })
    });
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::search::plan::plan;
    use crate::search::testing::{ctx, five_workers, holding, workers};
    use lakehouse_types::policy::Policy;

    #[test]
    fn lists_fuse_by_rank_and_a_row_counts_once() {
        let corpora = holding(workers(&five_workers(), true));
        let policy = Policy::default();
        let request = serde_json::from_value(json!({"query": "forklift", "order_id": "o1"}))
            .expect("request");
        let planned = plan(&corpora, &policy, 100, &ctx("recruiter"), &request).expect("planned");
        let parts = parts(&planned, &HashMap::new());
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].rules.len(), 2, "both rules bound to the order");
        assert!(parts[0].vector.is_none(), "no vector given");
        let vector = Ranked {
            part: 0,
            rows: vec![(2, 0.9), (0, 0.8), (4, 0.1)],
            full: true,
        };
        let keyword = Ranked {
            part: 0,
            rows: vec![(0, 7.0), (2, 6.0)],
            full: false,
        };
        let fused = fuse(&parts, &[vector, keyword], SearchMode::Hybrid);
        let rows: Vec<u32> = fused.iter().map(|c| c.row).collect();
        // Rows 0 and 2 are in both lists at ranks (2, 1) and (1, 2): equal scores, broken by id.
        assert_eq!(rows, vec![0, 2, 4]);
        let both = 1.0 / (RRF_K + 1.0) + 1.0 / (RRF_K + 2.0);
        assert!((fused[0].score - both).abs() < 1e-12);
        // Vector mode keeps the raw score.
        let vector = Ranked {
            part: 0,
            rows: vec![(4, 0.3), (1, 0.7)],
            full: false,
        };
        let fused = fuse(&parts, &[vector], SearchMode::Vector);
        assert_eq!(fused.iter().map(|c| c.row).collect::<Vec<_>>(), vec![1, 4]);
    }

    #[test]
    fn keyword_retrieval_applies_the_filter_and_pushed_rules_inside() {
        let corpora = holding(workers(&five_workers(), true));
        let policy = Policy::default();
        let request = serde_json::from_value(
            json!({"query": "forklift", "order_id": "o1", "filters": {"city": "Austin"}, "mode": "keyword"}),
        )
        .expect("request");
        let planned = plan(&corpora, &policy, 100, &ctx("recruiter"), &request).expect("planned");
        let parts = parts(&planned, &HashMap::new());
        let plain =
            keyword(0, &parts[0], &planned.text, &planned.filter, 10, false).expect("searched");
        let mut rows: Vec<u32> = plain.rows.iter().map(|r| r.0).collect();
        rows.sort_unstable();
        assert_eq!(rows, vec![0, 1, 2], "the Austin forklift rows");
        let pushed =
            keyword(0, &parts[0], &planned.text, &planned.filter, 10, true).expect("searched");
        assert_eq!(
            pushed.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0],
            "active, asking ≤ 20"
        );
    }
}
