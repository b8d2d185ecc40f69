//! What a corpus keeps on storage, through the storage service: its definition and its state (the dataset
//! version it answers from, the embedding model, and each row's fingerprints).
//!
//! Layout, under the catalog's prefix:
//! - `_catalog/matrix/corpora/<name>/definition.json`: the definition as created. Its presence is the
//!   corpus's existence: written last at creation, deleted first at deletion.
//! - `_catalog/matrix/corpora/<name>/state.json`: [`StoredState`], rewritten at checkpoints during a build
//!   and at the end of each catch-up. A crash between a vector write and the next checkpoint only makes the
//!   next run embed those rows again (upserts by id: never twice in the index).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lakehouse_api::StorageApi;
use lakehouse_types::matrix::CorpusDefinition;
use lakehouse_types::storage::ListQuery;
use lakehouse_types::{ErrorCode, RequestContext};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const PREFIX: &str = "_catalog/matrix/corpora/";

fn definition_key(name: &str) -> String {
    format!("{PREFIX}{name}/definition.json")
}

fn state_key(name: &str) -> String {
    format!("{PREFIX}{name}/state.json")
}

/// A row's fingerprints: of its text (embedded again when it changes) and of its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prints {
    pub(crate) text: u64,
    pub(crate) meta: u64,
}

/// A corpus's state as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StoredState {
    /// The dataset version searches answer from (none before the first build ends).
    pub(crate) version: Option<u64>,
    /// The embedding model of the corpus's vectors.
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// Why the last build failed, and at which dataset version.
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) failed_version: Option<u64>,
    pub(crate) created_at: Option<DateTime<Utc>>,
    pub(crate) updated_at: Option<DateTime<Utc>>,
    /// Rows in the index, with their fingerprints (three lists of one length).
    #[serde(default)]
    pub(crate) ids: Vec<String>,
    #[serde(default)]
    pub(crate) text_prints: Vec<u64>,
    #[serde(default)]
    pub(crate) meta_prints: Vec<u64>,
}

impl StoredState {
    /// The fingerprints by id.
    pub(crate) fn prints(&self) -> HashMap<String, Prints> {
        self.ids
            .iter()
            .zip(self.text_prints.iter().zip(&self.meta_prints))
            .map(|(id, (&text, &meta))| (id.clone(), Prints { text, meta }))
            .collect()
    }

    /// Replaces the stored fingerprints.
    pub(crate) fn set_prints(&mut self, prints: &HashMap<String, Prints>) {
        let mut entries: Vec<(&String, &Prints)> = prints.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.ids = entries.iter().map(|(id, _)| (*id).clone()).collect();
        self.text_prints = entries.iter().map(|(_, p)| p.text).collect();
        self.meta_prints = entries.iter().map(|(_, p)| p.meta).collect();
    }
}

/// Reads and writes corpus objects through the storage service, as the system.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    storage: Arc<dyn StorageApi>,
    ctx: RequestContext,
}

impl Store {
    pub(crate) fn new(storage: Arc<dyn StorageApi>, ctx: RequestContext) -> Self {
        Store { storage, ctx }
    }

    async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = Bytes::from(
            serde_json::to_vec(value)
                .map_err(|e| Error::Internal(format!("encoding {key}: {e}")))?,
        );
        let len = bytes.len() as u64;
        let body = futures::stream::once(async move { Ok(bytes) }).boxed();
        self.storage.put(&self.ctx, key, Some(len), body).await?;
        Ok(())
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        let object = match self.storage.get(&self.ctx, key, None).await {
            Ok(object) => object,
            Err(e) if e.code == ErrorCode::ObjectNotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut body = object.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Internal(format!("{key} is not readable: {e}")))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.storage.delete(&self.ctx, key).await {
            Ok(()) => Ok(()),
            Err(e) if e.code == ErrorCode::ObjectNotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn put_definition(&self, definition: &CorpusDefinition) -> Result<()> {
        self.put(&definition_key(&definition.name), definition)
            .await
    }

    pub(crate) async fn put_state(&self, name: &str, state: &StoredState) -> Result<()> {
        self.put(&state_key(name), state).await
    }

    pub(crate) async fn state(&self, name: &str) -> Result<Option<StoredState>> {
        self.get(&state_key(name)).await
    }

    /// Deletes a corpus's objects, the definition first.
    pub(crate) async fn delete_corpus(&self, name: &str) -> Result<()> {
        self.delete(&definition_key(name)).await?;
        self.delete(&state_key(name)).await
    }

    /// Every stored definition.
    pub(crate) async fn definitions(&self) -> Result<Vec<CorpusDefinition>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .storage
                .list(
                    &self.ctx,
                    &ListQuery {
                        prefix: Some(PREFIX.to_owned()),
                        limit: Some(1000),
                        after: after.clone(),
                    },
                )
                .await?;
            for object in &page.objects {
                if object.key.ends_with("/definition.json")
                    && let Some(definition) = self.get::<CorpusDefinition>(&object.key).await?
                {
                    out.push(definition);
                }
            }
            match page.objects.last() {
                Some(last) if page.truncated => after = Some(last.key.clone()),
                _ => break,
            }
        }
        Ok(out)
    }
}
