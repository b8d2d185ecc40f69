//! The second pass over a CSV part: its records into Arrow columns of the reconciled types.
//!
//! Arrow's CSV reader (arrow-csv) does the same job, and did it here first. It is done here instead because
//! of what a profile of a 1,000,000-row export showed: arrow-csv spent about 20 ns on each integer, 18 ns on
//! each decimal and 68 ns on each timestamp, mostly in the machinery around its parsers (a row lookup and a
//! null check through calls for every value, and chrono's general timestamp parser for the plain
//! `YYYY-MM-DD HH:MM:SS`). Here the records are split into one buffer per batch (plain records by
//! [`crate::csv::records`], the others by csv_core, as arrow-csv does), and each column is filled in one loop. The
//! shapes that fill most columns (plain integers, plain dates and timestamps) are read from the bytes by
//! hand; every other value goes to the parser arrow-csv would have used for it
//! (`arrow::compute::kernels::cast_utils`), so every value reads as it did there. Tests check both against
//! arrow-csv. A type the first pass never infers (a column whose every value is empty takes the type of the
//! table it joins) is read as text and cast.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, NullArray, NullBufferBuilder, PrimitiveArray, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::kernels::cast_utils::{Parser, string_to_datetime};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Field, Float64Type, Int64Type, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use chrono::Utc;
use csv_core::ReadRecordResult;

use crate::csv::infer::count;
use crate::csv::records::{Span, Split, split_record};
use crate::infer::{date_days, plain_timestamp_seconds, unequal_fields_text};

/// Reads parts, one after another, keeping its buffers between them.
#[derive(Debug)]
pub(crate) struct PartReader {
    reader: csv_core::Reader,
    records: Records,
}

impl PartReader {
    pub(crate) fn new(columns: usize) -> Self {
        PartReader {
            reader: csv_core::Reader::new(),
            records: Records::new(columns),
        }
    }

    /// Reads the records of `part` (a run of whole records that starts on line `first_line`) into batches
    /// of at most `batch_rows` rows in `schema`'s types. A fault names its line and column.
    pub(crate) fn read(
        &mut self,
        part: &[u8],
        first_line: u64,
        schema: &SchemaRef,
        batch_rows: usize,
    ) -> Result<Vec<RecordBatch>, String> {
        let PartReader { reader, records } = self;
        records.clear();
        records.part_len = part.len();
        let text = Text { part, first_line };
        let mut batches = Vec::new();
        let mut at = 0;
        loop {
            // Line breaks before a record are empty lines, which the parser skips; skipping them here puts
            // the record's start where it starts.
            at += part[at..]
                .iter()
                .take_while(|&&b| matches!(b, b'\r' | b'\n'))
                .count();
            let (more, consumed) = records.read(reader, &part[at..], at, &text)?;
            at += consumed;
            if records.rows == batch_rows.max(1) || (!more && records.rows > 0) {
                batches.push(records.batch(schema, &text)?);
                records.clear();
            }
            if !more {
                return Ok(batches);
            }
        }
    }
}

/// The text of a part, for naming the line of a fault: lines are counted only then.
struct Text<'a> {
    part: &'a [u8],
    first_line: u64,
}

impl Text<'_> {
    /// The line the record at byte `at` starts on.
    fn line(&self, at: usize) -> u64 {
        self.first_line + count(&self.part[..at.min(self.part.len())], b'\n')
    }
}

/// The records of one batch: where each value is. A value of a record split by [`split_record`] is read where
/// it is in the part, without a copy, unless it had doubled quotes; the others (and those) are written to
/// `data`, by csv_core or unescaped. A bound below the part's length is in the part; from the part's length
/// on, it is in `data` less the part's length.
#[derive(Debug)]
struct Records {
    columns: usize,
    /// The length of the part the records are in.
    part_len: usize,
    data: Vec<u8>,
    data_len: usize,
    /// Where csv_core ended each field of the record it is reading, from the record's start in `data`.
    ends: Vec<usize>,
    /// Where each value starts and ends, record after record (`columns` to a record).
    bounds: Vec<(usize, usize)>,
    /// Where each record starts in the part.
    at: Vec<usize>,
    rows: usize,
    /// The fields of a record split without csv_core, and room to unescape one.
    spans: Vec<Span>,
    scratch: Vec<u8>,
}

