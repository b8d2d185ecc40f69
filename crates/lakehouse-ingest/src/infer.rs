//! Schema inference over the whole input.
//!
//! CSV: every value of every row votes. A column is the narrowest type all its non-empty values parse as:
//! boolean (`true`/`false`, any case), int64, float64, date (`YYYY-MM-DD`), timestamp (`YYYY-MM-DD` then `T` or
//! a space, `HH:MM:SS`, optional fraction and offset; stored in UTC), else string. Integers mix with floats as
//! floats and dates with timestamps as timestamps; anything else mixed is a string. Numbers written with a
//! leading zero (`007`, zip codes) are strings, so they keep their zeros. Empty values are nulls; a column with
//! no value at all takes the type of the table it is appended to (a string in a new table). The same pass
//! checks the structure: a header, unique non-empty names, the same number of fields on every line, valid UTF-8
//! — and names the line and column of the first fault.
//!
//! NDJSON: every line is a JSON object; Arrow's JSON inference runs over all of them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDateTime};

use crate::csv::records::Span;
use crate::{Error, Result};

/// What a column's values have looked like so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Empty,
    Boolean,
    Int,
    Float,
    Date,
    Timestamp,
    Text,
}

impl Kind {
    pub(crate) fn merge(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Empty, x) | (x, Empty) => x,
            (Int, Float) | (Float, Int) => Float,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => Text,
        }
    }

    pub(crate) fn data_type(self) -> DataType {
        match self {
            // No value at all: typed by the table it joins, or as text for a new one.
            Kind::Empty => DataType::Null,
            Kind::Text => DataType::Utf8,
            Kind::Boolean => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
        }
    }
}

/// The kind of one non-empty value. Every value of every column not yet known to be text goes through here,
/// so the shapes that fill most columns (integers, decimals, `YYYY-MM-DD`, and that with ` HH:MM:SS` or
/// `THH:MM:SS`) are recognised from the bytes by hand; only rarer shapes (exponents, time zones, fractions
/// of a second) go to the standard and chrono parsers, which re-read their format for every value.
fn classify(value: &[u8]) -> Kind {
    match value.first() {
        // The plain timestamp first: read as a number it fails only at its first `-`, after the year.
        Some(b'0'..=b'9') if plain_timestamp_seconds(value).is_some() => return Kind::Timestamp,
        Some(b'0'..=b'9' | b'-' | b'+' | b'.') => {}
        Some(b't' | b'T' | b'f' | b'F') => {
            return if value.eq_ignore_ascii_case(b"true") || value.eq_ignore_ascii_case(b"false") {
                Kind::Boolean
            } else {
                Kind::Text
            };
        }
        _ => return Kind::Text,
    }
    if let Some(kind) = classify_number(value) {
        return kind;
    }
    if value.len() == 10 && is_date(value) {
        return Kind::Date;
    }
    match std::str::from_utf8(value) {
        Ok(text) if is_timestamp(text) => Kind::Timestamp,
        _ => Kind::Text,
    }
}

