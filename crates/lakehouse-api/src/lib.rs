//! One trait per service, the seam between deployments.
//!
//! The gateway and the services that call each other hold `Arc<dyn StorageApi>` and friends. In
//! `lakehouse serve` the handle is the domain crate itself (an in-process call); with `--only` it is the typed
//! HTTP client of `lakehouse-client`. One set of HTTP handlers serves both deployments.
//!
//! Modules:
//! - [`cells`]: [`Cells`], Arrow cells as JSON.
//! - [`storage`]: [`StorageApi`], streaming object I/O.
//! - [`embed`]: [`EmbedApi`], text to vectors.
//! - [`vector`]: [`VectorApi`], vector indexes.
//! - [`catalog`]: [`CatalogApi`], the dataset registry.
//! - [`ingest`]: [`IngestApi`], bodies into table versions.
//! - [`query`]: [`QueryApi`], read-only SQL ([`QueryResult`] carries Arrow batches).
//! - [`matrix`]: [`MatrixApi`], corpora and matrix search.
//! - [`metrics`]: [`Reports`], the counters a service keeps itself.
//! - [`services`]: [`Services`], the handles of every service a process reaches.
#![deny(missing_docs)]

pub mod catalog;
pub mod cells;
pub mod embed;
pub mod ingest;
pub mod matrix;
pub mod metrics;
pub mod query;
pub mod services;
pub mod storage;
pub mod vector;

pub use catalog::CatalogApi;
pub use cells::Cells;
pub use embed::EmbedApi;
pub use ingest::IngestApi;
pub use lakehouse_types::{ApiError, RequestContext};
pub use matrix::MatrixApi;
pub use metrics::{Reading, Reports};
pub use query::{QueryApi, QueryResult};
pub use services::Services;
pub use storage::StorageApi;
pub use vector::VectorApi;

/// The result every service call returns.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
