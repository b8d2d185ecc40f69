//! CSV inference on several threads: the records' structure and the kinds of their values (see
//! [`crate::infer`] for the rules).
//!
//! Finding where records end is the one part of reading CSV that cannot be shared out: whether a line break
//! ends a record depends on every quote before it. The body is cut, as it is read, into segments of about
//! `segment_bytes` that end where a record ends, and the segments are parsed and looked at on several
//! threads at once. There are two ways to cut:
//! - [`Cuts::PairedQuotes`], while the body arrives: at a line break after which the quotes since the last
//!   cut pair up. That is where a record ends in well-formed CSV, and finding it costs a count of quotes. But
//!   a quote inside an unquoted field (`6'2"`) is a plain character to a CSV reader and throws the count off,
//!   so every cut is checked: the segment before it must end exactly there, with no record left open, when
//!   parsed on its own. A segment that starts where a record starts parses as it would within the whole
//!   body, so when every cut holds, the answer is the whole body's. When one does not (or no cut is found
//!   for too long), the answer is `None`, and the body is read again from its spool file with:
//! - [`Cuts::Exact`]: the reading thread parses the whole body itself to find where records end.
//!
//! Within a segment, plain records are split by [`crate::csv::records`] and the others parsed by csv_core. The
//! reading thread also parses the header and the first rows (for the names and the sample of [`Distinct`]
//! values). A record's line is the line its first byte is on.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use arrow::datatypes::{Field, Schema};
use csv_core::ReadRecordResult;

use crate::csv::records::{Span, Split, split_record};
use crate::infer::{
    CsvInferred, Distinct, Kind, PartStart, header_names, look_at_record, look_at_split, no_header,
    split_fields, unclosed_quote, unequal_fields,
};
use crate::{Error, Result};

/// Bytes read from the body at a time.
const READ_BYTES: usize = 256 * 1024;

/// A segment that has grown to this many times `segment_bytes` without a cut is given up on.
const MOST_SEGMENTS_WITHOUT_A_CUT: usize = 8;

/// One segment: the bytes of whole records (if the cut before it holds), where they start, and whether the
/// body ends with it.
struct Segment {
    index: usize,
    bytes: Vec<u8>,
    start: PartStart,
    last: bool,
}

/// What looking at one segment found.
struct Looked {
    start: PartStart,
    kinds: Vec<Kind>,
    rows: u64,
    /// The first fault among its records.
    fault: Option<Error>,
    /// Whether the segment ended with a record's end (always true of the last).
    ended_cleanly: bool,
}

/// How segments are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cuts {
    /// Where the quotes pair up, checked afterwards.
    PairedQuotes,
    /// Where the reading thread's own parse finds records end.
    Exact,
}

/// The longest record held while a body is read in segments of `segment_bytes` (8 segments, and never less
/// than 2 MiB): a longer CSV record is refused, and so is a longer NDJSON line, so that one record cannot
/// take memory in proportion to the body (16 MiB with the default 2 MiB `[ingest] part_bytes`).
pub fn record_limit(segment_bytes: usize) -> usize {
    segment_bytes
        .max(1)
        .saturating_mul(MOST_SEGMENTS_WITHOUT_A_CUT)
        .max(MOST_SEGMENTS_WITHOUT_A_CUT * READ_BYTES)
}

/// Infers the schema of a CSV body as it arrives from `input`, cutting where quotes pair up; `None` when a
/// cut was wrong and the body has to be read again with [`infer_csv`].
pub fn infer_csv_streaming(
    input: impl Read,
    segment_bytes: usize,
    threads: usize,
    max_columns: usize,
) -> Result<Option<CsvInferred>> {
    infer(
        input,
        segment_bytes,
        threads,
        Cuts::PairedQuotes,
        max_columns,
    )
}

/// Infers the schema of the CSV file `file` (read from its current position), cutting where records end.
pub fn infer_csv(
    file: File,
    segment_bytes: usize,
    threads: usize,
    max_columns: usize,
) -> Result<CsvInferred> {
    infer(file, segment_bytes, threads, Cuts::Exact, max_columns)?
        .ok_or_else(|| Error::Task("an exact cut of the CSV failed its check".into()))
}