/// `Some(Int)`, `Some(Float)` or `Some(Text)` for what starts like a number and is one (or is a number with
/// a leading zero, kept as text so zip codes keep their zeros); `None` for anything else (dates, words).
fn classify_number(value: &[u8]) -> Option<Kind> {
    let unsigned = match value {
        [b'-' | b'+', rest @ ..] => rest,
        _ => value,
    };
    let whole = unsigned.iter().take_while(|b| b.is_ascii_digit()).count();
    let leading_zero = whole > 1 && unsigned[0] == b'0';
    if whole == unsigned.len() {
        if whole == 0 {
            return None;
        }
        // 18 digits always fit an i64; longer ones are checked.
        let fits = whole <= 18 || parse_ascii::<i64>(value).is_some();
        return Some(if leading_zero || !fits {
            Kind::Text
        } else {
            Kind::Int
        });
    }
    let rest = &unsigned[whole..];
    let (has_point, frac, rest) = match rest {
        [b'.', after @ ..] => {
            let n = after.iter().take_while(|b| b.is_ascii_digit()).count();
            (true, n, &after[n..])
        }
        _ => (false, 0, rest),
    };
    if whole + frac == 0 {
        return None;
    }
    let exponent = match rest {
        [] => false,
        [b'e' | b'E', exp @ ..] => {
            let digits = match exp {
                [b'-' | b'+', d @ ..] => d,
                d => d,
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            true
        }
        _ => return None,
    };
    if !has_point && !exponent {
        return None;
    }
    if leading_zero {
        return Some(Kind::Text);
    }
    // A plain decimal is finite unless it has over 308 digits before the point; exponents are checked.
    let finite =
        (!exponent && whole <= 308) || parse_ascii::<f64>(value).is_some_and(f64::is_finite);
    Some(if finite { Kind::Float } else { Kind::Text })
}

fn parse_ascii<T: std::str::FromStr>(value: &[u8]) -> Option<T> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// `YYYY-MM-DD`, a real calendar day.
fn is_date(b: &[u8]) -> bool {
    calendar_day(b).is_some()
}

/// `YYYY-MM-DD`, a real calendar day: its days since 1970-01-01.
#[inline]
pub(crate) fn date_days(b: &[u8]) -> Option<i32> {
    calendar_day(b).map(|(y, m, d)| days_from_civil(y, m, d))
}

/// The year, month and day of `YYYY-MM-DD`, if it is a real calendar day.
#[inline]
fn calendar_day(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    match (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m @ 1..=12), Some(d)) if d >= 1 && d <= days_in_month(y, m) => {
            Some((y, m, d))
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a day of the proleptic Gregorian calendar in years 0 to 9999: the count of
/// days in whole 400-year eras (146,097 each) from March of year 0, then within the era, shifted to 1970.
#[inline]
fn days_from_civil(year: u32, month: u32, day: u32) -> i32 {
    // Years counted from March, so the leap day is the last day of a year.
    let y = year as i32 - i32::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = ((month + 9) % 12) as i32;
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i32 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian calendar, as chrono (and Arrow's date parser) has it.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `HH:MM:SS` within a day (no leap second: those take the general path): its seconds since midnight.
#[inline]
fn time_seconds(b: &[u8]) -> Option<u32> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    match (digits(&b[..2]), digits(&b[3..5]), digits(&b[6..8])) {
        (Some(h), Some(m), Some(s)) if h < 24 && m < 60 && s < 60 => Some(h * 3600 + m * 60 + s),
        _ => None,
    }
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`), a real day and time with no fraction or offset: its seconds since
/// 1970-01-01 00:00:00. The shape most timestamps in exports have; inference and decoding both read it by
/// hand and leave every other shape to chrono and Arrow.
#[inline]
pub(crate) fn plain_timestamp_seconds(b: &[u8]) -> Option<i64> {
    if b.len() != 19 || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    let (days, seconds) = (date_days(&b[..10])?, time_seconds(&b[11..])?);
    Some(i64::from(days) * 86_400 + i64::from(seconds))
}

/// Any other timestamp shape (`classify` has taken the plain one already): fractions of a second, offsets.
fn is_timestamp(value: &str) -> bool {
    if value.len() < 19
        || !value.is_char_boundary(10)
        || !matches!(value.as_bytes()[10], b'T' | b' ')
    {
        return false;
    }
    if DateTime::parse_from_rfc3339(value).is_ok() {
        return true;
    }
    let normalized = value.replacen(' ', "T", 1);
    if DateTime::parse_from_rfc3339(&normalized).is_ok() {
        return true;
    }
    NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

/// Where a run of rows starts in a CSV body: the second pass decodes the runs side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartStart {
    /// The byte offset of the run's first record (in the body as stored, after a byte-order mark).
    pub byte: u64,
    /// The line that record starts on.
    pub line: u64,
}

/// What the first pass learns of a CSV body.
#[derive(Debug, Clone)]
pub struct CsvInferred {
    /// The schema every row fits.
    pub schema: SchemaRef,
    /// Where the body's parts start, in order (the first after the header; none when there are no rows).
    pub parts: Vec<PartStart>,
    /// The columns whose values rarely repeat (nearly all distinct in the first rows): a dictionary of
    /// their values would be as large as the values.
    pub rarely_repeating: Vec<String>,
}

/// Rows whose values are counted to tell the columns whose values rarely repeat.
const SAMPLE_ROWS: usize = 8192;

/// The distinct share of a sample above which a column's values are taken to rarely repeat. Drawn from
/// `k` values, 8,192 rows hold about 8,192² / 2k repeats, so 98% distinct means some 200,000 values or more:
/// more than a row group holds.
const RARELY_REPEATING: f64 = 0.98;

/// Counts the distinct values of each column in the first [`SAMPLE_ROWS`] rows (by hash: a collision only
/// undercounts).
pub(crate) struct Distinct {
    seen: Vec<std::collections::HashSet<u64>>,
    rows: usize,
    state: std::hash::RandomState,
}

impl Distinct {
    pub(crate) fn new(columns: usize) -> Self {
        Distinct {
            seen: vec![std::collections::HashSet::with_capacity(SAMPLE_ROWS); columns],
            rows: 0,
            state: std::hash::RandomState::new(),
        }
    }

    /// Counts one record's values; false once the sample is full.
    pub(crate) fn add<'a>(&mut self, fields: impl Iterator<Item = &'a [u8]>) -> bool {
        if self.rows >= SAMPLE_ROWS {
            return false;
        }
        self.rows += 1;
        for (raw, seen) in fields.zip(self.seen.iter_mut()) {
            seen.insert(std::hash::BuildHasher::hash_one(&self.state, raw));
        }
        true
    }

    /// The columns nearly all distinct, given enough rows to tell.
    pub(crate) fn rarely_repeating(&self, names: &[String]) -> Vec<String> {
        if self.rows < 1000 {
            return Vec::new();
        }
        names
            .iter()
            .zip(&self.seen)
            .filter(|(_, seen)| seen.len() as f64 >= RARELY_REPEATING * self.rows as f64)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// The fault of a body with no header.
pub(crate) fn no_header() -> Error {
    Error::Malformed(
        "line 1: a header row naming the columns is required; the body is empty".into(),
    )
}

/// The most columns a dataset may have unless `[ingest] max_columns` says otherwise: every column costs
/// memory in every writer and decoder, whatever the number of rows.
pub const DEFAULT_MAX_COLUMNS: usize = 2048;

/// Refuses more columns than `max`, before anything per column is allocated.
pub(crate) fn check_columns(count: usize, max: usize) -> Result<()> {
    if count > max {
        return Err(Error::Malformed(format!(
            "line 1: the body has {count} columns; a dataset may have at most {max} ([ingest] max_columns)"
        )));
    }
    Ok(())
}

/// The column names of a header record, checked: at most `max` of them, present, UTF-8, non-empty, unique.
pub(crate) fn header_names(headers: &[&[u8]], max: usize) -> Result<Vec<String>> {
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(no_header());
    }
    check_columns(headers.len(), max)?;
    let mut seen = std::collections::HashSet::with_capacity(headers.len());
    let mut names = Vec::with_capacity(headers.len());
    for (i, raw) in headers.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|_| {
                Error::Malformed(format!(
                    "line 1, column {}: the header is not valid UTF-8",
                    i + 1
                ))
            })?
            .trim()
            .to_owned();
        if name.is_empty() {
            return Err(Error::Malformed(format!(
                "line 1, column {}: the header names no column",
                i + 1
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(Error::Malformed(format!(
                "line 1, column {}: the column name {name:?} appears twice",
                i + 1
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// Checks one record's UTF-8 (unless `utf8_checked`: the text it came from is known to be UTF-8) and folds
/// the kinds of its values into `kinds`. The record is as csv_core leaves it: `out` holds its fields side by
/// side, `ends` where each ends.
pub(crate) fn look_at_record(
    out: &[u8],
    ends: &[usize],
    kinds: &mut [Kind],
    names: &[String],
    line: u64,
    utf8_checked: bool,
) -> Result<()> {
    let fields = || split_fields(out, ends);
    // One check of the whole record's bytes; the field at fault is looked for only when it fails. Valid as a
    // whole, each field is valid unless one starts inside a character (with a continuation byte): two broken
    // halves can make a valid whole.
    let starts_inside = |raw: &[u8]| raw.first().is_some_and(|b| (0x80..0xC0).contains(b));
    if !utf8_checked && (std::str::from_utf8(out).is_err() || fields().any(starts_inside)) {
        return Err(not_utf8(line, fields(), names));
    }
    for (raw, kind) in fields().zip(kinds.iter_mut()) {
        // A column already known to be text is not looked at again.
        if !raw.is_empty() && *kind != Kind::Text {
            *kind = kind.merge(classify(raw));
        }
    }
    Ok(())
}

/// [`look_at_record`] for a record that [`crate::csv::records::split_record`] split: its text is `record`, its
/// fields are `spans` in it.
pub(crate) fn look_at_split(
    record: &[u8],
    spans: &[Span],
    kinds: &mut [Kind],
    names: &[String],
    line: u64,
    utf8_checked: bool,
    scratch: &mut Vec<u8>,
) -> Result<()> {
    // The fields are separated by ASCII bytes (commas, quotes), so the text is valid UTF-8 exactly when every
    // field is.
    if !utf8_checked && std::str::from_utf8(record).is_err() {
        let fields = spans.iter().map(|span| &record[span.start..span.end]);
        return Err(not_utf8(line, fields, names));
    }
    for (span, kind) in spans.iter().zip(kinds.iter_mut()) {
        if span.start != span.end && *kind != Kind::Text {
            *kind = kind.merge(classify(span.value(record, scratch)));
        }
    }
    Ok(())
}

/// The fault of a record with a value that is not UTF-8: the first such of `fields`.
fn not_utf8<'a>(line: u64, mut fields: impl Iterator<Item = &'a [u8]>, names: &[String]) -> Error {
    let bad = fields
        .position(|raw| std::str::from_utf8(raw).is_err())
        .unwrap_or(0);
    Error::Malformed(format!(
        "line {line}, column {} ({}): the value is not valid UTF-8",
        bad + 1,
        names.get(bad).map_or("?", String::as_str)
    ))
}

/// The fields of a record as csv_core leaves it: `out` holds them side by side, `ends` where each ends.
pub(crate) fn split_fields<'a>(out: &'a [u8], ends: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    ends.iter().scan(0, move |start, &end| {
        let field = out.get(*start..end).unwrap_or_default();
        *start = end;
        Some(field)
    })
}

/// The fault of a record with more or fewer fields than the header.
pub(crate) fn unequal_fields(line: u64, found: usize, expected: usize) -> Error {
    Error::Malformed(unequal_fields_text(line, found, expected))
}

/// What [`unequal_fields`] says.
pub(crate) fn unequal_fields_text(line: u64, found: usize, expected: usize) -> String {
    format!(
        "line {line}, column {}: found {found} fields where the header has {expected} \
         (a stray comma or an unclosed quote?)",
        found.min(expected) + 1
    )
}

/// The fault of a body that ends inside quotes.
pub(crate) fn unclosed_quote(line: u64) -> Error {
    Error::Malformed(format!(
        "line {line}: a quoted field is never closed (it runs to the end of the body)"
    ))
}

/// Infers an NDJSON file's schema from every line, checking each is a JSON object of at most
/// `max_line_bytes` bytes (a longer line is refused before more of it is read).
pub fn infer_ndjson(file: File, max_line_bytes: usize) -> Result<SchemaRef> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut failure: Option<Error> = None;
    let values = std::iter::from_fn(|| {
        loop {
            line.clear();
            number += 1;
            // The line's bytes, its CR and its LF.
            let limit = u64::try_from(max_line_bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(2);
            match (&mut reader).take(limit).read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) if line.trim_ascii_end().len() > max_line_bytes => {
                    failure = Some(Error::Malformed(format!(
                        "line {number}: a line runs on for more than {max_line_bytes} bytes"
                    )));
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    failure = Some(Error::Malformed(format!("line {number}: {e}")));
                    return None;
                }
            }
            let Ok(text) = std::str::from_utf8(&line) else {
                failure = Some(Error::Malformed(format!(
                    "line {number}: the line is not UTF-8"
                )));
                return None;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            return match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v @ serde_json::Value::Object(_)) => Some(Ok(v)),
                Ok(_) => {
                    failure = Some(Error::Malformed(format!(
                        "line {number}: each line must be a JSON object"
                    )));
                    None
                }
                Err(e) => {
                    failure = Some(Error::Malformed(format!(
                        "line {number}, column {}: {e}",
                        e.column()
                    )));
                    None
                }
            };
        }
    });
    let inferred = arrow::json::reader::infer_json_schema_from_iterator(values);
    if let Some(f) = failure {
        return Err(f);
    }
    let schema =
        inferred.map_err(|e| Error::Malformed(format!("the NDJSON cannot be typed: {e}")))?;
    if schema.fields().is_empty() {
        return Err(Error::Malformed(
            "line 1: no JSON object with any field; nothing to ingest".into(),
        ));
    }
    Ok(Arc::new(schema))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::infer::infer_csv;
    use std::io::Write;

    /// A file holding `bytes`, read from its start.
    fn file_of(bytes: &[u8]) -> File {
        use std::io::{Seek, SeekFrom};
        let mut f = tempfile::tempfile().expect("tmp");
        f.write_all(bytes).expect("write");
        f.seek(SeekFrom::Start(0)).expect("seek");
        f
    }

    fn infer(text: impl AsRef<[u8]>) -> Result<SchemaRef> {
        infer_csv(file_of(text.as_ref()), 16, 2, DEFAULT_MAX_COLUMNS)
            .map(|inferred| inferred.schema)
    }

    fn types(text: &str) -> Vec<DataType> {
        infer(text)
            .expect("infer")
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    #[test]
    fn classifies_values() {
        assert_eq!(classify(b"42"), Kind::Int);
        assert_eq!(classify(b"-4.5e3"), Kind::Float);
        assert_eq!(classify(b"007"), Kind::Text);
        assert_eq!(classify(b"0.5"), Kind::Float);
        assert_eq!(classify(b"TRUE"), Kind::Boolean);
        assert_eq!(classify(b"2024-02-29"), Kind::Date);
        assert_eq!(classify(b"2024-02-30"), Kind::Text);
        assert_eq!(classify(b"2024-01-05T10:00:00Z"), Kind::Timestamp);
        assert_eq!(classify(b"2024-01-05 10:00:00.25"), Kind::Timestamp);
        assert_eq!(classify(b"NaN"), Kind::Text);
        assert_eq!(classify(b"N/A"), Kind::Text);
        // The hand-checked shapes agree with the calendar and the clock.
        assert_eq!(classify(b"2023-02-29"), Kind::Text);
        assert_eq!(classify(b"2024-13-01"), Kind::Text);
        assert_eq!(classify(b"2024-1-015"), Kind::Text);
        assert_eq!(classify(b"2024/01/05"), Kind::Text);
        assert_eq!(classify(b"2024-01-05 23:59:59"), Kind::Timestamp);
        assert_eq!(classify(b"2024-01-05T00:00:00"), Kind::Timestamp);
        assert_eq!(classify(b"2024-01-05 24:00:00"), Kind::Text);
        assert_eq!(classify(b"2024-01-05 10:60:00"), Kind::Text);
        assert_eq!(classify(b"2024-01-05 1a:00:00"), Kind::Text);
        assert_eq!(classify(b"2024-02-30 10:00:00"), Kind::Text);
        assert_eq!(classify(b"2024-01-05 10:00:00+02:00"), Kind::Timestamp);
        assert_eq!(classify(b"2000-02-29"), Kind::Date);
        assert_eq!(classify(b"1900-02-29"), Kind::Text);
        assert_eq!(classify(b"2024-04-31"), Kind::Text);
        assert_eq!(classify(b"2024-00-10"), Kind::Text);
        assert_eq!(classify(b"2024-01-00"), Kind::Text);
    }

    #[test]
    fn classifies_number_shapes() {
        for (value, kind) in [
            ("0", Kind::Int),
            ("+5", Kind::Int),
            ("-0", Kind::Int),
            ("9223372036854775807", Kind::Int),
            ("-9223372036854775808", Kind::Int),
            ("9223372036854775808", Kind::Text),
            ("1.", Kind::Float),
            (".5", Kind::Float),
            ("-.5", Kind::Float),
            ("1e5", Kind::Float),
            ("1.5E-3", Kind::Float),
            ("0.25", Kind::Float),
            ("1e400", Kind::Text),
            ("00.5", Kind::Text),
            ("01e5", Kind::Text),
            ("-", Kind::Text),
            (".", Kind::Text),
            ("-.", Kind::Text),
            ("1e", Kind::Text),
            ("1e+", Kind::Text),
            ("1.5.3", Kind::Text),
            ("1,5", Kind::Text),
            (" 42", Kind::Text),
            ("42 ", Kind::Text),
            ("-inf", Kind::Text),
            ("0x10", Kind::Text),
            ("12abc", Kind::Text),
            ("true", Kind::Boolean),
            ("False", Kind::Boolean),
            ("t", Kind::Text),
            ("truely", Kind::Text),
        ] {
            assert_eq!(classify(value.as_bytes()), kind, "{value:?}");
        }
        // A decimal of over 308 digits is larger than any f64.
        let huge = format!("{}.5", "9".repeat(309));
        assert_eq!(classify(huge.as_bytes()), Kind::Text);
        let large = format!("{}.5", "9".repeat(300));
        assert_eq!(classify(large.as_bytes()), Kind::Float);
    }

    #[test]
    fn whole_input_decides() {
        let mut text = String::from("id,score\n");
        for i in 0..3000 {
            text.push_str(&format!("{i},{i}\n"));
        }
        text.push_str("3000,N/A\n");
        assert_eq!(types(&text), vec![DataType::Int64, DataType::Utf8]);
        assert_eq!(
            types("a,b,c\n1,,x\n2.5,,y\n"),
            vec![DataType::Float64, DataType::Null, DataType::Utf8]
        );
    }

    #[test]
    fn columns_whose_values_rarely_repeat() {
        let body = |rows: u32| {
            let mut text = String::from("id,code,amount\n");
            for i in 0..rows {
                text.push_str(&format!("{i},c{},{}\n", i % 9, i % 1500));
            }
            text
        };
        let rarely = |text: String| {
            infer_csv(file_of(text.as_bytes()), 4096, 2, DEFAULT_MAX_COLUMNS)
                .expect("infer")
                .rarely_repeating
        };
        // Over 2,000 rows `amount` repeats a quarter of its values: too often to go without a dictionary.
        assert_eq!(rarely(body(2000)), vec!["id".to_owned()]);
        assert_eq!(rarely(body(20_000)), vec!["id".to_owned()]);
        assert!(rarely(body(500)).is_empty(), "too few rows to tell");
    }

    #[test]
    fn structure_errors_name_line_and_column() {
        let e = infer("a,b\n1,2\n3,4,5\n").expect_err("unequal").to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = infer("a,a\n1,2\n").expect_err("dup").to_string();
        assert!(e.contains("appears twice"), "{e}");
        assert!(infer("").is_err());
        let e = infer(b"a,b\n1,\"x\xff\"\n").expect_err("utf8").to_string();
        assert!(e.contains("line 2") && e.contains("column 2"), "{e}");
        // A character split across two fields: each half is invalid, the two side by side are not.
        let e = infer(b"a,b,c\n1,x\xC3,\xA9y\n")
            .expect_err("split")
            .to_string();
        assert!(e.contains("line 2") && e.contains("column 2"), "{e}");
    }

    #[test]
    fn ndjson_lines_are_capped() {
        let ndjson = |text: &str, max| infer_ndjson(file_of(text.as_bytes()), max);
        // A line of exactly the cap, with or without its line break, is read.
        let line = format!("{{\"a\": \"{}\"}}", "x".repeat(20));
        let max = line.len();
        ndjson(&format!("{line}\n{line}\n"), max).expect("at the cap");
        ndjson(&format!("{line}\n{line}"), max).expect("at the cap, at the end");
        ndjson(&format!("{line}\r\n{line}\r\n"), max).expect("at the cap, with CRLF");
        // One byte more is refused, naming the line and the cap.
        let long = format!("{{\"a\": \"{}\"}}", "x".repeat(21));
        let e = ndjson(&format!("{line}\n{long}\n{line}\n"), max)
            .expect_err("over the cap")
            .to_string();
        assert!(
            e.contains("line 2") && e.contains(&format!("{max} bytes")),
            "{e}"
        );
        let e = ndjson(&long, max)
            .expect_err("over the cap, at the end")
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = infer_ndjson(file_of(b"{\"a\": \"\xff\"}\n"), 100)
            .expect_err("not UTF-8")
            .to_string();
        assert!(e.contains("line 1") && e.contains("UTF-8"), "{e}");
    }
}
