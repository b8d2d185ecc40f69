//! One matrix search, as a pipeline of steps each testable alone:
//!
//! 1. [`plan`]: the request checked and resolved — `k`, the role gate, the corpora, the filters, the job
//!    order — into a [`plan::SearchPlan`];
//! 2. the answer cache: a search asked before, against the same state, is answered as it was;
//! 3. [`retrieve`]: the query vector, a vector and a keyword list per corpus with the caller's filters
//!    inside both, fused by reciprocal rank;
//! 4. [`judge`]: the eligibility rules bound to the job order, counting what they leave out and why;
//! 5. [`respond`]: the hits with only what the role may see, the answer kept, the search recorded.
//!
//! Retrieval first fetches a few times `k` candidates per list with the caller's filters alone, so the judge
//! can count what it leaves out and why. When that yields fewer than `k` eligible hits while a list came
//! back full (more candidates exist), a second pass pushes the bound rules into both retrievals (into the
//! vector walk as filter conditions, into the keyword collector as the judge itself) and fetches deeper
//! until `k` eligible hits are found or every list runs dry: the answer holds `k` eligible hits whenever
//! `k` eligible items exist, up to `[matrix] max_depth` candidates per list.
//!
//! The pipeline is given what it reads — the corpora, the services, the policy and the settings — and
//! never the service itself.

mod judge;
mod plan;
mod respond;
mod retrieve;
#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::time::Instant;

use lakehouse_types::RequestContext;
use lakehouse_types::matrix::{MatrixSearchRequest, MatrixSearchResponse};
use lakehouse_types::policy::Policy;

use crate::cache::{Answer, AnswerCache};
use crate::corpus::Corpora;
use crate::deps::Deps;
use crate::error::Result;
use crate::recordings::Recorder;
use crate::service::MatrixConfig;

/// What a search reads and writes.
pub(crate) struct Pipeline<'a> {
    pub(crate) deps: &'a Deps,
    pub(crate) corpora: &'a Corpora,
    pub(crate) policy: &'a Policy,
    pub(crate) config: &'a MatrixConfig,
    pub(crate) answers: Option<&'a AnswerCache>,
    pub(crate) recorder: Option<&'a Recorder>,
}

impl Pipeline<'_> {
    /// Answers one search for `ctx`, timed from `started`.
    pub(crate) async fn answer(
        &self,
        ctx: &RequestContext,
        request: MatrixSearchRequest,
        started: Instant,
    ) -> Result<MatrixSearchResponse> {
        let plan = plan::plan(self.corpora, self.policy, self.config.max_k, ctx, &request)?;
        let key = self.answers.map(|_| plan.cache_key(ctx, &request));
        let cached = match (self.answers, &key) {
            (Some(cache), Some(key)) => cache.get(key).map(|a| a.as_ref().clone()),
            _ => None,
        };
        let answer = match cached {
            Some(answer) => answer,
            None => {
                let answer = self.compute(&plan, request.include_ineligible).await?;
                if let (Some(cache), Some(key)) = (self.answers, key) {
                    cache.insert(key, answer.clone());
                }
                answer
            }
        };
        Ok(respond::respond(
            self.recorder,
            &plan,
            ctx,
            &request,
            answer,
            started,
        ))
    }

    /// Retrieval and judging for `plan`: the answer before the recording.
    async fn compute(
        &self,
        plan: &plan::SearchPlan<'_>,
        include_ineligible: bool,
    ) -> Result<Answer> {
        let vectors = retrieve::query_vectors(self.deps, plan).await?;
        let parts = retrieve::parts(plan, &vectors);
        let retrieval = retrieve::Retrieval {
            deps: self.deps,
            parts: &parts,
            mode: plan.mode,
            text: &plan.text,
            filters: plan.filters.as_ref(),
            filter: Arc::clone(&plan.filter),
        };
        let passes =
            judge::passes(&retrieval, &self.deps.ctx, plan.k, self.config.max_depth).await?;
        Ok(respond::answer(
            &parts,
            passes,
            plan.role,
            include_ineligible,
        ))
    }
}
