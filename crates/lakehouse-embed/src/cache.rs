//! The bounded cache in front of every provider.
//!
//! Keyed by provider, model and the exact text, so an identical text is never embedded twice while its entry
//! lives. Both the number of entries and the bytes held are bounded: moka bounds one weighted capacity, so
//! each entry weighs its real size (text, vector, bookkeeping) but never less than `max_bytes / max_entries`;
//! the byte budget then also caps the entry count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::sync::Cache;
use serde::Serialize;

use crate::config::CacheConfig;

/// Per-entry overhead counted on top of the text and the vector (key, `Arc`s, moka's node).
const ENTRY_OVERHEAD_BYTES: u64 = 96;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// `provider/model`, shared by every entry of one model.
    model: Arc<str>,
    text: Box<str>,
}

/// Hit and miss counts of the cache, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Texts answered from the cache.
    pub hits: u64,
    /// Texts that had to be sent to a provider.
    pub misses: u64,
    /// Entries held.
    pub entries: u64,
    /// Weighted bytes held.
    pub bytes: u64,
}

/// A bounded cache of vectors by provider, model and text.
#[derive(Debug)]
pub struct EmbedCache {
    cache: Option<Cache<Key, Arc<[f32]>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl EmbedCache {
    /// A cache within the configured bounds; `max_entries = 0` or `max_bytes = 0` disables caching.
    pub fn new(config: &CacheConfig) -> Self {
        let cache = (config.max_entries > 0 && config.max_bytes > 0).then(|| {
            let floor = (config.max_bytes / config.max_entries).max(1);
            Cache::builder()
                .max_capacity(config.max_bytes)
                .weigher(move |key: &Key, vector: &Arc<[f32]>| {
                    let bytes =
                        key.text.len() as u64 + 4 * vector.len() as u64 + ENTRY_OVERHEAD_BYTES;
                    u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
                })
                .build()
        });
        EmbedCache {
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached vector of each text (`None` where it is not cached), counting hits and misses.
    pub fn get_many(&self, model: &Arc<str>, texts: &[String]) -> Vec<Option<Arc<[f32]>>> {
        let found: Vec<Option<Arc<[f32]>>> = match &self.cache {
            Some(cache) => texts
                .iter()
                .map(|text| {
                    cache.get(&Key {
                        model: Arc::clone(model),
                        text: text.as_str().into(),
                    })
                })
                .collect(),
            None => vec![None; texts.len()],
        };
        let hits = found.iter().filter(|vector| vector.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses
            .fetch_add(texts.len() as u64 - hits, Ordering::Relaxed);
        found
    }

    /// Stores a vector for a text.
    pub fn insert(&self, model: &Arc<str>, text: &str, vector: Arc<[f32]>) {
        if let Some(cache) = &self.cache {
            cache.insert(
                Key {
                    model: Arc::clone(model),
                    text: text.into(),
                },
                vector,
            );
        }
    }

    /// The counters and the current size.
    pub fn stats(&self) -> CacheStats {
        let (entries, bytes) = match &self.cache {
            Some(cache) => {
                // moka applies inserts and evictions to its counts lazily; settle them for the reading.
                cache.run_pending_tasks();
                (cache.entry_count(), cache.weighted_size())
            }
            None => (0, 0),
        };
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }

    /// Applies pending evictions now (moka does it lazily); for tests and exact stats.
    pub fn sync(&self) {
        if let Some(cache) = &self.cache {
            cache.run_pending_tasks();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(value: f32) -> Arc<[f32]> {
        vec![value; 384].into()
    }

    #[test]
    fn counts_hits_and_misses_and_keys_by_model() {
        let cache = EmbedCache::new(&CacheConfig {
            max_entries: 100,
            max_bytes: 1 << 20,
        });
        let a: Arc<str> = "local/a".into();
        let b: Arc<str> = "local/b".into();
        cache.insert(&a, "hello", vector(1.0));
        let found = cache.get_many(&a, &["hello".to_owned(), "other".to_owned()]);
        assert_eq!(found[0].as_deref(), Some(&vector(1.0)[..]));
        assert!(found[1].is_none());
        assert!(
            cache.get_many(&b, &["hello".to_owned()])[0].is_none(),
            "another model must not share entries"
        );
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 2));
    }

    #[test]
    fn entry_bound_holds_even_when_bytes_allow_more() {
        let cache = EmbedCache::new(&CacheConfig {
            max_entries: 10,
            max_bytes: 1 << 30,
        });
        let model: Arc<str> = "local/m".into();
        for i in 0..100 {
            cache.insert(&model, &format!("text {i}"), vector(i as f32));
        }
        cache.sync();
        assert!(cache.stats().entries <= 10, "{:?}", cache.stats());
    }

    #[test]
    fn byte_bound_holds_even_when_entries_allow_more() {
        // Each entry weighs about 1.6 KB; 16 KB holds about ten.
        let cache = EmbedCache::new(&CacheConfig {
            max_entries: 1_000,
            max_bytes: 16 * 1024,
        });
        let model: Arc<str> = "local/m".into();
        for i in 0..100 {
            cache.insert(&model, &format!("text {i}"), vector(i as f32));
        }
        cache.sync();
        let stats = cache.stats();
        assert!(stats.bytes <= 16 * 1024 && stats.entries <= 10, "{stats:?}");
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let cache = EmbedCache::new(&CacheConfig {
            max_entries: 0,
            max_bytes: 0,
        });
        let model: Arc<str> = "local/m".into();
        cache.insert(&model, "x", vector(0.0));
        assert!(cache.get_many(&model, &["x".to_owned()])[0].is_none());
    }
}
