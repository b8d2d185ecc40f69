//! [`StorageService`]: the in-process `StorageApi`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use lakehouse_api::storage::{ByteStream, GetObject, StorageApi};
use lakehouse_config::{StorageBackend, StorageConfig};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::policy::{Action, Policy, RolePolicy};
use lakehouse_types::storage::{ByteRange, ListQuery, ListResponse, ObjectInfo, PutObjectResponse};
use lakehouse_types::{ApiError, ErrorCode, RequestContext};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::keys::{reserved_prefix, validate_key, validate_prefix};
use crate::{Error, Result};

/// Default number of objects a LIST returns.
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// Most objects one LIST may return.
pub const MAX_LIST_LIMIT: usize = 10_000;
/// Multipart parts in flight per upload. With the part size this bounds an upload's memory.
const PARTS_IN_FLIGHT: usize = 2;

/// The caps storaged enforces.
#[derive(Debug, Clone, Copy)]
pub struct StorageLimits {
    /// Largest object, in bytes.
    pub max_object_bytes: u64,
    /// Transfers in flight at once.
    pub max_concurrent_transfers: usize,
    /// Size of one multipart part. An upload holds at most `part_size × (PARTS_IN_FLIGHT + 1)` bytes.
    pub part_size: usize,
}

impl StorageLimits {
    /// The limits of a config. S3 needs parts of at least 5 MiB; a local directory is happy with 1 MiB, which
    /// keeps a large upload's memory to a few MB.
    pub fn from_config(config: &StorageConfig) -> Self {
        let part_size = match config.backend {
            StorageBackend::Local { .. } => 1024 * 1024,
            StorageBackend::S3(_) => 5 * 1024 * 1024,
        };
        StorageLimits {
            max_object_bytes: config.max_object_bytes,
            max_concurrent_transfers: config.max_concurrent_transfers,
            part_size,
        }
    }
}

/// Object I/O over an object store, with the key rules and caps of SPEC §3 "Storage".
#[derive(Debug)]
pub struct StorageService {
    store: Arc<dyn ObjectStore>,
    limits: StorageLimits,
    transfers: Arc<Semaphore>,
    location: String,
    policy: Arc<Policy>,
}

