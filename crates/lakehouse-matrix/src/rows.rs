//! A dataset version read as rows: Arrow batches → each row's id, text and field values as JSON, the way
//! filters and rules compare them (decimals as numbers, dates as ISO text, list columns as lists).

use std::collections::HashSet;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use lakehouse_api::Cells;
use lakehouse_types::matrix::Fields;
use serde_json::Value;

use crate::definition::{Plan, Template};
use crate::error::{Error, Result};

/// Longest value of a column found to be a list column (longer text is prose, not a list).
const MAX_LIST_VALUE: usize = 200;

/// One row of a corpus.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The id column's value, as text.
    pub(crate) id: String,
    /// The rendered text (embedded and keyword-indexed).
    pub(crate) text: String,
    /// Every column read, by name.
    pub(crate) values: Fields,
}

impl Row {
    /// Hash of the text: a changed text is embedded again.
    pub(crate) fn text_fingerprint(&self) -> u64 {
        fingerprint(self.text.as_bytes())
    }
}

/// The first 8 bytes of the BLAKE3 hash.
pub(crate) fn fingerprint(bytes: &[u8]) -> u64 {
    let hash = blake3::hash(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The metadata of a row (the plan's metadata columns) and its fingerprint.
pub(crate) fn metadata(plan: &Plan, row: &Row) -> (Fields, u64) {
    let mut meta = Fields::new();
    for column in &plan.metadata {
        if let Some(v) = row.values.get(column) {
            meta.insert(column.clone(), v.clone());
        }
    }
    // serde_json's map is ordered by key, so equal metadata serialises to equal bytes.
    let bytes = serde_json::to_vec(&meta).unwrap_or_default();
    (meta, fingerprint(&bytes))
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(text_of)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other @ (Value::Bool(_) | Value::Number(_) | Value::Object(_)) => Some(other.to_string()),
    }
}

/// Every row of `batches` as read for `plan`, with the template rendered.
pub(crate) fn read_rows(plan: &Plan, batches: &[RecordBatch]) -> Result<Vec<Row>> {
    read_with(&plan.definition.id_column, &plan.template, batches, |_| {
        true
    })
}

/// Rows with an id and a text rendered by `template`, keeping the columns `keep` accepts.
pub(crate) fn read_with(
    id_column: &str,
    template: &Template,
    batches: &[RecordBatch],
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<Row>> {
    let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        let schema: &Schema = batch.schema_ref();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let cells = batch
            .columns()
            .iter()
            .map(|c| {
                Cells::COMPARABLE
                    .column(c)
                    .map_err(|e| Error::Internal(format!("cannot read a column: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let Some(id_at) = names.iter().position(|n| *n == id_column) else {
            return Err(Error::Internal(format!(
                "the id column '{id_column}' was not read"
            )));
        };
        for r in 0..batch.num_rows() {
            let mut values = Fields::new();
            for (name, column) in names.iter().zip(&cells) {
                values.insert((*name).to_owned(), column.value(r));
            }
            let id = match &values.get(names[id_at]).cloned().unwrap_or(Value::Null) {
                Value::Null => {
                    return Err(Error::BadRequest(format!(
                        "id_column '{id_column}' has a null (or empty) value; every row needs an id"
                    )));
                }
                Value::String(s) => s.clone(),
                other
                @ (Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_)) => {
                    other.to_string()
                }
            };
            let text = template.render(|c| values.get(c).and_then(text_of));
            values.retain(|k, _| keep(k));
            rows.push(Row { id, text, values });
        }
    }
    Ok(rows)
}

/// Fails when two rows share an id (naming one).
pub(crate) fn check_unique(id_column: &str, rows: &[Row]) -> Result<()> {
    let mut seen = HashSet::with_capacity(rows.len());
    for row in rows {
        if !seen.insert(row.id.as_str()) {
            return Err(Error::BadRequest(format!(
                "id_column '{id_column}' is not unique: '{}' appears more than once",
                row.id
            )));
        }
    }
    Ok(())
}

/// The list columns of `rows`: those the plan names, or else those of `contains_all` rules plus the
/// filterable text columns where some value holds the separator and none is long prose.
pub(crate) fn list_columns(plan: &Plan, rows: &[Row]) -> Vec<String> {
    if let Some(named) = &plan.list_columns {
        let mut out = named.clone();
        for c in &plan.rule_list_columns {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        return out;
    }
    let mut out = plan.rule_list_columns.clone();
    let sep = plan.separator.as_str();
    for column in &plan.filterable {
        if out.contains(column) || *column == plan.definition.id_column {
            continue;
        }
        let mut has_separator = false;
        let mut all_short = true;
        for row in rows {
            if let Some(Value::String(s)) = row.values.get(column) {
                has_separator |= s.contains(sep);
                all_short &= s.len() <= MAX_LIST_VALUE;
            }
        }
        if has_separator && all_short {
            out.push(column.clone());
        }
    }
    out
}

/// Text columns holding prose: some value longer than any label or list would be.
pub(crate) fn prose_columns(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for row in rows {
        for (column, value) in &row.values {
            if let Value::String(s) = value
                && s.len() > MAX_LIST_VALUE
                && !out.contains(column)
            {
                out.push(column.clone());
            }
        }
    }
    out
}

/// Splits the list columns of every row into lists of trimmed, non-empty items.
pub(crate) fn split_lists(rows: &mut [Row], columns: &[String], separator: &str) {
    for row in rows {
        for column in columns {
            if let Some(value) = row.values.get_mut(column)
                && let Value::String(s) = value
            {
                let items = s
                    .split(separator)
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_owned()))
                    .collect();
                *value = Value::Array(items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Decimal128Array, Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    use super::*;

    #[test]
    fn cells_become_comparable_json() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("pay", DataType::Decimal128(6, 2), true),
            Field::new("from", DataType::Date32, true),
            Field::new("rating", DataType::Float64, true),
            Field::new("certs", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("w-1"), Some("w-2")])),
                Arc::new(
                    Decimal128Array::from(vec![Some(1850), None])
                        .with_precision_and_scale(6, 2)
                        .expect("decimal"),
                ),
                Arc::new(Date32Array::from(vec![Some(20_101), Some(0)])),
                Arc::new(Float64Array::from(vec![Some(4.5), Some(f64::NAN)])),
                Arc::new(StringArray::from(vec![
                    Some(" OSHA 10; Forklift "),
                    Some("  "),
                ])),
            ],
        )
        .expect("batch");
        let template = Template::parse("{id} has {certs}").expect("template");
        let mut rows = read_with("id", &template, &[batch], |_| true).expect("rows");
        assert_eq!(rows[0].values["pay"], serde_json::json!(18.5));
        assert_eq!(rows[0].values["from"], serde_json::json!("2025-01-13"));
        assert_eq!(rows[1].values["rating"], Value::Null);
        assert_eq!(rows[1].values["certs"], Value::Null);
        assert_eq!(rows[0].text, "w-1 has OSHA 10; Forklift");
        split_lists(&mut rows, &["certs".to_owned()], ";");
        assert_eq!(
            rows[0].values["certs"],
            serde_json::json!(["OSHA 10", "Forklift"])
        );
        assert!(check_unique("id", &rows).is_ok());
        rows[1].id = "w-1".into();
        assert!(check_unique("id", &rows).is_err());
    }
}
