//! The eligibility judge: each fused candidate against its corpus's rules bound to the job order, in order
//! until `k` are eligible, counting those it leaves out by reason. [`passes`] runs retrieval and the judge,
//! and goes deeper, with the rules pushed into retrieval, when the first pass found too few.

use lakehouse_types::RequestContext;
use lakehouse_types::matrix::Excluded;

use super::retrieve::{Candidate, Part, Retrieval};
use crate::error::Result;

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

/// Judges candidates in order until `k` are eligible.
fn judge(parts: &[Part], candidates: Vec<Candidate>, k: usize) -> Verdict {
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

/// The outcome of retrieval and judging: the eligible (from the deepest pass), the ineligible and what was
/// excluded (from the first pass, whose scores compare), and whether a deeper pass ran.
#[derive(Debug)]
pub(crate) struct Passes {
    pub(crate) eligible: Vec<Judged>,
    pub(crate) ineligible: Vec<Judged>,
    pub(crate) excluded: Excluded,
    pub(crate) deeper: bool,
}

/// Retrieves a few times `k` candidates per list with the caller's filters alone and judges them. When that
/// yields fewer than `k` eligible while a list came back full (more candidates exist), pushes the rules
/// inside retrieval and fetches deeper, up to `max_depth` per list, until `k` are eligible or every list
/// runs dry.
pub(crate) async fn passes(
    retrieval: &Retrieval<'_>,
    ctx: &RequestContext,
    k: usize,
    max_depth: usize,
) -> Result<Passes> {
    let parts = retrieval.parts;
    let max_depth = max_depth.max(k);
    let mut depth = (k * 3).max(k + 10).min(max_depth);
    let (candidates, full) = retrieval.run(ctx, depth, false).await?;
    let first = judge(parts, candidates, k);
    let any_rules = parts.iter().any(|p| !p.rules.is_empty());
    if first.eligible.len() >= k || !full || !any_rules {
        return Ok(Passes {
            eligible: first.eligible,
            ineligible: first.ineligible,
            excluded: first.excluded,
            deeper: false,
        });
    }
    let mut verdict;
    loop {
        depth = (depth * 4).min(max_depth);
        let (candidates, full) = retrieval.run(ctx, depth, true).await?;
        verdict = judge(parts, candidates, k);
        if verdict.eligible.len() >= k || !full || depth >= max_depth {
            break;
        }
    }
    Ok(Passes {
        eligible: verdict.eligible,
        ineligible: first.ineligible,
        excluded: first.excluded,
        deeper: true,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use lakehouse_types::policy::Policy;
    use serde_json::json;

    use super::*;
    use crate::search::plan::plan;
    use crate::search::retrieve::parts;
    use crate::search::testing::{ctx, five_workers, holding, workers};

    /// The five workers as parts of a search for order `o1` (pays 20) by `role`, and every row as a
    /// candidate, best first in row order.
    pub(crate) fn judged_o1(role: &str) -> (Vec<Part>, Vec<Candidate>) {
        let corpora = holding(workers(&five_workers(), true));
        let policy = Policy::default();
        let request = serde_json::from_value(json!({"query": "forklift", "order_id": "o1"}))
            .expect("request");
        let planned = plan(&corpora, &policy, 100, &ctx(role), &request).expect("planned");
        let parts = parts(&planned, &HashMap::new());
        let candidates = (0..5)
            .map(|row| Candidate {
                part: 0,
                row,
                score: 1.0 - f64::from(row) / 10.0,
            })
            .collect();
        (parts, candidates)
    }

    #[test]
    fn the_judge_keeps_k_eligible_and_counts_the_rest_by_reason() {
        let (parts, candidates) = judged_o1("recruiter");
        let verdict = judge(&parts, candidates.clone(), 10);
        let rows = |list: &[Judged]| list.iter().map(|j| j.candidate.row).collect::<Vec<_>>();
        assert_eq!(rows(&verdict.eligible), vec![0]);
        assert_eq!(rows(&verdict.ineligible), vec![1, 2, 3, 4]);
        assert_eq!(verdict.excluded.count, 4);
        assert_eq!(verdict.excluded.by_reason["not active"], 1);
        assert_eq!(
            verdict.excluded.by_reason["asks more than the order pays"],
            3
        );
        // Judging stops once k are eligible.
        let verdict = judge(&parts, candidates, 1);
        assert_eq!(rows(&verdict.eligible), vec![0]);
    }

    #[test]
    fn a_rule_over_a_hidden_field_gives_one_neutral_reason() {
        let (parts, candidates) = judged_o1("client");
        let verdict = judge(&parts, candidates, 10);
        let w3 = verdict
            .ineligible
            .iter()
            .find(|j| j.candidate.row == 2)
            .expect("w3 judged");
        assert!(w3.withheld);
        assert_eq!(w3.reasons, vec![WITHHELD]);
        assert_eq!(verdict.excluded.by_reason[WITHHELD], 3);
        assert_eq!(
            verdict.excluded.by_reason["not active"], 1,
            "a visible reason stays"
        );
    }
}
