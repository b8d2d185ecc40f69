//! Integration tests: the real `lakehouse` binary, on an ephemeral port over a temporary data directory,
//! spoken to over HTTP as a user would. One test binary (modules per area) so the stack links once.
#![allow(clippy::unwrap_used)]

mod auth;
mod cli;
mod common;
mod datasets;
mod deployment;
mod embed;
mod leak;
mod limits;
mod matrix;
mod matrix_follow;
mod mcp;
mod page;
mod permissions;
mod storage;
mod upkeep;
mod vector;
