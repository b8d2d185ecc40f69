//! Typed HTTP clients implementing the service traits.
//!
//! A gateway started with `--only gateway` holds these instead of the domain crates; the CLI uses them to talk
//! to a running server. Each forwards the caller's API key and the request id, and reads the JSON error body
//! back into the same [`ApiError`](lakehouse_types::ApiError) the remote service produced, so a split
//! deployment answers exactly like the all-in-one process.
//!
//! Modules:
//! - [`remote`]: [`Remote`], the shared request plumbing.
//! - [`storage`]: [`HttpStorageClient`].
#![deny(missing_docs)]

pub mod remote;
pub mod storage;

pub use remote::Remote;
pub use storage::HttpStorageClient;
