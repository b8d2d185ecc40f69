//! The generator behind the crates' fuzz targets: seeded, so a failure names the case that reproduces it,
//! and on stable Rust, so the targets run with the other tests.
//!
//! Every target is a test named `fuzz_*` that runs [`cases`] inputs: a short budget by default (the test
//! command), `LAKEHOUSE_FUZZ_CASES` for a long run (`scripts/fuzz.sh` sets it to 1,000,000). Inputs are
//! built from the pieces that matter to the parser under test (its keywords, delimiters, quotes, numbers at
//! the edges, deep nesting) rather than uniform bytes, which a parser refuses at the first byte.

use serde_json::{Map, Number, Value};

/// How many cases a fuzz target runs: `LAKEHOUSE_FUZZ_CASES`, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("LAKEHOUSE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A xorshift generator: fast, seeded, good enough to pick pieces.
#[derive(Debug, Clone)]
pub struct Gen {
    state: u64,
}

impl Gen {
    /// A generator for `seed` (any value; 0 is mapped to a non-zero state).
    pub fn new(seed: u64) -> Gen {
        Gen {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max_pieces` of `pieces` joined.
    pub fn join(&mut self, pieces: &[&str], max_pieces: usize) -> String {
        let n = self.below(max_pieces + 1);
        let mut out = String::new();
        for _ in 0..n {
            let piece: &str = self.pick::<&str>(pieces);
            out.push_str(piece);
        }
        out
    }

    /// A number at or near the edges that break arithmetic and parsing.
    pub fn number(&mut self) -> Value {
        let edges = [
            Value::from(0),
            Value::from(-1),
            Value::from(1),
            Value::from(i64::MAX),
            Value::from(i64::MIN),
            Value::from(u64::MAX),
            Number::from_f64(1e308).map_or(Value::Null, Value::Number),
            Number::from_f64(-0.5).map_or(Value::Null, Value::Number),
            Number::from_f64(4.75).map_or(Value::Null, Value::Number),
        ];
        if self.one_in(2) {
            self.pick(&edges).clone()
        } else {
            Value::from(self.below(200) as i64 - 100)
        }
    }

    /// A JSON value up to `depth` levels deep, its keys from `keys` and its strings from `words`.
    pub fn json(&mut self, depth: usize, keys: &[&str], words: &[&str]) -> Value {
        let leaf = depth == 0 || self.one_in(3);
        match self.below(if leaf { 4 } else { 6 }) {
            0 => Value::Null,
            1 => Value::Bool(self.one_in(2)),
            2 => self.number(),
            3 => Value::String(self.join(words, 3)),
            4 => Value::Array(
                (0..self.below(4))
                    .map(|_| self.json(depth - 1, keys, words))
                    .collect(),
            ),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.below(4) {
                    let key = (*self.pick(keys)).to_owned();
                    let value = self.json(depth - 1, keys, words);
                    map.insert(key, value);
                }
                Value::Object(map)
            }
        }
    }

    /// `text` with a few bytes changed, dropped or repeated: a near-miss of a valid input.
    pub fn mutate(&mut self, text: &str) -> Vec<u8> {
        let mut bytes = text.as_bytes().to_vec();
        self.damage(&mut bytes, b"{}[]\",:0-9aeE.\\ \x00\xff", 3, 16);
        bytes
    }

    /// Up to `edits` + 1 edits of `bytes`: a byte replaced by one of `replacements` (any byte when empty), a
    /// byte dropped, a run of up to `run` bytes repeated, or the rest cut off.
    pub fn damage(&mut self, bytes: &mut Vec<u8>, replacements: &[u8], edits: usize, run: usize) {
        for _ in 0..=self.below(edits) {
            if bytes.is_empty() {
                break;
            }
            let at = self.below(bytes.len());
            match self.below(4) {
                0 if replacements.is_empty() => bytes[at] = self.next_u64() as u8,
                0 => bytes[at] = *self.pick(replacements),
                1 => {
                    bytes.remove(at);
                }
                2 => {
                    let end = (at + self.below(run)).min(bytes.len());
                    let piece = bytes[at..end].to_vec();
                    bytes.splice(at..at, piece);
                }
                _ => bytes.truncate(at),
            }
        }
    }
}
