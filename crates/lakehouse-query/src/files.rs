//! A Delta table read as the Parquet files its snapshot lists, by DataFusion's own Parquet scan.
//!
//! deltalake's table provider is written for every Delta feature: its scan adds a file-id column to every
//! batch, runs each batch through a transform that maps physical to logical columns, and is rebuilt from
//! the snapshot on each query. Our writers use none of the features that need this (no partition columns,
//! no column mapping, no deletion vectors), so for such tables the snapshot's file list goes straight to a
//! DataFusion `DataSourceExec`: the same Parquet reader, statistics pruning and metadata cache, without the
//! per-batch work. A table that does use one of those features ([`FileTable::plain`] says which) is read
//! through deltalake's provider instead.

use std::ops::Range;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfigBuilder, ParquetFileReaderFactory, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::arrow::{
    ARROW_SCHEMA_META_KEY, add_encoded_arrow_schema_to_metadata, parquet_to_arrow_schema,
};
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::errors::Result as ParquetResult;
use datafusion::parquet::file::metadata::{
    FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataBuilder,
};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use deltalake::DeltaTable;
use futures::future::BoxFuture;
use object_store::ObjectMeta;
use object_store::path::Path;

/// The files of one table version, with the schema queries see.
#[derive(Debug)]
pub(crate) struct FileTable {
    schema: SchemaRef,
    files: Vec<PartitionedFile>,
    statistics: Statistics,
    /// Columns read as dictionaries (see [`INLINE_STRING_BYTES`]).
    dictionaries: Arc<[String]>,
}

/// How dictionary columns are typed.
fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// DataFusion's reader factory: footers and page indexes are read once and kept in the runtime's cache.
fn cached_readers(runtime: &RuntimeEnv) -> Result<CachedParquetFileReaderFactory> {
    Ok(CachedParquetFileReaderFactory::new(
        runtime.object_store(root())?,
        runtime.cache_manager.get_file_metadata_cache(),
    ))
}

/// The URL every table's store is registered under.
fn root() -> ObjectStoreUrl {
    ObjectStoreUrl::parse(lakehouse_catalog::tables::root_url())
        .unwrap_or_else(|_| unreachable!("a constant URL"))
}

/// Why a table cannot be read as plain files (then deltalake's provider reads it).
fn needs_delta_reader(table: &DeltaTable) -> Option<&'static str> {
    let state = table.snapshot().ok()?;
    let snapshot = state.snapshot();
    if !snapshot.metadata().partition_columns().is_empty() {
        return Some("partition columns");
    }
    let mapping = snapshot
        .metadata()
        .configuration()
        .get("delta.columnMapping.mode")
        .map(String::as_str);
    if !matches!(mapping, None | Some("none")) {
        return Some("column mapping");
    }
    if state
        .log_data()
        .iter()
        .any(|f| f.deletion_vector_descriptor().is_some())
    {
        return Some("deletion vectors");
    }
    None
}

