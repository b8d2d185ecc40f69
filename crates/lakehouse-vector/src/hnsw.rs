//! A thin, safe wrapper over one usearch HNSW index.
//!
//! Vectors are stored once, as f32 inside usearch (no quantisation, so exact search reads back exactly what
//! was added). usearch hands each concurrent caller a per-thread scratch slot; [`Hnsw::THREAD_SLOTS`] slots
//! are reserved and the service never runs more searches at once than that.
//!
//! A cosine index stores unit vectors under usearch's inner-product metric: for unit vectors the two
//! distances are equal (1 − a·b), and the inner-product kernel computes one dot product per distance where
//! the cosine kernel also recomputes both norms — the cost that dominates a graph walk. Vectors are scaled
//! once on insert and queries once per search; callers keep the norm if they need the original back.

use lakehouse_types::vector::Metric;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::error::{Error, Result};

/// Graph construction and search parameters (`[vector.hnsw]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HnswParams {
    /// Edges per node (HNSW's M).
    pub connectivity: usize,
    /// Candidate list size while inserting (ef_construction).
    pub expansion_add: usize,
    /// Candidate list size while searching (ef_search); raised to k when k is larger.
    pub expansion_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 128,
        }
    }
}

/// One HNSW graph with its vectors.
pub struct Hnsw {
    index: Index,
    metric: Metric,
    dim: usize,
    /// Removed slots usearch keeps and reuses; counted so capacity covers them.
    tombstones: usize,
    /// Whether vectors are stored scaled to unit length (cosine indexes; see the module docs).
    unit: bool,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("size", &self.index.size())
            .field("capacity", &self.index.capacity())
            .finish()
    }
}

/// usearch reports failures as C++ exceptions; only their message is kept.
fn index_error<E: std::fmt::Display>(context: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Index(format!("{context}: {e}"))
}

fn kind(metric: Metric) -> MetricKind {
    match metric {
        Metric::Cosine | Metric::Ip => MetricKind::IP,
        Metric::L2 => MetricKind::L2sq,
    }
}

fn options(dim: usize, kind: MetricKind, params: HnswParams) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        metric: kind,
        quantization: ScalarKind::F32,
        connectivity: params.connectivity,
        expansion_add: params.expansion_add,
        expansion_search: params.expansion_search,
        multi: false,
    }
}

impl Hnsw {
    /// Concurrent callers usearch is prepared for: searches plus the (serialised) writer's insert threads.
    pub const THREAD_SLOTS: usize = 34;
    /// Threads one batch insert may use.
    pub const INSERT_THREADS: usize = 2;

