//! Read-only SQL over the datasets.
//!
//! The service answers Arrow record batches; the HTTP layer encodes them as JSON, CSV, NDJSON or an Arrow
//! IPC stream, and the remote client reads the IPC stream back, so both deployments return the same
//! [`QueryResult`].

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use lakehouse_types::dataset::{SqlColumn, SqlRequest, SqlResponse};
use lakehouse_types::health::ServiceHealth;
use lakehouse_types::{ApiError, RequestContext};

use crate::{Cells, Result};

/// Read-only SQL: every dataset is a table, `"name@v3"` is version 3 of it.
#[async_trait]
pub trait QueryApi: Send + Sync + std::fmt::Debug {
    /// Runs one read-only statement under the time and memory limits.
    async fn sql(&self, ctx: &RequestContext, request: SqlRequest) -> Result<QueryResult>;

    /// Whether SQL can be answered.
    async fn health(&self) -> ServiceHealth;
}

/// The rows of a query, at most `max_rows` of them.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Result schema (also for an empty result).
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// Whether more rows existed past `max_rows`.
    pub truncated: bool,
    /// Time spent planning and executing.
    pub elapsed_ms: u64,
}

impl QueryResult {
    /// Rows in the result.
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The JSON answer `{columns, rows, row_count, truncated, elapsed_ms}`.
    pub fn to_sql_response(&self) -> Result<SqlResponse> {
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| SqlColumn {
                name: f.name().clone(),
                data_type: type_name(f.data_type()),
            })
            .collect();
        let mut rows = Vec::with_capacity(self.row_count());
        for batch in &self.batches {
            let cells = batch
                .columns()
                .iter()
                .map(|c| Cells::EXACT.column(c).map_err(encode_error))
                .collect::<Result<Vec<_>>>()?;
            for row in 0..batch.num_rows() {
                rows.push(cells.iter().map(|c| c.value(row)).collect());
            }
        }
        Ok(SqlResponse {
            columns,
            row_count: rows.len(),
            rows,
            truncated: self.truncated,
            elapsed_ms: self.elapsed_ms,
        })
    }

    /// CSV with a header row.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if self.batches.is_empty() {
                writer
                    .write(&RecordBatch::new_empty(self.schema.clone()))
                    .map_err(encode_error)?;
            }
            for batch in &self.batches {
                writer.write(batch).map_err(encode_error)?;
            }
        }
        Ok(out)
    }

    /// One JSON object per row (column names as keys).
    pub fn to_ndjson(&self) -> Result<Vec<u8>> {
        let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
        for batch in &self.batches {
            writer.write(batch).map_err(encode_error)?;
        }
        writer.finish().map_err(encode_error)?;
        Ok(writer.into_inner())
    }

    /// An Arrow IPC stream (schema, then the batches).
    pub fn to_ipc(&self) -> Result<Vec<u8>> {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &self.schema)
            .map_err(encode_error)?;
        for batch in &self.batches {
            writer.write(batch).map_err(encode_error)?;
        }
        writer.finish().map_err(encode_error)?;
        writer.into_inner().map_err(encode_error)
    }

    /// Reads an Arrow IPC stream back (the remote client's side of [`QueryResult::to_ipc`]).
    pub fn from_ipc(bytes: &[u8], truncated: bool, elapsed_ms: u64) -> Result<Self> {
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(|e| {
            ApiError::new(
                lakehouse_types::ErrorCode::BadGateway,
                format!("bad Arrow stream: {e}"),
            )
        })?;
        let schema = reader.schema();
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| {
                ApiError::new(
                    lakehouse_types::ErrorCode::BadGateway,
                    format!("bad Arrow stream: {e}"),
                )
            })?;
        Ok(QueryResult {
            schema,
            batches,
            truncated,
            elapsed_ms,
        })
    }

    /// An empty result with a schema.
    pub fn empty(schema: Arc<Schema>) -> Self {
        QueryResult {
            schema,
            batches: Vec::new(),
            truncated: false,
            elapsed_ms: 0,
        }
    }
}

fn encode_error(e: arrow::error::ArrowError) -> ApiError {
    ApiError::internal(format!("could not encode the result: {e}"))
}

/// The column type as the API spells it (see `lakehouse_types::dataset`).
// arrow's DataType has dozens of variants; the remaining kinds (time, interval, struct, ...) are labelled
// with arrow's own name.
#[allow(clippy::wildcard_enum_match_arm)]
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "null".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "float16".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp".into(),
        DataType::Timestamp(_, None) => "timestamp_ntz".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            format!("decimal({p},{s})")
        }
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => {
            format!("list<{}>", type_name(f.data_type()))
        }
        DataType::Dictionary(_, value) => type_name(value),
        other => other.to_string().to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::Field;

    fn sample() -> QueryResult {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("pay", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a, b"), None])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(f64::NAN)])),
            ],
        )
        .expect("batch");
        QueryResult {
            schema,
            batches: vec![batch],
            truncated: true,
            elapsed_ms: 3,
        }
    }

    #[test]
    fn json_rows_are_arrays_in_column_order() {
        let r = sample().to_sql_response().expect("json");
        assert_eq!(r.columns[2].data_type, "float64");
        assert_eq!(
            r.rows[0],
            vec![
                serde_json::json!(1),
                serde_json::json!("a, b"),
                serde_json::json!(1.5)
            ]
        );
        assert_eq!(r.rows[1][1], serde_json::Value::Null);
        assert_eq!(r.rows[1][2], serde_json::json!("NaN"));
        assert!(r.truncated);
    }

    #[test]
    fn ipc_round_trips() {
        let r = sample();
        let back = QueryResult::from_ipc(&r.to_ipc().expect("ipc"), true, 3).expect("read");
        assert_eq!(back.batches, r.batches);
        let csv = String::from_utf8(r.to_csv().expect("csv")).expect("utf8");
        assert!(csv.starts_with("id,name,pay\n1,\"a, b\",1.5\n"), "{csv}");
    }
}
