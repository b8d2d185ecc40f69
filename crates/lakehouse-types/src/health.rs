//! The `/health` body.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether something works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Working.
    Ok,
    /// Answering, but something it needs is not.
    Degraded,
    /// Not working.
    Down,
}

/// One service's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealth {
    /// Overall status of the service.
    pub status: Status,
    /// `local` (in this process) or the URL of the remote service.
    pub location: String,
    /// What is wrong, when something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Service-specific facts (the storage backend, the model loaded, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl ServiceHealth {
    /// A healthy service.
    pub fn ok(location: impl Into<String>) -> Self {
        ServiceHealth {
            status: Status::Ok,
            location: location.into(),
            message: None,
            details: BTreeMap::new(),
        }
    }

    /// A service that is not working, with the reason.
    pub fn down(location: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceHealth {
            status: Status::Down,
            location: location.into(),
            message: Some(message.into()),
            details: BTreeMap::new(),
        }
    }

    /// Adds a detail.
    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// The body of `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `ok` when every service is ok, `degraded` otherwise.
    pub status: Status,
    /// The version of the binary.
    pub version: String,
    /// Each service this process serves or routes to.
    pub services: BTreeMap<String, ServiceHealth>,
}
