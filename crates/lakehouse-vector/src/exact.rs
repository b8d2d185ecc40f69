//! Exact (brute-force) nearest neighbours.
//!
//! Used over the subset of items a selective filter leaves (where a graph walk would visit most of the graph
//! to find a few matches), for small indexes, and by the recall tests as the ground truth. Distances follow
//! the HNSW library's definitions so exact and approximate hits rank and score alike.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use lakehouse_types::vector::Metric;

/// The metric's distance between two vectors of the same length (lower is nearer): cosine distance,
/// squared Euclidean distance, or `1 - dot`.
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Cosine => {
            let (dot, aa, bb) = a
                .iter()
                .zip(b)
                .fold((0.0f32, 0.0f32, 0.0f32), |acc, (x, y)| {
                    (acc.0 + x * y, acc.1 + x * x, acc.2 + y * y)
                });
            let norms = (aa * bb).sqrt();
            if norms == 0.0 { 1.0 } else { 1.0 - dot / norms }
        }
        Metric::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::Ip => 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
    }
}

/// Converts a metric distance into the `(score, distance)` pair reported to users: scores are higher-is-
/// better for every metric; the L2 distance is reported as the Euclidean distance, not its square.
pub fn score(metric: Metric, distance: f32) -> (f32, f32) {
    match metric {
        Metric::Cosine | Metric::Ip => (1.0 - distance, distance),
        Metric::L2 => {
            let euclidean = distance.max(0.0).sqrt();
            (1.0 / (1.0 + euclidean), euclidean)
        }
    }
}

/// A candidate ordered by distance, then key, so that ties break the same way every time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    distance: f32,
    key: u64,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.key.cmp(&other.key))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Keeps the `k` nearest of everything pushed into it.
#[derive(Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    /// An empty selection of at most `k`.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    /// Offers a candidate.
    pub fn push(&mut self, key: u64, distance: f32) {
        if self.k == 0 || distance.is_nan() {
            return;
        }
        let candidate = Candidate { distance, key };
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    /// The selection, nearest first, as `(key, distance)`.
    pub fn into_sorted(self) -> Vec<(u64, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| (c.key, c.distance))
            .collect()
    }
}

/// The `k` nearest of `(key, vector)` pairs to `query`, nearest first.
pub fn search<'a>(
    metric: Metric,
    query: &[f32],
    k: usize,
    candidates: impl IntoIterator<Item = (u64, &'a [f32])>,
) -> Vec<(u64, f32)> {
    let mut top = TopK::new(k);
    for (key, vector) in candidates {
        top.push(key, distance(metric, query, vector));
    }
    top.into_sorted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_follow_the_metric() {
        let a = [1.0, 0.0];
        let b = [0.0, 2.0];
        assert!((distance(Metric::Cosine, &a, &b) - 1.0).abs() < 1e-6);
        assert!((distance(Metric::Cosine, &a, &[3.0, 0.0])).abs() < 1e-6);
        assert!((distance(Metric::L2, &a, &b) - 5.0).abs() < 1e-6);
        assert!((distance(Metric::Ip, &[1.0, 2.0], &[3.0, 4.0]) - (1.0 - 11.0)).abs() < 1e-6);
        assert_eq!(distance(Metric::Cosine, &[0.0, 0.0], &a), 1.0);
        let (score, euclidean) = score(Metric::L2, 4.0);
        assert!((euclidean - 2.0).abs() < 1e-6 && (score - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_keeps_the_nearest_in_order() {
        let vectors: Vec<(u64, Vec<f32>)> = (0..100).map(|i| (i, vec![i as f32, 0.0])).collect();
        let hits = search(
            Metric::L2,
            &[42.2, 0.0],
            3,
            vectors.iter().map(|(k, v)| (*k, v.as_slice())),
        );
        let keys: Vec<u64> = hits.iter().map(|h| h.0).collect();
        assert_eq!(keys, vec![42, 43, 41]);
        assert!(
            search(
                Metric::L2,
                &[0.0, 0.0],
                0,
                vectors.iter().map(|(k, v)| (*k, v.as_slice()))
            )
            .is_empty()
        );
    }
}
