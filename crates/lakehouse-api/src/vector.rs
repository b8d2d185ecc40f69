//! Vector indexes.

/// HNSW vector indexes with metadata filters and durable persistence.
pub trait VectorApi: Send + Sync + std::fmt::Debug {}
