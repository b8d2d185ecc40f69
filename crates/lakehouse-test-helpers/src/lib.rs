//! Test support for the integration tests.
//!
//! - [`TestServer`]: the real `lakehouse serve` as a child process on an ephemeral port over a temporary data
//!   directory; killed when dropped. It can be stopped with SIGTERM or `kill -9` and started again on the same
//!   data.
//! - [`S3Server`]: a real S3-compatible server (`moto_server`, from PyPI's `moto[server]`) on an ephemeral
//!   port, with a bucket made for the test.
//! - [`fuzz`]: the seeded generator of the crates' fuzz targets.
#![deny(missing_docs)]
#![allow(clippy::unwrap_used)] // test support: a failed set-up should fail the test loudly

pub mod fuzz;
mod s3;
mod server;

pub use s3::S3Server;
pub use server::{TestServer, TestServerBuilder};