impl Records {
    fn new(columns: usize) -> Self {
        Records {
            columns,
            part_len: 0,
            data: vec![0; 1 << 20],
            data_len: 0,
            ends: vec![0; 64 * columns.max(1)],
            bounds: Vec::new(),
            at: Vec::new(),
            rows: 0,
            spans: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.data_len = 0;
        self.bounds.clear();
        self.at.clear();
        self.rows = 0;
    }

    /// Parses the next record from `input` (which holds only whole records and starts at byte `at` of the
    /// part). Returns whether one was read, and the bytes consumed.
    fn read(
        &mut self,
        reader: &mut csv_core::Reader,
        input: &[u8],
        at: usize,
        text: &Text<'_>,
    ) -> Result<(bool, usize), String> {
        if let Split::Record(consumed) = split_record(input, &mut self.spans) {
            self.keep_split(input, at, text)?;
            return Ok((true, consumed));
        }
        // Not a plain record: csv_core reads it, from its first state.
        reader.reset();
        let start = self.data_len;
        let mut found = 0;
        let mut consumed = 0;
        loop {
            let (result, nin, nout, nend) = reader.read_record(
                &input[consumed..],
                &mut self.data[self.data_len..],
                &mut self.ends[found..],
            );
            let at_end = consumed == input.len();
            consumed += nin;
            self.data_len += nout;
            found += nend;
            match result {
                ReadRecordResult::OutputFull => {
                    let grown = self.data.len() * 2;
                    self.data.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                // Asked again with nothing left, the parser hands over a last record without a line break.
                ReadRecordResult::InputEmpty if !at_end => {}
                ReadRecordResult::InputEmpty | ReadRecordResult::End => {
                    self.data_len = start;
                    return Ok((false, consumed));
                }
                ReadRecordResult::Record => break,
            }
        }
        if found != self.columns {
            return Err(unequal_fields_text(text.line(at), found, self.columns));
        }
        // csv_core gives each end from the record's start.
        let base = self.part_len + start;
        let mut from = base;
        for &end in &self.ends[..found] {
            self.bounds.push((from, base + end));
            from = base + end;
        }
        self.at.push(at);
        self.rows += 1;
        Ok((true, consumed))
    }

    /// Keeps the record at byte `at` of the part that `split_record` split from `input` (its fields are in
    /// `spans`): where its values are in the part, and those with doubled quotes unescaped into `data`.
    fn keep_split(&mut self, input: &[u8], at: usize, text: &Text<'_>) -> Result<(), String> {
        if self.spans.len() != self.columns {
            return Err(unequal_fields_text(
                text.line(at),
                self.spans.len(),
                self.columns,
            ));
        }
        for span in &self.spans {
            if !span.escaped {
                self.bounds.push((at + span.start, at + span.end));
                continue;
            }
            let value = span.value(input, &mut self.scratch);
            let end = self.data_len + value.len();
            if self.data.len() < end {
                let grown = (self.data.len() * 2).max(end);
                self.data.resize(grown, 0);
            }
            self.data[self.data_len..end].copy_from_slice(value);
            self.bounds
                .push((self.part_len + self.data_len, self.part_len + end));
            self.data_len = end;
        }
        self.at.push(at);
        self.rows += 1;
        Ok(())
    }

    /// The bytes of record `row`'s field `column`, in `part` (the part the records are in) or in `data`.
    #[inline]
    fn field<'a>(&'a self, part: &'a [u8], row: usize, column: usize) -> &'a [u8] {
        let (start, end) = self.bounds[row * self.columns + column];
        if start < self.part_len {
            &part[start..end]
        } else {
            &self.data[start - self.part_len..end - self.part_len]
        }
    }

    /// Where a value is, for a fault: its line, and its column by number and name.
    fn place(&self, row: usize, column: usize, name: &str, text: &Text<'_>) -> String {
        format!(
            "line {}, column {} ({name})",
            text.line(self.at[row]),
            column + 1
        )
    }

    fn batch(&self, schema: &SchemaRef, text: &Text<'_>) -> Result<RecordBatch, String> {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(column, field)| self.column(column, field, text))
            .collect::<Result<Vec<_>, String>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        RecordBatch::try_new_with_options(schema.clone(), columns, &options)
            .map_err(|e| e.to_string())
    }

    // Every type the first pass gives has its own arm; the rest are read as text and cast.
    #[allow(clippy::wildcard_enum_match_arm)]
    fn column(&self, column: usize, field: &Field, text: &Text<'_>) -> Result<ArrayRef, String> {
        let data_type = field.data_type();
        let part = text.part;
        let place = |row: usize| self.place(row, column, field.name(), text);
        let fault = |row: usize| {
            let value = String::from_utf8_lossy(self.field(part, row, column));
            format!("{}: cannot read {value:?} as {data_type}", place(row))
        };
        let array: ArrayRef = match data_type {
            DataType::Utf8 => Arc::new(self.text(part, column, field.name(), place)?),
            DataType::Int64 => {
                Arc::new(self.primitive::<Int64Type>(part, column, read_i64, fault)?)
            }
            DataType::Float64 => {
                Arc::new(self.primitive::<Float64Type>(part, column, read_f64, fault)?)
            }
            DataType::Date32 => {
                Arc::new(self.primitive::<Date32Type>(part, column, read_date, fault)?)
            }
            DataType::Timestamp(TimeUnit::Microsecond, None) => Arc::new(
                self.primitive::<TimestampMicrosecondType>(part, column, read_timestamp, fault)?,
            ),
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
                Arc::new(
                    self.primitive::<TimestampMicrosecondType>(
                        part,
                        column,
                        read_timestamp,
                        fault,
                    )?
                    .with_timezone(tz.clone()),
                )
            }
            DataType::Boolean => Arc::new(self.boolean(part, column, fault)?),
            DataType::Null => {
                match (0..self.rows).find(|&row| !self.field(part, row, column).is_empty()) {
                    Some(row) => return Err(fault(row)),
                    None => Arc::new(NullArray::new(self.rows)),
                }
            }
            // A type the first pass never gives: the column had no value, and takes the table's type.
            _ => {
                let values = self.text(part, column, field.name(), place)?;
                let options = CastOptions {
                    safe: false,
                    ..CastOptions::default()
                };
                cast_with_options(&values, data_type, &options)
                    .map_err(|e| format!("in the rows from {}: {e}", place(0)))?
            }
        };
        Ok(array)
    }

    /// A column of numbers, dates or times: `read` gives the value of a non-empty field, or none when the
    /// field is not one.
    fn primitive<T: ArrowPrimitiveType>(
        &self,
        part: &[u8],
        column: usize,
        read: impl Fn(&[u8]) -> Option<T::Native>,
        fault: impl Fn(usize) -> String,
    ) -> Result<PrimitiveArray<T>, String> {
        let mut values = Vec::with_capacity(self.rows);
        let mut nulls = NullBufferBuilder::new(self.rows);
        for row in 0..self.rows {
            let field = self.field(part, row, column);
            if field.is_empty() {
                values.push(T::Native::default());
                nulls.append_null();
            } else {
                values.push(read(field).ok_or_else(|| fault(row))?);
                nulls.append_non_null();
            }
        }
        Ok(PrimitiveArray::new(values.into(), nulls.finish()))
    }

    fn boolean(
        &self,
        part: &[u8],
        column: usize,
        fault: impl Fn(usize) -> String,
    ) -> Result<BooleanArray, String> {
        (0..self.rows)
            .map(|row| match self.field(part, row, column) {
                b"" => Ok(None),
                f if f.eq_ignore_ascii_case(b"true") => Ok(Some(true)),
                f if f.eq_ignore_ascii_case(b"false") => Ok(Some(false)),
                _ => Err(fault(row)),
            })
            .collect()
    }

    /// A column of text; an empty field is null.
    fn text(
        &self,
        part: &[u8],
        column: usize,
        name: &str,
        place: impl Fn(usize) -> String,
    ) -> Result<StringArray, String> {
        let mut offsets = Vec::with_capacity(self.rows + 1);
        let size = (0..self.rows)
            .map(|row| self.field(part, row, column).len())
            .sum();
        let mut values = Vec::with_capacity(size);
        let mut nulls = NullBufferBuilder::new(self.rows);
        offsets.push(0i32);
        for row in 0..self.rows {
            let field = self.field(part, row, column);
            if field.is_empty() {
                nulls.append_null();
            } else {
                values.extend_from_slice(field);
                nulls.append_non_null();
            }
            let end = i32::try_from(values.len())
                .map_err(|_| format!("{}: the batch's text is over 2 GiB", place(row)))?;
            offsets.push(end);
        }
        // Checks the UTF-8 (the first pass did too, so this fails only if the file changed under us).
        StringArray::try_new(
            OffsetBuffer::new(offsets.into()),
            values.into(),
            nulls.finish(),
        )
        .map_err(|e| format!("column {} ({name}): {e}", column + 1))
    }
}

/// An integer: `[+-]` and up to 18 digits by hand (they always fit), anything else as Arrow reads it.
fn read_i64(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, field),
    };
    if (1..=18).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
        let n = digits
            .iter()
            .fold(0i64, |n, &b| n * 10 + i64::from(b - b'0'));
        return Some(if negative { -n } else { n });
    }
    Int64Type::parse(std::str::from_utf8(field).ok()?)
}