/// Infers the schema of the CSV body `input`, cut as `cuts` says; `None` when a guessed cut was wrong.
pub(crate) fn infer(
    mut input: impl Read,
    segment_bytes: usize,
    threads: usize,
    cuts: Cuts,
    max_columns: usize,
) -> Result<Option<CsvInferred>> {
    let segment_bytes = segment_bytes.max(1);
    let mut head = Head::new(max_columns);
    let mut buffer = Vec::with_capacity(segment_bytes.min(1 << 24) + READ_BYTES);
    let mut chunk = vec![0u8; READ_BYTES];
    let mut ended = false;
    let mut cutter = Cutter::new(cuts);
    // The longest run without a cut (or header) that is held.
    let limit = record_limit(segment_bytes);
    // The header first: the names are needed before any segment can be looked at.
    while head.data_start.is_none() && !ended {
        if buffer.len() > limit {
            return Err(Error::Malformed(format!(
                "line 1: the header runs on for more than {limit} bytes (is a quote never closed?)"
            )));
        }
        ended = read_more(&mut input, &mut chunk, &mut head, &mut cutter, &mut buffer)?;
    }
    let (Some(names), Some(data_start)) = (head.names.clone(), head.data_start) else {
        return Err(no_header());
    };
    let header_bytes = usize::try_from(data_start)
        .unwrap_or(usize::MAX)
        .min(buffer.len());
    let mut start = PartStart {
        byte: data_start,
        line: 1 + count(&buffer[..header_bytes], b'\n'),
    };
    buffer.drain(..header_bytes);

    let threads = threads.max(1);
    let (segments, waiting) = mpsc::sync_channel::<Segment>(threads);
    let waiting = Arc::new(Mutex::new(waiting));
    let (found, results) = mpsc::channel::<(usize, Looked)>();
    let (give_back, spent) = mpsc::channel::<Vec<u8>>();
    let cut_off = std::thread::scope(|scope| -> Result<Option<usize>> {
        // Owned here, so that however this returns the threads see the end of the segments before the
        // scope waits for them.
        let segments = segments;
        for _ in 0..threads {
            let (waiting, found, give_back, names) =
                (waiting.clone(), found.clone(), give_back.clone(), &names);
            scope.spawn(move || look_at_segments(&waiting, &found, &give_back, names));
        }
        drop((found, give_back));
        let mut index = 0;
        let mut send = |bytes: Vec<u8>, start: PartStart, last: bool| {
            let segment = Segment {
                index,
                bytes,
                start,
                last,
            };
            index += 1;
            segments.send(segment).is_ok()
        };
        loop {
            while buffer.len() >= segment_bytes {
                let Some(cut) = cutter.find(&buffer, start.byte, segment_bytes) else {
                    break;
                };
                // The rest goes into a buffer a thread is done with, if there is one: fresh memory costs a
                // page fault every 4 KiB.
                let mut rest = spent.try_recv().unwrap_or_default();
                rest.clear();
                rest.extend_from_slice(&buffer[cut..]);
                buffer.truncate(cut);
                let lines = count(&buffer, b'\n');
                let next = PartStart {
                    byte: start.byte + cut as u64,
                    line: start.line + lines,
                };
                if !send(std::mem::replace(&mut buffer, rest), start, false) {
                    return Err(Error::Task("the CSV inference threads stopped".into()));
                }
                start = next;
            }
            if buffer.len() > limit {
                // A quote never closed, or (for guessed cuts) quotes inside unquoted fields.
                return cutter.too_long(limit).map_or(Ok(None), Err);
            }
            if ended {
                break;
            }
            ended = read_more(&mut input, &mut chunk, &mut head, &mut cutter, &mut buffer)?;
        }
        let last = std::mem::take(&mut buffer);
        if !send(last, start, true) {
            return Err(Error::Task("the CSV inference threads stopped".into()));
        }
        Ok(Some(index))
    });
    let Some(count_sent) = cut_off? else {
        return Ok(None);
    };

    let mut looked: Vec<Option<Looked>> = (0..count_sent).map(|_| None).collect();
    for (index, result) in results {
        if let Some(slot) = looked.get_mut(index) {
            *slot = Some(result);
        }
    }
    let mut kinds = vec![Kind::Empty; names.len()];
    let mut parts = Vec::new();
    for result in looked {
        let result =
            result.ok_or_else(|| Error::Task("a segment of the CSV was not looked at".into()))?;
        if let Some(fault) = result.fault {
            return Err(fault);
        }
        if !result.ended_cleanly {
            return Ok(None);
        }
        if result.rows > 0 {
            parts.push(result.start);
        }
        for (kind, seen) in kinds.iter_mut().zip(&result.kinds) {
            *kind = kind.merge(*seen);
        }
    }
    let rarely_repeating = head.distinct.rarely_repeating(&names);
    let fields: Vec<Field> = names
        .into_iter()
        .zip(kinds)
        .map(|(n, k)| Field::new(n, k.data_type(), true))
        .collect();
    Ok(Some(CsvInferred {
        schema: Arc::new(Schema::new(fields)),
        parts,
        rarely_repeating,
    }))
}

