//! Who may see what: the role policy every service consults.
//!
//! A caller's role comes from its API key; the policy says what that role may do. `admin` may do everything
//! and cannot be narrowed. `recruiter` and `client` have built-in defaults (below) that a `[roles.NAME]`
//! table in the config replaces whole; any other role exists only when the config defines it, and a role
//! nobody defined may do nothing.
//!
//! ```toml
//! [roles.client]
//! corpora = ["workers"]                       # "*" = all
//! hidden_fields = ["email", "phone", "last_name", "pay_rate_min"]
//! sql = false
//! recordings = false                          # may read matrix_recordings
//! indexes = []                                # raw vector indexes it may search
//! ```
//!
//! The type lives with the wire types so that every service (matrix search today; SQL, vectors, catalog and
//! storage reads as they adopt it) checks the same policy in its own domain code, in-process or split.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::auth::Role;

/// Which corpora (or other named things) a role may use: all of them, or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every one (`"*"` in config).
    All,
    /// Only these names.
    Only(Vec<String>),
}

impl Access {
    /// Whether `name` is allowed.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Access::All => true,
            Access::Only(names) => names.iter().any(|n| n == name || n == "*"),
        }
    }
}

impl Serialize for Access {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Access::All => serializer.serialize_str("*"),
            Access::Only(names) => names.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Access {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::One(s) if s == "*" => Ok(Access::All),
            Raw::One(s) => Ok(Access::Only(vec![s])),
            Raw::Many(names) if names.iter().any(|n| n == "*") => Ok(Access::All),
            Raw::Many(names) => Ok(Access::Only(names)),
        }
    }
}

impl Default for Access {
    fn default() -> Self {
        Access::Only(Vec::new())
    }
}

/// What one role may do. A `[roles.NAME]` table leaves out what the role may not do: missing keys mean no
/// corpora, no indexes, no hidden fields, no SQL, no recordings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolePolicy {
    /// The matrix-search corpora the role may search.
    pub corpora: Access,
    /// Fields (columns) the role never sees, in any answer.
    pub hidden_fields: Vec<String>,
    /// Whether the role may run SQL.
    pub sql: bool,
    /// Whether the role may read `matrix_recordings` (which holds every caller's searches).
    pub recordings: bool,
    /// The raw vector indexes the role may search (matrix search's own indexes included).
    pub indexes: Access,
}

impl RolePolicy {
    /// The admin's policy: everything.
    pub fn admin() -> Self {
        RolePolicy {
            corpora: Access::All,
            hidden_fields: Vec::new(),
            sql: true,
            recordings: true,
            indexes: Access::All,
        }
    }

    /// The built-in `recruiter`: every corpus, index and field, SQL; not the other callers' recordings.
    pub fn recruiter() -> Self {
        RolePolicy {
            recordings: false,
            ..Self::admin()
        }
    }

    /// The built-in `client` (a staffing company's customer): searches workers without their contact
    /// details or pay, and runs no SQL.
    pub fn client() -> Self {
        RolePolicy {
            corpora: Access::Only(vec!["workers".to_owned()]),
            hidden_fields: ["email", "phone", "last_name", "pay_rate_min"]
                .map(str::to_owned)
                .to_vec(),
            sql: false,
            recordings: false,
            indexes: Access::Only(Vec::new()),
        }
    }

    /// Whether the role may not see `field`.
    pub fn hides(&self, field: &str) -> bool {
        self.hidden_fields.iter().any(|f| f == field)
    }
}

/// Every role's policy: the built-in ones, replaced or extended by config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    roles: BTreeMap<String, RolePolicy>,
    admin: RolePolicy,
    nobody: RolePolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(BTreeMap::new())
    }
}

impl Policy {
    /// The built-in roles with `configured` on top (an `admin` entry is ignored: admin may do everything).
    pub fn new(configured: BTreeMap<String, RolePolicy>) -> Self {
        let mut roles = BTreeMap::new();
        roles.insert("recruiter".to_owned(), RolePolicy::recruiter());
        roles.insert("client".to_owned(), RolePolicy::client());
        for (name, policy) in configured {
            if name != "admin" {
                roles.insert(name, policy);
            }
        }
        Policy {
            roles,
            admin: RolePolicy::admin(),
            nobody: RolePolicy::default(),
        }
    }

    /// What `role` may do; a role nobody defined may do nothing.
    pub fn role(&self, role: &Role) -> &RolePolicy {
        if role.is_admin() {
            return &self.admin;
        }
        self.roles.get(role.as_str()).unwrap_or(&self.nobody)
    }

    /// Whether `name` is a role the policy knows (built in or configured).
    pub fn defines(&self, name: &str) -> bool {
        name == "admin" || self.roles.contains_key(name)
    }

    /// The roles the policy knows, admin first.
    pub fn role_names(&self) -> Vec<&str> {
        std::iter::once("admin")
            .chain(self.roles.keys().map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_roles_and_config_on_top() {
        let configured: BTreeMap<String, RolePolicy> = serde_json::from_value(serde_json::json!({
            "client": {"corpora": ["workers", "orders"], "hidden_fields": ["email"]},
            "auditor": {"sql": true},
            "admin": {"sql": false},
        }))
        .expect("parse");
        let policy = Policy::new(configured);
        let client = policy.role(&Role("client".into()));
        assert!(client.corpora.allows("orders"));
        assert!(client.hides("email") && !client.hides("phone"));
        assert!(!client.sql, "a configured role without sql may not run SQL");
        let auditor = policy.role(&Role("auditor".into()));
        assert!(auditor.sql && !auditor.corpora.allows("workers"));
        assert!(policy.role(&Role::admin()).sql, "admin cannot be narrowed");
        let stranger = policy.role(&Role("stranger".into()));
        assert!(!stranger.sql && !stranger.corpora.allows("workers"));
        assert!(policy.defines("recruiter") && !policy.defines("stranger"));
    }

    #[test]
    fn corpora_star_is_all() {
        let p: RolePolicy =
            serde_json::from_value(serde_json::json!({"corpora": "*"})).expect("parse");
        assert_eq!(p.corpora, Access::All);
        let p: RolePolicy =
            serde_json::from_value(serde_json::json!({"corpora": ["*"]})).expect("parse");
        assert!(p.corpora.allows("anything"));
        assert!(serde_json::from_value::<RolePolicy>(serde_json::json!({"sqll": true})).is_err());
    }
}