/// A decimal: the same parser Arrow uses (lexical), straight from the bytes; with surrounding white space
/// as Arrow reads it.
fn read_f64(field: &[u8]) -> Option<f64> {
    lexical_core::parse::<f64>(field)
        .ok()
        .or_else(|| Float64Type::parse(std::str::from_utf8(field).ok()?))
}

/// A date: `YYYY-MM-DD` by hand, anything else as Arrow reads it.
fn read_date(field: &[u8]) -> Option<i32> {
    date_days(field).or_else(|| Date32Type::parse(std::str::from_utf8(field).ok()?))
}

/// A timestamp in microseconds since the epoch, UTC: `YYYY-MM-DD HH:MM:SS` (or with `T`) by hand, anything
/// else as Arrow's CSV reader reads it (a value with no offset is UTC).
fn read_timestamp(field: &[u8]) -> Option<i64> {
    if let Some(seconds) = plain_timestamp_seconds(field) {
        return Some(seconds * 1_000_000);
    }
    let text = std::str::from_utf8(field).ok()?;
    Some(string_to_datetime(&Utc, text).ok()?.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Schema;
    use arrow::datatypes::TimestampMicrosecondType as Micros;

    fn read_part(
        part: &[u8],
        first_line: u64,
        schema: &SchemaRef,
        batch_rows: usize,
    ) -> Result<Vec<RecordBatch>, String> {
        PartReader::new(schema.fields().len()).read(part, first_line, schema, batch_rows)
    }

    /// What arrow-csv's reader makes of `text`: the reference the loop must agree with.
    fn arrow_csv(text: &str, schema: &SchemaRef, batch_rows: usize) -> Vec<RecordBatch> {
        arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(false)
            .with_batch_size(batch_rows)
            .build(text.as_bytes())
            .and_then(|reader| reader.collect::<Result<Vec<_>, _>>())
            .unwrap_or_else(|e| panic!("arrow-csv refused {text:?}: {e}"))
    }

    fn schema(types: &[DataType]) -> SchemaRef {
        Arc::new(Schema::new(
            types
                .iter()
                .enumerate()
                .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn reads_bodies_as_arrow_csv_does() {
        let types = [
            DataType::Int64,
            DataType::Float64,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Boolean,
            DataType::Utf8,
            DataType::Null,
            DataType::Int32,
        ];
        let rows = [
            "1,2.5,2026-06-05,2026-06-09 03:42:00,true,\"plain\",,7",
            "-42,-0.125,2000-02-29,2000-02-29T23:59:59,FALSE,\"quoted, with comma\",,",
            "+7,1e3,1970-01-01,1970-01-01 00:00:00.250,True,\"two\nlines\",,-3",
            ",,,,,,,",
            "999999999999999999,  3.5 ,1969-12-31,1969-12-31 23:59:59+02:00,false,\"\"\"quotes\"\"\",,0",
            "9223372036854775807,0.1,0001-01-01,2026-11-24T10:00:00Z,true,naïve café,,12",
            "-9223372036854775808,.5,9999-12-31,2024-02-29 12:00:00.123456,false,x,,1",
        ];
        for line_end in ["\n", "\r\n"] {
            for blank_lines in [false, true] {
                let mut text = String::new();
                for row in rows {
                    text.push_str(row);
                    text.push_str(line_end);
                    if blank_lines {
                        text.push_str(line_end);
                    }
                }
                for batch_rows in [1, 2, 3, 100] {
                    let schema = schema(&types);
                    let ours = read_part(text.as_bytes(), 2, &schema, batch_rows)
                        .unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(ours, arrow_csv(&text, &schema, batch_rows), "{text:?}");
                }
            }
        }
        // The last record may lack its line break.
        let schema = schema(&[DataType::Int64, DataType::Utf8]);
        let ours = read_part(b"1,a\n2,b", 1, &schema, 10).unwrap_or_default();
        assert_eq!(ours, arrow_csv("1,a\n2,b", &schema, 10));
        assert_eq!(read_part(b"", 1, &schema, 10), Ok(vec![]));
    }

    #[test]
    fn utc_timestamps_carry_the_label() {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let batches = read_part(
            b"2026-06-09 03:42:00\n",
            2,
            &schema(std::slice::from_ref(&utc)),
            10,
        )
        .unwrap_or_default();
        let column = batches[0].column(0);
        assert_eq!(column.data_type(), &utc);
        let micros = column.as_any().downcast_ref::<PrimitiveArray<Micros>>();
        assert_eq!(micros.map(|a| a.value(0)), Some(1_780_976_520_000_000));
    }

    #[test]
    fn hand_read_shapes_agree_with_arrow() {
        let mut day = chrono::NaiveDate::from_ymd_opt(0, 1, 1).unwrap_or_default();
        let last = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default();
        let mut checked = 0;
        while day <= last {
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(
                date_days(text.as_bytes()),
                Date32Type::parse(&text),
                "{text}"
            );
            let stamp = format!("{text} 13:07:59");
            assert_eq!(
                read_timestamp(stamp.as_bytes()),
                string_to_datetime(&Utc, &stamp)
                    .ok()
                    .map(|t| t.timestamp_micros()),
                "{stamp}"
            );
            day = day + chrono::Days::new(13);
            checked += 1;
        }
        assert!(checked > 250_000);
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-04-31",
            "2023-1-01",
        ] {
            assert_eq!(date_days(bad.as_bytes()), None, "{bad}");
        }
        for text in [
            "0",
            "-0",
            "+12",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "9223372036854775808",
            " 12",
            "12 ",
            "1_000",
            "-",
        ] {
            assert_eq!(read_i64(text.as_bytes()), Int64Type::parse(text), "{text}");
        }
        for text in [
            "1.5", "-0.0", "1e-7", " 2.5", "2.5 ", "inf", "NaN", "1.2.3", ".",
        ] {
            let ours = read_f64(text.as_bytes()).map(f64::to_bits);
            let arrow = Float64Type::parse(text).map(f64::to_bits);
            assert_eq!(ours, arrow, "{text}");
        }
    }

    #[test]
    fn faults_name_line_and_column() {
        let schema = schema(&[DataType::Utf8, DataType::Int64]);
        let text = "a,1\n\"two\nlines\",2\nc,x3\n";
        let fault = read_part(text.as_bytes(), 5, &schema, 100).err();
        assert_eq!(
            fault.as_deref(),
            Some("line 8, column 2 (c1): cannot read \"x3\" as Int64")
        );
        let fault = read_part(b"a,1\nb\n", 2, &schema, 100).err();
        assert_eq!(
            fault.as_deref(),
            Some(
                "line 3, column 2: found 1 fields where the header has 2 (a stray comma or an unclosed quote?)"
            )
        );
        let nulls = Arc::new(Schema::new(vec![Field::new("n", DataType::Null, true)]));
        let fault = read_part(b"\nx\n", 2, &nulls, 100).err();
        assert_eq!(
            fault.as_deref(),
            Some("line 3, column 1 (n): cannot read \"x\" as Null")
        );
    }
}
