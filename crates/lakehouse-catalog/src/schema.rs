//! Column descriptions and the reconciliation of an incoming schema with a table's.
//!
//! An append is drift-free when every incoming column exists in the table with a type the incoming values can
//! be read as without loss (the same type; nulls as anything; integers as floats; dates as timestamps;
//! anything as text — so a zip-code column that happens to be all digits in one file still lands as text), and
//! every table column is present. Otherwise the diff lists added, missing and retyped columns. With
//! `evolve=add_columns`, added columns are allowed (as nullable); missing and retyped ones never are.

use std::sync::Arc;

use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use lakehouse_api::query::type_name;
use lakehouse_types::dataset::{ColumnInfo, RetypedColumn, SchemaDiff};

/// The API description of a schema's columns.
pub fn columns_of(schema: &Schema) -> Vec<ColumnInfo> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnInfo {
            column: f.name().clone(),
            data_type: type_name(f.data_type()),
            nullable: f.is_nullable(),
        })
        .collect()
}

/// How incoming batches are turned into the batches written.
#[derive(Debug, Clone)]
pub struct Reconciled {
    /// The types to decode the input with, in the input's column order (text inputs are parsed straight
    /// into the table's type where that is text).
    pub parse: SchemaRef,
    /// The schema written: the table's columns in the table's order, then added columns.
    pub output: SchemaRef,
    /// For each output column, its index in the input.
    pub projection: Vec<usize>,
}

impl Reconciled {
    /// Incoming data as it is (a new table, or an overwrite): every column nullable.
    pub fn identity(incoming: &Schema) -> Self {
        let output = nullable(incoming);
        Reconciled {
            parse: output.clone(),
            output,
            projection: (0..incoming.fields().len()).collect(),
        }
    }

    /// Turns a decoded input batch into an output batch: reorders columns and casts to the table's types.
    pub fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
        let mut columns = Vec::with_capacity(self.projection.len());
        for (field, &index) in self.output.fields().iter().zip(&self.projection) {
            let column = batch.column(index);
            if column.data_type() == field.data_type() {
                columns.push(column.clone());
            } else {
                columns.push(cast(column, field.data_type())?);
            }
        }
        RecordBatch::try_new(self.output.clone(), columns)
    }
}

/// A copy of `schema` with every column nullable.
pub fn nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                // A column with no value at all has no type of its own; a table needs one.
                let data_type = if f.data_type() == &DataType::Null {
                    DataType::Utf8
                } else {
                    f.data_type().clone()
                };
                Field::new(f.name(), data_type, true).with_metadata(f.metadata().clone())
            })
            .collect::<Vec<Field>>(),
    ))
}

/// Whether values of type `from` can be stored in a column of type `to` without loss.
pub fn widens_to(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    if type_name(from) == type_name(to) {
        return true;
    }
    match (from, to) {
        (T::Null, _) => true,
        (_, T::Utf8 | T::LargeUtf8 | T::Utf8View) => !matches!(
            from,
            T::Binary | T::LargeBinary | T::BinaryView | T::List(_) | T::Struct(_)
        ),
        (T::Int8 | T::Int16 | T::Int32, T::Int32 | T::Int64) => true,
        (T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::Float32, T::Float64) => true,
        (T::Date32, T::Timestamp(_, _)) => true,
        _ => false,
    }
}

