//! Matrix search (matrixd): the staffing co-pilot.
//!
//! A **corpus** is a dataset made searchable: its rows' text embedded into a vector index of its own (with
//! the filterable columns as metadata) and indexed for BM25 keyword search, following the dataset as it
//! changes. A **search** retrieves candidates from both indexes with the caller's filters inside each,
//! fuses them by reciprocal rank, lets the **eligibility judge** drop (and count, by reason) those a job
//! order's rules rule out, masks what the caller's role may not see, and records the search.
//!
//! The crate holds only the traits of the services it uses (`lakehouse-api`), never their crates, so it
//! runs in-process under `lakehouse serve` and alone under `--only matrixd` with remote clients.
//!
//! Modules:
//! - [`service`]: [`MatrixService`], the [`lakehouse_api::MatrixApi`] implementation, its config and its
//!   worker.
//! - `definition`: definitions checked against the dataset schema and compiled; text templates.
//! - `rules`: the eligibility rules.
//! - `rows`: a dataset version read as rows.
//! - `keyword`: the BM25 index (tantivy).
//! - `corpus`: a corpus at run time, its snapshot and progress.
//! - `deps`: the services matrixd uses, and how it calls them for its own work.
//! - `sync`: building and following, and the worker that does it.
//! - `search`: one search as a pipeline: `plan`, `retrieve`, `judge`, `respond`.
//! - `cache`: answers kept for repeated searches.
//! - `store`: what a corpus keeps on storage.
//! - [`recordings`]: searches appended to `matrix_recordings`.
//! - `error`: [`Error`] and its API codes.
#![deny(missing_docs)]

mod cache;
mod corpus;
mod definition;
mod deps;
pub mod error;
mod keyword;
pub mod recordings;
mod rows;
mod rules;
mod search;
pub mod service;
mod store;
mod sync;

pub use error::{Error, Result};
pub use service::{MatrixConfig, MatrixService};
