//! One HNSW index: the graph of the private `graph` module (which holds the vectors, once, as f32: exact search reads
//! back exactly what was added) behind a safe, crate-facing API.
//!
//! A cosine index stores unit vectors and compares them by inner product: for unit vectors the two
//! distances are equal (1 − a·b), and the inner-product kernel computes one dot product per distance where
//! a cosine kernel also recomputes both norms — the cost that dominates a graph walk. Vectors are scaled
//! once on insert and queries once per search; callers keep the norm if they need the original back.
//!
//! Snapshots are written in the graph's own format ([`Hnsw::save`]). Indexes used to be usearch graphs;
//! built with the `usearch-snapshots` feature, `usearch` reads such a snapshot back, vector by vector,
//! into a new graph.

use lakehouse_types::vector::Metric;

use crate::distance::Kernel;
use crate::error::{Error, Result};
use crate::exact::TopK;
use crate::graph::{Consolidation, Graph, GraphError, MAX_CONNECTIVITY};

#[cfg(feature = "usearch-snapshots")]
mod usearch;

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
#[derive(Debug)]
pub struct Hnsw {
    graph: Graph,
    metric: Metric,
    dim: usize,
    /// Whether vectors are stored scaled to unit length (cosine indexes; see the module docs).
    unit: bool,
}

fn graph_error(context: &str) -> impl Fn(GraphError) -> Error + '_ {
    move |e| Error::Index(format!("{context}: {e}"))
}

/// The kernel a new index of this metric uses.
fn kernel(metric: Metric) -> Kernel {
    match metric {
        Metric::Cosine | Metric::Ip => Kernel::Ip,
        Metric::L2 => Kernel::L2,
    }
}

/// Whether a graph stored with `kernel` can serve an index of `metric`, and if so whether it holds unit
/// vectors. Graphs written before cosine indexes stored unit vectors hold the original vectors under the
/// cosine kernel; they keep it (the distances are the same, only slower to compute).
fn stored_form(metric: Metric, kernel: Kernel) -> Option<bool> {
    match (metric, kernel) {
        (Metric::Cosine, Kernel::Ip) => Some(true),
        (Metric::Cosine, Kernel::Cos) | (Metric::Ip, Kernel::Ip) | (Metric::L2, Kernel::L2) => {
            Some(false)
        }
        _ => None,
    }
}

fn check_params(params: HnswParams) -> Result<()> {
    if !(2..=MAX_CONNECTIVITY).contains(&params.connectivity) {
        return Err(Error::Index(format!(
            "connectivity {} is outside 2..={MAX_CONNECTIVITY}",
            params.connectivity
        )));
    }
    Ok(())
}

impl Hnsw {
    /// Concurrent callers the index is sized for: searches plus the writer's insert threads (searches
    /// never run beside an insert; the bound keeps the pool of per-search scratch memory small).
    pub const THREAD_SLOTS: usize = 34;
    /// Threads one batch insert may use.
    pub const INSERT_THREADS: usize = 2;

