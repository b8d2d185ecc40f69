//! Who is making a request.

use serde::{Deserialize, Serialize};

/// A caller's role. `admin`, `recruiter` and `client` are built in; config may define others by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Role(pub String);

impl Role {
    /// The administrator role: may write reserved prefixes, delete datasets.
    pub fn admin() -> Self {
        Role("admin".to_owned())
    }

    /// Whether this is the admin role.
    pub fn is_admin(&self) -> bool {
        self.0 == "admin"
    }

    /// The role's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An authenticated caller: the name and role its API key maps to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The key's name from config (`anonymous` in open mode, `system` for the services themselves).
    pub name: String,
    /// The key's role.
    pub role: Role,
    /// The bearer key this caller presented, kept so a remote service call can present it again.
    #[serde(skip)]
    pub credential: Option<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the credential.
        f.debug_struct("Caller")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish()
    }
}

impl Caller {
    /// The caller in open mode (no keys configured): everyone is admin.
    pub fn anonymous_admin() -> Self {
        Caller {
            name: "anonymous".to_owned(),
            role: Role::admin(),
            credential: None,
        }
    }

    /// The services themselves, acting on their own behalf (the catalog writing `_catalog/`, say).
    pub fn system() -> Self {
        Caller {
            name: "system".to_owned(),
            role: Role::admin(),
            credential: None,
        }
    }

    /// Whether the caller has the admin role.
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }
}

/// What every service call carries: who asks, and the request id to log and forward.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The authenticated caller.
    pub caller: Caller,
    /// The `X-Request-Id` of the request this call serves.
    pub request_id: String,
}

impl RequestContext {
    /// A context for work the services do on their own behalf (start-up, background tasks, tests).
    pub fn system(request_id: impl Into<String>) -> Self {
        RequestContext {
            caller: Caller::system(),
            request_id: request_id.into(),
        }
    }
}
