//! Retention: how long a table's versions stay time-travel targets, and which is the oldest one kept.
//!
//! A version is kept while it was current at some moment inside the retention: the current version, every
//! version committed since the cutoff (now minus `keep_versions` days), and the one that was current at the
//! cutoff. A vacuum removes only files that no kept version references (see `vacuum.rs`), so every kept
//! version reads whole; asking for an older one is [`Error::VersionExpired`], naming the oldest kept.
//!
//! When a version was replaced is read from the next commit's modification time, as the Delta protocol
//! does for log retention: one HEAD decides for any version, and a binary search over the log finds the
//! oldest kept (commits cleaned from the log count as replaced long ago).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;

use super::{Tables, commit_path};
use crate::{Error, Result};

/// How long each table's versions are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Days, for every table without its own (`[datasets] keep_versions`).
    pub keep_days: f64,
    /// Days, for the tables that have their own (`[datasets.tables.NAME] keep_versions`).
    pub per_table: HashMap<String, f64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_days: 7.0,
            per_table: HashMap::new(),
        }
    }
}

impl Retention {
    /// Days `name`'s versions are kept.
    pub fn keep_days(&self, name: &str) -> f64 {
        self.per_table
            .get(name)
            .copied()
            .unwrap_or(self.keep_days)
            .max(0.0)
    }

    /// How long `name`'s versions are kept.
    pub fn keep(&self, name: &str) -> Duration {
        // Days past what a Duration holds are kept for ever in all but name.
        Duration::try_from_secs_f64(self.keep_days(name) * 86_400.0).unwrap_or(Duration::MAX)
    }

    /// The moment before which a replaced version of `name` is no longer kept.
    pub fn cutoff(&self, name: &str) -> DateTime<Utc> {
        chrono::Duration::from_std(self.keep(name))
            .ok()
            .and_then(|keep| Utc::now().checked_sub_signed(keep))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// Whether a version is kept, as one HEAD of the next commit tells.
enum Replaced {
    /// The next commit was made at this time.
    At(DateTime<Utc>),
    /// There is no next commit: the version is the current one, past the end, or cleaned from the log.
    Unknown,
}

impl Tables {
    /// When the version after `version` was committed.
    async fn replaced(&self, name: &str, version: u64) -> Result<Replaced> {
        match self.store.head(&commit_path(name, version + 1)).await {
            Ok(meta) => Ok(Replaced::At(meta.last_modified)),
            Err(object_store::Error::NotFound { .. }) => Ok(Replaced::Unknown),
            Err(e) => Err(e.into()),
        }
    }

    /// Refuses `version` of `name` when it was replaced before the retention's cutoff. A version whose
    /// successor cannot be seen is let through (opening it tells whether it exists).
    pub(super) async fn check_retained(&self, name: &str, version: u64) -> Result<()> {
        let cutoff = self.retention.cutoff(name);
        match self.replaced(name, version).await? {
            Replaced::At(at) if at < cutoff => Err(self.expired(name, version, None).await),
            Replaced::At(_) | Replaced::Unknown => Ok(()),
        }
    }

    /// The error for `version`, naming the oldest kept version (searched for; `current` when known).
    pub(super) async fn expired(&self, name: &str, version: u64, current: Option<u64>) -> Error {
        let current = match current {
            Some(c) => c,
            None => match Box::pin(self.open_current(name)).await {
                Ok(table) => table.version().unwrap_or(0),
                Err(e) => return e,
            },
        };
        match self.oldest_kept(name, current).await {
            Ok(oldest) => Error::VersionExpired {
                name: name.to_owned(),
                version,
                oldest,
                keep_days: self.retention.keep_days(name),
            },
            Err(e) => e,
        }
    }

    /// The oldest version of `name` still kept, given its current version: a binary search over the log
    /// (about twenty HEADs for a million versions).
    pub async fn oldest_kept(&self, name: &str, current: u64) -> Result<u64> {
        let cutoff = self.retention.cutoff(name);
        // Kept(v) is false up to some version and true from it on: commits are made in order.
        let (mut lo, mut hi) = (0u64, current);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let kept = match self.replaced(name, mid).await? {
                Replaced::At(at) => at >= cutoff,
                // The next commit is gone: cleaned from the log, so replaced long before any cutoff.
                Replaced::Unknown => false,
            };
            if kept {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// How long `name`'s versions are kept.
    pub fn retention(&self) -> &Retention {
        &self.retention
    }
}

#[cfg(test)]
mod tests {
    use lakehouse_types::dataset::WriteMode;

    use super::*;
    use crate::tables::testing::{local, values_of, write};

    #[tokio::test]
    async fn a_version_replaced_before_the_cutoff_is_refused_naming_the_oldest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = local(dir.path());
        write(&Tables::new(store.clone()), WriteMode::Create, &[0]).await;
        for i in 1..4 {
            write(&Tables::new(store.clone()), WriteMode::Append, &[i]).await;
        }
        // Kept a week: every version reads.
        let week = Tables::new(store.clone());
        let v1 = week.open("t", Some(1)).await.expect("v1");
        assert_eq!(values_of(&v1).await, vec![0, 1]);
        assert_eq!(week.oldest_kept("t", 3).await.expect("oldest"), 0);

        // Kept no time at all: only the current version is a target.
        let none = Tables::new(store.clone()).with_retention(Retention {
            keep_days: 7.0,
            per_table: HashMap::from([("t".to_owned(), 0.0)]),
        });
        assert_eq!(none.oldest_kept("t", 3).await.expect("oldest"), 3);
        match none.open("t", Some(1)).await {
            Err(Error::VersionExpired {
                version, oldest, ..
            }) => assert_eq!((version, oldest), (1, 3)),
            other => panic!("expected version 1 to have expired, got {other:?}"),
        }
        let current = none.open("t", Some(3)).await.expect("current");
        assert_eq!(values_of(&current).await, vec![0, 1, 2, 3]);
        // Past the end is still "no such version".
        assert!(matches!(
            none.open("t", Some(9)).await,
            Err(Error::VersionNotFound { current: 3, .. })
        ));
    }
}
