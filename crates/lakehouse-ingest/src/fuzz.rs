//! Fuzz targets for the bodies an ingest reads, through both passes as the service runs them: CSV (inferred
//! with both ways of cutting, then decoded part by part), NDJSON and Parquet (inferred, then decoded whole).
//! A short budget runs with the tests; `scripts/fuzz.sh` runs 1,000,000 cases of each.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use lakehouse_catalog::schema::Reconciled;
use lakehouse_test_helpers::fuzz::{Gen, cases};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::csv::decode::PartReader;
use crate::csv::infer::{Cuts, infer};
use crate::decode::{open, parquet_schema};
use crate::infer::{DEFAULT_MAX_COLUMNS, infer_ndjson};

/// One file the cases are written to in turn, read through handles of its own as the service reads a spool
/// file.
struct Scratch(File);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempfile().expect("a temporary file"))
    }

    fn holding(&mut self, bytes: &[u8]) -> File {
        let file = &mut self.0;
        file.set_len(0).expect("truncate");
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.write_all(bytes).expect("write");
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.try_clone().expect("a second handle")
    }
}

/// CSV bodies of values of every kind inference tells apart, quotes, line breaks of every style, wrong
/// field counts and bytes that are not UTF-8. Inference cut where quotes pair up agrees with inference cut
/// where records end (or hands the body back), and every body inference accepts decodes, part by part,
/// into at least one row per part.
#[test]
fn fuzz_csv_bodies() {
    let values: &[&[u8]] = &[
        b"1",
        b"-7",
        b"2.5",
        b"1e9",
        b"9223372036854775808",
        b"007",
        b"2024-02-29",
        b"2024-02-30",
        b"2024-01-05 10:00:00",
        b"2024-01-05T10:00:00.5Z",
        b"true",
        b"FALSE",
        b"x",
        "\u{e9}t\u{e9}".as_bytes(),
        b"",
        b"\"a,b\"",
        b"\"say \"\"hi\"\"\"",
        b"\"two\nlines\"",
        b"6'2\"",
        b"\"",
        b"\xff",
        b" ",
    ];
    let breaks: &[&[u8]] = &[b"\n", b"\n", b"\r\n", b"\r", b"\n\n"];
    let mut g = Gen::new(11);
    let mut accepted = 0;
    for case in 0..cases(2_000) {
        let columns = 1 + g.below(4);
        // (The spool strips a byte-order mark before inference sees the body.)
        let mut body = Vec::new();
        let names = ["id", "name", "when", "rate", "id"];
        for c in 0..columns {
            if c > 0 {
                body.push(b',');
            }
            body.extend_from_slice(names[if g.one_in(30) { 4 } else { c }].as_bytes());
        }
        for _ in 0..g.below(12) {
            body.extend_from_slice(g.pick::<&[u8]>(breaks));
            // Now and then one field too many or too few.
            let fields = match g.below(20) {
                0 => columns + 1,
                1 => columns.saturating_sub(1).max(1),
                _ => columns,
            };
            for f in 0..fields {
                if f > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(g.pick::<&[u8]>(values));
            }
        }
        if g.one_in(2) {
            body.extend_from_slice(g.pick::<&[u8]>(breaks));
        }
        let segment_bytes = *g.pick(&[1, 5, 16, 64, 1 << 20]);
        let threads = 1 + g.below(3);
        let max_columns = if g.one_in(10) { 2 } else { DEFAULT_MAX_COLUMNS };
        let shown = String::from_utf8_lossy(&body).into_owned();
        let context = format!("case {case}, segments of {segment_bytes}: {shown:?}");

        let exact = infer(&body[..], segment_bytes, threads, Cuts::Exact, max_columns);
        let paired = infer(
            &body[..],
            segment_bytes,
            threads,
            Cuts::PairedQuotes,
            max_columns,
        );
        let exact = match exact {
            Ok(Some(inferred)) => Ok(inferred),
            Ok(None) => panic!("an exact cut was handed back: {context}"),
            Err(e) => Err(e.to_string()),
        };
        match (&paired, &exact) {
            (Ok(None), _) => {}
            (Ok(Some(p)), Ok(e)) => {
                assert_eq!(p.schema, e.schema, "{context}");
                assert_eq!(p.rarely_repeating, e.rarely_repeating, "{context}");
            }
            (Err(p), Err(e)) => assert_eq!(&p.to_string(), e, "{context}"),
            (p, e) => panic!("the cuts disagree: {p:?} against {e:?}: {context}"),
        }
        let Ok(inferred) = exact else { continue };
        accepted += 1;
        let parse = Reconciled::identity(&inferred.schema).parse;
        let mut reader = PartReader::new(parse.fields().len());
        for (i, part) in inferred.parts.iter().enumerate() {
            let end = inferred
                .parts
                .get(i + 1)
                .map_or(body.len(), |next| next.byte as usize);
            let text = &body[part.byte as usize..end];
            let batches = reader
                .read(text, part.line, &parse, 1 + g.below(4))
                .unwrap_or_else(|e| panic!("an accepted body fails to decode: {e}: {context}"));
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            assert!(rows > 0, "a part without rows: {context}");
        }
    }
    assert!(
        accepted > cases(2_000) / 20,
        "only {accepted} bodies were accepted"
    );
}

