//! Existing Parquet objects as a new version.
//!
//! The objects are read (footers first, to check their schemas agree with each other and with the table) and
//! their rows written into the table as one version, through the same write path as an ingest: the table stays
//! self-contained under `datasets/<name>/` with statistics other engines use, and the originals are untouched.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{StreamExt, TryStreamExt};
use lakehouse_api::query::type_name;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
// `ParquetObjectReader` is deprecated in favour of hand-written readers; it still does exactly what is needed
// here (ranged reads of one object) and replacing it would duplicate it.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};

use crate::schema::Reconciled;
use crate::{Error, Result};

/// Parquet objects to read, with their common schema.
#[derive(Debug, Clone)]
pub struct ParquetSources {
    /// The schema every file has.
    pub schema: SchemaRef,
    files: Vec<(Path, u64)>,
}

/// Checks that every key is a Parquet object and that they share one schema.
#[allow(deprecated)]
pub async fn inspect(store: &Arc<dyn ObjectStore>, keys: &[String]) -> Result<ParquetSources> {
    if keys.is_empty() {
        return Err(Error::BadRequest(
            "`files` must list at least one Parquet object key".into(),
        ));
    }
    let mut schema: Option<SchemaRef> = None;
    let mut files = Vec::with_capacity(keys.len());
    for key in keys {
        let path = Path::parse(key)
            .map_err(|e| Error::BadRequest(format!("invalid object key {key:?}: {e}")))?;
        let meta = match store.head(&path).await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::ObjectNotFound(key.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        let reader =
            ParquetObjectReader::new(store.clone(), path.clone()).with_file_size(meta.size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|e| {
                Error::Unprocessable(format!(
                    "object {key:?} is not a readable Parquet file: {e}"
                ))
            })?;
        let file_schema = builder.schema().clone();
        match &schema {
            None => schema = Some(file_schema),
            Some(first) => {
                let describe = |s: &SchemaRef| -> Vec<(String, String)> {
                    s.fields()
                        .iter()
                        .map(|f| (f.name().clone(), type_name(f.data_type())))
                        .collect()
                };
                if describe(first) != describe(&file_schema) {
                    return Err(Error::Unprocessable(format!(
                        "object {key:?} has a different schema from {:?}; register files of one schema at a time",
                        keys[0]
                    )));
                }
            }
        }
        files.push((path, meta.size));
    }
    let schema = schema.ok_or_else(|| Error::BadRequest("no files".into()))?;
    Ok(ParquetSources { schema, files })
}

/// The rows of every file, conformed to the table's schema.
#[allow(deprecated)]
pub fn stream(
    store: Arc<dyn ObjectStore>,
    sources: ParquetSources,
    reconciled: Reconciled,
) -> SendableRecordBatchStream {
    let output = reconciled.output.clone();
    let reconciled = Arc::new(reconciled);
    let batches = futures::stream::iter(sources.files)
        .then(move |(path, size)| {
            let store = store.clone();
            async move {
                let reader = ParquetObjectReader::new(store, path).with_file_size(size);
                let stream = ParquetRecordBatchStreamBuilder::new(reader)
                    .await?
                    .with_batch_size(8192)
                    .build()?;
                Ok::<_, parquet::errors::ParquetError>(stream)
            }
        })
        .try_flatten()
        .map(move |batch| {
            let batch = batch.map_err(|e| DataFusionError::External(Box::new(e)))?;
            reconciled
                .conform(&batch)
                .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
        });
    Box::pin(RecordBatchStreamAdapter::new(output, batches))
}