/// Reconciles an incoming schema with a table's for an append.
pub fn reconcile(
    table: &Schema,
    incoming: &Schema,
    add_columns: bool,
) -> Result<Reconciled, SchemaDiff> {
    let mut diff = SchemaDiff::default();
    let mut parse: Vec<Field> = incoming
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let mut output = Vec::new();
    let mut projection = Vec::new();
    for table_field in table.fields() {
        match incoming.index_of(table_field.name()) {
            Ok(index) => {
                let from = incoming.field(index).data_type();
                if widens_to(from, table_field.data_type()) {
                    if matches!(
                        table_field.data_type(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    ) {
                        parse[index] = Field::new(table_field.name(), DataType::Utf8, true);
                    } else if from == &DataType::Null {
                        // Every value is empty: read them straight as the table's type.
                        parse[index] =
                            Field::new(table_field.name(), table_field.data_type().clone(), true);
                    }
                    output.push(table_field.as_ref().clone());
                    projection.push(index);
                } else {
                    diff.retyped.push(RetypedColumn {
                        column: table_field.name().clone(),
                        from: type_name(table_field.data_type()),
                        to: type_name(from),
                    });
                }
            }
            Err(_) => diff.missing.push(ColumnInfo {
                column: table_field.name().clone(),
                data_type: type_name(table_field.data_type()),
                nullable: table_field.is_nullable(),
            }),
        }
    }
    let mut added = Vec::new();
    for (index, field) in incoming.fields().iter().enumerate() {
        if table.index_of(field.name()).is_err() {
            added.push(ColumnInfo {
                column: field.name().clone(),
                data_type: type_name(field.data_type()),
                nullable: true,
            });
            output.push(field.as_ref().clone().with_nullable(true));
            projection.push(index);
        }
    }
    if !(add_columns && diff.missing.is_empty() && diff.retyped.is_empty()) {
        diff.added = added;
    }
    if diff.is_empty() {
        Ok(Reconciled {
            parse: Arc::new(Schema::new(parse)),
            output: Arc::new(Schema::new(output)),
            projection,
        })
    } else {
        Err(diff)
    }
}

/// One line summarising a diff, for the error message.
pub fn summarize(diff: &SchemaDiff) -> String {
    let mut parts = Vec::new();
    if !diff.added.is_empty() {
        let names: Vec<_> = diff
            .added
            .iter()
            .map(|c| format!("{} ({})", c.column, c.data_type))
            .collect();
        parts.push(format!("added {}", names.join(", ")));
    }
    if !diff.missing.is_empty() {
        let names: Vec<_> = diff.missing.iter().map(|c| c.column.as_str()).collect();
        parts.push(format!("missing {}", names.join(", ")));
    }
    if !diff.retyped.is_empty() {
        let names: Vec<_> = diff
            .retyped
            .iter()
            .map(|c| format!("{} ({} -> {})", c.column, c.from, c.to))
            .collect();
        parts.push(format!("retyped {}", names.join(", ")));
    }
    let mut text = parts.join("; ");
    if !diff.added.is_empty() && diff.missing.is_empty() && diff.retyped.is_empty() {
        text.push_str(" (evolve=add_columns allows new columns)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn widening_is_not_drift_and_reorders() {
        let table = schema(&[
            ("id", DataType::Int64),
            ("pay", DataType::Float64),
            ("zip", DataType::Utf8),
        ]);
        let incoming = schema(&[
            ("zip", DataType::Int64),
            ("pay", DataType::Int64),
            ("id", DataType::Int64),
        ]);
        let r = reconcile(&table, &incoming, false).expect("compatible");
        assert_eq!(r.projection, vec![2, 1, 0]);
        assert_eq!(r.parse.field(0).data_type(), &DataType::Utf8);
    }

    #[test]
    fn drift_lists_each_kind() {
        let table = schema(&[
            ("id", DataType::Int64),
            ("age", DataType::Int64),
            ("gone", DataType::Utf8),
        ]);
        let incoming = schema(&[
            ("id", DataType::Int64),
            ("age", DataType::Utf8),
            ("new", DataType::Boolean),
        ]);
        let diff = reconcile(&table, &incoming, true).expect_err("drift");
        assert_eq!(diff.added.len(), 1);
        assert_eq!(diff.missing[0].column, "gone");
        assert_eq!(
            diff.retyped[0],
            RetypedColumn {
                column: "age".into(),
                from: "int64".into(),
                to: "string".into()
            }
        );
    }

    #[test]
    fn add_columns_allows_only_additions() {
        let table = schema(&[("id", DataType::Int64)]);
        let incoming = schema(&[("id", DataType::Int64), ("new", DataType::Boolean)]);
        assert!(reconcile(&table, &incoming, false).is_err());
        let r = reconcile(&table, &incoming, true).expect("evolves");
        assert_eq!(r.output.fields().len(), 2);
    }
}
