//! `Idempotency-Key` records under `_catalog/idempotency/`.
//!
//! Every record is written once, with `PutMode::Create`, so two instances sharing a store agree on who owns a
//! key without a lock service (and a local directory, which has no `PutMode::Update`, works the same):
//! - `<scope>/<sha256(key)>.lock` is created when a request with the key starts; whoever creates it runs
//!   the request, everyone else sees it in progress (or, with another body, a conflict);
//! - `<scope>/<sha256(key)>.json` is created with the answer when the request succeeds; replays return it;
//! - the lock is deleted when the request finishes, successfully or not (a failed request leaves nothing, so
//!   it may be retried with the same key). A lock older than [`STALE_LOCK`] is taken over (a crashed writer).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// After this long an in-progress marker is considered abandoned.
pub const STALE_LOCK: Duration = Duration::from_secs(15 * 60);

/// Where the catalog keeps idempotency records.
pub const IDEMPOTENCY_PREFIX: &str = "_catalog/idempotency";

/// Idempotency records in one object store.
#[derive(Debug, Clone)]
pub struct IdempotencyStore {
    store: Arc<dyn ObjectStore>,
}

/// What [`IdempotencyStore::begin`] found.
#[derive(Debug)]
pub enum Begin {
    /// The key is new: run the request, then [`IdempotencyStore::complete`] or [`IdempotencyStore::abandon`].
    Fresh(Reservation),
    /// The key was used with the same request: its stored answer.
    Replay(serde_json::Value),
}

/// The right to run a request under a key.
#[derive(Debug)]
pub struct Reservation {
    key: String,
    request_hash: String,
    lock: Path,
    done: Path,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    key: String,
    request_hash: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    response: Option<serde_json::Value>,
}

/// A hex SHA-256, for request fingerprints.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

impl IdempotencyStore {
    /// Records in `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        IdempotencyStore { store }
    }

    /// The prefix of a scope (`ingest/<dataset>`, `register/<dataset>`).
    pub fn scope_prefix(scope: &str) -> Path {
        Path::from(format!("{IDEMPOTENCY_PREFIX}/{scope}"))
    }

    /// Starts a request with `key` whose content hashes to `request_hash`.
    pub async fn begin(&self, scope: &str, key: &str, request_hash: &str) -> Result<Begin> {
        if key.is_empty() || key.len() > 255 {
            return Err(Error::BadRequest(
                "an Idempotency-Key is 1 to 255 characters".into(),
            ));
        }
        let base = format!(
            "{}/{}",
            Self::scope_prefix(scope),
            hex::encode(Sha256::digest(key.as_bytes()))
        );
        let done = Path::from(format!("{base}.json"));
        let lock = Path::from(format!("{base}.lock"));
        let reservation = Reservation {
            key: key.to_owned(),
            request_hash: request_hash.to_owned(),
            lock,
            done,
        };
        for _ in 0..3 {
            if let Some(answer) = self.finished(&reservation).await? {
                return Ok(Begin::Replay(answer));
            }
            let record = Record {
                key: key.to_owned(),
                request_hash: request_hash.to_owned(),
                created_at: Utc::now(),
                response: None,
            };
            match self.create(&reservation.lock, &record).await {
                Ok(()) => {
                    // Someone may have finished between the check and the lock.
                    if let Some(answer) = self.finished(&reservation).await? {
                        self.release(&reservation).await;
                        return Ok(Begin::Replay(answer));
                    }
                    return Ok(Begin::Fresh(reservation));
                }
                Err(Error::Store(object_store::Error::AlreadyExists { .. })) => {
                    let Some(held) = self.read(&reservation.lock).await? else {
                        continue;
                    };
                    if held.request_hash != request_hash {
                        return Err(Error::IdempotencyConflict(key.to_owned()));
                    }
                    let age = Utc::now().signed_duration_since(held.created_at);
                    if age.to_std().is_ok_and(|a| a > STALE_LOCK) {
                        self.release(&reservation).await;
                        continue;
                    }
                    return Err(Error::IdempotencyInProgress(key.to_owned()));
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::IdempotencyInProgress(key.to_owned()))
    }

    /// Stores the answer of a finished request and releases the key.
    pub async fn complete(
        &self,
        reservation: Reservation,
        response: serde_json::Value,
    ) -> Result<()> {
        let record = Record {
            key: reservation.key.clone(),
            request_hash: reservation.request_hash.clone(),
            created_at: Utc::now(),
            response: Some(response),
        };
        let stored = self.create(&reservation.done, &record).await;
        self.release(&reservation).await;
        match stored {
            Ok(()) | Err(Error::Store(object_store::Error::AlreadyExists { .. })) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Releases the key of a failed request, so it may be retried.
    pub async fn abandon(&self, reservation: Reservation) {
        self.release(&reservation).await;
    }

    /// Deletes every record of a scope (when its dataset is deleted).
    pub async fn forget_scope(&self, scope: &str) -> Result<()> {
        use futures::{StreamExt, TryStreamExt};
        let prefix = Self::scope_prefix(scope);
        let locations = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .boxed();
        self.store
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    async fn finished(&self, r: &Reservation) -> Result<Option<serde_json::Value>> {
        let Some(record) = self.read(&r.done).await? else {
            return Ok(None);
        };
        if record.request_hash != r.request_hash {
            return Err(Error::IdempotencyConflict(r.key.clone()));
        }
        Ok(Some(record.response.unwrap_or(serde_json::Value::Null)))
    }

    async fn release(&self, r: &Reservation) {
        if let Err(e) = self.store.delete(&r.lock).await
            && !matches!(e, object_store::Error::NotFound { .. })
        {
            tracing::warn!(lock = %r.lock, error = %e, "could not release an idempotency lock");
        }
    }

    async fn create(&self, path: &Path, record: &Record) -> Result<()> {
        let body = serde_json::to_vec(record).map_err(|source| Error::CorruptRecord {
            path: path.to_string(),
            source,
        })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.store
            .put_opts(path, PutPayload::from(Bytes::from(body)), opts)
            .await?;
        Ok(())
    }

    async fn read(&self, path: &Path) -> Result<Option<Record>> {
        match self.store.get_opts(path, Default::default()).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| Error::CorruptRecord {
                        path: path.to_string(),
                        source,
                    })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replay_conflict_and_retry_after_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("store"),
        );
        let idem = IdempotencyStore::new(store);
        let Begin::Fresh(r) = idem.begin("ingest/w", "k1", "h1").await.expect("begin") else {
            panic!("fresh")
        };
        assert!(matches!(
            idem.begin("ingest/w", "k1", "h1").await,
            Err(Error::IdempotencyInProgress(_))
        ));
        assert!(matches!(
            idem.begin("ingest/w", "k1", "h2").await,
            Err(Error::IdempotencyConflict(_))
        ));
        idem.complete(r, serde_json::json!({"version": 1}))
            .await
            .expect("complete");
        let Begin::Replay(v) = idem.begin("ingest/w", "k1", "h1").await.expect("replay") else {
            panic!("replay")
        };
        assert_eq!(v["version"], 1);
        assert!(matches!(
            idem.begin("ingest/w", "k1", "h2").await,
            Err(Error::IdempotencyConflict(_))
        ));

        let Begin::Fresh(r) = idem.begin("ingest/w", "k2", "h1").await.expect("begin") else {
            panic!("fresh")
        };
        idem.abandon(r).await;
        assert!(matches!(
            idem.begin("ingest/w", "k2", "h1").await,
            Ok(Begin::Fresh(_))
        ));
    }
}
