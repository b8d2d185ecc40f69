//! Who may see what and change what: the role policy every service consults.
//!
//! A caller's role comes from its API key; the policy says what that role may do. A role is a set of
//! [`Action`]s from one fixed list (like meilisearch's key actions) and what it may see: the corpora it may
//! search, the raw vector indexes it may read, the storage prefixes it may use, and the fields it never sees.
//! `admin` may do everything and cannot be narrowed. `recruiter` and `client` have built-in defaults (below)
//! that a `[roles.NAME]` table in the config replaces whole; any other role exists only when the config
//! defines it, and a role nobody defined may do nothing.
//!
//! ```toml
//! [roles.client]
//! actions = ["search"]
//! corpora = ["workers"]                       # "*" = all
//! hidden_fields = ["email", "phone", "last_name", "pay_rate_min"]
//! indexes = []                                # raw vector indexes it may read and write
//! # storage_prefixes = ["exports/"]           # where storage.read / storage.write apply (default: anywhere)
//! ```
//!
//! The type lives with the wire types so that every service checks the same policy in its own domain code,
//! in-process or split: [`Policy::require`] is the one check, and its error names the missing action.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ErrorCode};

/// One thing a role may do. The list is fixed: a new route picks one of these (or adds one here, which
/// forces a decision in every `match` over it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Matrix search on the role's corpora (and listing them).
    Search,
    /// Read-only SQL over the datasets.
    Sql,
    /// The catalog: dataset list and manifests.
    DatasetsRead,
    /// Create a dataset and append to one (ingest, register).
    DatasetsWrite,
    /// Replace a dataset's rows (`mode=overwrite`).
    DatasetsOverwrite,
    /// Delete a dataset.
    DatasetsDelete,
    /// Define and rebuild corpora (over datasets the role may read in full).
    CorporaManage,
    /// Delete corpora.
    CorporaDelete,
    /// Raw vector indexes: list, describe, read items, search.
    VectorsRead,
    /// Raw vector indexes: create, add items.
    VectorsWrite,
    /// Raw vector indexes: delete items and indexes.
    VectorsDelete,
    /// Raw objects: GET, HEAD, LIST (outside the services' prefixes).
    StorageRead,
    /// Raw objects: PUT, DELETE (outside the services' prefixes).
    StorageWrite,
    /// Text → vectors (`/v1/embed`, `/v1/embeddings`, and text in vector requests).
    Embed,
    /// Read `matrix_recordings`, which holds every caller's searches.
    RecordingsRead,
}

impl Action {
    /// Every action, in the order of the list.
    pub const ALL: [Action; 15] = [
        Action::Search,
        Action::Sql,
        Action::DatasetsRead,
        Action::DatasetsWrite,
        Action::DatasetsOverwrite,
        Action::DatasetsDelete,
        Action::CorporaManage,
        Action::CorporaDelete,
        Action::VectorsRead,
        Action::VectorsWrite,
        Action::VectorsDelete,
        Action::StorageRead,
        Action::StorageWrite,
        Action::Embed,
        Action::RecordingsRead,
    ];

    /// The action's name in config and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Search => "search",
            Action::Sql => "sql",
            Action::DatasetsRead => "datasets.read",
            Action::DatasetsWrite => "datasets.write",
            Action::DatasetsOverwrite => "datasets.overwrite",
            Action::DatasetsDelete => "datasets.delete",
            Action::CorporaManage => "corpora.manage",
            Action::CorporaDelete => "corpora.delete",
            Action::VectorsRead => "vectors.read",
            Action::VectorsWrite => "vectors.write",
            Action::VectorsDelete => "vectors.delete",
            Action::StorageRead => "storage.read",
            Action::StorageWrite => "storage.write",
            Action::Embed => "embed",
            Action::RecordingsRead => "recordings.read",
        }
    }

    /// What the action lets a caller do, for error messages.
    pub fn what(self) -> &'static str {
        match self {
            Action::Search => "run matrix search",
            Action::Sql => "run SQL",
            Action::DatasetsRead => "read the catalog",
            Action::DatasetsWrite => "create or append to datasets",
            Action::DatasetsOverwrite => "overwrite datasets",
            Action::DatasetsDelete => "delete datasets",
            Action::CorporaManage => "define or rebuild corpora",
            Action::CorporaDelete => "delete corpora",
            Action::VectorsRead => "read vector indexes",
            Action::VectorsWrite => "create vector indexes or add items",
            Action::VectorsDelete => "delete vector indexes or items",
            Action::StorageRead => "read raw objects",
            Action::StorageWrite => "write or delete raw objects",
            Action::Embed => "embed text",
            Action::RecordingsRead => "read matrix_recordings",
        }
    }

    /// The action named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

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
/// actions, no corpora, no indexes, no hidden fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "RawRolePolicy")]
pub struct RolePolicy {
    /// What the role may do.
    pub actions: BTreeSet<Action>,
    /// Names in `actions` that are no action (a typo, or an action of a newer version): they allow
    /// nothing; `doctor` and the server's start-up log name them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_actions: Vec<String>,
    /// The matrix-search corpora the role may search.
    pub corpora: Access,
    /// Fields (columns) the role never sees, in any answer; matched case-insensitively.
    pub hidden_fields: Vec<String>,
    /// The raw vector indexes the role may read (with `vectors.read`) and change (with `vectors.write` or
    /// `vectors.delete`).
    pub indexes: Access,
    /// Where `storage.read` and `storage.write` apply: keys starting with one of these; `None` = any key
    /// outside the services' own prefixes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_prefixes: Option<Vec<String>>,
}