impl StorageService {
    /// A service over `store`; `location` describes it in health reports.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        limits: StorageLimits,
        location: impl Into<String>,
    ) -> Self {
        StorageService {
            store,
            transfers: Arc::new(Semaphore::new(limits.max_concurrent_transfers)),
            limits,
            location: location.into(),
            policy: Arc::new(Policy::default()),
        }
    }

    /// The underlying object store, shared with the services that keep their data in it.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    fn permit(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.transfers)
            .try_acquire_owned()
            .map_err(|_| Error::Busy {
                limit: self.limits.max_concurrent_transfers,
            })
    }

    /// The service under `policy` (the built-in roles otherwise): reading needs `storage.read`, writing
    /// `storage.write`, each within the role's `storage_prefixes`.
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// Whether the caller may do `action` on `key`: the services' prefixes are the admin's alone, the rest
    /// needs the action, within the role's prefixes.
    fn check(&self, ctx: &RequestContext, key: &str, action: Action) -> Result<(), ApiError> {
        if let Some(prefix) = reserved_prefix(key) {
            if ctx.caller.is_admin() {
                return Ok(());
            }
            return Err(if action == Action::StorageWrite {
                Error::Reserved { prefix }
            } else {
                Error::ReservedRead { prefix }
            }
            .into());
        }
        let role = self.policy.require(&ctx.caller, action)?;
        if role.reaches_key(key) {
            Ok(())
        } else {
            Err(outside_prefixes(ctx, key, role))
        }
    }

    fn too_large(&self, size: u64) -> Result<()> {
        if size > self.limits.max_object_bytes {
            return Err(Error::TooLarge {
                limit: self.limits.max_object_bytes,
            });
        }
        Ok(())
    }

    async fn put_stream(
        &self,
        path: &Path,
        key: &str,
        mut body: ByteStream,
    ) -> Result<PutObjectResponse, ApiError> {
        // Small objects (most of them) go up in one request; only a body longer than one part starts a
        // multipart upload. Either way the object appears whole or not at all.
        let mut first_part: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        let mut total = 0u64;
        while buffered < self.limits.part_size {
            match body.next().await {
                None => {
                    let result = self
                        .store
                        .put(path, PutPayload::from_iter(first_part))
                        .await
                        .map_err(Error::Store)?;
                    return Ok(PutObjectResponse {
                        key: key.to_owned(),
                        size: total,
                        etag: result.e_tag,
                    });
                }
                Some(chunk) => {
                    let chunk = chunk?;
                    total += chunk.len() as u64;
                    self.too_large(total)?;
                    buffered += chunk.len();
                    first_part.push(chunk);
                }
            }
        }

        let upload = self.store.put_multipart(path).await.map_err(Error::Store)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.limits.part_size);
        for chunk in first_part {
            writer.put(chunk);
        }
        loop {
            let chunk = match body.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(err)) => {
                    abort(writer).await;
                    return Err(err);
                }
            };
            total += chunk.len() as u64;
            if let Err(err) = self.too_large(total) {
                abort(writer).await;
                return Err(err.into());
            }
            // Wait for a part to finish before buffering more: this is what bounds memory.
            if let Err(err) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                abort(writer).await;
                return Err(Error::Store(err).into());
            }
            writer.put(chunk);
        }
        let result = writer.finish().await.map_err(Error::Store)?;
        Ok(PutObjectResponse {
            key: key.to_owned(),
            size: total,
            etag: result.e_tag,
        })
    }

    fn resolve_range(range: ByteRange, size: u64) -> Result<std::ops::Range<u64>> {
        let unsatisfiable = || Error::Range(format!("the object is {size} bytes long"));
        let resolved = match range {
            ByteRange::FromTo {
                start,
                end_inclusive,
            } => {
                if end_inclusive < start {
                    return Err(Error::Range(format!(
                        "the range end {end_inclusive} is before its start {start}"
                    )));
                }
                start..end_inclusive.saturating_add(1).min(size)
            }
            ByteRange::From { start } => start..size,
            ByteRange::Suffix { len } => size.saturating_sub(len)..size,
        };
        if resolved.start >= size || resolved.is_empty() {
            return Err(unsatisfiable());
        }
        Ok(resolved)
    }
}

async fn abort(writer: WriteMultipart) {
    if let Err(err) = writer.abort().await {
        tracing::warn!(error = %err, "could not abort a multipart upload; the backend may keep its parts");
    }
}

// object_store::Error is non-exhaustive: every other kind stays a store error.
#[allow(clippy::wildcard_enum_match_arm)]
fn not_found(key: &str, err: object_store::Error) -> Error {
    match err {
        object_store::Error::NotFound { .. } => Error::NotFound(key.to_owned()),
        other => Error::Store(other),
    }
}

fn info(key: String, meta: &ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key,
        size: meta.size,
        last_modified: meta.last_modified,
        etag: meta.e_tag.clone(),
    }
}

/// The 403 for a key outside the role's `storage_prefixes`.
fn outside_prefixes(ctx: &RequestContext, key: &str, role: &RolePolicy) -> ApiError {
    let prefixes = role.storage_prefixes.as_deref().unwrap_or_default();
    ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "role {} may use raw objects only under {}; {key:?} is outside them",
            ctx.caller.role,
            if prefixes.is_empty() {
                "no prefix".to_owned()
            } else {
                prefixes.join(", ")
            }
        ),
    )
}