/// The schema a scan produces: the chosen text columns as dictionaries, other strings and binaries as view
/// types when the session reads them so (DataFusion's default), as its own Parquet tables would.
fn scan_schema(schema: &Schema, view_types: bool, dictionaries: &[String]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let text = matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8);
            let binary = matches!(f.data_type(), DataType::Binary | DataType::LargeBinary);
            let field = f.as_ref().clone();
            if text && dictionaries.contains(f.name()) {
                field.with_data_type(dictionary_type())
            } else if text && view_types {
                field.with_data_type(DataType::Utf8View)
            } else if binary && view_types {
                field.with_data_type(DataType::BinaryView)
            } else {
                field
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

impl FileTable {
    /// The table's current files, or `None` when it uses a feature only deltalake's reader handles.
    /// `prefix` is where the table lives in the store (file paths in the log are relative to it).
    pub(crate) async fn plain(
        table: &DeltaTable,
        prefix: &Path,
        view_types: bool,
        runtime: &RuntimeEnv,
    ) -> Result<Option<Self>> {
        if let Some(feature) = needs_delta_reader(table) {
            tracing::debug!(feature, "table read through the Delta provider");
            return Ok(None);
        }
        let Ok(state) = table.snapshot() else {
            return Ok(None);
        };
        let logical = state.snapshot().arrow_schema();
        let mut rows = Some(0usize);
        let mut bytes = 0usize;
        let mut files = Vec::new();
        for file in state.log_data().iter() {
            let size = u64::try_from(file.size()).unwrap_or(0);
            let location = Path::from_iter(prefix.parts().chain(file.object_store_path().parts()));
            let last_modified = chrono::DateTime::from_timestamp_millis(file.modification_time())
                .unwrap_or_default();
            rows = rows.zip(file.num_records()).map(|(a, b)| a + b);
            bytes += usize::try_from(size).unwrap_or(usize::MAX);
            files.push(PartitionedFile::new_from_meta(ObjectMeta {
                location,
                last_modified,
                size,
                e_tag: None,
                version: None,
            }));
        }
        let dictionaries = match files.first() {
            Some(file) => dictionary_columns(file, &logical, &cached_readers(runtime)?).await,
            None => Vec::new(),
        };
        let schema = scan_schema(&logical, view_types, &dictionaries);
        let mut statistics = Statistics::new_unknown(&schema);
        statistics.num_rows = rows.map_or(Precision::Absent, Precision::Exact);
        statistics.total_byte_size = Precision::Inexact(bytes);
        Ok(Some(FileTable {
            schema,
            files,
            statistics,
            dictionaries: dictionaries.into(),
        }))
    }
}

#[async_trait]
impl TableProvider for FileTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let reader = DictionaryReaders {
            inner: cached_readers(state.runtime_env())?,
            columns: self.dictionaries.clone(),
        };
        let source = ParquetSource::new(TableSchema::from(self.schema.clone()))
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_parquet_file_reader_factory(Arc::new(reader));
        // One group: DataFusion splits it into byte ranges, one per target partition.
        let config = FileScanConfigBuilder::new(root(), Arc::new(source))
            .with_file_groups(vec![FileGroup::new(self.files.clone())])
            .with_statistics(self.statistics.clone())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }

    /// The row count, for the optimizer's rules (see `eager.rs`).
    fn statistics(&self) -> Option<Statistics> {
        Some(self.statistics.clone())
    }

    /// Filters stay above the scan (inexact); DataFusion pushes them into the Parquet scan itself for
    /// pruning by row-group and page statistics.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}

/// Text columns read as dictionaries: where every data page of the column is dictionary-encoded, the
/// values average more than [`INLINE_STRING_BYTES`] and repeat (see [`REPEATS`]), a filter or function over the
/// column is evaluated once per distinct value instead of once per row (a `lower(notes) LIKE ..` over 1M rows
/// of 13 distinct notes: 45 ms as views, 12 ms as a dictionary). Short values stay views: they sit inline in
/// each view, so per-row work on them is cheap, and grouping or joining by a dictionary column costs more than
/// by a view column.
const INLINE_STRING_BYTES: i64 = 12;

/// ... and when the values repeat: their bytes are this many times the (compressed) dictionary pages'. A
/// column of distinct names is dictionary-encoded too (the writer's dictionary has room for them), but
/// reading it as a dictionary saves nothing.
const REPEATS: i64 = 8;

