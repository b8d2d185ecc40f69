//! Answers kept for repeated searches.
//!
//! A search is a pure function of the request, the caller's role and the state it reads: the snapshot of each
//! corpus and its job orders. The key holds all of them, versions included, so an entry can never answer for
//! a state that has moved on: after a catch-up its key is simply never asked again and ages out. Only what
//! the judge and retrieval produced is kept; each answer still gets its own recording id, latency and
//! recording. Bounded in bytes (each entry weighs its hits' text).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lakehouse_types::matrix::{CorpusVersion, Excluded, MatrixHit};
use moka::sync::Cache;

/// What a search produced, as kept.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) hits: Vec<MatrixHit>,
    pub(crate) excluded: Excluded,
    pub(crate) corpora: std::collections::BTreeMap<String, CorpusVersion>,
}

/// The cache, and how often it answered.
#[derive(Debug)]
pub(crate) struct AnswerCache {
    cache: Cache<String, Arc<Answer>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Bytes an answer is taken to weigh beyond its hits' text.
const OVERHEAD: usize = 256;

fn weight(answer: &Answer) -> u32 {
    let text: usize = answer
        .hits
        .iter()
        .map(|h| {
            h.id.len()
                + h.corpus.len()
                + 64
                + h.fields
                    .iter()
                    .map(|(k, v)| k.len() + v.to_string().len() + 48)
                    .sum::<usize>()
        })
        .sum();
    u32::try_from(text + OVERHEAD).unwrap_or(u32::MAX)
}

impl AnswerCache {
    /// A cache of at most `max_bytes` (weighed as above).
    pub(crate) fn new(max_bytes: u64) -> Self {
        AnswerCache {
            cache: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_key: &String, answer: &Arc<Answer>| weight(answer))
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<Answer>> {
        let found = self.cache.get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub(crate) fn insert(&self, key: String, answer: Answer) {
        self.cache.insert(key, Arc::new(answer));
    }

    /// (hits, misses).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