    /// An empty index.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        let index = Index::new(&options(dim, kind(metric), params))
            .map_err(index_error("creating the index"))?;
        let hnsw = Hnsw {
            index,
            metric,
            dim,
            tombstones: 0,
            unit: metric == Metric::Cosine,
        };
        hnsw.reserve(1024)?;
        Ok(hnsw)
    }

    /// An index read back from [`Hnsw::save`]'s bytes.
    pub fn load(bytes: &[u8], dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        let header = Index::metadata_from_buffer(bytes)
            .map_err(index_error("reading the snapshot header"))?;
        if header.dimensions != dim as u64 {
            return Err(Error::Corrupt(format!(
                "snapshot holds {}-dimensional vectors, the index is {dim}-dimensional",
                header.dimensions
            )));
        }
        // Snapshots written before cosine indexes stored unit vectors hold the original vectors under the
        // cosine kernel; they keep it (the distances are the same, only slower to compute).
        let stored = header.metric;
        let legacy_cosine = metric == Metric::Cosine && stored == MetricKind::Cos;
        if stored != kind(metric) && !legacy_cosine {
            return Err(Error::Corrupt(format!(
                "snapshot was built for another metric than the index's {metric}"
            )));
        }
        let index =
            Index::new(&options(dim, stored, params)).map_err(index_error("creating the index"))?;
        index
            .load_from_buffer(bytes)
            .map_err(index_error("loading the snapshot"))?;
        // Loading keeps the header's layout but not our run-time tuning.
        index.change_expansion_add(params.expansion_add);
        index.change_expansion_search(params.expansion_search);
        let tombstones = usize::try_from(header.count_deleted).unwrap_or(usize::MAX);
        let hnsw = Hnsw {
            index,
            metric,
            dim,
            tombstones,
            unit: metric == Metric::Cosine && !legacy_cosine,
        };
        hnsw.reserve(hnsw.index.size().saturating_add(1024))?;
        Ok(hnsw)
    }

    /// The whole index (graph and vectors) as bytes.
    pub fn save(&self) -> Result<Vec<u8>> {
        let mut buffer = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut buffer)
            .map_err(index_error("serialising the index"))?;
        Ok(buffer)
    }

    fn reserve(&self, members: usize) -> Result<()> {
        self.index
            .reserve_capacity_and_threads(members, Self::THREAD_SLOTS)
            .map_err(index_error("reserving memory"))
    }

    /// Makes room for `more` inserts; call before inserting, not while searches run.
    pub fn ensure_room(&self, more: usize) -> Result<()> {
        let needed = self
            .index
            .size()
            .saturating_add(self.tombstones)
            .saturating_add(more);
        let capacity = self.index.capacity();
        if needed <= capacity {
            return Ok(());
        }
        self.reserve(needed.max(capacity.saturating_mul(2)))
    }

    /// Inserts a vector under a key that is not in the index (call [`Hnsw::ensure_room`] first).
    pub fn add(&self, key: u64, vector: &[f32]) -> Result<()> {
        let scaled;
        let stored = if self.unit {
            scaled = unit(vector);
            &scaled
        } else {
            vector
        };
        self.index
            .add(key, stored)
            .map_err(index_error("inserting a vector"))
    }

    /// Whether vectors are stored at unit length, so [`Hnsw::get`] returns directions, not the originals.
    pub fn stores_unit_vectors(&self) -> bool {
        self.unit
    }

    /// The query as the graph compares it: scaled to unit length for a cosine index.
    fn query<'a>(&self, query: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        if self.unit {
            std::borrow::Cow::Owned(unit(query))
        } else {
            std::borrow::Cow::Borrowed(query)
        }
    }

    /// Inserts many vectors, on [`Hnsw::INSERT_THREADS`] threads when there are enough of them.
    pub fn add_many(&mut self, items: &[(u64, &[f32])]) -> Result<()> {
        self.ensure_room(items.len())?;
        self.tombstones = self.tombstones.saturating_sub(items.len());
        if items.len() < 64 {
            return items
                .iter()
                .try_for_each(|(key, vector)| self.add(*key, vector));
        }
        let chunk = items.len().div_ceil(Self::INSERT_THREADS);
        let this = &*self;
        std::thread::scope(|scope| {
            let workers: Vec<_> = items
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().try_for_each(|(k, v)| this.add(*k, v))))
                .collect();
            workers.into_iter().try_for_each(|worker| {
                worker
                    .join()
                    .map_err(|_| Error::Task("an insert thread panicked".to_owned()))?
            })
        })
    }

    /// Removes a key; whether it was there.
    pub fn remove(&mut self, key: u64) -> Result<bool> {
        let removed = self
            .index
            .remove(key)
            .map_err(index_error("removing a vector"))?;
        self.tombstones = self.tombstones.saturating_add(removed);
        Ok(removed > 0)
    }

    /// Copies a key's stored vector into `out` (of length `dim`; at unit length when
    /// [`Hnsw::stores_unit_vectors`]); whether the key exists.
    pub fn get(&self, key: u64, out: &mut [f32]) -> bool {
        matches!(self.index.get(key, out), Ok(n) if n > 0)
    }

    /// Approximate search: `(key, distance)`, nearest first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let found = self
            .index
            .search(&self.query(query), k)
            .map_err(index_error("searching"))?;
        Ok(found.keys.into_iter().zip(found.distances).collect())
    }

    /// Approximate search among the keys `allow` accepts, checked while walking the graph.
    pub fn filtered_search(
        &self,
        query: &[f32],
        k: usize,
        allow: impl Fn(u64) -> bool,
    ) -> Result<Vec<(u64, f32)>> {
        let found = self
            .index
            .filtered_search(&self.query(query), k, allow)
            .map_err(index_error("searching with a filter"))?;
        Ok(found.keys.into_iter().zip(found.distances).collect())
    }

    /// Exact search over every vector with usearch's SIMD kernels.
    pub fn exact_search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let found = self
            .index
            .exact_search(&self.query(query), k)
            .map_err(index_error("searching exhaustively"))?;
        Ok(found.keys.into_iter().zip(found.distances).collect())
    }

    /// Changes ef_search; for benchmarks, which tune it on an index no one else is searching.
    pub fn set_expansion_search(&self, expansion: usize) {
        self.index.change_expansion_search(expansion);
    }

    /// The SIMD kernels the distance functions run on (for benchmarks and diagnostics).
    pub fn isa(&self) -> String {
        self.index.hardware_acceleration()
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// Whether the index holds no live vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory held by the graph and the vectors.
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_usage()
    }

    /// The vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }
}

