//! Splitting plain CSV records into their fields without csv_core, about twice as fast.
//!
//! csv_core reads a byte at a time through a state machine that handles every dialect and every oddity, and
//! copies each field's bytes out. Both passes over a CSV body (inference and decoding) spent about 0.1 s of
//! CPU per 100 MB in it, the largest single cost of an ingest. Most records are plain, though: each field is
//! either unquoted and free of quotes and line breaks, or quoted and closed right before a comma or the line
//! end. [`split_record`] finds such a record's fields by looking 16 bytes at a time for the next comma, quote
//! or line break, and leaves everything else to csv_core: a record it does not split ([`Split::Other`]) is
//! parsed by csv_core as before, from the same place (both stop where a record ends, so each can take the
//! next record). A test checks, on random bodies made of the characters that matter, that records split
//! here and by csv_core come out the same.

/// A field of a split record: where its value is in the input (inside the quotes of a quoted field), and
/// whether the value holds doubled quotes, each to be read as one quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
}

impl Span {
    /// The value's bytes, with doubled quotes read as one (into `scratch` when there are any).
    #[inline]
    pub(crate) fn value<'a>(&self, input: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
        let raw = &input[self.start..self.end];
        if !self.escaped {
            return raw;
        }
        scratch.clear();
        unescape_into(raw, scratch);
        scratch
    }
}

/// Appends `raw` (the inside of a quoted field) to `out` with each doubled quote read as one.
fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut rest = raw;
    while let Some(at) = memchr::memchr(b'"', rest) {
        // Inside a split field every quote is the first of a pair.
        out.extend_from_slice(&rest[..=at]);
        rest = rest.get(at + 2..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
}

/// What [`split_record`] made of the input's first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// A plain record of this many bytes, its line end included; its fields are in the spans.
    Record(usize),
    /// Not a plain record, or not a whole one (the input ends first): for csv_core.
    Other,
}

/// Splits the record at the start of `input` into `spans`, if it is plain and ends with a line break
/// (LF or CRLF) inside `input`.
///
/// Plain means: the input does not start with a line break (csv_core skips those as empty lines); an
/// unquoted field holds no quote and no CR or LF; a quoted field's closing quote is followed by a comma, LF
/// or CRLF. Anything else (a quote inside an unquoted field, text after a closing quote, a CR that does not
/// start a CRLF, a quote never closed) gets [`Split::Other`], and csv_core decides.
pub(crate) fn split_record(input: &[u8], spans: &mut Vec<Span>) -> Split {
    spans.clear();
    if matches!(input.first(), None | Some(b'\r' | b'\n')) {
        return Split::Other;
    }
    let mut at = 0;
    loop {
        // A field starts at `at`; `after` is where its value ends and what follows it starts.
        let after = if input.get(at) == Some(&b'"') {
            let start = at + 1;
            let mut from = start;
            let mut escaped = false;
            let close = loop {
                let Some(quote) = find_quote(input, from) else {
                    return Split::Other;
                };
                if input.get(quote + 1) == Some(&b'"') {
                    escaped = true;
                    from = quote + 2;
                } else {
                    break quote;
                }
            };
            spans.push(Span {
                start,
                end: close,
                escaped,
            });
            close + 1
        } else {
            let end = find_special(input, at);
            spans.push(Span {
                start: at,
                end,
                escaped: false,
            });
            end
        };
        match input.get(after) {
            Some(b',') => at = after + 1,
            Some(b'\n') => return Split::Record(after + 1),
            Some(b'\r') if input.get(after + 1) == Some(&b'\n') => {
                return Split::Record(after + 2);
            }
            _ => return Split::Other,
        }
    }
}

