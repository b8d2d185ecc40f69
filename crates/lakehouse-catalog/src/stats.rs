//! A data file's statistics in the Delta log's form, read from its Parquet footer (deltalake builds them in
//! a function private to it): what scans prune files by, and what a count without a filter reads.

use arrow::datatypes::{DataType, Schema};
use deltalake::parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use deltalake::parquet::file::statistics::Statistics;
use deltalake::protocol::{ColumnCountStat, ColumnValueStat, Stats};
use serde_json::Value;

/// Columns with statistics: Delta's default for `delta.dataSkippingNumIndexedCols`, as deltalake's writer has it.
const STATS_COLUMNS: usize = 32;

/// A file's statistics in the Delta log's form, from its Parquet footer: rows, and for each of the first
/// [`STATS_COLUMNS`] columns its null count and (when it has a value) its least and greatest values, written
/// as deltalake's writer writes them (dates as `YYYY-MM-DD`, timestamps in UTC to the millisecond).
pub(crate) fn statistics(metadata: &ParquetMetaData, schema: &Schema) -> Stats {
    let groups = metadata.row_groups();
    let mut stats = Stats {
        num_records: metadata.file_metadata().num_rows(),
        ..Stats::default()
    };
    for (index, field) in schema.fields().iter().enumerate().take(STATS_COLUMNS) {
        // A row group without statistics leaves the column without any: a count over part of the file
        // would be wrong.
        let Some(all) = groups
            .iter()
            .map(|g| g.column(index).statistics())
            .collect::<Option<Vec<&Statistics>>>()
        else {
            continue;
        };
        if let Some(nulls) = all.iter().map(|s| s.null_count_opt()).sum::<Option<u64>>() {
            stats.null_count.insert(
                field.name().clone(),
                ColumnCountStat::Value(i64::try_from(nulls).unwrap_or(i64::MAX)),
            );
        }
        if let Some((min, max)) = bounds(groups, index, field.data_type()) {
            stats
                .min_values
                .insert(field.name().clone(), ColumnValueStat::Value(min));
            stats
                .max_values
                .insert(field.name().clone(), ColumnValueStat::Value(max));
        }
    }
    stats
}

/// The least and greatest value of a column over the row groups that have them, as JSON.
#[allow(clippy::wildcard_enum_match_arm)] // the types `handles` takes, of Arrow's many
fn bounds(
    groups: &[RowGroupMetaData],
    index: usize,
    data_type: &DataType,
) -> Option<(Value, Value)> {
    let stats = groups.iter().filter_map(|g| g.column(index).statistics());
    match data_type {
        DataType::Boolean => fold(stats.filter_map(|s| {
            if let Statistics::Boolean(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .map(|(min, max)| (Value::from(min), Value::from(max))),
        DataType::Int64 => fold(stats.filter_map(|s| {
            if let Statistics::Int64(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .map(|(min, max)| (Value::from(min), Value::from(max))),
        DataType::Float64 => fold(stats.filter_map(|s| {
            if let Statistics::Double(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        // JSON has no infinity; no bound is a safe bound.
        .filter(|(min, max)| min.is_finite() && max.is_finite())
        .map(|(min, max)| (Value::from(min), Value::from(max))),
        DataType::Date32 => fold(stats.filter_map(|s| {
            if let Statistics::Int32(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .and_then(|(min, max)| Some((date(min)?, date(max)?))),
        DataType::Timestamp(..) => fold(stats.filter_map(|s| {
            if let Statistics::Int64(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .and_then(|(min, max)| {
            // Kept to the millisecond, the least value rounds down and the greatest up, so both stay bounds.
            let down = min.checked_sub(min.rem_euclid(1000))?;
            let up = max.checked_add((1000 - max.rem_euclid(1000)) % 1000)?;
            Some((timestamp(down)?, timestamp(up)?))
        }),
        DataType::Utf8 => fold(stats.filter_map(|s| {
            if let Statistics::ByteArray(v) = s {
                Some((v.min_bytes_opt()?, v.max_bytes_opt()?))
            } else {
                None
            }
        }))
        .and_then(|(min, max)| {
            Some((
                Value::from(std::str::from_utf8(min).ok()?),
                Value::from(std::str::from_utf8(max).ok()?),
            ))
        }),
        _ => None,
    }
}

/// The least of the least values and the greatest of the greatest.
fn fold<T: PartialOrd>(mut each: impl Iterator<Item = (T, T)>) -> Option<(T, T)> {
    let first = each.next()?;
    Some(each.fold(first, |(min, max), (lo, hi)| {
        (
            if lo < min { lo } else { min },
            if hi > max { hi } else { max },
        )
    }))
}

fn date(days: i32) -> Option<Value> {
    let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_signed(chrono::Duration::days(i64::from(days)))?;
    Some(Value::from(day.format("%Y-%m-%d").to_string()))
}

fn timestamp(micros: i64) -> Option<Value> {
    use chrono::Timelike;
    let at = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    // The Delta log keeps timestamps to the millisecond; whole seconds are written without a fraction.
    let format = if at.nanosecond() == 0 {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y-%m-%dT%H:%M:%S%.3fZ"
    };
    Some(Value::from(at.format(format).to_string()))
}
