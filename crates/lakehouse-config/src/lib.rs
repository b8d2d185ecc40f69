//! Layered configuration for every Lakehouse service.
//!
//! Configuration is read in two steps. First the raw layers are merged, lowest first: built-in defaults, the
//! TOML file (`--config`), `LAKEHOUSE_*` environment variables (nested keys joined by `__`, e.g.
//! `LAKEHOUSE_STORAGE__BACKEND=s3`), then command-line flags ([`Overrides`]). Then the result is validated
//! into one [`Config`]: S3 secrets are read from their own file, API keys are checked, service names parsed.
//! Sections owned by a single service (`[embed]`, `[vector]`, ...) stay raw until that service reads them
//! with [`Config::section`], so this crate does not depend on every service.
//!
//! Modules:
//! - [`raw`]: the serde shape of the file.
//! - [`service`]: [`ServiceName`], the services and their default ports.
//! - [`secrets`]: the S3 secrets file.
#![deny(missing_docs)]

pub mod raw;
pub mod secrets;
pub mod service;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use secrets::S3Settings;
pub use service::ServiceName;

/// Configuration errors: each names the setting and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or environment did not parse.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value is wrong.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The secrets file could not be used.
    #[error("S3 secrets: {0}")]
    Secrets(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Values given on the command line; they win over the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--data DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<SocketAddr>,
    /// `--only SERVICE,...`.
    pub only: Option<Vec<String>>,
}

/// Where objects are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageBackend {
    /// A local directory.
    Local {
        /// The directory (created at start when missing).
        root: PathBuf,
    },
    /// An S3-compatible bucket.
    S3(S3Settings),
}

impl StorageBackend {
    /// A short description for logs and health: `local:/path` or `s3://bucket at endpoint`.
    pub fn describe(&self) -> String {
        match self {
            StorageBackend::Local { root } => format!("local:{}", root.display()),
            StorageBackend::S3(s3) => match &s3.endpoint {
                Some(endpoint) => format!("s3://{} at {endpoint}", s3.bucket),
                None => format!("s3://{}", s3.bucket),
            },
        }
    }
}

/// Storage limits and backend.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// The backend.
    pub backend: StorageBackend,
    /// Largest object a PUT may store, in bytes.
    pub max_object_bytes: u64,
    /// Most transfers (PUT or GET bodies) in flight at once; more are answered 503.
    pub max_concurrent_transfers: usize,
    /// Where the S3 secrets came from (for `doctor`).
    pub secrets_file: Option<PathBuf>,
}

