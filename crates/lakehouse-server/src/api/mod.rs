//! One router per service, each over its trait: `router(Arc<dyn XApi>) -> Router`.

pub mod storage;
pub mod vector;
