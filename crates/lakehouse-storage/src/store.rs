//! Building the object store from config.

use std::sync::Arc;

use lakehouse_config::{StorageBackend, StorageConfig};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;

use crate::{Error, Result};

/// Opens the configured object store. The local directory is created when missing.
///
/// S3-compatible stores are asked for conditional writes (`If-None-Match`, `If-Match`), which the catalog and
/// Delta commits rely on to stay safe with several writers.
pub fn build_object_store(config: &StorageConfig) -> Result<Arc<dyn ObjectStore>> {
    match &config.backend {
        StorageBackend::Local { root } => {
            std::fs::create_dir_all(root).map_err(|e| {
                Error::Setup(format!(
                    "cannot create the data directory {}: {e}",
                    root.display()
                ))
            })?;
            let store = LocalFileSystem::new_with_prefix(root)
                .map_err(|e| Error::Setup(format!("cannot open {}: {e}", root.display())))?
                // Deleting the last object of a directory removes the directory, so listings stay clean.
                .with_automatic_cleanup(true);
            Ok(Arc::new(store))
        }
        StorageBackend::S3(s3) => {
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(&s3.secret_access_key)
                .with_conditional_put(S3ConditionalPut::ETagMatch);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    // S3-compatible servers (MinIO, Garage, moto) address buckets by path.
                    .with_virtual_hosted_style_request(false);
            }
            let store = builder
                .build()
                .map_err(|e| Error::Setup(format!("S3 bucket {}: {e}", s3.bucket)))?;
            Ok(Arc::new(store))
        }
    }
}
