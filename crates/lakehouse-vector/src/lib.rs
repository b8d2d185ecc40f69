//! The vector index service (vectord): HNSW indexes with metadata filters and durable persistence.
//!
//! Each index is an HNSW graph of our own (which holds the vectors, once) plus an id/metadata table. Every
//! acknowledged write is first logged as an append-only segment on the object store, then applied;
//! periodic snapshots of graph and table bound start-up replay, and compaction folds old history away.
//!
//! Modules:
//! - [`service`]: [`VectorService`], the [`lakehouse_api::VectorApi`] implementation, and its config.
//! - [`handle`]: one open index: writer, replay, snapshots.
//! - [`index`]: the in-memory index and its search strategy (graph walk or exact scan).
//! - [`hnsw`]: one HNSW index (the graph lives in the private `graph` module, its kernels in `distance`).
//! - [`exact`]: brute-force search and the metric definitions.
//! - [`filter`]: metadata filters (the language itself lives in `lakehouse_types::filter`).
//! - [`validate`]: request and batch validation.
//! - [`codec`]: the binary formats of segments and snapshot tables.
//! - [`persist`]: the storage layout, snapshots and compaction.
//! - [`error`]: [`Error`] and its mapping to API error codes.
#![deny(missing_docs)]

pub mod codec;
mod distance;
pub mod error;
pub mod exact;
pub mod filter {
    //! Metadata filters: the language shared with matrix search, from `lakehouse_types`.
    pub use lakehouse_types::filter::{Filter, FilterError};
}
mod graph;
pub mod handle;
pub mod hnsw;
pub mod index;
pub mod persist;
pub mod service;
pub mod validate;

pub use error::{Error, Result};
pub use handle::SnapshotPolicy;
pub use hnsw::HnswParams;
pub use service::{VectorConfig, VectorService};
