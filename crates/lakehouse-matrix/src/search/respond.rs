//! The last step of a search: the judged candidates as hits with only the fields the role may see, the
//! answer kept for repeated searches, the search recorded, and ids hidden from the role cleared.

use std::collections::BTreeMap;
use std::time::Instant;

use lakehouse_types::RequestContext;
use lakehouse_types::matrix::{
    CorpusVersion, Fields, MatrixHit, MatrixSearchRequest, MatrixSearchResponse,
};
use lakehouse_types::policy::RolePolicy;
use serde_json::Value;

use super::judge::{Judged, Passes};
use super::plan::SearchPlan;
use super::retrieve::Part;
use crate::cache::Answer;
use crate::recordings::{Recorder, Recording};

/// What a search found, as it is kept for repeated searches: the eligible hits, then (when asked for) the
/// ineligible ones the role may be shown.
pub(crate) fn answer(
    parts: &[Part],
    passes: Passes,
    role: &RolePolicy,
    include_ineligible: bool,
) -> Answer {
    let mut hits: Vec<_> = passes
        .eligible
        .iter()
        .filter_map(|j| hit(parts, j, role))
        .collect();
    if include_ineligible {
        // Those that failed a rule over a hidden field stay out: being shown at all would tell the
        // caller which ones they are.
        hits.extend(
            passes
                .ineligible
                .iter()
                .filter(|j| !j.withheld)
                .filter_map(|j| hit(parts, j, role)),
        );
        // From one pass, scores compare: best first, eligible or not. After a deeper pass the eligible
        // hits (scored in that pass) stay first.
        if !passes.deeper {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        }
    }
    Answer {
        hits,
        excluded: passes.excluded,
        corpora: versions(parts),
    }
}

/// A judged candidate as a hit, with the fields the role may see.
fn hit(parts: &[Part], judged: &Judged, role: &RolePolicy) -> Option<MatrixHit> {
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
fn versions(parts: &[Part]) -> BTreeMap<String, CorpusVersion> {
    parts
        .iter()
        .map(|p| {
            (
                p.corpus.name().to_owned(),
                CorpusVersion {
                    dataset_version: p.snapshot.version,
                },
            )
        })
        .collect()
}

/// Records the search (computed or answered from the cache) and builds the response.
pub(crate) fn respond(
    recorder: Option<&Recorder>,
    plan: &SearchPlan<'_>,
    ctx: &RequestContext,
    request: &MatrixSearchRequest,
    answer: Answer,
    started: Instant,
) -> MatrixSearchResponse {
    let Answer {
        mut hits,
        excluded,
        corpora,
    } = answer;
    let elapsed_ms = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let recording_id = uuid::Uuid::new_v4().simple().to_string();
    if let Some(recorder) = recorder {
        recorder.record(Recording {
            id: recording_id.clone(),
            at: chrono::Utc::now(),
            key_name: ctx.caller.name.clone(),
            role: ctx.caller.role.to_string(),
            query: request.query.clone(),
            order_id: request.order_id.clone(),
            corpora: plan.names.clone(),
            mode: plan.mode.as_str().to_owned(),
            filters: plan.filters.as_ref().map(Value::to_string),
            k: plan.k,
            hit_ids: hits.iter().map(|h| h.id.clone()).collect(),
            hit_scores: hits.iter().map(|h| h.score).collect(),
            excluded_count: excluded.count,
            excluded_by_reason: serde_json::to_string(&excluded.by_reason).unwrap_or_default(),
            elapsed_ms,
        });
    }
    // Recorded with their ids; shown without them where the id column is hidden from the caller.
    let role = plan.role;
    if !role.hidden_fields.is_empty() {
        for hit in &mut hits {
            let hidden = plan
                .corpora
                .iter()
                .find(|(c, _)| c.name() == hit.corpus)
                .is_some_and(|(c, _)| role.hides(&c.definition.id_column));
            if hidden {
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

#[cfg(test)]
mod tests {
    use lakehouse_types::matrix::Excluded;
    use lakehouse_types::policy::Policy;
    use serde_json::json;

    use super::*;
    use crate::search::judge::tests::judged_o1;
    use crate::search::testing::ctx;

    fn passes_of(eligible: &[u32], ineligible: &[(u32, bool)]) -> Passes {
        let judged = |row: u32, withheld: bool, reasons: Vec<String>| Judged {
            candidate: crate::search::retrieve::Candidate {
                part: 0,
                row,
                score: f64::from(row),
            },
            reasons,
            withheld,
        };
        Passes {
            eligible: eligible
                .iter()
                .map(|&r| judged(r, false, Vec::new()))
                .collect(),
            ineligible: ineligible
                .iter()
                .map(|&(r, withheld)| judged(r, withheld, vec!["no".to_owned()]))
                .collect(),
            excluded: Excluded::default(),
            deeper: false,
        }
    }

    #[test]
    fn hits_show_what_the_role_may_see_and_never_a_withheld_one() {
        let (parts, _) = judged_o1("client");
        let policy = Policy::default();
        let client = policy.role(&ctx("client").caller.role);
        let shown = answer(
            &parts,
            passes_of(&[0], &[(1, false), (2, true)]),
            client,
            true,
        );
        let ids: Vec<&str> = shown.hits.iter().map(|h| h.id.as_str()).collect();
        // One pass: best score first, eligible or not; the withheld one is not shown at all.
        assert_eq!(ids, vec!["w2", "w1"]);
        assert!(
            shown
                .hits
                .iter()
                .all(|h| !h.fields.contains_key("pay_rate_min"))
        );
        assert!(shown.hits[1].eligible && !shown.hits[0].eligible);
        assert_eq!(shown.corpora["workers"].dataset_version, 3);
        let recruiter = policy.role(&ctx("recruiter").caller.role);
        let shown = answer(&parts, passes_of(&[0], &[]), recruiter, false);
        assert!(shown.hits[0].fields.contains_key("pay_rate_min"));
    }

    #[test]
    fn a_response_is_recorded_and_hides_ids_the_role_may_not_see() {
        let (parts, _) = judged_o1("recruiter");
        let policy = Policy::new(
            [(
                "masked".to_owned(),
                serde_json::from_value(
                    json!({"actions": ["search"], "corpora": "*", "hidden_fields": ["id"]}),
                )
                .expect("a role"),
            )]
            .into(),
        );
        let corpora = crate::search::testing::holding(parts[0].corpus.clone());
        let request: MatrixSearchRequest =
            serde_json::from_value(json!({"query": "forklift"})).expect("request");
        let planned = crate::search::plan::plan(&corpora, &policy, 100, &ctx("masked"), &request)
            .expect("planned");
        let found = answer(&parts, passes_of(&[0, 3], &[]), planned.role, false);
        let response = respond(
            None,
            &planned,
            &ctx("masked"),
            &request,
            found,
            Instant::now(),
        );
        assert_eq!(response.hits.len(), 2);
        assert!(response.hits.iter().all(|h| h.id.is_empty()), "ids hidden");
        assert_eq!(response.recording_id.len(), 32);
    }
}
