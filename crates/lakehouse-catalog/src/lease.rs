//! Leases in storage: one runner of a task at a time across the instances sharing a store, with no lock
//! service and nothing but conditional creates (which a local directory has too).
//!
//! A lease on `<task>/<subject>` is a series of objects `_catalog/leases/<task>/<subject>/<generation>.json`,
//! each saying who holds it and until when. The holder is the writer of the highest generation while it
//! has not expired. Taking a lease (free, expired or released) and renewing it both create the next
//! generation with `If-None-Match`: of two instances racing for it, one creates it and the other is told
//! it exists. The winner deletes the generations before its own; releasing deletes its own, so the next
//! taker starts again from the first.
//!
//! A holder that dies (kill -9) keeps its lease until it expires; the task it held is one that can be
//! cut at any point and resumed (a compaction that never committed left only unreferenced files).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Where leases live.
pub const LEASES_PREFIX: &str = "_catalog/leases";

/// What one generation of a lease says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    holder: String,
    expires_unix_ms: i64,
}

/// The leases of one store, taken under one holder name (one per process).
#[derive(Debug, Clone)]
pub struct Leases {
    store: Arc<dyn ObjectStore>,
    holder: Arc<str>,
}

/// A lease held. It is renewed in the background every third of its time to live until released (or
/// dropped); [`Lease::lost`] says whether a renewal found it taken (this process stalled past its expiry).
#[derive(Debug)]
pub struct Lease {
    state: Arc<tokio::sync::Mutex<Held>>,
    lost: Arc<std::sync::atomic::AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

/// The generation held, and how to make the next.
#[derive(Debug)]
struct Held {
    leases: Leases,
    prefix: Path,
    generation: u64,
    ttl: Duration,
}

impl Leases {
    /// Leases in `store` (rooted at the data root), held under a name unique to this process.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let holder = format!("{host}/{}/{}", std::process::id(), uuid::Uuid::new_v4());
        Leases {
            store,
            holder: holder.into(),
        }
    }

    /// This process's name in the leases it holds.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes the lease on `task`/`subject` for `ttl`, unless another holder has it (`None`).
    pub async fn try_acquire(
        &self,
        task: &str,
        subject: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>> {
        let prefix = Path::from(format!("{LEASES_PREFIX}/{task}/{subject}"));
        let generations: Vec<u64> = self
            .store
            .list(Some(&prefix))
            .try_filter_map(|meta| async move {
                Ok(meta
                    .location
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                    .and_then(|g| g.parse::<u64>().ok()))
            })
            .try_collect()
            .await?;
        let latest = generations.iter().copied().max();
        if let Some(generation) = latest
            && let Some(record) = self.read(&prefix, generation).await?
            && record.holder != *self.holder
            && record.expires_unix_ms > Utc::now().timestamp_millis()
        {
            return Ok(None);
        }
        let mut held = Held {
            leases: self.clone(),
            prefix,
            generation: latest.unwrap_or(0),
            ttl,
        };
        if !held.next_generation().await? {
            return Ok(None);
        }
        let state = Arc::new(tokio::sync::Mutex::new(held));
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renewer = tokio::spawn(renew_until_lost(Arc::clone(&state), Arc::clone(&lost), ttl));
        Ok(Some(Lease {
            state,
            lost,
            renewer,
        }))
    }

    async fn read(&self, prefix: &Path, generation: u64) -> Result<Option<Record>> {
        match self.store.get(&generation_path(prefix, generation)).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                // An unreadable record holds nothing (it would otherwise hold the lease for ever).
                Ok(serde_json::from_slice(&bytes).ok())
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn generation_path(prefix: &Path, generation: u64) -> Path {
    prefix.clone().join(format!("{generation:020}.json"))
}

/// Renews the lease every third of `ttl`, until a renewal finds it taken or the task is aborted.
async fn renew_until_lost(
    state: Arc<tokio::sync::Mutex<Held>>,
    lost: Arc<std::sync::atomic::AtomicBool>,
    ttl: Duration,
) {
    let every = (ttl / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let renewed = state.lock().await.next_generation().await;
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            // A failed renewal is tried again; the lease holds until it expires.
            Err(e) => tracing::debug!(error = %e, "a lease was not renewed"),
        }
    }
}

impl Lease {
    /// Whether another holder took the lease (this holder should stop its work).
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Gives the lease up (best-effort: an undeleted one expires).
    pub async fn release(self) {
        self.renewer.abort();
        let held = self.state.lock().await;
        if self.lost() {
            return;
        }
        let path = generation_path(&held.prefix, held.generation);
        if let Err(e) = held.leases.store.delete(&path).await {
            tracing::debug!(lease = %path, error = %e, "a lease was left to expire");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Held {
    /// Creates the generation after the one held; `false` when another holder created it first.
    async fn next_generation(&mut self) -> Result<bool> {
        let next = self.generation + 1;
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let record = Record {
            holder: self.leases.holder.to_string(),
            expires_unix_ms: Utc::now()
                .checked_add_signed(ttl)
                .map_or(i64::MAX, |t| t.timestamp_millis()),
        };
        let body =
            serde_json::to_vec(&record).map_err(|e| crate::Error::Integrity(e.to_string()))?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let path = generation_path(&self.prefix, next);
        match self
            .leases
            .store
            .put_opts(&path, PutPayload::from(Bytes::from(body)), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let old = generation_path(&self.prefix, self.generation);
        self.generation = next;
        if next > 1
            && let Err(e) = self.leases.store.delete(&old).await
            && !matches!(e, object_store::Error::NotFound { .. })
        {
            tracing::debug!(lease = %old, error = %e, "an old lease generation was left");
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).expect("store"))
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_an_expired_lease_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (
            Leases::new(store(dir.path())),
            Leases::new(store(dir.path())),
        );
        let ttl = Duration::from_millis(600);
        let held = a
            .try_acquire("upkeep", "t", ttl)
            .await
            .expect("a")
            .expect("free");
        assert!(
            b.try_acquire("upkeep", "t", ttl)
                .await
                .expect("b")
                .is_none()
        );
        // Renewed in the background: still held well past its first expiry.
        tokio::time::sleep(ttl * 3).await;
        assert!(
            b.try_acquire("upkeep", "t", ttl)
                .await
                .expect("b")
                .is_none()
        );
        assert!(!held.lost());
        // Another subject is another lease.
        assert!(
            b.try_acquire("upkeep", "u", ttl)
                .await
                .expect("b")
                .is_some()
        );
        held.release().await;
        let taken = b
            .try_acquire("upkeep", "t", ttl)
            .await
            .expect("b")
            .expect("released");
        // A holder that stops renewing (a process killed) loses it once it expires.
        taken.renewer.abort();
        assert!(
            a.try_acquire("upkeep", "t", ttl)
                .await
                .expect("a")
                .is_none()
        );
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        let again = a
            .try_acquire("upkeep", "t", ttl)
            .await
            .expect("a")
            .expect("expired");
        drop(taken);
        again.release().await;
        // Racing takers: exactly one wins.
        let racers: Vec<_> = (0..8).map(|_| Leases::new(store(dir.path()))).collect();
        let won =
            futures::future::join_all(racers.iter().map(|l| l.try_acquire("upkeep", "t", ttl)))
                .await
                .into_iter()
                .filter(|r| matches!(r, Ok(Some(_))))
                .count();
        assert_eq!(won, 1);
    }
}