/// Reads the next bytes of the body onto the end of `buffer`, the header's parser and the cutter taking them
/// on the way; true at the end of the body.
fn read_more(
    input: &mut impl Read,
    chunk: &mut [u8],
    head: &mut Head,
    cutter: &mut Cutter,
    buffer: &mut Vec<u8>,
) -> Result<bool> {
    let n = loop {
        match input.read(chunk) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Spool(e.to_string())),
        }
    };
    let bytes = &chunk[..n];
    head.feed(bytes)?;
    cutter.feed(bytes);
    buffer.extend_from_slice(bytes);
    Ok(n == 0)
}

/// How many times `byte` is in `bytes`. Summed in runs of 255 bytes into a byte-wide count, which compiles
/// to compares of 16 bytes at a time; a plain `filter().count()` sums into 64-bit lanes, two bytes at a time,
/// and counting was most of the reading thread's work.
pub(crate) fn count(bytes: &[u8], byte: u8) -> u64 {
    bytes
        .chunks(255)
        .map(|run| u64::from(run.iter().fold(0u8, |n, &b| n + u8::from(b == byte))))
        .sum()
}

/// Finds where to cut. Counts and parses are kept between calls, so every byte is looked at once.
enum Cutter {
    /// The first line break at or after `segment_bytes` with the quotes before it paired: `counted` bytes
    /// of the buffer are counted, with an odd number of quotes among them if `open`.
    PairedQuotes { counted: usize, open: bool },
    /// The first record end at or after `segment_bytes`, from a parse of everything read.
    Exact {
        // Boxed: a parser carries its transition table.
        reader: Box<csv_core::Reader>,
        record: Record,
        fed: u64,
        /// Where records end, in the body, from the current segment's start on.
        ends: VecDeque<u64>,
        /// Line breaks read, and how many came before the last record's end.
        lines: u64,
        lines_before_last_end: u64,
    },
}

impl Cutter {
    fn new(cuts: Cuts) -> Self {
        match cuts {
            Cuts::PairedQuotes => Cutter::PairedQuotes {
                counted: 0,
                open: false,
            },
            Cuts::Exact => Cutter::Exact {
                reader: Box::new(csv_core::Reader::new()),
                record: Record::new(),
                fed: 0,
                ends: VecDeque::new(),
                lines: 0,
                lines_before_last_end: 0,
            },
        }
    }

    /// Bytes as they are read (the exact cutter parses them).
    fn feed(&mut self, mut input: &[u8]) {
        let Cutter::Exact {
            reader,
            record,
            fed,
            ends,
            lines,
            lines_before_last_end,
        } = self
        else {
            return;
        };
        while !input.is_empty() {
            let result = record.read(reader, input);
            *lines += count(&input[..result.consumed], b'\n');
            input = &input[result.consumed..];
            *fed += result.consumed as u64;
            record.clear();
            if matches!(result.outcome, Outcome::Record) {
                ends.push_back(*fed);
                *lines_before_last_end = *lines;
            }
        }
    }

    /// Why a segment grew past `limit` bytes without a cut: `None` if the cuts were only guessed.
    fn too_long(&self, limit: usize) -> Option<Error> {
        match self {
            Cutter::PairedQuotes { .. } => None,
            Cutter::Exact {
                lines_before_last_end,
                ..
            } => Some(Error::Malformed(format!(
                "line {}: a record runs on for more than {limit} bytes (is a quote never closed?)",
                lines_before_last_end + 1
            ))),
        }
    }

