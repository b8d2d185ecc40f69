//! One index in memory: the HNSW graph (which holds the vectors), the id ↔ key maps and the metadata, and
//! the search strategy that picks between graph walk and exact scan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use lakehouse_types::vector::{Metadata, Metric};

use crate::codec::{EntryRecord, Op};
use crate::error::Result;
use crate::exact::{self, TopK};
use crate::filter::Filter;
use crate::graph::Consolidation;
use crate::hnsw::{Hnsw, HnswParams};

/// Search tuning that does not change the stored index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParams {
    /// At or below this many candidates an exact scan is used: it is exact, and on a few thousand vectors
    /// faster than walking a graph.
    pub exact_threshold: usize,
}

/// An item's id and metadata; its vector lives in the graph under the same key.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The user's id.
    pub id: String,
    /// The metadata.
    pub metadata: Metadata,
    /// The vector's length, when the graph stores it at unit length (else 1).
    pub norm: f32,
}

/// The in-memory state of one index.
#[derive(Debug)]
pub struct IndexState {
    hnsw: Hnsw,
    entries: HashMap<u64, Entry>,
    keys: HashMap<String, u64>,
    next_key: u64,
    /// Rough bytes held by ids and metadata, for `info`.
    entry_bytes: usize,
    /// The keys each recent filter matches, sorted; emptied by every change. Searches repeat their
    /// filters (a page's facets, matrix search's first pass), and evaluating one on every entry was most
    /// of a filtered search's time.
    matching: Mutex<HashMap<String, Arc<Vec<u64>>>>,
}

/// Filters whose matches are kept at once.
const MATCHING_FILTERS: usize = 64;

fn entry_size(id: &str, metadata: &Metadata) -> usize {
    // Two copies of the id (both maps), map overhead, and the metadata at roughly its JSON size.
    let meta: usize = metadata
        .iter()
        .map(|(k, v)| k.len() + v.to_string().len() + 48)
        .sum();
    2 * id.len() + 96 + meta
}

