//! storaged: streaming object I/O over the `object_store` crate.
//!
//! The same object store (a local directory by default, S3-compatible by config) also holds the tables, the
//! catalog's state and the vector indexes: [`build_object_store`] makes it for every service of a process.
//!
//! Modules:
//! - [`keys`]: the key rules and the reserved prefixes.
//! - [`store`]: building the object store from config.
//! - [`service`]: [`StorageService`], the local implementation of `StorageApi` (caps, streaming, ranges).
//! - [`error`]: this crate's [`Error`] and its mapping to API errors.
#![deny(missing_docs)]

pub mod error;
pub mod keys;
pub mod service;
pub mod store;

pub use error::{Error, Result};
pub use service::{StorageLimits, StorageService};
pub use store::build_object_store;