/// Whether a byte ends an unquoted field's value (or makes the record one for csv_core).
const fn specials() -> [bool; 256] {
    let mut table = [false; 256];
    table[b',' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table[b'"' as usize] = true;
    table
}

static SPECIAL: [bool; 256] = specials();

/// The first comma, quote, CR or LF at or after `from` (the input's length if none).
#[inline]
fn find_special(input: &[u8], mut from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    while let Some(block) = input.get(from..from + 16) {
        let found = sse2::specials(block);
        if found != 0 {
            return from + found.trailing_zeros() as usize;
        }
        from += 16;
    }
    while from < input.len() && !SPECIAL[usize::from(input[from])] {
        from += 1;
    }
    from
}

/// The first quote at or after `from`. Quoted values are mostly short, so the first 16 bytes are looked at
/// directly before memchr takes over.
#[inline]
fn find_quote(input: &[u8], from: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(block) = input.get(from..from + 16) {
        let found = sse2::quotes(block);
        if found != 0 {
            return Some(from + found.trailing_zeros() as usize);
        }
        return memchr::memchr(b'"', &input[from + 16..]).map(|at| from + 16 + at);
    }
    memchr::memchr(b'"', input.get(from..)?).map(|at| from + at)
}

/// SSE2 comparisons of 16 bytes at a time. SSE2 is part of the x86_64 baseline, so these need no check of
/// the running CPU. (memchr looks for at most three bytes at once; a field ends at any of four.)
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sse2 {
    use core::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };

    /// One bit per byte of `block` (16 bytes) that is a comma, quote, CR or LF.
    #[inline]
    pub(super) fn specials(block: &[u8]) -> u32 {
        assert!(block.len() >= 16);
        // SAFETY: SSE2 is enabled on every x86_64 target; the load reads 16 bytes, which `block` holds (checked
        // above), and `loadu` has no alignment requirement.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            let hits = _mm_or_si128(
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                ),
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8)),
                ),
            );
            _mm_movemask_epi8(hits) as u32
        }
    }

    /// One bit per byte of `block` (16 bytes) that is a quote.
    #[inline]
    pub(super) fn quotes(block: &[u8]) -> u32 {
        assert!(block.len() >= 16);
        // SAFETY: as in `specials`.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csv_core::ReadRecordResult;

    /// The fields of the records of `body` as csv_core alone reads them.
    fn by_csv_core(body: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut records = Vec::new();
        let mut reader = csv_core::Reader::new();
        let mut input = body;
        loop {
            let Some(fields) = one_by_csv_core(&mut reader, &mut input) else {
                return records;
            };
            records.push(fields);
        }
    }

    /// One record by csv_core from `input` (advanced past it); `None` at the end.
    fn one_by_csv_core(reader: &mut csv_core::Reader, input: &mut &[u8]) -> Option<Vec<Vec<u8>>> {
        // A record's values are never longer than its text.
        let mut out = vec![0u8; input.len() + 1];
        let mut ends = vec![0usize; input.len() + 1];
        let (mut nout, mut nend) = (0, 0);
        loop {
            let at_end = input.is_empty();
            let (result, nin, o, e) =
                reader.read_record(input, &mut out[nout..], &mut ends[nend..]);
            *input = &input[nin..];
            nout += o;
            nend += e;
            match result {
                ReadRecordResult::Record => break,
                ReadRecordResult::InputEmpty if !at_end => {}
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return None,
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {
                    unreachable!("buffers hold the whole input")
                }
            }
        }
        let mut start = 0;
        Some(
            ends[..nend]
                .iter()
                .map(|&end| {
                    let field = out[start..end].to_vec();
                    start = end;
                    field
                })
                .collect(),
        )
    }

    /// The same records, each split here when it is plain and by csv_core otherwise, as the passes do.
    fn by_both(body: &[u8]) -> (Vec<Vec<Vec<u8>>>, usize) {
        let mut records = Vec::new();
        let mut reader = csv_core::Reader::new();
        let mut spans = Vec::new();
        let mut scratch = Vec::new();
        let mut input = body;
        let mut split_here = 0;
        loop {
            let breaks = input
                .iter()
                .take_while(|&&b| matches!(b, b'\r' | b'\n'))
                .count();
            input = &input[breaks..];
            match split_record(input, &mut spans) {
                Split::Record(consumed) => {
                    records.push(
                        spans
                            .iter()
                            .map(|span| span.value(input, &mut scratch).to_vec())
                            .collect(),
                    );
                    input = &input[consumed..];
                    split_here += 1;
                }
                Split::Other => {
                    reader.reset();
                    match one_by_csv_core(&mut reader, &mut input) {
                        Some(fields) => records.push(fields),
                        None => return (records, split_here),
                    }
                }
            }
        }
    }

    fn fields(body: &[u8]) -> (Split, Vec<Vec<u8>>) {
        let mut spans = Vec::new();
        let mut scratch = Vec::new();
        let split = split_record(body, &mut spans);
        let values = spans
            .iter()
            .map(|span| span.value(body, &mut scratch).to_vec())
            .collect();
        (split, values)
    }

    #[test]
    fn splits_plain_records() {
        let (split, values) = fields(b"1,ab,,\"x, \"\"y\"\"\n\",\"\"\nnext");
        assert_eq!(split, Split::Record(21));
        assert_eq!(
            values,
            vec![
                b"1".to_vec(),
                b"ab".to_vec(),
                vec![],
                b"x, \"y\"\n".to_vec(),
                vec![]
            ]
        );
        assert_eq!(fields(b"a,b\r\nc").0, Split::Record(5));
        // Long unquoted and quoted values, across the 16-byte blocks.
        let long = format!("{},\"{}\"\n", "v".repeat(40), "q".repeat(40));
        let (split, values) = fields(long.as_bytes());
        assert_eq!(split, Split::Record(long.len()));
        assert_eq!(values, vec![vec![b'v'; 40], vec![b'q'; 40]]);
    }

    #[test]
    fn leaves_the_rest_to_csv_core() {
        for body in [
            &b""[..],
            b"\nabc\n",
            b"\r\nabc\n",
            b"a,b",         // no line end: the input may end in the middle of the record
            b"a,\"b\"",     // the same after a quoted field
            b"a,6'2\",b\n", // a quote inside an unquoted field is a plain character to csv_core
            b"\"ab\"c,d\n", // text after a closing quote is part of the value to csv_core
            b"a\rb\n",      // a lone CR ends a record to csv_core
            b"\"a\"\rb\n",  // the same after a quoted field
            b"a,\"never closed\n", // the quote may close further on
        ] {
            assert_eq!(
                fields(body).0,
                Split::Other,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn fuzz_records_split_as_csv_core_splits_them() {
        // Bodies of random runs of the characters that matter, plain records among them. Every record split
        // here must be the record csv_core reads from the same place.
        let alphabet: &[&[u8]] = &[
            b"a",
            b"7",
            b",",
            b",",
            b"\"",
            b"\"\"",
            b"\n",
            b"\r\n",
            b"\r",
            b" ",
            "é".as_bytes(),
            b"xyzxyzxyzxyzxyzxyz",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut split_here = 0;
        let count = lakehouse_test_helpers::fuzz::cases(20_000);
        for _ in 0..count {
            let len = (next() % 40) as usize;
            let mut body = Vec::new();
            for _ in 0..len {
                body.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            let (both, split) = by_both(&body);
            assert_eq!(
                both,
                by_csv_core(&body),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
            split_here += split;
        }
        // The comparison means something only if many records took the fast way.
        assert!(
            split_here > count / 2,
            "only {split_here} records were split here"
        );
    }
}