    /// An empty index.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        check_params(params)?;
        let graph = Graph::new(
            dim,
            kernel(metric),
            params.connectivity,
            params.expansion_add,
            params.expansion_search,
        );
        Ok(Hnsw {
            graph,
            metric,
            dim,
            unit: metric == Metric::Cosine,
        })
    }

    /// An index read back from [`Hnsw::save`]'s bytes. Damaged or truncated bytes are
    /// [`Error::Corrupt`]. The graph keeps the connectivity it was built with; the expansion settings
    /// come from `params`.
    pub fn load(bytes: &[u8], dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        let graph = Graph::load(bytes, dim, params.expansion_add, params.expansion_search)
            .map_err(|e| Error::Corrupt(format!("graph snapshot: {e}")))?;
        let unit = stored_form(metric, graph.kernel()).ok_or_else(|| {
            Error::Corrupt(format!(
                "graph snapshot was built for another metric than the index's {metric}"
            ))
        })?;
        Ok(Hnsw {
            graph,
            metric,
            dim,
            unit,
        })
    }

    /// Whether `bytes` look like [`Hnsw::save`] output (rather than a usearch snapshot).
    pub fn is_native(bytes: &[u8]) -> bool {
        bytes.starts_with(crate::graph::MAGIC)
    }

    /// The whole index (graph and vectors) as bytes.
    pub fn save(&self) -> Result<Vec<u8>> {
        Ok(self.graph.save())
    }

    /// Makes room for `more` inserts, so they do not reallocate.
    pub fn ensure_room(&mut self, more: usize) -> Result<()> {
        self.graph.reserve(more);
        Ok(())
    }

    /// Inserts a vector under a key that is not in the index.
    pub fn add(&mut self, key: u64, vector: &[f32]) -> Result<()> {
        self.add_many(&[(key, vector)])
    }

    /// Whether vectors are stored at unit length, so [`Hnsw::get`] returns directions, not the originals.
    pub fn stores_unit_vectors(&self) -> bool {
        self.unit
    }

    /// The query as the graph compares it: scaled to unit length for a cosine index.
    fn query<'a>(&self, query: &'a [f32]) -> Result<std::borrow::Cow<'a, [f32]>> {
        if query.len() != self.dim {
            return Err(Error::Index(format!(
                "query has {} dimensions, the index {}",
                query.len(),
                self.dim
            )));
        }
        Ok(if self.unit {
            std::borrow::Cow::Owned(unit(query))
        } else {
            std::borrow::Cow::Borrowed(query)
        })
    }

    /// Inserts many vectors under keys not in the index, on [`Hnsw::INSERT_THREADS`] threads when there
    /// are enough of them.
    pub fn add_many(&mut self, items: &[(u64, &[f32])]) -> Result<()> {
        let prepare = if self.unit { scale_to_unit } else { copy };
        self.graph
            .insert(items, Self::INSERT_THREADS, prepare)
            .map_err(graph_error("inserting vectors"))
    }

    /// When deleted nodes have reached a fifth of the live ones (an insert consolidates at a quarter),
    /// the plan for folding them out, computed without changing the index: the caller can compute it
    /// while searches run and hold the index exclusively only for [`Hnsw::finish_consolidation`].
    pub(crate) fn consolidation_plan(&self) -> Option<Consolidation> {
        self.graph
            .deleted_reach(5)
            .then(|| self.graph.plan_consolidation(Self::INSERT_THREADS))
    }

    /// Writes a plan from [`Hnsw::consolidation_plan`] (made afresh if the index changed since).
    pub(crate) fn finish_consolidation(&mut self, plan: Consolidation) {
        self.graph.finish_consolidation(plan);
    }

    /// Removes a key; whether it was there. Its node stays in the graph (walked through, never returned)
    /// until consolidation frees the slot (see the `graph` module).
    pub fn remove(&mut self, key: u64) -> Result<bool> {
        Ok(self.graph.remove(key))
    }

    /// Copies a key's stored vector into `out` (of length `dim`; at unit length when
    /// [`Hnsw::stores_unit_vectors`]); whether the key exists.
    pub fn get(&self, key: u64, out: &mut [f32]) -> bool {
        self.graph.get(key, out)
    }

    /// Approximate search: `(key, distance)`, nearest first. The candidate list is the expansion setting
    /// or `k`, whichever is larger.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        Ok(self.graph.search(&self.query(query)?, k, |_| true))
    }

    /// Approximate search among the keys `allow` accepts: rejected nodes are walked through but never
    /// returned, and the walk goes on until it has `k` hits or has seen every node it can reach.
    pub fn filtered_search(
        &self,
        query: &[f32],
        k: usize,
        allow: impl Fn(u64) -> bool,
    ) -> Result<Vec<(u64, f32)>> {
        Ok(self.graph.search(&self.query(query)?, k, allow))
    }

    /// Exact search over every live vector with the graph's distance kernels.
    pub fn exact_search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let query = self.query(query)?;
        let mut top = TopK::new(k);
        self.graph
            .scan(&query, |key, distance| top.push(key, distance));
        Ok(top.into_sorted())
    }

    /// Exact search among `keys` (a filter's matches), with the graph's distance kernels.
    pub fn exact_search_among(
        &self,
        query: &[f32],
        k: usize,
        keys: &[u64],
    ) -> Result<Vec<(u64, f32)>> {
        let query = self.query(query)?;
        let mut top = TopK::new(k);
        self.graph
            .scan_keys(&query, keys, |key, distance| top.push(key, distance));
        Ok(top.into_sorted())
    }

    /// Changes ef_search; for benchmarks, which tune it on an index no one else is searching.
    pub fn set_expansion_search(&self, expansion: usize) {
        self.graph.set_ef_search(expansion);
    }

    /// The SIMD instructions the distance kernels run on (for benchmarks and diagnostics).
    pub fn isa(&self) -> String {
        self.graph.isa().to_owned()
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// Whether the index holds no live vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory held by the graph and the vectors.
    pub fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
    }

    /// The vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Edges per node the graph was built with.
    pub fn connectivity(&self) -> usize {
        self.graph.connectivity()
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
    let mut out = vec![0.0; vector.len()];
    scale_to_unit(vector, &mut out);
    out
}

