//! The S3 secrets file, kept apart from the main config so the config can be shared and committed.
//!
//! ```toml
//! [s3.primary]
//! endpoint = "http://127.0.0.1:9000"   # omit for AWS
//! bucket = "lakehouse"
//! region = "us-east-1"
//! access_key_id = "…"
//! secret_access_key = "…"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// Connection settings of one S3-compatible bucket.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct S3Settings {
    /// Endpoint URL for S3-compatible servers; AWS when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region (`us-east-1` when the server ignores regions).
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log line.
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct SecretsFile {
    #[serde(default)]
    s3: BTreeMap<String, S3Settings>,
}

/// Reads profile `profile` of the secrets file at `path`.
pub fn load(path: &Path, profile: &str) -> Result<S3Settings> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Secrets(format!(
            "cannot read the secrets file {}: {e}; create it with an [s3.{profile}] table",
            path.display()
        ))
    })?;
    let file: SecretsFile = toml::from_str(&text)
        .map_err(|e| Error::Secrets(format!("{} does not parse: {e}", path.display())))?;
    let settings = file.s3.get(profile).cloned().ok_or_else(|| {
        Error::Secrets(format!(
            "{} has no [s3.{profile}] table (endpoint, bucket, region, access_key_id, secret_access_key)",
            path.display()
        ))
    })?;
    if settings.bucket.is_empty() {
        return Err(Error::Secrets(format!(
            "[s3.{profile}] in {}: bucket is empty",
            path.display()
        )));
    }
    Ok(settings)
}
