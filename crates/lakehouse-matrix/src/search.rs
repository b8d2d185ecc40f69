//! One matrix search: role gate → order → embed → retrieval (vector and keyword, filters inside both) →
//! fusion → the eligibility judge → masking.
//!
//! Retrieval first fetches a few times `k` candidates per list with the caller's filters alone, so the judge
//! can count what it leaves out and why. When that yields fewer than `k` eligible hits while a list came
//! back full (more candidates exist), a second pass pushes the bound rules into both retrievals (into the
//! vector walk as filter conditions, into the keyword collector as the judge itself) and fetches deeper
//! until `k` eligible hits are found or every list runs dry: the answer holds `k` eligible hits whenever
//! `k` eligible items exist, up to `[matrix] max_depth` candidates per list.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lakehouse_types::filter::{AND, Filter};
use lakehouse_types::matrix::{Excluded, Fields, MatrixHit, SearchMode};
use lakehouse_types::policy::RolePolicy;
use lakehouse_types::vector::SearchRequest;
use lakehouse_types::{ErrorCode, RequestContext};
use serde_json::Value;

use crate::corpus::{Corpus, Snapshot};
use crate::error::Result;
use crate::rules::BoundRule;
use crate::sync::Deps;

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
struct Ranked {
    part: usize,
    rows: Vec<(u32, f32)>,
    full: bool,
}

/// A candidate after fusion.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) part: usize,
    pub(crate) row: u32,
    pub(crate) score: f64,
}

/// A judged candidate.
#[derive(Debug, Clone)]
pub(crate) struct Judged {
    pub(crate) candidate: Candidate,
    pub(crate) reasons: Vec<String>,
    /// Failed a rule over a field hidden from the caller: counted under [`WITHHELD`] alone, never shown.
    pub(crate) withheld: bool,
}

/// The one reason a caller sees for candidates that failed a rule over a field hidden from it.
pub(crate) const WITHHELD: &str = "not eligible (the reason is not shown to this role)";

/// What the judge made of a fused list.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub(crate) eligible: Vec<Judged>,
    pub(crate) ineligible: Vec<Judged>,
    pub(crate) excluded: Excluded,
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
                lists.push(self.keyword(i, part, depth, pushed)?);
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

    fn keyword(&self, i: usize, part: &Part, depth: usize, pushed: bool) -> Result<Ranked> {
        let snapshot = Arc::clone(&part.snapshot);
        // The caller's filter is looked up by row (kept per snapshot); pushed rules, bound to one order,
        // are evaluated on the rows that pass it.
        let admitted = (!self.filter.is_empty()).then(|| part.snapshot.admitted(&self.filter));
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
        let rows = part.snapshot.keyword.search(self.text, depth, allow)?;
        let full = rows.len() >= depth;
        Ok(Ranked {
            part: i,
            rows,
            full,
        })
    }
}

/// Fuses ranked lists: reciprocal rank fusion in hybrid mode (and in keyword mode over several corpora),
/// the best raw score otherwise. A row found through two corpora of the same dataset counts once.
fn fuse(parts: &[Part], lists: &[Ranked], mode: SearchMode) -> Vec<Candidate> {
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

/// Judges candidates in order until `k` are eligible.
pub(crate) fn judge(parts: &[Part], candidates: Vec<Candidate>, k: usize) -> Verdict {
    let mut verdict = Verdict::default();
    for candidate in candidates {
        if verdict.eligible.len() >= k {
            break;
        }
        let part = &parts[candidate.part];
        let Some(row) = part.snapshot.rows.get(candidate.row as usize) else {
            continue;
        };
        let get = |f: &str| row.values.get(f);
        let mut reasons: Vec<String> = Vec::new();
        let mut withheld = false;
        for rule in &part.rules {
            if rule.passes(&get) {
                continue;
            }
            if rule.hidden {
                withheld = true;
            } else if !reasons.contains(&rule.reason) {
                reasons.push(rule.reason.clone());
            }
        }
        if withheld {
            // The visible reasons alone would say "and something else failed"; the caller sees one
            // neutral reason instead.
            reasons = vec![WITHHELD.to_owned()];
        }
        if reasons.is_empty() {
            verdict.eligible.push(Judged {
                candidate,
                reasons,
                withheld,
            });
        } else {
            verdict.excluded.count += 1;
            for reason in &reasons {
                *verdict
                    .excluded
                    .by_reason
                    .entry(reason.clone())
                    .or_insert(0) += 1;
            }
            verdict.ineligible.push(Judged {
                candidate,
                reasons,
                withheld,
            });
        }
    }
    verdict
}

/// A judged candidate as a hit, with the fields the role may see.
pub(crate) fn hit(parts: &[Part], judged: &Judged, role: &RolePolicy) -> Option<MatrixHit> {
    let part = &parts[judged.candidate.part];
    let row = part.snapshot.rows.get(judged.candidate.row as usize)?;
    let mut fields = Fields::new();
    for field in &part.snapshot.plan.definition.fields {
        if role.hides(field) {
            continue;
        }
        if let Some(v) = row.values.get(field) {
            fields.insert(field.clone(), v.clone());
        }
    }
    Some(MatrixHit {
        corpus: part.corpus.name().to_owned(),
        id: row.id.clone(),
        score: judged.candidate.score,
        fields,
        eligible: judged.reasons.is_empty(),
        reasons: judged.reasons.clone(),
    })
}

/// The dataset versions answered from, by corpus.
pub(crate) fn versions(parts: &[Part]) -> BTreeMap<String, lakehouse_types::matrix::CorpusVersion> {
    parts
        .iter()
        .map(|p| {
            (
                p.corpus.name().to_owned(),
                lakehouse_types::matrix::CorpusVersion {
                    dataset_version: p.snapshot.version,
                },
            )
        })
        .collect()
}
