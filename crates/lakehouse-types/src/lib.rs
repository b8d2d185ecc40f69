//! Wire types shared by every Lakehouse service.
//!
//! No HTTP framework and no IO here: these are the serde structs that cross the seam between services
//! (in-process or over the network) and the one table of error codes with their HTTP statuses.
//!
//! Modules:
//! - [`error`]: [`ErrorCode`] (code → status) and [`ApiError`], the error every service interface returns.
//! - [`auth`]: [`Caller`] and [`Role`], who is making a request.
//! - [`health`]: the `/health` body.
//! - [`keys`]: the object key rules.
//! - [`storage`]: object metadata and listing types.
//! - [`dataset`]: catalog, ingest and SQL types.
//! - [`embed`]: embedding requests and responses.
//! - [`vector`]: vector index requests and responses.
//! - [`filter`]: the filter language of vector and matrix search.
//! - [`policy`]: what each role may see and do.
//! - [`matrix`]: matrix search requests and responses.
//! - [`fuzz`]: the seeded generator of the fuzz targets.
//! - [`bounded`]: lists decoded with a cap.
#![deny(missing_docs)]

pub mod auth;
pub mod bounded;
pub mod dataset;
pub mod embed;
pub mod error;
pub mod filter;
pub mod fuzz;
pub mod health;
pub mod keys;
pub mod matrix;
pub mod policy;
pub mod storage;
pub mod vector;

pub use auth::{Caller, RequestContext, Role};
pub use error::{ApiError, ErrorCode};