    /// Where to cut `buffer`, which starts at `start` in the body, at or after `segment_bytes`.
    fn find(&mut self, buffer: &[u8], start: u64, segment_bytes: usize) -> Option<usize> {
        match self {
            Cutter::PairedQuotes { counted, open } => {
                if *counted < segment_bytes {
                    *open ^= count(&buffer[*counted..segment_bytes], b'"') % 2 == 1;
                    *counted = segment_bytes;
                }
                for (offset, &byte) in buffer[*counted..].iter().enumerate() {
                    match byte {
                        b'"' => *open = !*open,
                        b'\n' if !*open => {
                            let cut = *counted + offset + 1;
                            (*counted, *open) = (0, false);
                            return Some(cut);
                        }
                        _ => {}
                    }
                }
                *counted = buffer.len();
                None
            }
            Cutter::Exact { ends, .. } => {
                let wanted = start + segment_bytes as u64;
                while ends.front().is_some_and(|&end| end < wanted) {
                    ends.pop_front();
                }
                let end = ends.pop_front()?;
                usize::try_from(end - start).ok()
            }
        }
    }
}

/// The header and the first rows, parsed on the reading thread as they arrive.
struct Head {
    reader: csv_core::Reader,
    record: Record,
    /// Bytes fed so far.
    fed: u64,
    names: Option<Vec<String>>,
    /// Where the first record after the header starts.
    data_start: Option<u64>,
    distinct: Distinct,
    done: bool,
    max_columns: usize,
}

impl Head {
    fn new(max_columns: usize) -> Self {
        Head {
            max_columns,
            reader: csv_core::Reader::new(),
            record: Record::new(),
            fed: 0,
            names: None,
            data_start: None,
            distinct: Distinct::new(0),
            done: false,
        }
    }

    /// Parses `input`; an empty `input` is the end of the body.
    fn feed(&mut self, mut input: &[u8]) -> Result<()> {
        let at_end = input.is_empty();
        while !self.done {
            let result = self.record.read(&mut self.reader, input);
            input = &input[result.consumed..];
            self.fed += result.consumed as u64;
            match result.outcome {
                // At the end the parser gives the last record, then the end; never more input to wait for.
                Outcome::NeedInput if at_end => self.done = true,
                Outcome::NeedInput => return Ok(()),
                Outcome::Record => {
                    let fields = self.record.fields();
                    if self.names.is_none() {
                        let names = header_names(&fields.collect::<Vec<_>>(), self.max_columns)?;
                        self.distinct = Distinct::new(names.len());
                        self.names = Some(names);
                        self.data_start = Some(self.fed);
                    } else if !self.distinct.add(fields) {
                        self.done = true;
                    }
                    self.record.clear();
                }
                Outcome::End => self.done = true,
            }
        }
        Ok(())
    }
}

/// What one call to [`Record::read`] came to.
enum Outcome {
    /// The input ran out inside a record (or before one).
    NeedInput,
    /// A whole record is in the buffers.
    Record,
    /// The end of the body, after the last record.
    End,
}

struct ReadResult {
    outcome: Outcome,
    consumed: usize,
}

/// One record's fields as csv_core writes them, in buffers that grow as needed and are kept between records.
struct Record {
    out: Vec<u8>,
    ends: Vec<usize>,
    out_len: usize,
    ends_len: usize,
}

impl Record {
    fn new() -> Self {
        Record {
            out: vec![0; 64 * 1024],
            ends: vec![0; 64],
            out_len: 0,
            ends_len: 0,
        }
    }

