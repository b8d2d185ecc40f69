//! Snapshots of the usearch graphs indexes were saved as before they had their own graph (built with the
//! `usearch-snapshots` feature): read back vector by vector into a new graph, which `persist` then writes
//! over the old snapshot, so each converts once and later loads need no usearch.

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::{Hnsw, HnswParams, check_params, copy, stored_form};
use crate::distance::Kernel;
use crate::error::{Error, Result};
use crate::graph::Graph;
use lakehouse_types::vector::Metric;

fn corrupt<E: std::fmt::Display>(context: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Corrupt(format!("usearch snapshot: {context}: {e}"))
}

impl Hnsw {
    /// An index rebuilt from a usearch snapshot (the format indexes were saved in before this graph):
    /// every key in `keys` (the snapshot's entry table) has its vector read back and inserted into a new
    /// graph, in the form it was stored (unit vectors, or originals under the cosine kernel), in `keys`
    /// order on one thread, so the same inputs always give the same graph.
    pub fn load_usearch(
        bytes: &[u8],
        keys: &[u64],
        dim: usize,
        metric: Metric,
        params: HnswParams,
    ) -> Result<Self> {
        let header = Index::metadata_from_buffer(bytes).map_err(corrupt("reading the header"))?;
        if header.dimensions != dim as u64 {
            return Err(Error::Corrupt(format!(
                "snapshot holds {}-dimensional vectors, the index is {dim}-dimensional",
                header.dimensions
            )));
        }
        let stored = match header.metric {
            MetricKind::IP => Kernel::Ip,
            MetricKind::L2sq => Kernel::L2,
            MetricKind::Cos => Kernel::Cos,
            _ => {
                return Err(Error::Corrupt(
                    "usearch snapshot uses an unsupported metric".to_owned(),
                ));
            }
        };
        let unit = stored_form(metric, stored).ok_or_else(|| {
            Error::Corrupt(format!(
                "snapshot was built for another metric than the index's {metric}"
            ))
        })?;
        let options = IndexOptions {
            dimensions: dim,
            metric: header.metric,
            quantization: ScalarKind::F32,
            connectivity: params.connectivity,
            expansion_add: params.expansion_add,
            expansion_search: params.expansion_search,
            multi: false,
        };
        let legacy = Index::new(&options).map_err(corrupt("opening the index"))?;
        legacy
            .load_from_buffer(bytes)
            .map_err(corrupt("loading the snapshot"))?;
        if legacy.size() != keys.len() {
            return Err(Error::Corrupt(format!(
                "usearch snapshot holds {} vectors, the entry table {}",
                legacy.size(),
                keys.len()
            )));
        }
        check_params(params)?;
        let mut graph = Graph::new(
            dim,
            stored,
            params.connectivity,
            params.expansion_add,
            params.expansion_search,
        );
        graph.reserve(keys.len());
        // Copied out in chunks so the copy never holds more than a slice of the vectors at once.
        let mut buffer = vec![0.0f32; dim * 4096.min(keys.len().max(1))];
        for chunk in keys.chunks(4096) {
            for (key, out) in chunk.iter().zip(buffer.chunks_exact_mut(dim.max(1))) {
                match legacy.get(*key, out) {
                    Ok(n) if n > 0 => {}
                    _ => {
                        return Err(Error::Corrupt(format!(
                            "usearch snapshot has no vector for key {key}"
                        )));
                    }
                }
            }
            let items: Vec<(u64, &[f32])> = chunk
                .iter()
                .copied()
                .zip(buffer.chunks_exact(dim.max(1)))
                .collect();
            // One thread, so the rebuilt graph is the same whoever rebuilds it (see persist's
            // conversion of such snapshots).
            graph
                .insert(&items, 1, copy)
                .map_err(|e| Error::Corrupt(format!("usearch snapshot: {e}")))?;
        }
        Ok(Hnsw {
            graph,
            metric,
            dim,
            unit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hnsw::tests::{clustered, keys as keys_of, vectors};
    use crate::hnsw::unit;

    fn usearch_snapshot(kind: MetricKind, data: &[Vec<f32>]) -> Vec<u8> {
        let options = IndexOptions {
            dimensions: data[0].len(),
            metric: kind,
            quantization: ScalarKind::F32,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
            multi: false,
        };
        let legacy = Index::new(&options).expect("index");
        legacy.reserve(data.len()).expect("reserve");
        for (i, v) in data.iter().enumerate() {
            legacy.add(i as u64, v).expect("add");
        }
        let mut bytes = vec![0u8; legacy.serialized_length()];
        legacy.save_to_buffer(&mut bytes).expect("save");
        bytes
    }

    #[test]
    fn snapshots_of_the_cosine_kernel_still_load() {
        let data = vectors();
        let params = HnswParams::default();
        let bytes = usearch_snapshot(MetricKind::Cos, &data);
        assert!(!Hnsw::is_native(&bytes));
        let keys: Vec<u64> = (0..data.len() as u64).collect();

        let mut hnsw = Hnsw::load_usearch(&bytes, &keys, 8, Metric::Cosine, params).expect("load");
        assert!(!hnsw.stores_unit_vectors());
        assert_eq!(hnsw.len(), data.len());
        let mut stored = vec![0.0; 8];
        for (key, v) in data.iter().enumerate() {
            assert!(hnsw.get(key as u64, &mut stored));
            assert_eq!(&stored, v);
        }
        let (nearest, distance) = hnsw.search(&data[9], 1).expect("search")[0];
        assert_eq!(nearest, 9);
        assert!(distance.abs() < 1e-5);
        // New inserts into it follow the snapshot's kernel, and so does the next snapshot.
        hnsw.ensure_room(1).expect("room");
        hnsw.add(1_000, &[2.0; 8]).expect("add");
        assert!(hnsw.get(1_000, &mut stored));
        assert_eq!(stored, vec![2.0; 8]);
        let saved = hnsw.save().expect("save");
        let reloaded = Hnsw::load(&saved, 8, Metric::Cosine, params).expect("reload");
        assert!(!reloaded.stores_unit_vectors());
        assert!(reloaded.get(9, &mut stored));
        assert_eq!(stored, data[9]);

        assert!(matches!(
            Hnsw::load_usearch(&bytes, &keys, 8, Metric::L2, params),
            Err(Error::Corrupt(_))
        ));
        // The entry table must name every vector the snapshot holds.
        assert!(matches!(
            Hnsw::load_usearch(&bytes, &keys[1..], 8, Metric::Cosine, params),
            Err(Error::Corrupt(_))
        ));
        let mut wrong = keys.clone();
        wrong[0] = 5_000;
        assert!(matches!(
            Hnsw::load_usearch(&bytes, &wrong, 8, Metric::Cosine, params),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            Hnsw::load_usearch(&bytes[..bytes.len() / 2], &keys, 8, Metric::Cosine, params),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn usearch_snapshots_of_unit_vectors_still_load() {
        let data: Vec<Vec<f32>> = clustered(2_000, 16, 41).iter().map(|v| unit(v)).collect();
        let params = HnswParams::default();
        let bytes = usearch_snapshot(MetricKind::IP, &data);
        let keys: Vec<u64> = (0..data.len() as u64).collect();
        let hnsw = Hnsw::load_usearch(&bytes, &keys, 16, Metric::Cosine, params).expect("load");
        assert!(hnsw.stores_unit_vectors());
        let mut stored = vec![0.0; 16];
        for (key, v) in data.iter().enumerate() {
            assert!(hnsw.get(key as u64, &mut stored));
            assert_eq!(&stored, v);
        }
        let mut hits = 0;
        for q in data.iter().step_by(20) {
            let truth = keys_of(&hnsw.exact_search(q, 10).expect("exact"));
            let found = keys_of(&hnsw.search(q, 10).expect("search"));
            hits += found.iter().filter(|k| truth.contains(k)).count();
        }
        assert!(hits as f64 / 1_000.0 >= 0.95);
        // Rebuilt the same way every time (two instances converting one snapshot write the same bytes).
        let twice = Hnsw::load_usearch(&bytes, &keys, 16, Metric::Cosine, params).expect("load");
        assert_eq!(twice.save().expect("save"), hnsw.save().expect("save"));
        let ip = Hnsw::load_usearch(&bytes, &keys, 16, Metric::Ip, params).expect("load as ip");
        assert!(!ip.stores_unit_vectors());
    }
}
