//! One router per service, each over its trait: `router(Arc<dyn XApi>) -> Router`.

pub mod catalog;
pub mod embed;
pub mod ingest;
pub mod matrix;
pub mod mcp;
pub mod query;
pub mod session;
pub mod storage;
pub mod vector;
