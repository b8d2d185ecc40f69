//! `GET /v1/whoami`: who the caller's key says it is, and what its role may do (the page shows it and hides
//! what the role may not use).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use lakehouse_types::policy::{Access, Action, Policy};
use serde::Serialize;

use crate::Ctx;

/// The answer of `GET /v1/whoami`.
#[derive(Debug, Serialize)]
struct WhoAmI<'a> {
    name: &'a str,
    role: &'a str,
    /// Whether the server requires keys.
    auth: bool,
    policy: PolicyView<'a>,
}

#[derive(Debug, Serialize)]
struct PolicyView<'a> {
    /// What the key may do, from the fixed list of actions.
    actions: &'a BTreeSet<Action>,
    corpora: &'a Access,
    hidden_fields: &'a [String],
    indexes: &'a Access,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_prefixes: Option<&'a [String]>,
}

#[derive(Debug)]
struct Session {
    policy: Arc<Policy>,
    auth: bool,
}

/// The whoami route; `auth` says whether keys are configured.
pub fn router(policy: Arc<Policy>, auth: bool) -> Router {
    Router::new()
        .route("/v1/whoami", get(whoami))
        .with_state(Arc::new(Session { policy, auth }))
}

async fn whoami(ctx: Ctx, State(session): State<Arc<Session>>) -> Json<serde_json::Value> {
    let role = session.policy.role(&ctx.caller.role);
    let answer = WhoAmI {
        name: &ctx.caller.name,
        role: ctx.caller.role.as_str(),
        auth: session.auth,
        policy: PolicyView {
            actions: &role.actions,
            corpora: &role.corpora,
            hidden_fields: &role.hidden_fields,
            indexes: &role.indexes,
            storage_prefixes: role.storage_prefixes.as_deref(),
        },
    };
    Json(serde_json::to_value(answer).unwrap_or_default())
}
