//! Functions that build values from a number in the query, bounded before they allocate.
//!
//! DataFusion's memory pool accounts for what operators hold (sorts, joins, aggregation state), not for the
//! values a scalar function returns: `repeat('a', 1000000000)` built a 1 GB string, and encoding it as JSON
//! took the server from 210 MB to 7 GB. The functions whose output size is set by an argument rather than by
//! the data (`repeat`, `lpad`, `rpad`, `array_repeat`, `range`, `generate_series`) are wrapped here: the
//! wrapper works out from the arguments how many bytes the call would build for the whole batch and refuses
//! past the limit with the pool's own error (`ResourcesExhausted`, answered 413), before the inner function
//! runs. Everything else is delegated to DataFusion's implementation unchanged.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::compute::kernels::length::length;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// How a wrapped function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: the text's bytes times n.
    Repeat,
    /// `lpad(text, n [, fill])`, `rpad`: n characters (up to four bytes each).
    Pad,
    /// `array_repeat(element, n)`: n elements.
    ArrayRepeat,
    /// `range([start,] stop [, step])`, `generate_series`: (stop - start) / step elements.
    Range,
}

/// Bytes counted per element of an array built by `array_repeat` or `range` (an `i64` and its share of
/// offsets and validity).
const ELEMENT_BYTES: u64 = 9;

/// The functions wrapped, by the name DataFusion registers them under.
const WRAPPED: [(&str, Growth); 6] = [
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("array_repeat", Growth::ArrayRepeat),
    ("range", Growth::Range),
    ("generate_series", Growth::Range),
];

/// The bounded versions of DataFusion's functions found in `registry`, each refusing to build more than
/// `max_bytes` in one call.
pub(crate) fn bounded_functions(registry: &dyn FunctionRegistry, max_bytes: u64) -> Vec<ScalarUDF> {
    WRAPPED
        .iter()
        .filter_map(|(name, growth)| {
            let inner = registry.udf(name).ok()?;
            Some(ScalarUDF::new_from_impl(Bounded {
                inner: Arc::clone(inner.inner()),
                growth: *growth,
                max_bytes,
            }))
        })
        .collect()
}

#[derive(Debug)]
struct Bounded {
    inner: Arc<dyn ScalarUDFImpl>,
    growth: Growth,
    max_bytes: u64,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner.name() == other.inner.name()
            && self.growth == other.growth
            && self.max_bytes == other.max_bytes
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
        self.growth.hash(state);
        self.max_bytes.hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = self.bytes(&args.args, args.number_rows)?;
        if bytes > self.max_bytes {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would build {bytes} bytes, over the limit of {} per call",
                self.inner.name(),
                self.max_bytes
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

impl Bounded {
    /// The bytes a call over `rows` rows would build (saturating: an absurd request counts as `u64::MAX`).
    fn bytes(&self, args: &[ColumnarValue], rows: usize) -> Result<u64> {
        // Arguments that are all constants make one value, whatever the batch's size.
        let rows = if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            1
        } else {
            rows
        };
        let column = |i: usize| args.get(i).map(Column::of);
        let mut total: u64 = 0;
        match self.growth {
            Growth::Repeat => {
                let (Some(text), Some(times)) = (column(0), column(1)) else {
                    return Ok(0);
                };
                let lengths = text.lengths()?;
                let times = times.ints()?;
                for row in 0..rows {
                    let each = lengths.get(row).saturating_mul(times.get(row));
                    total = total.saturating_add(each);
                }
            }
            Growth::Pad => {
                let Some(width) = column(1) else {
                    return Ok(0);
                };
                let width = width.ints()?;
                for row in 0..rows {
                    total = total.saturating_add(width.get(row).saturating_mul(4));
                }
            }
            Growth::ArrayRepeat => {
                let Some(times) = column(1) else {
                    return Ok(0);
                };
                let times = times.ints()?;
                for row in 0..rows {
                    total = total.saturating_add(times.get(row).saturating_mul(ELEMENT_BYTES));
                }
            }
            Growth::Range => {
                // Only integer ranges: a date range steps by an interval and stays small for any real dates.
                if args
                    .iter()
                    .any(|a| !matches!(a.data_type(), DataType::Int64 | DataType::Null))
                {
                    return Ok(0);
                }
                let ints = args
                    .iter()
                    .map(|a| Column::of(a).ints())
                    .collect::<Result<Vec<_>>>()?;
                for row in 0..rows {
                    let values: Vec<i64> = ints.iter().map(|c| c.signed(row)).collect();
                    let (start, stop, step) = match values.as_slice() {
                        [stop] => (0, *stop, 1),
                        [start, stop] => (*start, *stop, 1),
                        [start, stop, step, ..] => (*start, *stop, *step),
                        [] => (0, 0, 1),
                    };
                    let span = i128::from(stop) - i128::from(start);
                    let step = i128::from(step);
                    let elements = if step == 0 || (span > 0) != (step > 0) {
                        0
                    } else {
                        (span / step).unsigned_abs() + 1
                    };
                    let elements = u64::try_from(elements).unwrap_or(u64::MAX);
                    total = total.saturating_add(elements.saturating_mul(ELEMENT_BYTES));
                }
            }
        }
        Ok(total)
    }
}

/// One argument, a value per row.
enum Column {
    Scalar(ScalarValue),
    Array(ArrayRef),
}

/// Non-negative numbers per row: an integer argument, or text lengths in bytes.
enum Numbers {
    One(Option<i64>),
    Many(Int64Array),
}

impl Numbers {
    /// The row's value, negative and null as 0.
    fn get(&self, row: usize) -> u64 {
        u64::try_from(self.signed(row)).unwrap_or(0)
    }

    /// The row's value (null as 0).
    fn signed(&self, row: usize) -> i64 {
        match self {
            Numbers::One(v) => v.unwrap_or(0),
            Numbers::Many(a) if row < a.len() && a.is_valid(row) => a.value(row),
            Numbers::Many(_) => 0,
        }
    }
}

impl Column {
    fn of(value: &ColumnarValue) -> Column {
        match value {
            ColumnarValue::Scalar(s) => Column::Scalar(s.clone()),
            ColumnarValue::Array(a) => Column::Array(Arc::clone(a)),
        }
    }

    fn array(&self) -> Result<ArrayRef> {
        match self {
            Column::Scalar(s) => s.to_array_of_size(1),
            Column::Array(a) => Ok(Arc::clone(a)),
        }
    }

    fn numbers(&self, array: ArrayRef) -> Result<Numbers> {
        let array = arrow::compute::cast(&array, &DataType::Int64)?;
        let array = array
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| DataFusionError::Internal("a cast to Int64 gave another type".into()))?;
        Ok(match self {
            Column::Scalar(_) => Numbers::One(array.is_valid(0).then(|| array.value(0))),
            Column::Array(_) => Numbers::Many(array),
        })
    }

    /// The argument as integers (a count or a width).
    fn ints(&self) -> Result<Numbers> {
        if let Column::Scalar(s) = self
            && s.is_null()
        {
            return Ok(Numbers::One(None));
        }
        self.numbers(self.array()?)
    }

    /// The argument's byte length per row (text).
    fn lengths(&self) -> Result<Numbers> {
        let array = self.array()?;
        if matches!(array.data_type(), DataType::Null) {
            return Ok(Numbers::One(None));
        }
        self.numbers(length(&array)?)
    }
}
