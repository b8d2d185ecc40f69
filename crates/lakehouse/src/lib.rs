//! The `lakehouse` binary: every command, and the composition root that wires the services together.
//!
//! Modules:
//! - [`cli`]: the command line (clap).
//! - [`compose`]: which services run here and which are reached over HTTP.
//! - [`serve`]: `lakehouse serve`: bind, serve, shut down gracefully.
//! - [`doctor`]: `lakehouse doctor`: checks, each with its fix.
//! - [`datasets_cli`]: `lakehouse ingest`, `sql` and `datasets`.
//! - [`matrix_cli`]: `lakehouse search` and `generate`.
//! - [`mcp_cli`]: `lakehouse mcp`, the MCP tools over stdio.
//! - [`demo`]: `lakehouse demo`: the newcomer's first command.
//! - [`logging`]: tracing set-up.
#![deny(missing_docs)]

pub mod cli;
pub mod compose;
pub mod datasets_cli;
pub mod demo;
pub mod doctor;
pub mod logging;
pub mod matrix_cli;
pub mod mcp_cli;
pub mod serve;
