//! Object storage types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
    /// The store's entity tag, when it gives one.
    pub etag: Option<String>,
}

/// The answer to a PUT: `201 {key, size, etag}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutObjectResponse {
    /// The object's key.
    pub key: String,
    /// Bytes stored.
    pub size: u64,
    /// The new entity tag.
    pub etag: Option<String>,
}

/// Query parameters of `GET /v1/storage/objects`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Only keys that start with this string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// At most this many objects (default 1000, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only keys after this one (for paging: pass the last key of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// The answer to a LIST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    /// Matching objects in key order.
    pub objects: Vec<ObjectInfo>,
    /// More matching objects exist past the last one returned.
    pub truncated: bool,
}

/// A byte range requested by a GET (`Range: bytes=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=start-end` (end inclusive, as HTTP writes it).
    FromTo {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end_inclusive: u64,
    },
    /// `bytes=start-`.
    From {
        /// First byte.
        start: u64,
    },
    /// `bytes=-n`: the last n bytes.
    Suffix {
        /// How many bytes from the end.
        len: u64,
    },
}