#[async_trait]
impl StorageApi for StorageService {
    async fn put(
        &self,
        ctx: &RequestContext,
        key: &str,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<PutObjectResponse, ApiError> {
        validate_key(key)?;
        self.check(ctx, key, Action::StorageWrite)?;
        if let Some(length) = content_length {
            self.too_large(length)?;
        }
        let _permit = self.permit()?;
        self.put_stream(&Path::from(key), key, body).await
    }

    async fn get(
        &self,
        ctx: &RequestContext,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<GetObject, ApiError> {
        validate_key(key)?;
        self.check(ctx, key, Action::StorageRead)?;
        let permit = self.permit()?;
        let path = Path::from(key);
        let mut options = GetOptions::default();
        if let Some(range) = range {
            let meta = self
                .store
                .head(&path)
                .await
                .map_err(|e| not_found(key, e))?;
            let resolved = Self::resolve_range(range, meta.size)?;
            options.range = Some(GetRange::Bounded(resolved));
        }
        let result = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(|e| not_found(key, e))?;
        let object_info = info(key.to_owned(), &result.meta);
        let returned = result.range.clone();
        let body = result
            .into_stream()
            .map(move |chunk| {
                // The permit travels with the body: the transfer counts until its last byte is sent.
                let _held = &permit;
                chunk.map_err(|e| ApiError::from(Error::Store(e)))
            })
            .boxed();
        Ok(GetObject {
            info: object_info,
            range: returned,
            partial: range.is_some(),
            body,
        })
    }

    async fn head(&self, ctx: &RequestContext, key: &str) -> Result<ObjectInfo, ApiError> {
        validate_key(key)?;
        self.check(ctx, key, Action::StorageRead)?;
        let meta = self
            .store
            .head(&Path::from(key))
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(info(key.to_owned(), &meta))
    }

    async fn delete(&self, ctx: &RequestContext, key: &str) -> Result<(), ApiError> {
        validate_key(key)?;
        self.check(ctx, key, Action::StorageWrite)?;
        let path = Path::from(key);
        // S3 deletes of missing keys succeed silently; look first so every backend answers 404 alike.
        self.store
            .head(&path)
            .await
            .map_err(|e| not_found(key, e))?;
        self.store
            .delete(&path)
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(())
    }

    async fn list(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
    ) -> Result<ListResponse, ApiError> {
        // The services' own prefixes are not shown to other roles, not even by name, nor are keys outside
        // the role's storage prefixes.
        let role = self.policy.require(&ctx.caller, Action::StorageRead)?;
        let hide_reserved = !ctx.caller.is_admin();
        let prefix = query.prefix.clone().unwrap_or_default();
        validate_prefix(&prefix)?;
        let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(Error::InvalidParameter(format!(
                "limit must be between 1 and {MAX_LIST_LIMIT}"
            ))
            .into());
        }
        if let Some(after) = &query.after {
            validate_key(after)?;
        }
        // object_store lists by whole path segments; a prefix may stop mid-segment ("reports/2025-"), so list
        // its directory and filter by the string prefix.
        let dir = prefix.rfind('/').map(|i| Path::from(&prefix[..i]));
        let mut listing = match &query.after {
            Some(after) => self
                .store
                .list_with_offset(dir.as_ref(), &Path::from(after.as_str())),
            None => self.store.list(dir.as_ref()),
        };
        // Backends list in no promised order; keep the limit+1 smallest keys so the page is the first `limit`
        // in key order and we know whether more exist, in memory bounded by the limit.
        let mut kept: BTreeMap<String, ObjectInfo> = BTreeMap::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(Error::Store)?;
            let key = meta.location.to_string();
            if !key.starts_with(&prefix)
                || query.after.as_ref().is_some_and(|after| key <= *after)
                || (hide_reserved && reserved_prefix(&key).is_some())
                || !role.reaches_key(&key)
            {
                continue;
            }
            kept.insert(key.clone(), info(key, &meta));
            if kept.len() > limit + 1 {
                kept.pop_last();
            }
        }
        let truncated = kept.len() > limit;
        if truncated {
            kept.pop_last();
        }
        Ok(ListResponse {
            objects: kept.into_values().collect(),
            truncated,
        })
    }

    async fn health(&self) -> ServiceHealth {
        // A HEAD of a key that need not exist proves the store answers, without listing a large bucket.
        match self.store.head(&Path::from("_lakehouse/health")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => ServiceHealth::ok("local")
                .with_detail("backend", self.location.clone())
                .with_detail(
                    "transfers_in_flight",
                    self.limits.max_concurrent_transfers - self.transfers.available_permits(),
                ),
            Err(err) => ServiceHealth::down(
                "local",
                format!("object store {} unreachable: {err}", self.location),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
