//! Typed HTTP clients implementing the service traits.
//!
//! A gateway started with `--only gateway` holds these instead of the domain crates; the CLI uses them to talk
//! to a running server. Each forwards the caller's API key and the request id, and reads the JSON error body
//! back into the same [`ApiError`](lakehouse_types::ApiError) the remote service produced, so a split
//! deployment answers exactly like the all-in-one process.
//!
//! Modules:
//! - [`remote`]: the shared request plumbing ([`Remote`]).
//! - [`storage`]: object I/O ([`HttpStorageClient`]).
//! - [`vector`]: vector indexes ([`HttpVectorClient`]).
//! - [`embed`]: text to vectors ([`HttpEmbedClient`]).
//! - [`catalog`], [`ingest`], [`query`]: datasets ([`HttpCatalogClient`], [`HttpIngestClient`],
//!   [`HttpQueryClient`]).
//! - [`matrix`]: matrix search ([`HttpMatrixClient`]).
#![deny(missing_docs)]

pub mod catalog;
pub mod embed;
pub mod ingest;
pub mod matrix;
pub mod query;
pub mod remote;
pub mod storage;
pub mod vector;

pub use catalog::HttpCatalogClient;
pub use embed::HttpEmbedClient;
pub use ingest::HttpIngestClient;
pub use matrix::HttpMatrixClient;
pub use query::HttpQueryClient;
pub use remote::Remote;
pub use storage::HttpStorageClient;
pub use vector::HttpVectorClient;