/// A `[roles.NAME]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRolePolicy {
    actions: Vec<String>,
    corpora: Access,
    hidden_fields: Vec<String>,
    indexes: Access,
    storage_prefixes: Option<Vec<String>>,
    /// Earlier versions' switches, now actions: refused with the fix.
    sql: Option<bool>,
    recordings: Option<bool>,
}

impl TryFrom<RawRolePolicy> for RolePolicy {
    type Error = String;

    fn try_from(raw: RawRolePolicy) -> Result<Self, String> {
        if raw.sql.is_some() {
            return Err(
                "`sql = true|false` is now an action: list \"sql\" in `actions` (or leave it out)"
                    .into(),
            );
        }
        if raw.recordings.is_some() {
            return Err("`recordings = true|false` is now an action: list \"recordings.read\" in `actions` \
                        (or leave it out)"
                .into());
        }
        let mut actions = BTreeSet::new();
        let mut unknown_actions = Vec::new();
        for name in raw.actions {
            if name == "*" {
                actions.extend(Action::ALL);
            } else if let Some(action) = Action::parse(name.trim()) {
                actions.insert(action);
            } else if !unknown_actions.contains(&name) {
                unknown_actions.push(name);
            }
        }
        Ok(RolePolicy {
            actions,
            unknown_actions,
            corpora: raw.corpora,
            hidden_fields: raw.hidden_fields,
            indexes: raw.indexes,
            storage_prefixes: raw.storage_prefixes,
        })
    }
}

impl RolePolicy {
    /// The admin's policy: everything.
    pub fn admin() -> Self {
        RolePolicy {
            actions: Action::ALL.into_iter().collect(),
            unknown_actions: Vec::new(),
            corpora: Access::All,
            hidden_fields: Vec::new(),
            indexes: Access::All,
            storage_prefixes: None,
        }
    }

    /// The built-in `recruiter`: searches, SQL, reads the catalog, loads data (never overwrites or deletes
    /// it), defines corpora, reads vector indexes, embeds; sees every field, not the other callers'
    /// recordings, no raw objects.
    pub fn recruiter() -> Self {
        RolePolicy {
            actions: [
                Action::Search,
                Action::Sql,
                Action::DatasetsRead,
                Action::DatasetsWrite,
                Action::CorporaManage,
                Action::VectorsRead,
                Action::Embed,
            ]
            .into_iter()
            .collect(),
            unknown_actions: Vec::new(),
            corpora: Access::All,
            hidden_fields: Vec::new(),
            indexes: Access::All,
            storage_prefixes: None,
        }
    }

    /// The built-in `client` (a staffing company's customer): searches workers without their contact
    /// details or pay, and nothing else.
    pub fn client() -> Self {
        RolePolicy {
            actions: [Action::Search].into_iter().collect(),
            unknown_actions: Vec::new(),
            corpora: Access::Only(vec!["workers".to_owned()]),
            hidden_fields: ["email", "phone", "last_name", "pay_rate_min"]
                .map(str::to_owned)
                .to_vec(),
            indexes: Access::Only(Vec::new()),
            storage_prefixes: None,
        }
    }

    /// Whether the role may do `action`.
    pub fn may(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }

    /// Whether the role may not see `field` (names match case-insensitively, as SQL identifiers do).
    pub fn hides(&self, field: &str) -> bool {
        self.hidden_fields
            .iter()
            .any(|f| f.eq_ignore_ascii_case(field))
    }

    /// Whether `storage.read` / `storage.write` reach `key` (the services' own prefixes are checked
    /// apart: only the admin role reaches them).
    pub fn reaches_key(&self, key: &str) -> bool {
        match &self.storage_prefixes {
            None => true,
            Some(prefixes) => prefixes.iter().any(|p| key.starts_with(p.as_str())),
        }
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

    /// The caller's role, when it may do `action`; otherwise 403 `forbidden` naming the action.
    pub fn require(&self, caller: &Caller, action: Action) -> Result<&RolePolicy, ApiError> {
        let role = self.role(&caller.role);
        if role.may(action) {
            Ok(role)
        } else {
            Err(forbidden(&caller.role, action))
        }
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

    /// The configured names in `actions` lists that are no action, with the role that lists each.
    pub fn unknown_actions(&self) -> Vec<(&str, &str)> {
        self.roles
            .iter()
            .flat_map(|(role, p)| {
                p.unknown_actions
                    .iter()
                    .map(move |a| (role.as_str(), a.as_str()))
            })
            .collect()
    }
}

/// The 403 for a role that lacks `action`.
pub fn forbidden(role: &Role, action: Action) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "role {role} may not {}: it lacks the action `{action}` (an admin can add it to \
             [roles.{role}] actions)",
            action.what()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: &str) -> Caller {
        Caller {
            name: "k".into(),
            role: Role(role.into()),
            credential: None,
        }
    }