/// The Euclidean length of a vector, accumulated in f64.
pub fn norm(vector: &[f32]) -> f32 {
    vector
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt() as f32
}

/// The vector scaled to unit length (validation has refused all-zero vectors for cosine indexes; one that
/// still arrives is kept as it is rather than turned into NaNs).
fn unit(vector: &[f32]) -> Vec<f32> {
    let length = f64::from(norm(vector));
    if length == 0.0 || !length.is_finite() {
        return vector.to_vec();
    }
    vector
        .iter()
        .map(|x| (f64::from(*x) / length) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact;

    fn vectors() -> Vec<Vec<f32>> {
        // Distinct directions (a small xorshift), lengths from 0.001 to 1000: a cosine index must not care.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        (0..200i32)
            .map(|i| {
                let scale = 10f32.powi(i % 7 - 3);
                (0..8).map(|_| next() * scale).collect()
            })
            .collect()
    }

    #[test]
    fn cosine_indexes_store_unit_vectors_and_keep_cosine_distances() {
        let data = vectors();
        let mut hnsw = Hnsw::new(8, Metric::Cosine, HnswParams::default()).expect("index");
        assert!(hnsw.stores_unit_vectors());
        let items: Vec<(u64, &[f32])> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v.as_slice()))
            .collect();
        hnsw.add_many(&items).expect("add");

        let mut stored = vec![0.0; 8];
        assert!(hnsw.get(5, &mut stored));
        assert!((norm(&stored) - 1.0).abs() < 1e-6);

        let query: Vec<f32> = data[17].iter().map(|x| x * 123.0).collect();
        for (key, distance) in hnsw.exact_search(&query, 20).expect("search") {
            let expected = exact::distance(Metric::Cosine, &query, &data[key as usize]);
            assert!(
                (distance - expected).abs() < 1e-5,
                "{key}: {distance} vs {expected}"
            );
        }
        let (nearest, distance) = hnsw.search(&query, 1).expect("search")[0];
        assert_eq!(nearest, 17);
        assert!(distance.abs() < 1e-5);
    }

    #[test]
    fn snapshots_of_the_cosine_kernel_still_load() {
        let data = vectors();
        let params = HnswParams::default();
        let legacy = Index::new(&options(8, MetricKind::Cos, params)).expect("index");
        legacy.reserve(data.len()).expect("reserve");
        for (i, v) in data.iter().enumerate() {
            legacy.add(i as u64, v).expect("add");
        }
        let mut bytes = vec![0u8; legacy.serialized_length()];
        legacy.save_to_buffer(&mut bytes).expect("save");

        let hnsw = Hnsw::load(&bytes, 8, Metric::Cosine, params).expect("load");
        assert!(!hnsw.stores_unit_vectors());
        let mut stored = vec![0.0; 8];
        assert!(hnsw.get(9, &mut stored));
        assert_eq!(stored, data[9]);
        let (nearest, distance) = hnsw.search(&data[9], 1).expect("search")[0];
        assert_eq!(nearest, 9);
        assert!(distance.abs() < 1e-5);
        // New inserts into it follow the snapshot's kernel.
        hnsw.ensure_room(1).expect("room");
        hnsw.add(1_000, &[2.0; 8]).expect("add");
        assert!(hnsw.get(1_000, &mut stored));
        assert_eq!(stored, vec![2.0; 8]);

        assert!(matches!(
            Hnsw::load(&bytes, 8, Metric::L2, params),
            Err(Error::Corrupt(_))
        ));
    }
}
