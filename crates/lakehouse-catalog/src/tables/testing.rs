//! Test helpers over a table `t` of one `id` column on a local directory.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::DeltaTable;
use lakehouse_types::dataset::WriteMode;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{Tables, WriteArgs};

pub(crate) fn local(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).expect("store"))
}

pub(crate) fn rows(values: &[i64]) -> datafusion::execution::SendableRecordBatchStream {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let column: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
    let batch = RecordBatch::try_new(schema.clone(), vec![column]).expect("batch");
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter([Ok(batch)]),
    ))
}

/// Writes `values` to `t`; the version written.
pub(crate) async fn write(tables: &Tables, mode: WriteMode, values: &[i64]) -> u64 {
    try_write(tables, mode, values).await.expect("write")
}

/// Writes `values` to `t`.
pub(crate) async fn try_write(
    tables: &Tables,
    mode: WriteMode,
    values: &[i64],
) -> crate::Result<u64> {
    let table = tables.open_if_exists("t").await?;
    let args = WriteArgs {
        name: "t".into(),
        table,
        mode,
        merge_schema: false,
        batches: rows(values),
        metadata: serde_json::json!({}),
        plain_columns: Vec::new(),
    };
    Ok(tables.write(args).await?.version)
}

/// The rows the table's file statistics count.
pub(crate) fn rows_of(table: &DeltaTable) -> u64 {
    let state = table.snapshot().expect("loaded");
    state
        .log_data()
        .into_iter()
        .filter_map(|f| f.num_records())
        .map(|n| n as u64)
        .sum()
}

/// Every value of `t` as loaded, read from its data files, sorted.
pub(crate) async fn values_of(table: &DeltaTable) -> Vec<i64> {
    let store = table.log_store().object_store(None);
    let mut values = Vec::new();
    for file in table.snapshot().expect("loaded").log_data().iter() {
        let path = object_store::path::Path::from(file.path().as_ref());
        let bytes = store
            .get(&path)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ids");
            values.extend(ids.iter().flatten());
        }
    }
    values.sort_unstable();
    values
}
