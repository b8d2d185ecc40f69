//! Our rules over DataFusion's plans, each for a query shape a staffing report runs and DataFusion plans
//! slower than it need be (each file says what it measured and why):
//! - `eager`: aggregation before a join (a logical optimizer rule);
//! - `filter`: filter predicates evaluated a word at a time (a physical rule);
//! - `window`: `lag` and `lead` over sorted input, every window partition of a batch at once.

pub(crate) mod eager;
pub(crate) mod filter;
pub(crate) mod window;
