//! Arrow cells as JSON, one encoder for every answer that shows them: SQL's JSON rows send each value
//! exactly ([`Cells::EXACT`]); matrix search reads rows the way filters and rules compare them
//! ([`Cells::COMPARABLE`]).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value;

/// How cells become JSON. Numbers and booleans are always JSON numbers and booleans; every other kind is
/// arrow's display text unless an option says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cells {
    /// Decimals as JSON numbers (rules compare pay rates with numbers), not their exact text.
    pub decimals_as_numbers: bool,
    /// Text trimmed (exports pad values), and blank text as null.
    pub trim_text: bool,
    /// NaN and infinities as null; otherwise as their text (JSON has no such numbers).
    pub non_finite_as_null: bool,
}

impl Cells {
    /// Every value as it is: decimals and text exactly, NaN as text.
    pub const EXACT: Cells = Cells {
        decimals_as_numbers: false,
        trim_text: false,
        non_finite_as_null: false,
    };

    /// Values as filters and rules compare them: decimals as numbers, text trimmed, blanks and NaN null.
    pub const COMPARABLE: Cells = Cells {
        decimals_as_numbers: true,
        trim_text: true,
        non_finite_as_null: true,
    };

    /// The encoder of one column's cells.
    pub fn column(self, array: &ArrayRef) -> Result<JsonColumn<'_>, ArrowError> {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
        Ok(JsonColumn {
            array,
            formatter,
            cells: self,
        })
    }
}

/// One column's cells as JSON.
pub struct JsonColumn<'a> {
    array: &'a ArrayRef,
    formatter: ArrayFormatter<'a>,
    cells: Cells,
}

impl std::fmt::Debug for JsonColumn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonColumn")
            .field("data_type", self.array.data_type())
            .field("cells", &self.cells)
            .finish()
    }
}

impl JsonColumn<'_> {
    /// The cell at `row`.
    // arrow's DataType has dozens of variants; the rest are shown as their display text.
    #[allow(clippy::wildcard_enum_match_arm)]
    pub fn value(&self, row: usize) -> Value {
        use arrow::datatypes as t;
        let a = self.array;
        if a.is_null(row) {
            return Value::Null;
        }
        match a.data_type() {
            DataType::Boolean => Value::Bool(a.as_boolean().value(row)),
            DataType::Int8 => a.as_primitive::<t::Int8Type>().value(row).into(),
            DataType::Int16 => a.as_primitive::<t::Int16Type>().value(row).into(),
            DataType::Int32 => a.as_primitive::<t::Int32Type>().value(row).into(),
            DataType::Int64 => a.as_primitive::<t::Int64Type>().value(row).into(),
            DataType::UInt8 => a.as_primitive::<t::UInt8Type>().value(row).into(),
            DataType::UInt16 => a.as_primitive::<t::UInt16Type>().value(row).into(),
            DataType::UInt32 => a.as_primitive::<t::UInt32Type>().value(row).into(),
            DataType::UInt64 => a.as_primitive::<t::UInt64Type>().value(row).into(),
            DataType::Float32 => {
                self.float(f64::from(a.as_primitive::<t::Float32Type>().value(row)))
            }
            DataType::Float64 => self.float(a.as_primitive::<t::Float64Type>().value(row)),
            DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
                if self.cells.decimals_as_numbers =>
            {
                self.formatter
                    .value(row)
                    .to_string()
                    .parse::<f64>()
                    .map_or(Value::Null, |v| self.float(v))
            }
            _ => {
                let text = self.formatter.value(row).to_string();
                if !self.cells.trim_text {
                    return Value::String(text);
                }
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    Value::Null
                } else if trimmed.len() == text.len() {
                    Value::String(text)
                } else {
                    Value::String(trimmed.to_owned())
                }
            }
        }
    }

    fn float(&self, v: f64) -> Value {
        match serde_json::Number::from_f64(v) {
            Some(n) => Value::Number(n),
            None if self.cells.non_finite_as_null => Value::Null,
            None => Value::String(v.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Decimal128Array, Float64Array, StringArray};
    use serde_json::json;

    use super::*;

    #[test]
    fn exact_and_comparable_differ_only_where_they_say() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("  Austin "), Some("  "), None]));
        let money: ArrayRef = Arc::new(
            Decimal128Array::from(vec![1850_i128])
                .with_precision_and_scale(6, 2)
                .expect("a decimal"),
        );
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN, 1.5]));
        let all = |cells: Cells, array: &ArrayRef| -> Vec<Value> {
            let column = cells.column(array).expect("encodes");
            (0..array.len()).map(|r| column.value(r)).collect()
        };
        assert_eq!(
            all(Cells::EXACT, &text),
            vec![json!("  Austin "), json!("  "), Value::Null]
        );
        assert_eq!(
            all(Cells::COMPARABLE, &text),
            vec![json!("Austin"), Value::Null, Value::Null]
        );
        assert_eq!(all(Cells::EXACT, &money), vec![json!("18.50")]);
        assert_eq!(all(Cells::COMPARABLE, &money), vec![json!(18.5)]);
        assert_eq!(all(Cells::EXACT, &floats), vec![json!("NaN"), json!(1.5)]);
        assert_eq!(
            all(Cells::COMPARABLE, &floats),
            vec![Value::Null, json!(1.5)]
        );
    }
}
