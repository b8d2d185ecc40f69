//! [`Services`]: the one bag of service handles. The HTTP layer routes to the services a process serves,
//! the MCP tools and matrixd call the ones they use; each handle is the domain crate in this process or its
//! HTTP client, and `None` where the process reaches no such service.

use std::sync::Arc;

use lakehouse_types::{ApiError, ErrorCode};

use crate::{CatalogApi, EmbedApi, IngestApi, MatrixApi, QueryApi, StorageApi, VectorApi};

/// The services a process reaches, each local or remote; `None` where it reaches none.
#[derive(Debug, Clone, Default)]
pub struct Services {
    /// storaged.
    pub storage: Option<Arc<dyn StorageApi>>,
    /// catalogd.
    pub catalog: Option<Arc<dyn CatalogApi>>,
    /// ingestd.
    pub ingest: Option<Arc<dyn IngestApi>>,
    /// queryd.
    pub query: Option<Arc<dyn QueryApi>>,
    /// embedd.
    pub embed: Option<Arc<dyn EmbedApi>>,
    /// vectord.
    pub vector: Option<Arc<dyn VectorApi>>,
    /// matrixd.
    pub matrix: Option<Arc<dyn MatrixApi>>,
}

/// The handle of a service a caller cannot work without, or a 503 naming it.
fn needed<T: ?Sized>(handle: Option<&Arc<T>>, service: &str) -> Result<Arc<T>, ApiError> {
    handle.cloned().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!(
                "this process reaches no {service}: run it here, or give its URL under [services]"
            ),
        )
    })
}

impl Services {
    /// storaged, which the caller needs.
    pub fn need_storage(&self) -> Result<Arc<dyn StorageApi>, ApiError> {
        needed(self.storage.as_ref(), "storaged")
    }

    /// catalogd, which the caller needs.
    pub fn need_catalog(&self) -> Result<Arc<dyn CatalogApi>, ApiError> {
        needed(self.catalog.as_ref(), "catalogd")
    }

    /// ingestd, which the caller needs.
    pub fn need_ingest(&self) -> Result<Arc<dyn IngestApi>, ApiError> {
        needed(self.ingest.as_ref(), "ingestd")
    }

    /// queryd, which the caller needs.
    pub fn need_query(&self) -> Result<Arc<dyn QueryApi>, ApiError> {
        needed(self.query.as_ref(), "queryd")
    }

    /// embedd, which the caller needs.
    pub fn need_embed(&self) -> Result<Arc<dyn EmbedApi>, ApiError> {
        needed(self.embed.as_ref(), "embedd")
    }

    /// vectord, which the caller needs.
    pub fn need_vector(&self) -> Result<Arc<dyn VectorApi>, ApiError> {
        needed(self.vector.as_ref(), "vectord")
    }

    /// matrixd, which the caller needs.
    pub fn need_matrix(&self) -> Result<Arc<dyn MatrixApi>, ApiError> {
        needed(self.matrix.as_ref(), "matrixd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_service_is_named() {
        let services = Services::default();
        let err = services.need_catalog().err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("catalogd")));
        assert!(services.need_matrix().is_err());
    }
}