impl IndexState {
    /// An empty index.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        Ok(IndexState {
            hnsw: Hnsw::new(dim, metric, params)?,
            entries: HashMap::new(),
            keys: HashMap::new(),
            next_key: 0,
            entry_bytes: 0,
            matching: Mutex::default(),
        })
    }

    /// An index rebuilt from a snapshot's graph and entry table.
    pub fn from_snapshot(hnsw: Hnsw, next_key: u64, records: Vec<EntryRecord>) -> Self {
        let mut state = IndexState {
            hnsw,
            entries: HashMap::with_capacity(records.len()),
            keys: HashMap::with_capacity(records.len()),
            next_key,
            entry_bytes: 0,
            matching: Mutex::default(),
        };
        for EntryRecord {
            key,
            id,
            metadata,
            norm,
        } in records
        {
            state.entry_bytes += entry_size(&id, &metadata);
            state.keys.insert(id.clone(), key);
            state.entries.insert(key, Entry { id, metadata, norm });
        }
        state
    }

    /// Live items.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key an id lives under.
    pub fn key_of(&self, id: &str) -> Option<u64> {
        self.keys.get(id).copied()
    }

    /// The key the next new id gets.
    pub fn next_key(&self) -> u64 {
        self.next_key
    }

    /// An item's entry.
    pub fn entry(&self, key: u64) -> Option<&Entry> {
        self.entries.get(&key)
    }

    /// An item's vector, read back from the graph (a cosine index's unit vector scaled back by its norm:
    /// what was sent, to within f32 rounding).
    pub fn vector(&self, key: u64) -> Option<Vec<f32>> {
        let mut out = vec![0.0; self.hnsw.dim()];
        if !self.hnsw.get(key, &mut out) {
            return None;
        }
        if self.hnsw.stores_unit_vectors() {
            let norm = self.entries.get(&key)?.norm;
            out.iter_mut().for_each(|x| *x *= norm);
        }
        Some(out)
    }

    /// The graph, for snapshots and benchmarks.
    pub fn hnsw(&self) -> &Hnsw {
        &self.hnsw
    }

    /// Every entry as `(key, id, metadata, norm)`, for snapshots.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (u64, &str, &Metadata, f32)> {
        self.entries
            .iter()
            .map(|(key, e)| (*key, e.id.as_str(), &e.metadata, e.norm))
    }

    /// Memory held: graph, vectors, ids and metadata.
    pub fn memory_bytes(&self) -> usize {
        self.hnsw.memory_bytes() + self.entry_bytes
    }

    /// Applies logged changes in order. Upserts are inserted into the graph together (in parallel), after
    /// the removals they imply; a batch never holds the same id twice.
    pub fn apply(&mut self, ops: Vec<Op>) -> Result<()> {
        self.matching
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut inserts: Vec<(u64, Vec<f32>)> = Vec::new();
        for op in ops {
            match op {
                Op::Upsert {
                    key,
                    id,
                    vector,
                    metadata,
                } => {
                    // Whatever the id or the key held before goes first (normally the same key: an
                    // update keeps its key).
                    let old = self.keys.get(&id).copied();
                    if inserts.iter().any(|(k, _)| *k == key || Some(*k) == old) {
                        self.insert_pending(&mut inserts)?;
                    }
                    if let Some(old) = old {
                        self.remove_key(old)?;
                    }
                    if self.entries.contains_key(&key) {
                        self.remove_key(key)?;
                    }
                    self.entry_bytes += entry_size(&id, &metadata);
                    self.keys.insert(id.clone(), key);
                    let norm = if self.hnsw.stores_unit_vectors() {
                        crate::hnsw::norm(&vector)
                    } else {
                        1.0
                    };
                    self.entries.insert(key, Entry { id, metadata, norm });
                    self.next_key = self.next_key.max(key.saturating_add(1));
                    inserts.push((key, vector));
                }
                Op::Delete { id, .. } => {
                    if let Some(key) = self.keys.get(&id).copied() {
                        if inserts.iter().any(|(k, _)| *k == key) {
                            self.insert_pending(&mut inserts)?;
                        }
                        self.remove_key(key)?;
                    }
                }
            }
        }
        self.insert_pending(&mut inserts)
    }

    /// The graph's plan for folding deleted nodes out, once they are many enough (see
    /// [`Hnsw::consolidation_plan`]); made under a read lock, so searches go on meanwhile.
    pub(crate) fn consolidation_plan(&self) -> Option<Consolidation> {
        self.hnsw.consolidation_plan()
    }

    /// Writes a consolidation plan (under the write lock: a short step).
    pub(crate) fn finish_consolidation(&mut self, plan: Consolidation) {
        self.hnsw.finish_consolidation(plan);
    }

    fn insert_pending(&mut self, inserts: &mut Vec<(u64, Vec<f32>)>) -> Result<()> {
        let items: Vec<(u64, &[f32])> = inserts.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let result = self.hnsw.add_many(&items);
        inserts.clear();
        result
    }

    fn remove_key(&mut self, key: u64) -> Result<()> {
        if let Some(entry) = self.entries.remove(&key) {
            self.entry_bytes = self
                .entry_bytes
                .saturating_sub(entry_size(&entry.id, &entry.metadata));
            if self.keys.get(&entry.id) == Some(&key) {
                self.keys.remove(&entry.id);
            }
        }
        self.hnsw.remove(key)?;
        Ok(())
    }

    /// The `k` nearest items matching `filter`, as `(key, distance)`, nearest first.
    ///
    /// Never top-k-then-filter: the filter is applied inside the search, so when at least `k` items match,
    /// `k` come back. Small or selective candidate sets are scanned exactly; otherwise the graph is walked
    /// with the filter as its predicate, and if the walk finds fewer than `k` (a filter rarer than the
    /// sample suggested) an exact scan of the matching items answers instead.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        params: SearchParams,
    ) -> Result<Vec<(u64, f32)>> {
        let total = self.entries.len();
        if total == 0 || k == 0 {
            return Ok(Vec::new());
        }
        let wanted = k.min(total);
        if filter.is_empty() {
            if total <= params.exact_threshold {
                return self.hnsw.exact_search(query, k);
            }
            let hits = self.hnsw.search(query, k)?;
            if hits.len() >= wanted {
                return Ok(hits);
            }
            return self.hnsw.exact_search(query, k);
        }

        let matching = self.matching_keys(filter);
        if total <= params.exact_threshold || matching.len() <= params.exact_threshold {
            return self.hnsw.exact_search_among(query, k, &matching);
        }
        let hits = self
            .hnsw
            .filtered_search(query, k, |key| matching.binary_search(&key).is_ok())?;
        if hits.len() >= k {
            return Ok(hits);
        }
        self.hnsw.exact_search_among(query, k, &matching)
    }

    /// The keys `filter` matches, sorted: from the cache while nothing changed, else found and kept.
    fn matching_keys(&self, filter: &Filter) -> Arc<Vec<u64>> {
        if let Some(found) = self
            .matching
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(filter.key())
        {
            return Arc::clone(found);
        }
        let mut keys: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, entry)| filter.matches(&entry.metadata))
            .map(|(key, _)| *key)
            .collect();
        keys.sort_unstable();
        let keys = Arc::new(keys);
        let mut cache = self.matching.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MATCHING_FILTERS {
            cache.clear();
        }
        cache.insert(filter.key().to_owned(), Arc::clone(&keys));
        keys
    }

    /// Exact scan over the items `filter` accepts (all items for the empty filter).
    pub fn exact_filtered(&self, query: &[f32], k: usize, filter: &Filter) -> Vec<(u64, f32)> {
        let metric = self.hnsw.metric();
        let mut buffer = vec![0.0f32; self.hnsw.dim()];
        let mut top = TopK::new(k);
        for (key, entry) in &self.entries {
            if filter.matches(&entry.metadata) && self.hnsw.get(*key, &mut buffer) {
                top.push(*key, exact::distance(metric, query, &buffer));
            }
        }
        top.into_sorted()
    }
}