    #[test]
    fn built_in_roles_and_config_on_top() {
        let configured: BTreeMap<String, RolePolicy> = serde_json::from_value(serde_json::json!({
            "client": {"actions": ["search"], "corpora": ["workers", "orders"], "hidden_fields": ["Email"]},
            "auditor": {"actions": ["sql", "recordings.read", "datasets.reed"]},
            "admin": {"actions": []},
        }))
        .expect("parse");
        let policy = Policy::new(configured);
        let client = policy.role(&Role("client".into()));
        assert!(client.corpora.allows("orders"));
        assert!(client.hides("email") && client.hides("EMAIL") && !client.hides("phone"));
        assert!(
            !client.may(Action::Sql),
            "a configured role without sql may not run SQL"
        );
        let auditor = policy.role(&Role("auditor".into()));
        assert!(auditor.may(Action::Sql) && auditor.may(Action::RecordingsRead));
        assert!(!auditor.corpora.allows("workers"));
        assert_eq!(policy.unknown_actions(), vec![("auditor", "datasets.reed")]);
        assert!(
            Action::ALL
                .iter()
                .all(|&a| policy.role(&Role::admin()).may(a)),
            "admin cannot be narrowed"
        );
        let stranger = policy.role(&Role("stranger".into()));
        assert!(Action::ALL.iter().all(|&a| !stranger.may(a)));
        assert!(policy.defines("recruiter") && !policy.defines("stranger"));
    }

    #[test]
    fn built_in_actions() {
        let policy = Policy::default();
        let recruiter = policy.role(&Role("recruiter".into()));
        for action in Action::ALL {
            let expected = matches!(
                action,
                Action::Search
                    | Action::Sql
                    | Action::DatasetsRead
                    | Action::DatasetsWrite
                    | Action::CorporaManage
                    | Action::VectorsRead
                    | Action::Embed
            );
            assert_eq!(recruiter.may(action), expected, "recruiter {action}");
            assert_eq!(
                policy.role(&Role("client".into())).may(action),
                action == Action::Search,
                "client {action}"
            );
        }
        let denied = policy
            .require(&caller("client"), Action::DatasetsOverwrite)
            .expect_err("client may not overwrite");
        assert_eq!(denied.code, ErrorCode::Forbidden);
        assert!(
            denied.message.contains("`datasets.overwrite`"),
            "{}",
            denied.message
        );
        assert!(
            policy
                .require(&caller("admin"), Action::StorageWrite)
                .is_ok()
        );
    }

    #[test]
    fn action_names_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            assert_eq!(
                serde_json::to_value(action).expect("serialize"),
                serde_json::json!(action.as_str())
            );
        }
        assert_eq!(Action::parse("admin"), None);
        let star: RolePolicy =
            serde_json::from_value(serde_json::json!({"actions": ["*"]})).expect("parse");
        assert_eq!(star.actions.len(), Action::ALL.len());
    }

    #[test]
    fn old_switches_are_refused_with_the_fix() {
        let err = serde_json::from_value::<RolePolicy>(serde_json::json!({"sql": true}))
            .expect_err("sql is an action now");
        assert!(err.to_string().contains("\"sql\" in `actions`"), "{err}");
        let err = serde_json::from_value::<RolePolicy>(serde_json::json!({"recordings": true}))
            .expect_err("recordings is an action now");
        assert!(err.to_string().contains("recordings.read"), "{err}");
        assert!(serde_json::from_value::<RolePolicy>(serde_json::json!({"sqll": true})).is_err());
    }

    #[test]
    fn corpora_star_is_all() {
        let p: RolePolicy =
            serde_json::from_value(serde_json::json!({"corpora": "*"})).expect("parse");
        assert_eq!(p.corpora, Access::All);
        let p: RolePolicy =
            serde_json::from_value(serde_json::json!({"corpora": ["*"]})).expect("parse");
        assert!(p.corpora.allows("anything"));
    }

    #[test]
    fn storage_prefixes_bound_keys() {
        let p: RolePolicy = serde_json::from_value(
            serde_json::json!({"actions": ["storage.read"], "storage_prefixes": ["exports/"]}),
        )
        .expect("parse");
        assert!(p.reaches_key("exports/2025/w.csv") && !p.reaches_key("private/x"));
        assert!(RolePolicy::admin().reaches_key("anything"));
    }
}
