//! Which services run in this process and which are reached over HTTP.
//!
//! A service runs here when the process runs it (`--only` lists it, or there is no `--only`); a gateway
//! reaches every other service at its `[services]` URL; a process without the gateway serves only its own.

use std::sync::Arc;

use anyhow::Context;
use lakehouse_api::StorageApi;
use lakehouse_client::HttpStorageClient;
use lakehouse_config::{Config, ServiceName};
use lakehouse_server::Services;
use lakehouse_storage::{StorageLimits, StorageService, build_object_store};
use object_store::ObjectStore;

/// How one service is reached from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In this process.
    Local,
    /// Over HTTP at its configured URL.
    Remote,
    /// Not at all.
    Absent,
}

/// Where `service` is, for this process.
pub fn placement(config: &Config, service: ServiceName) -> Placement {
    if config.runs(service) {
        Placement::Local
    } else if config.runs(ServiceName::Gateway) {
        Placement::Remote
    } else {
        Placement::Absent
    }
}

/// Builds the services of this process.
pub fn services(config: &Config) -> anyhow::Result<Services> {
    let mut store: Option<Arc<dyn ObjectStore>> = None;
    let mut object_store = || -> anyhow::Result<Arc<dyn ObjectStore>> {
        if let Some(store) = &store {
            return Ok(Arc::clone(store));
        }
        let built = build_object_store(&config.storage)
            .with_context(|| format!("opening storage {}", config.storage.backend.describe()))?;
        store = Some(Arc::clone(&built));
        Ok(built)
    };

    let storage: Option<Arc<dyn StorageApi>> = match placement(config, ServiceName::Storaged) {
        Placement::Local => Some(Arc::new(StorageService::new(
            object_store()?,
            StorageLimits::from_config(&config.storage),
            config.storage.backend.describe(),
        ))),
        Placement::Remote => Some(Arc::new(HttpStorageClient::new(
            config.service_url(ServiceName::Storaged),
        )?)),
        Placement::Absent => None,
    };

    Ok(Services {
        storage,
        ..Services::default()
    })
}
