//! Key rules, enforced here with this crate's error: see `lakehouse_types::keys`.

pub use lakehouse_types::keys::{MAX_KEY_BYTES, RESERVED_PREFIXES, reserved_prefix};

use crate::{Error, Result};

/// Checks a full object key.
pub fn validate_key(key: &str) -> Result<()> {
    lakehouse_types::keys::validate_key(key).map_err(Error::InvalidKey)
}

/// Checks a LIST prefix.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    lakehouse_types::keys::validate_prefix(prefix).map_err(Error::InvalidKey)
}