/// One configured API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Who holds it (logged, recorded).
    pub name: String,
    /// Its role.
    pub role: String,
    /// SHA-256 of the key, as 32 bytes. The key itself is never stored.
    pub sha256: [u8; 32],
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (objects when the backend is local; scratch space always).
    pub data_dir: PathBuf,
    /// Address the process listens on.
    pub listen: SocketAddr,
    /// Whether `listen` was chosen by the user (flag, env or file) rather than defaulted.
    pub listen_explicit: bool,
    /// The services this process runs itself; `None` means all of them.
    pub only: Option<Vec<ServiceName>>,
    /// Seconds in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// Host names a request's `Host` may name besides loopback names and the listen address (lowercase, no
    /// port; `*` = any, with keys only).
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`, lowercase) besides the server's own whose pages may send unsafe
    /// requests.
    pub allowed_origins: Vec<String>,
    /// Storage.
    pub storage: StorageConfig,
    /// Base URLs of services that run elsewhere.
    pub service_urls: BTreeMap<ServiceName, String>,
    /// API keys; empty means open mode.
    pub api_keys: Vec<ApiKey>,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Default log filter (`RUST_LOG` syntax).
    pub log_level: String,
    /// What each role may see and do (`[roles.NAME]` over the built-in roles).
    pub policy: lakehouse_types::policy::Policy,
    /// The merged raw layers, for the sections services read themselves.
    figment: Figment,
}

impl Config {
    /// Reads the layers and validates them.
    pub fn load(overrides: &Overrides) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(raw::RawConfig::default()));
        if let Some(path) = &overrides.config_file {
            if !path.is_file() {
                return Err(Error::Invalid(format!(
                    "config file {} does not exist; create it or drop --config",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("LAKEHOUSE_").split("__"));
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("data_dir", dir.display().to_string()));
        }
        if let Some(listen) = overrides.listen {
            figment = figment.merge(("server.listen", listen.to_string()));
        }
        if let Some(only) = &overrides.only {
            figment = figment.merge(("server.only", only.clone()));
        }
        let raw: raw::RawConfig = figment.extract().map_err(|e| Error::Parse(e.to_string()))?;
        let base_dir = overrides
            .config_file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        Self::validate(raw, figment, base_dir.as_deref())
    }

    /// Reads a raw configuration from TOML text alone (tests, tools).
    pub fn from_toml(text: &str) -> Result<Config> {
        let figment = Figment::from(Serialized::defaults(raw::RawConfig::default()))
            .merge(Toml::string(text));
        let raw: raw::RawConfig = figment.extract().map_err(|e| Error::Parse(e.to_string()))?;
        Self::validate(raw, figment, None)
    }

    fn validate(raw: raw::RawConfig, figment: Figment, base_dir: Option<&Path>) -> Result<Config> {
        let data_dir = PathBuf::from(&raw.data_dir);
        let only = match raw.server.only {
            None => None,
            Some(names) if names.is_empty() => None,
            Some(names) => {
                let mut parsed = Vec::new();
                for name in names
                    .iter()
                    .flat_map(|n| n.split(','))
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                {
                    let service = ServiceName::parse(name).ok_or_else(|| {
                        Error::Invalid(format!(
                            "unknown service {name:?} in --only; known services: {}",
                            ServiceName::ALL
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                    if !parsed.contains(&service) {
                        parsed.push(service);
                    }
                }
                Some(parsed)
            }
        };
        let listen_explicit = raw.server.listen.is_some();
        let listen = match raw.server.listen {
            Some(text) => text.parse::<SocketAddr>().map_err(|_| {
                Error::Invalid(format!(
                    "server.listen {text:?} is not an address like 127.0.0.1:3110"
                ))
            })?,
            None => {
                // A process running exactly one service (not the gateway) listens on that service's port.
                let port = match only.as_deref() {
                    Some([single]) => single.default_port(),
                    _ => ServiceName::Gateway.default_port(),
                };
                SocketAddr::from(([127, 0, 0, 1], port))
            }
        };

        let secrets_file = raw
            .storage
            .secrets_file
            .as_ref()
            .map(|p| resolve(base_dir, p));
        let backend = match raw.storage.backend.as_str() {
            "local" => StorageBackend::Local {
                root: data_dir.clone(),
            },
            "s3" => {
                let path = secrets_file.clone().ok_or_else(|| {
                    Error::Secrets(
                        "storage.backend is \"s3\" but storage.secrets_file is not set; point it at a TOML file \
                         with an [s3.<profile>] table (endpoint, bucket, region, access_key_id, secret_access_key)"
                            .to_owned(),
                    )
                })?;
                StorageBackend::S3(secrets::load(&path, &raw.storage.s3_profile)?)
            }
            other => {
                return Err(Error::Invalid(format!(
                    "storage.backend {other:?} is not supported; use \"local\" or \"s3\""
                )));
            }
        };
        if raw.storage.max_object_bytes == 0 {
            return Err(Error::Invalid(
                "storage.max_object_bytes must be at least 1".to_owned(),
            ));
        }
        if raw.storage.max_concurrent_transfers == 0 {
            return Err(Error::Invalid(
                "storage.max_concurrent_transfers must be at least 1".to_owned(),
            ));
        }

        let mut service_urls = BTreeMap::new();
        for service in ServiceName::ALL {
            let url = raw
                .services
                .get(service.as_str())
                .cloned()
                .unwrap_or_else(|| format!("http://127.0.0.1:{}", service.default_port()));
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::Invalid(format!(
                    "services.{} = {url:?} must be an http:// or https:// URL",
                    service.as_str()
                )));
            }
            service_urls.insert(*service, url.trim_end_matches('/').to_owned());
        }

        let mut api_keys = Vec::new();
        for key in raw.auth.keys {
            let sha256 = match (&key.key_sha256, &key.key) {
                (Some(hex_digest), None) => {
                    let bytes = hex::decode(hex_digest.trim()).map_err(|_| {
                        Error::Invalid(format!("auth key {:?}: key_sha256 is not hex", key.name))
                    })?;
                    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                        Error::Invalid(format!(
                            "auth key {:?}: key_sha256 must be 64 hex digits",
                            key.name
                        ))
                    })?
                }
                (None, Some(_)) | (Some(_), Some(_)) => {
                    return Err(Error::Invalid(format!(
                        "auth key {:?}: store only the hash of a key (key_sha256); get it with \
                         `lakehouse hash-key`",
                        key.name
                    )));
                }
                (None, None) => {
                    return Err(Error::Invalid(format!(
                        "auth key {:?}: key_sha256 is missing",
                        key.name
                    )));
                }
            };
            if key.name.is_empty() || key.role.is_empty() {
                return Err(Error::Invalid(
                    "every auth key needs a name and a role".to_owned(),
                ));
            }
            api_keys.push(ApiKey {
                name: key.name,
                role: key.role,
                sha256,
            });
        }

        let (allowed_hosts, allowed_origins) = browsers(
            &raw.server.allowed_hosts,
            &raw.server.allowed_origins,
            api_keys.is_empty(),
        )?;
        Ok(Config {
            data_dir,
            listen,
            listen_explicit,
            only,
            shutdown_grace_secs: raw.server.shutdown_grace_secs,
            allowed_hosts,
            allowed_origins,
            storage: StorageConfig {
                backend,
                max_object_bytes: raw.storage.max_object_bytes,
                max_concurrent_transfers: raw.storage.max_concurrent_transfers,
                secrets_file,
            },
            service_urls,
            api_keys,
            log_format: raw.log.format,
            log_level: raw.log.level,
            policy: lakehouse_types::policy::Policy::new(raw.roles),
            figment,
        })
    }

    /// A service's own section (`[embed]`, `[vector]`, ...), with its defaults when absent.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        if !self.figment.contains(name) {
            return Ok(T::default());
        }
        self.figment
            .extract_inner(name)
            .map_err(|e| Error::Parse(format!("[{name}]: {e}")))
    }

    /// Whether this process runs `service` itself.
    pub fn runs(&self, service: ServiceName) -> bool {
        match &self.only {
            None => true,
            Some(list) => list.contains(&service),
        }
    }

    /// Whether keys are configured (otherwise the server runs open, loopback only).
    pub fn auth_enabled(&self) -> bool {
        !self.api_keys.is_empty()
    }

    /// The base URL of a service that runs elsewhere.
    pub fn service_url(&self, service: ServiceName) -> &str {
        self.service_urls
            .get(&service)
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// The SHA-256 of an API key, as stored in config.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn resolve(base_dir: Option<&Path>, path: &Path) -> PathBuf {
    match base_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

/// `[server] allowed_hosts` and `allowed_origins`, checked and normalised.
fn browsers(
    allowed_hosts: &[String],
    allowed_origins: &[String],
    open: bool,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut hosts = Vec::new();
    for host in allowed_hosts {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host == "*" && open {
            return Err(Error::Invalid(
                "server.allowed_hosts = [\"*\"] without API keys would let any web page read this server \
                 through DNS rebinding; configure [[auth.keys]], or list the host names you use"
                    .to_owned(),
            ));
        }
        let valid = host == "*"
            || (!host.is_empty()
                && host.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                }));
        if !valid {
            return Err(Error::Invalid(format!(
                "server.allowed_hosts: {host:?} is not a host name (give names like \"lakehouse.example.com\", \
                 without scheme or path)"
            )));
        }
        hosts.push(host);
    }
    let mut origins = Vec::new();
    for origin in allowed_origins {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        let rest = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !rest.is_some_and(|r| !r.is_empty() && !r.contains('/')) {
            return Err(Error::Invalid(format!(
                "server.allowed_origins: {origin:?} is not an origin; write scheme://host[:port], e.g. \
                 \"https://dashboard.example.com\""
            )));
        }
        origins.push(origin);
    }
    Ok((hosts, origins))
}

#[cfg(test)]
mod tests;
