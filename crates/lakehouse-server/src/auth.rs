//! API keys → caller.
//!
//! Keys are configured as SHA-256 hashes. A request's bearer key is hashed and looked up; the hash map lookup
//! is not constant-time, but what it could leak is about the hash, which tells nothing about a valid key.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use lakehouse_config::ApiKey;
use lakehouse_types::{ApiError, Caller, ErrorCode, Role};

use crate::HttpError;

/// Turns a request's `Authorization` header into a [`Caller`].
#[derive(Debug)]
pub struct Authenticator {
    /// Key hash → (name, role). Empty means open mode.
    keys: HashMap<[u8; 32], (String, Role)>,
}

impl Authenticator {
    /// An authenticator over the configured keys; with none, every request is the anonymous admin.
    pub fn new(keys: &[ApiKey]) -> Self {
        Authenticator {
            keys: keys
                .iter()
                .map(|k| (k.sha256, (k.name.clone(), Role(k.role.clone()))))
                .collect(),
        }
    }

    /// Whether no keys are configured.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller a request's headers identify.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.is_open() {
            return Ok(Caller::anonymous_admin());
        }
        let header = headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingApiKey,
                "this server requires an API key: send `Authorization: Bearer <key>`",
            )
        })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidApiKey,
                    "the Authorization header must be `Bearer <key>`",
                )
            })?;
        let (name, role) = self
            .keys
            .get(&lakehouse_config::hash_key(key))
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid"))?;
        Ok(Caller {
            name: name.clone(),
            role: role.clone(),
            credential: Some(key.to_owned()),
        })
    }
}

/// Middleware: authenticates the request and puts the [`Caller`] in its extensions, or answers 401.
pub async fn require_caller(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Result<Response, HttpError> {
    let caller = auth.authenticate(request.headers())?;
    tracing::Span::current().record("caller", caller.name.as_str());
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}