    /// Parses from `input` until a record is complete or `input` runs out (an empty `input` is the end of
    /// the body).
    fn read(&mut self, reader: &mut csv_core::Reader, input: &[u8]) -> ReadResult {
        let mut consumed = 0;
        loop {
            let (result, nin, nout, nend) = reader.read_record(
                &input[consumed..],
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            consumed += nin;
            self.out_len += nout;
            self.ends_len += nend;
            let outcome = match result {
                ReadRecordResult::InputEmpty => Outcome::NeedInput,
                ReadRecordResult::OutputFull => {
                    self.out.resize(self.out.len() * 2, 0);
                    continue;
                }
                ReadRecordResult::OutputEndsFull => {
                    self.ends.resize(self.ends.len() * 2, 0);
                    continue;
                }
                ReadRecordResult::Record => Outcome::Record,
                ReadRecordResult::End => Outcome::End,
            };
            return ReadResult { outcome, consumed };
        }
    }

    fn fields(&self) -> impl Iterator<Item = &[u8]> {
        split_fields(self.whole(), self.ends())
    }

    fn whole(&self) -> &[u8] {
        &self.out[..self.out_len]
    }

    fn ends(&self) -> &[usize] {
        &self.ends[..self.ends_len]
    }

    fn len(&self) -> usize {
        self.ends_len
    }

    fn clear(&mut self) {
        self.out_len = 0;
        self.ends_len = 0;
    }
}

/// A thread's loop: takes segments until there are none, and sends what it found in each.
fn look_at_segments(
    waiting: &Mutex<mpsc::Receiver<Segment>>,
    found: &mpsc::Sender<(usize, Looked)>,
    give_back: &mpsc::Sender<Vec<u8>>,
    names: &[String],
) {
    let mut record = Record::new();
    let mut reader = csv_core::Reader::new();
    let mut split = Splitting::default();
    loop {
        let segment = {
            let Ok(waiting) = waiting.lock() else {
                return;
            };
            match waiting.recv() {
                Ok(segment) => segment,
                Err(_) => return,
            }
        };
        let looked = look_at_segment(&segment, &mut reader, &mut record, &mut split, names);
        if found.send((segment.index, looked)).is_err() {
            return;
        }
        // The reading thread may have finished; then the buffer is simply freed.
        let _ = give_back.send(segment.bytes);
    }
}

/// The buffers of records split without csv_core: their fields, and room to unescape one.
#[derive(Default)]
struct Splitting {
    spans: Vec<Span>,
    scratch: Vec<u8>,
}

/// Whether a line break after `record`, the start of a record with no end, would end it: false when it
/// ends inside quotes.
fn closes(record: &[u8]) -> bool {
    if record.is_empty() {
        return true;
    }
    let mut reader = csv_core::Reader::new();
    let mut parsed = Record::new();
    let mut input = record.to_vec();
    input.push(b'\n');
    let result = parsed.read(&mut reader, &input);
    matches!(result.outcome, Outcome::Record) && result.consumed == input.len()
}

/// Parses one segment on its own and looks at its records, stopping at the first fault.
fn look_at_segment(
    segment: &Segment,
    reader: &mut csv_core::Reader,
    record: &mut Record,
    split: &mut Splitting,
    names: &[String],
) -> Looked {
    record.clear();
    let mut looked = Looked {
        start: segment.start,
        kinds: vec![Kind::Empty; names.len()],
        rows: 0,
        fault: None,
        ended_cleanly: true,
    };
    let mut input: &[u8] = &segment.bytes;
    let mut line = segment.start.line;
    // One check of the whole segment: records and fields are separated by ASCII bytes, so when it is UTF-8,
    // so is every value in it. Only a segment that is not has its records checked one by one, to name the
    // line and column at fault.
    let utf8_checked = std::str::from_utf8(input).is_ok();
    loop {
        // Line breaks before a record are empty lines to the parser, which skips them; skipping them here
        // counts them before the record's line is taken (the LF of a CRLF is otherwise only read with the
        // next record).
        let breaks = input
            .iter()
            .take_while(|&&b| matches!(b, b'\r' | b'\n'))
            .count();
        line += count(&input[..breaks], b'\n');
        input = &input[breaks..];
        let record_line = line;
        let record_start = segment.bytes.len() - input.len();
        if let Split::Record(consumed) = split_record(input, &mut split.spans) {
            let record = &input[..consumed];
            if split.spans.len() != names.len() {
                looked.fault = Some(unequal_fields(record_line, split.spans.len(), names.len()));
                return looked;
            }
            if let Err(fault) = look_at_split(
                record,
                &split.spans,
                &mut looked.kinds,
                names,
                record_line,
                utf8_checked,
                &mut split.scratch,
            ) {
                looked.fault = Some(fault);
                return looked;
            }
            line += count(record, b'\n');
            input = &input[consumed..];
            looked.rows += 1;
            continue;
        }
        // Not a plain record: csv_core reads it, from its first state.
        reader.reset();
        loop {
            let at_end = input.is_empty();
            let result = record.read(reader, input);
            line += count(&input[..result.consumed], b'\n');
            input = &input[result.consumed..];
            match result.outcome {
                // Parsing again with nothing left is the end of the segment; at the end of the body, a record
                // still open there must not be inside quotes. (A line break would end it if it were not.)
                Outcome::NeedInput
                    if input.is_empty()
                        && segment.last
                        && !closes(&segment.bytes[record_start..]) =>
                {
                    looked.fault = Some(unclosed_quote(record_line));
                    return looked;
                }
                // At the end the parser gives the last record, then the end; never more input to wait for.
                Outcome::NeedInput if at_end => return looked,
                Outcome::NeedInput => {}
                Outcome::End => return looked,
                // A record the end of the segment closed: the last record of the body, or a wrong cut.
                Outcome::Record if at_end && !segment.last => {
                    looked.ended_cleanly = false;
                    return looked;
                }
                Outcome::Record => break,
            }
        }
        if record.len() != names.len() {
            looked.fault = Some(unequal_fields(record_line, record.len(), names.len()));
            return looked;
        }
        if let Err(fault) = look_at_record(
            record.whole(),
            record.ends(),
            &mut looked.kinds,
            names,
            record_line,
            utf8_checked,
        ) {
            looked.fault = Some(fault);
            return looked;
        }
        looked.rows += 1;
        record.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::DEFAULT_MAX_COLUMNS;

    fn describe(inferred: &CsvInferred) -> String {
        format!(
            "{:?} {:?}",
            inferred.schema.fields(),
            inferred.rarely_repeating
        )
    }

    fn check_parts(body: &[u8], inferred: &CsvInferred) {
        for part in &inferred.parts {
            let at = part.byte as usize;
            assert!(
                at > 0 && matches!(body[at - 1], b'\n' | b'\r'),
                "part at {at} starts a line"
            );
            let line = 1 + count(&body[..at], b'\n');
            assert!(
                part.line == line || part.line == line - 1,
                "part at {at}: line {}",
                part.line
            );
        }
    }

    /// The answer of one record after another: one segment, cut nowhere.
    fn whole(body: &[u8]) -> String {
        match infer(body, usize::MAX, 1, Cuts::Exact, DEFAULT_MAX_COLUMNS) {
            Ok(Some(inferred)) => describe(&inferred),
            Ok(None) => panic!("an uncut body is never handed back"),
            Err(e) => e.to_string(),
        }
    }

    fn cut(body: &[u8], segment_bytes: usize, threads: usize, cuts: Cuts) -> Option<String> {
        match infer(body, segment_bytes, threads, cuts, DEFAULT_MAX_COLUMNS) {
            Ok(Some(inferred)) => {
                check_parts(body, &inferred);
                Some(describe(&inferred))
            }
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Every body, cut every way, reads as it does uncut (the paired cuts may hand it back instead); returns
    /// how many times it was handed back.
    fn agrees(body: &[u8]) -> usize {
        let expected = whole(body);
        let mut handed_back = 0;
        for segment_bytes in [1, 2, 3, 5, 8, 13, 40, 1000, 1 << 20] {
            if body.len() / segment_bytes > 2000 {
                continue;
            }
            for threads in [1, 3] {
                let exact = cut(body, segment_bytes, threads, Cuts::Exact).unwrap_or_default();
                // Unless a record is longer than a read with such small segments holds.
                let too_long = exact.contains("a record runs on")
                    && body.len() > READ_BYTES * MOST_SEGMENTS_WITHOUT_A_CUT;
                assert!(
                    exact == expected || too_long,
                    "exact cuts of {segment_bytes}: {exact}"
                );
                match cut(body, segment_bytes, threads, Cuts::PairedQuotes) {
                    Some(answer) => assert_eq!(
                        answer,
                        expected,
                        "{:?} in segments of {segment_bytes}",
                        String::from_utf8_lossy(body)
                    ),
                    None => handed_back += 1,
                }
            }
        }
        handed_back
    }

    #[test]
    fn counts_bytes() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        assert_eq!(count(&bytes, 3), 1429);
        assert_eq!(count(&bytes[..255], 0), 37);
        assert_eq!(count(&[], 0), 0);
        assert_eq!(count(&[9; 600], 9), 600);
    }

    #[test]
    fn segments_read_as_the_whole_body_does() {
        let mut long = String::from("id,score,note\n");
        for i in 0..3000 {
            long.push_str(&format!("{i},{},\"n, {i}\"\n", i % 7));
        }
        long.push_str("3000,N/A,x\n");
        for body in [
            "a,b\n1,2\n3,4\n".to_owned(),
            "a,b\n1,2\n3,4".to_owned(),
            "a,b\r\n1,2\r\n\r\n3,x\r\n".to_owned(),
            "a,b\n1,\"two\nlines\"\n2,\"x \"\"q\"\" y\"\n\n\n3,\"\n\n\"\n".to_owned(),
            "a,b\n1,2\n3,4,5\n6,7\n".to_owned(),
            "a,b\n1,2\n3\n".to_owned(),
            "a,b\n1,\"open\n2,3\n".to_owned(),
            "a,b\n".to_owned(),
            "a,b".to_owned(),
            String::new(),
            "\n\n".to_owned(),
            "a,a\n1,2\n".to_owned(),
            "a,,c\n1,2,3\n".to_owned(),
            "when,at\n2024-01-05,2024-01-05 10:00:00\n2024-02-30,2024-01-05T10:00:00Z\n".to_owned(),
            long,
        ] {
            agrees(body.as_bytes());
        }
        // Invalid UTF-8 in a later record, and a character split across two fields.
        agrees(b"a,b\n1,2\n3,\"x\xff\"\n4,5\n");
        agrees(b"a,b,c\n0,0,0\n1,x\xC3,\xA9y\n");
    }

    #[test]
    fn faults_name_the_line_the_record_is_on() {
        for (body, line) in [
            (&b"a,b\n1,2\n3\n"[..], 3),
            (b"a,b\r\n1,2\r\n3\r\n", 3),
            (b"a,b\n1,\"x\ny\"\n\n\n3\n", 6),
            (b"a,b\r\n\r\n1,2\r\n3,\"\xff\"\r\n", 4),
            (b"a,b\n1,2\n\"", 3),
            (b"a,b\n1,2\n3,\"x\ny", 3),
        ] {
            let e = whole(body);
            assert!(e.contains(&format!("line {line}")), "{body:?}: {e}");
            agrees(body);
        }
    }

    #[test]
    fn quotes_inside_unquoted_fields_are_read_right_or_handed_back() {
        // A height written as 6'2" puts one quote in an unquoted field: pairing quotes goes wrong after it.
        let mut body = String::from("id,height,note\n");
        for i in 0..200 {
            let height = if i % 9 == 4 { "6'2\"" } else { "180" };
            body.push_str(&format!("{i},{height},\"n\n{i}\"\n"));
        }
        let handed_back = agrees(body.as_bytes());
        assert!(handed_back > 0, "some cuts must fail their check");
        // An odd number of them is no unclosed quote.
        let odd = "id,height\n1,6'2\"\n2,180\n";
        assert!(
            whole(odd.as_bytes()).starts_with("[Field"),
            "{}",
            whole(odd.as_bytes())
        );
        agrees(odd.as_bytes());
    }

    #[test]
    fn an_unclosed_quote_is_named_or_stops_the_cutting() {
        let mut body = String::from("id,note\n1,\"never closed\n");
        for i in 2..2000 {
            body.push_str(&format!("{i},x\n"));
        }
        for cuts in [Cuts::PairedQuotes, Cuts::Exact] {
            let e = cut(body.as_bytes(), 64, 2, cuts).unwrap_or_default();
            assert!(e.contains("line 2: a quoted field is never closed"), "{e}");
        }
        // Past what is held without a cut: handed back, and read exactly, refused.
        while body.len() <= READ_BYTES * (MOST_SEGMENTS_WITHOUT_A_CUT + 1) {
            body.push_str("2,x\n");
        }
        assert_eq!(cut(body.as_bytes(), 64, 2, Cuts::PairedQuotes), None);
        let e = cut(body.as_bytes(), 64, 2, Cuts::Exact).unwrap_or_default();
        assert!(e.contains("line 2: a record runs on for more than"), "{e}");
        let mut header = b"a,\"b\n".to_vec();
        header.extend(b"x\n".repeat(READ_BYTES * 5));
        let e = cut(&header, 64, 2, Cuts::Exact).unwrap_or_default();
        assert!(e.contains("line 1: the header runs on"), "{e}");
    }
}
