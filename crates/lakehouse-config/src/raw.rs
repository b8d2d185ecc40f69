//! The serde shape of the configuration file, before validation.
//!
//! ```toml
//! data_dir = "./lakehouse-data"
//! [server]
//! listen = "127.0.0.1:3110"
//! only = ["storaged"]
//! [storage]
//! backend = "local"            # or "s3"
//! secrets_file = "secrets.toml" # [s3.primary] endpoint, bucket, region, access_key_id, secret_access_key
//! [services]
//! storaged = "http://10.0.0.5:3211"
//! [[auth.keys]]
//! name = "ops"
//! role = "admin"
//! key_sha256 = "…"              # `lakehouse hash-key`
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RawConfig {
    /// Data directory.
    pub data_dir: String,
    /// `[server]`.
    pub server: RawServer,
    /// `[storage]`.
    pub storage: RawStorage,
    /// `[services]`: service name → base URL.
    pub services: BTreeMap<String, String>,
    /// `[auth]`.
    pub auth: RawAuth,
    /// `[log]`.
    pub log: RawLog,
    /// `[roles.NAME]`: what each role may see and do.
    pub roles: BTreeMap<String, lakehouse_types::policy::RolePolicy>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            data_dir: "./lakehouse-data".to_owned(),
            server: RawServer::default(),
            storage: RawStorage::default(),
            services: BTreeMap::new(),
            auth: RawAuth::default(),
            log: RawLog::default(),
            roles: BTreeMap::new(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RawServer {
    /// Listen address; defaulted from the services run.
    pub listen: Option<String>,
    /// Services to run; all when absent.
    pub only: Option<Vec<String>>,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_grace_secs: u64,
    /// Host names (besides loopback names and the listen address) requests may name in `Host`.
    pub allowed_hosts: Vec<String>,
    /// Origins (besides the server's own) whose pages may send unsafe requests.
    pub allowed_origins: Vec<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: None,
            only: None,
            shutdown_grace_secs: 30,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RawStorage {
    /// `local` or `s3`.
    pub backend: String,
    /// The S3 secrets file.
    pub secrets_file: Option<std::path::PathBuf>,
    /// Which `[s3.<profile>]` of the secrets file to use.
    pub s3_profile: String,
    /// Size cap of one object.
    pub max_object_bytes: u64,
    /// Concurrency cap of transfers.
    pub max_concurrent_transfers: usize,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            backend: "local".to_owned(),
            secrets_file: None,
            s3_profile: "primary".to_owned(),
            max_object_bytes: 256 * 1024 * 1024,
            max_concurrent_transfers: 64,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RawAuth {
    /// `[[auth.keys]]`.
    pub keys: Vec<RawKey>,
}

/// One `[[auth.keys]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawKey {
    /// Who holds the key.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Hex SHA-256 of the key.
    #[serde(default)]
    pub key_sha256: Option<String>,
    /// A plain key: refused, only hashes are stored.
    #[serde(default)]
    pub key: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RawLog {
    /// `text` or `json`.
    pub format: String,
    /// Default filter when `RUST_LOG` is unset.
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: "text".to_owned(),
            // The Delta kernel logs each table snapshot it builds at `info`: two lines per table per query.
            level: "info,buoyant_kernel=warn".to_owned(),
        }
    }
}