/// Writes `vector` scaled to unit length into `out` (of the same length); see `unit`.
fn scale_to_unit(vector: &[f32], out: &mut [f32]) {
    let length = f64::from(norm(vector));
    if length == 0.0 || !length.is_finite() {
        out.copy_from_slice(vector);
        return;
    }
    for (o, x) in out.iter_mut().zip(vector) {
        *o = (f64::from(*x) / length) as f32;
    }
}

fn copy(vector: &[f32], out: &mut [f32]) {
    out.copy_from_slice(vector);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exact;

    /// A small xorshift generator, uniform in [-0.5, 0.5).
    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut state = seed | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    pub(crate) fn vectors() -> Vec<Vec<f32>> {
        // Distinct directions, lengths from 0.001 to 1000: a cosine index must not care.
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        (0..200i32)
            .map(|i| {
                let scale = 10f32.powi(i % 7 - 3);
                (0..8).map(|_| next() * scale).collect()
            })
            .collect()
    }

    /// Inserts `extra` under keys from 10,000 up (clear of the keys `build` used).
    fn add_extra(hnsw: &mut Hnsw, extra: &[Vec<f32>]) {
        let items: Vec<(u64, &[f32])> = extra
            .iter()
            .enumerate()
            .map(|(i, v)| (10_000 + i as u64, v.as_slice()))
            .collect();
        hnsw.add_many(&items).expect("add");
    }

    /// Vectors around 50 random centres.
    pub(crate) fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut next = rng(seed);
        let centres: Vec<Vec<f32>> = (0..50)
            .map(|_| (0..dim).map(|_| next() * 4.0).collect())
            .collect();
        (0..n)
            .map(|i| {
                let c = &centres[(i * 7919) % centres.len()];
                c.iter().map(|x| x + next()).collect()
            })
            .collect()
    }

    /// `data` keyed by position.
    fn keyed(data: &[Vec<f32>]) -> Vec<(u64, &[f32])> {
        data.iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v.as_slice()))
            .collect()
    }

    fn build(data: &[Vec<f32>], metric: Metric) -> Hnsw {
        let mut hnsw = Hnsw::new(data[0].len(), metric, HnswParams::default()).expect("index");
        hnsw.add_many(&keyed(data)).expect("add");
        hnsw
    }

    pub(crate) fn keys(hits: &[(u64, f32)]) -> Vec<u64> {
        hits.iter().map(|h| h.0).collect()
    }

    #[test]
    fn recall_at_10_against_exact_search_for_every_metric() {
        // Uniform noise around the centres leaves 32 intrinsic dimensions: hard for any HNSW (usearch
        // reached 0.92 at ef 64 and 0.98 at ef 128 on this data), so the candidate list is generous.
        let data = clustered(8_000, 32, 7);
        let queries = clustered(200, 32, 99);
        for metric in [Metric::Cosine, Metric::L2, Metric::Ip] {
            // Inner product is no metric on vectors of different lengths; its users send unit vectors.
            let data: Vec<Vec<f32>> = if metric == Metric::Ip {
                data.iter().map(|v| unit(v)).collect()
            } else {
                data.clone()
            };
            let hnsw = build(&data, metric);
            hnsw.set_expansion_search(200);
            let mut hits = 0;
            for q in &queries {
                let truth = keys(&hnsw.exact_search(q, 10).expect("exact"));
                let found = hnsw.search(q, 10).expect("search");
                assert_eq!(found.len(), 10);
                hits += found.iter().filter(|h| truth.contains(&h.0)).count();
                // Distances are the metric's, as exact search reports them.
                for (key, distance) in &found {
                    let expected = exact::distance(metric, q, &data[*key as usize]);
                    assert!(
                        (distance - expected).abs() < 1e-3 * expected.abs().max(1.0),
                        "{metric}: {distance} vs {expected}"
                    );
                }
            }
            let recall = hits as f64 / (queries.len() * 10) as f64;
            assert!(recall >= 0.95, "{metric}: recall@10 {recall}");
        }
    }

    /// A consolidation planned apart (as the service does, beside searches) and written later frees the
    /// deleted slots like one done in place; a plan the index has moved past is not used.
    #[test]
    fn consolidation_planned_apart_then_written() {
        let data = clustered(2_000, 16, 7);
        let mut hnsw = build(&data, Metric::Cosine);
        assert!(hnsw.consolidation_plan().is_none(), "nothing deleted yet");
        for key in (0..2_000).filter(|k| k % 4 == 0) {
            hnsw.remove(key).expect("remove");
        }
        let plan = hnsw.consolidation_plan().expect("a quarter deleted");
        assert_eq!(hnsw.graph.slots_in_use(), 2_000, "planning changes nothing");
        hnsw.finish_consolidation(plan);
        assert!(hnsw.consolidation_plan().is_none(), "all folded out");
        // The build inserts on several threads, so the graph differs from run to run: a few nodes may be
        // left without a path from the entry (up to 3 of 1,500 seen in 24 runs, where the bound was 2 and
        // failed about one run in six). A consolidation that lost its repairs leaves far more.
        assert!(hnsw.graph.unreachable() <= hnsw.graph.len() / 300);
        for (key, vector) in data.iter().enumerate().take(40) {
            let found = hnsw.search(vector, 1).expect("search")[0].0;
            if key % 4 == 0 {
                assert_ne!(found, key as u64, "deleted key {key} returned");
            } else {
                assert_eq!(found, key as u64);
            }
        }

        // A plan made, then another delete: the stale plan is replaced by a fresh one.
        for key in (0..2_000).filter(|k| k % 4 == 1) {
            hnsw.remove(key).expect("remove");
        }
        let stale = hnsw.consolidation_plan().expect("a third deleted");
        hnsw.remove(2).expect("remove");
        hnsw.finish_consolidation(stale);
        assert!(hnsw.consolidation_plan().is_none());
        assert_ne!(hnsw.search(&data[2], 1).expect("search")[0].0, 2);
        // The build inserts on several threads, so the graph differs from run to run: a few nodes may be
        // left without a path from the entry (up to 3 of 1,500 seen in 24 runs, where the bound was 2 and
        // failed about one run in six). A consolidation that lost its repairs leaves far more.
        assert!(hnsw.graph.unreachable() <= hnsw.graph.len() / 300);
        // Freed slots are taken by the next inserts instead of new ones.
        let before = hnsw.graph.slots_in_use();
        add_extra(&mut hnsw, &clustered(100, 16, 8));
        assert_eq!(hnsw.graph.slots_in_use(), before);
    }

    /// Parallel inserts once overwrote links another thread had just added, orphaning several nodes per
    /// thousand. HNSW's pruning itself can, rarely, leave one node without incoming links (hnswlib's graphs
    /// have the same property; here one in ~1,500 after deleting two thirds, in about one run of ten under
    /// load), so the bound is one per thousand, not zero.
    #[test]
    fn parallel_inserts_and_consolidation_leave_almost_no_node_unreachable() {
        let at_most = |live: usize| live / 1000 + 1;
        for seed in 0..4u64 {
            let data = clustered(3_000, 16, 100 + seed);
            let mut hnsw = build(&data, Metric::Cosine);
            let unreachable = hnsw.graph.unreachable();
            assert!(
                unreachable <= at_most(hnsw.len()),
                "seed {seed}: {unreachable} unreachable"
            );
            for key in (0..3_000).filter(|k| k % 3 != 0) {
                hnsw.remove(key).expect("remove");
            }
            add_extra(&mut hnsw, &clustered(500, 16, 200 + seed));
            let unreachable = hnsw.graph.unreachable();
            assert!(
                unreachable <= at_most(hnsw.len()),
                "seed {seed}, after consolidation: {unreachable} unreachable"
            );
        }
    }

    #[test]
    fn cosine_indexes_store_unit_vectors_and_keep_cosine_distances() {
        let data = vectors();
        let hnsw = build(&data, Metric::Cosine);
        assert!(hnsw.stores_unit_vectors());

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
    fn k_above_the_expansion_setting_still_returns_k() {
        let data = clustered(2_000, 16, 3);
        let hnsw = build(&data, Metric::L2);
        hnsw.set_expansion_search(5);
        let found = hnsw.search(&data[0], 50).expect("search");
        assert_eq!(found.len(), 50);
        assert!(found.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn filtered_search_returns_k_matching_hits() {
        let data = clustered(5_000, 16, 11);
        let hnsw = build(&data, Metric::L2);
        hnsw.set_expansion_search(10);
        for q in data.iter().step_by(97) {
            let found = hnsw
                .filtered_search(q, 10, |key| key % 10 == 3)
                .expect("search");
            assert_eq!(found.len(), 10);
            assert!(found.iter().all(|h| h.0 % 10 == 3));
        }
        // Very selective: only 12 keys allowed, far apart in the graph; the walk keeps going until it has
        // them.
        let found = hnsw
            .filtered_search(&data[1], 10, |key| key % 400 == 0)
            .expect("search");
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|h| h.0 % 400 == 0));
    }

    #[test]
    fn removed_keys_are_never_returned() {
        let data = clustered(3_000, 16, 5);
        let mut hnsw = build(&data, Metric::Cosine);
        let query = &data[42];
        let before = hnsw.search(query, 10).expect("search");
        assert_eq!(before[0].0, 42);
        for (key, _) in &before[..5] {
            assert!(hnsw.remove(*key).expect("remove"));
        }
        assert!(!hnsw.remove(before[0].0).expect("remove again"));
        assert_eq!(hnsw.len(), data.len() - 5);
        let mut out = vec![0.0; 16];
        assert!(!hnsw.get(42, &mut out));
        let after = hnsw.search(query, 10).expect("search");
        let exact = hnsw.exact_search(query, 10).expect("exact");
        for hits in [&after, &exact] {
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| !keys(&before[..5]).contains(&h.0)));
        }
        assert_eq!(keys(&after[..5]), keys(&before[5..10]));
    }

    #[test]
    fn repeated_upserts_keep_memory_bounded() {
        let (n, dim) = (1_000, 16);
        let mut hnsw = build(&clustered(n, dim, 1), Metric::L2);
        let mut peak_after_warmup = 0;
        for round in 0..30u64 {
            let fresh = clustered(n, dim, 1_000 + round);
            for key in 0..n as u64 {
                assert!(hnsw.remove(key).expect("remove"));
            }
            hnsw.add_many(&keyed(&fresh)).expect("add");
            assert_eq!(hnsw.len(), n);
            if round == 3 {
                peak_after_warmup = hnsw.memory_bytes();
            }
            if round > 3 {
                assert!(
                    hnsw.memory_bytes() <= peak_after_warmup,
                    "round {round}: {} bytes, {peak_after_warmup} after warm-up",
                    hnsw.memory_bytes()
                );
            }
            // The new vector is the one found and read back.
            let mut out = vec![0.0; dim];
            assert!(hnsw.get(7, &mut out));
            assert_eq!(out, fresh[7]);
            let (nearest, distance) = hnsw.search(&fresh[7], 1).expect("search")[0];
            assert_eq!(nearest, 7);
            assert!(distance < 1e-6);
        }
        // One at a time, as single-item upserts arrive: deleted nodes wait for consolidation until they
        // are a quarter of the live ones, then their slots are reused.
        let data = clustered(n, dim, 2);
        let mut settled = 0;
        for round in 0..8 {
            for key in 0..n as u64 {
                hnsw.remove(key).expect("remove");
                let v = &data[(key as usize + round) % n];
                hnsw.add(key, v).expect("add");
            }
            assert!(hnsw.graph.slots_in_use() <= n * 5 / 4 + 1);
            if round == 2 {
                settled = hnsw.memory_bytes();
            }
            assert!(round < 2 || hnsw.memory_bytes() <= settled, "round {round}");
        }
        let hits = hnsw.search(&data[17], 5).expect("search");
        assert!(hits[0].1 < 1e-6);
    }

    #[test]
    fn save_and_load_round_trip() {
        let data = clustered(3_000, 16, 21);
        let mut hnsw = build(&data, Metric::Cosine);
        for key in (0..3_000).step_by(3) {
            hnsw.remove(key).expect("remove");
        }
        // A consolidation (freeing slots) and a few reused ones.
        add_extra(&mut hnsw, &clustered(100, 16, 22));
        for key in (1..3_000).step_by(7) {
            hnsw.remove(key).expect("remove");
        }
        let bytes = hnsw.save().expect("save");
        assert!(Hnsw::is_native(&bytes));
        let loaded = Hnsw::load(&bytes, 16, Metric::Cosine, HnswParams::default()).expect("load");
        assert!(loaded.stores_unit_vectors());
        assert_eq!(loaded.len(), hnsw.len());
        let (mut a, mut b) = (vec![0.0; 16], vec![0.0; 16]);
        for key in (0..3_000).chain(10_000..10_100) {
            assert_eq!(hnsw.get(key, &mut a), loaded.get(key, &mut b));
            assert_eq!(a, b);
        }
        for q in data.iter().step_by(50) {
            assert_eq!(
                hnsw.search(q, 10).expect("search"),
                loaded.search(q, 10).expect("search")
            );
        }
        assert_eq!(loaded.save().expect("save"), bytes);
        assert!(matches!(
            Hnsw::load(&bytes, 16, Metric::L2, HnswParams::default()),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            Hnsw::load(&bytes, 8, Metric::Cosine, HnswParams::default()),
            Err(Error::Corrupt(_))
        ));
        let empty = Hnsw::new(4, Metric::L2, HnswParams::default()).expect("index");
        let bytes = empty.save().expect("save");
        let loaded = Hnsw::load(&bytes, 4, Metric::L2, HnswParams::default()).expect("load");
        assert!(loaded.is_empty());
        assert!(loaded.search(&[0.0; 4], 3).expect("search").is_empty());
    }

    #[test]
    fn truncated_or_damaged_graphs_are_corrupt_not_panics() {
        let data = clustered(300, 8, 31);
        let mut hnsw = build(&data, Metric::L2);
        hnsw.remove(3).expect("remove");
        let bytes = hnsw.save().expect("save");
        let params = HnswParams::default();
        for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            assert!(
                matches!(
                    Hnsw::load(&bytes[..len], 8, Metric::L2, params),
                    Err(Error::Corrupt(_))
                ),
                "truncated to {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Hnsw::load(&longer, 8, Metric::L2, params),
            Err(Error::Corrupt(_))
        ));
        // Every single-byte change in the header and the first slots either loads or is refused.
        let mut next = rng(5);
        for at in (0..bytes.len().min(4_000))
            .chain((0..2_000).map(|_| ((next() + 0.5) * bytes.len() as f32) as usize % bytes.len()))
        {
            for value in [0x00u8, 0xff, 0x80] {
                let mut damaged = bytes.clone();
                damaged[at] = value;
                if let Ok(loaded) = Hnsw::load(&damaged, 8, Metric::L2, params) {
                    // Whatever loads must be safe to use.
                    let _ = loaded.search(&data[0], 5).expect("search");
                    let _ = loaded.save().expect("save");
                }
            }
        }
        // A link to a slot that does not exist: the first slot's first link id (after the 41-byte header,
        // its state, level and key, and its count).
        let mut damaged = bytes.clone();
        let link = 41 + 1 + 1 + 8 + 4;
        damaged[link..link + 4].copy_from_slice(&5_000u32.to_le_bytes());
        assert!(matches!(
            Hnsw::load(&damaged, 8, Metric::L2, params),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            Hnsw::load(b"not a graph", 8, Metric::L2, params),
            Err(Error::Corrupt(_))
        ));
    }
}