/// NDJSON bodies: objects of every JSON type, nested, with blank lines and CRLF, near-misses of them, and
/// lines over the cap. Inference answers or refuses, and a body it accepts decodes or is refused, never a
/// panic.
#[test]
fn fuzz_ndjson_bodies() {
    let keys = ["id", "name", "tags", "rate", "when"];
    let words = ["a", "é", "2024-01-05", "1", "\"", "\\", " "];
    let mut g = Gen::new(12);
    let mut scratch = Scratch::new();
    let mut decoded = 0;
    for case in 0..cases(2_000) {
        let mut text = String::new();
        for _ in 0..g.below(6) {
            let mut object = serde_json::Map::new();
            for _ in 0..g.below(4) {
                let value = g.json(3, &keys, &words);
                object.insert((*g.pick(&keys)).to_owned(), value);
            }
            text.push_str(&serde_json::Value::Object(object).to_string());
            text.push_str(g.pick::<&str>(&["\n", "\r\n", "\n\n", "\n  \n"]));
        }
        let body = if g.one_in(3) {
            g.mutate(&text)
        } else {
            text.into_bytes()
        };
        let max_line = *g.pick(&[8, 64, 1 << 20]);
        let context = format!("case {case}: {:?}", String::from_utf8_lossy(&body));
        let Ok(schema) = infer_ndjson(scratch.holding(&body), max_line) else {
            continue;
        };
        let parse = Reconciled::identity(&schema).parse;
        // As the service reads them: up to the first error (arrow's reader yields the same error again
        // and again after one). Every batch holds a row and every row a byte of the body.
        if let Ok(batches) = open(scratch.holding(&body), false, &parse, 1 + g.below(4)) {
            let mut read = 0;
            for batch in batches {
                if batch.is_err() {
                    break;
                }
                read += 1;
                assert!(read <= body.len(), "more batches than bytes: {context}");
            }
            decoded += read;
        }
        let longest = body
            .split(|&b| b == b'\n')
            .map(|line| line.trim_ascii_end().len())
            .max();
        assert!(
            longest <= Some(max_line),
            "a line over {max_line} bytes: {context}"
        );
    }
    assert!(decoded > 0, "no body decoded");
}

/// A Parquet file of a few columns of every kind inference makes, with nulls, in several row groups and
/// pages, compressed or not.
fn parquet_file(g: &mut Gen) -> (Vec<u8>, usize) {
    let rows = g.below(40);
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for c in 0..1 + g.below(3) {
        let null = |g: &mut Gen| g.one_in(5);
        let (field, column): (Field, ArrayRef) = match g.below(4) {
            0 => (
                Field::new(format!("i{c}"), arrow::datatypes::DataType::Int64, true),
                Arc::new(Int64Array::from_iter(
                    (0..rows).map(|_| (!null(g)).then(|| g.next_u64() as i64)),
                )),
            ),
            1 => (
                Field::new(format!("f{c}"), arrow::datatypes::DataType::Float64, true),
                Arc::new(Float64Array::from_iter(
                    (0..rows).map(|_| (!null(g)).then(|| g.below(1000) as f64 / 7.0)),
                )),
            ),
            2 => (
                Field::new(format!("b{c}"), arrow::datatypes::DataType::Boolean, true),
                Arc::new(BooleanArray::from_iter(
                    (0..rows).map(|_| (!null(g)).then(|| g.one_in(2))),
                )),
            ),
            _ => (
                Field::new(format!("s{c}"), arrow::datatypes::DataType::Utf8, true),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|_| (!null(g)).then(|| g.join(&["a", "é", "xyz", ""], 4))),
                )),
            ),
        };
        fields.push(field);
        columns.push(column);
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("a valid batch");
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1 + g.below(16)))
        .set_data_page_row_count_limit(1 + g.below(8))
        .set_write_batch_size(1 + g.below(8))
        .set_dictionary_enabled(g.one_in(2))
        .set_compression(if g.one_in(2) {
            Compression::SNAPPY
        } else {
            Compression::UNCOMPRESSED
        })
        .build();
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties)).expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    (bytes, rows)
}

/// Parquet files and near-misses of them (bytes changed, dropped, repeated, cut short). A file as written
/// decodes whole; a damaged one is read or refused, never a panic or an allocation its size cannot explain
/// (an abort would end the test run).
#[test]
fn fuzz_parquet_bodies() {
    let mut g = Gen::new(13);
    let mut scratch = Scratch::new();
    let mut damaged_read = 0;
    for case in 0..cases(2_000) {
        let (mut bytes, rows) = parquet_file(&mut g);
        let intact = g.one_in(4);
        if !intact {
            g.damage(&mut bytes, &[], 4, 32);
        }
        let context = format!("case {case}, {} bytes", bytes.len());
        let schema = match parquet_schema(scratch.holding(&bytes)) {
            Ok(schema) => schema,
            Err(e) => {
                assert!(!intact, "an intact file is refused: {e}: {context}");
                continue;
            }
        };
        let parse = Reconciled::identity(&schema).parse;
        let mut read = 0;
        let mut failed = None;
        match open(scratch.holding(&bytes), true, &parse, 1 + g.below(8)) {
            Ok(batches) => {
                for batch in batches {
                    match batch {
                        Ok(batch) => read += batch.num_rows(),
                        Err(e) => {
                            failed = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
            Err(e) => failed = Some(e.to_string()),
        }
        if intact {
            assert_eq!(failed, None, "{context}");
            assert_eq!(read, rows, "{context}");
        } else if failed.is_none() {
            damaged_read += 1;
        }
    }
    // Most damage is caught; some (a changed value, a changed statistic) reads.
    assert!(damaged_read > 0, "no damaged file was read");
}