/// Which string columns of `schema` to read as dictionaries, judged by one data file's footer (the files
/// of a table come from one writer with one configuration).
async fn dictionary_columns(
    file: &PartitionedFile,
    schema: &Schema,
    factory: &CachedParquetFileReaderFactory,
) -> Vec<String> {
    let metrics = ExecutionPlanMetricsSet::new();
    let Ok(mut reader) = factory.create_reader(0, file.clone(), None, &metrics) else {
        return Vec::new();
    };
    let metadata = match reader.get_metadata(None).await {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "footer unreadable; no dictionary columns");
            return Vec::new();
        }
    };
    let descriptor = metadata.file_metadata().schema_descr();
    schema
        .fields()
        .iter()
        .filter(|f| {
            matches!(
                f.data_type(),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            )
        })
        .filter_map(|field| {
            // Top-level columns only: a leaf whose path is just the field's name.
            let leaf = (0..descriptor.num_columns()).find(|&i| {
                let path = descriptor.column(i).path().parts().to_vec();
                path.len() == 1 && path[0] == *field.name()
            })?;
            let mut bytes = 0i64;
            let mut values = 0i64;
            let mut dictionary = 0i64;
            for group in metadata.row_groups() {
                let chunk = group.column(leaf);
                let all_dictionary = chunk.dictionary_page_offset().is_some()
                    && chunk.page_encoding_stats_mask().is_some_and(|mask| {
                        mask.is_only(Encoding::RLE_DICTIONARY)
                            || mask.is_only(Encoding::PLAIN_DICTIONARY)
                    });
                if !all_dictionary {
                    return None;
                }
                let nulls = chunk
                    .statistics()
                    .and_then(|s| s.null_count_opt())
                    .and_then(|n| i64::try_from(n).ok())
                    .unwrap_or(0);
                bytes += chunk.unencoded_byte_array_data_bytes()?;
                values += chunk.num_values() - nulls;
                dictionary += chunk.data_page_offset() - chunk.dictionary_page_offset()?;
            }
            let long = bytes > INLINE_STRING_BYTES * values;
            let repeated = bytes > REPEATS * dictionary;
            (values > 0 && long && repeated).then(|| field.name().clone())
        })
        .collect()
}

/// Reads files through DataFusion's cached reader, telling the Parquet decoder to produce the chosen
/// columns as dictionaries. The decoder keeps a dictionary-encoded column's dictionary when the Arrow
/// schema stored in the file asks for one, so the stored schema is what is adjusted: the footer is
/// otherwise passed on as read (and cached) by DataFusion.
#[derive(Debug)]
struct DictionaryReaders {
    inner: CachedParquetFileReaderFactory,
    columns: Arc<[String]>,
}

impl ParquetFileReaderFactory for DictionaryReaders {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self
            .inner
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        if self.columns.is_empty() {
            return Ok(inner);
        }
        Ok(Box::new(DictionaryReader {
            inner,
            columns: self.columns.clone(),
        }))
    }
}

struct DictionaryReader {
    inner: Box<dyn AsyncFileReader + Send>,
    columns: Arc<[String]>,
}

impl AsyncFileReader for DictionaryReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let metadata = self.inner.get_metadata(options).await?;
            Ok(with_dictionaries(metadata, &self.columns))
        })
    }
}

/// The footer with its stored Arrow schema asking for `columns` as dictionaries (unchanged when the
/// file has none of them as strings).
fn with_dictionaries(metadata: Arc<ParquetMetaData>, columns: &[String]) -> Arc<ParquetMetaData> {
    let file = metadata.file_metadata();
    let Ok(stored) = parquet_to_arrow_schema(file.schema_descr(), file.key_value_metadata()) else {
        return metadata;
    };
    let mut changed = false;
    let fields: Vec<Field> = stored
        .fields()
        .iter()
        .map(|f| {
            let text = matches!(
                f.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
            if text && columns.iter().any(|c| c == f.name()) {
                changed = true;
                f.as_ref().clone().with_data_type(dictionary_type())
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    if !changed {
        return metadata;
    }
    let hinted = Schema::new_with_metadata(fields, stored.metadata().clone());
    let others: Vec<KeyValue> = file
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key != ARROW_SCHEMA_META_KEY)
        .cloned()
        .collect();
    let mut props = WriterProperties::builder()
        .set_key_value_metadata(Some(others))
        .build();
    add_encoded_arrow_schema_to_metadata(&hinted, &mut props);
    let file = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_owned),
        props.key_value_metadata().cloned(),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    let mut old = ParquetMetaDataBuilder::new_from_metadata(metadata.as_ref().clone());
    Arc::new(
        ParquetMetaDataBuilder::new(file)
            .set_row_groups(old.take_row_groups())
            .set_column_index(old.take_column_index())
            .set_offset_index(old.take_offset_index())
            .build(),
    )
}
