//! The binary formats of change segments and of the id/metadata part of snapshots.
//!
//! A compact format of our own rather than Arrow IPC: a segment is written once and only ever read back
//! whole, in order, by this crate; metadata is free-form JSON that Arrow would carry as a string column
//! anyway; and the vectors are plain little-endian f32 runs that decode with no schema handling. That keeps
//! the hot write path (encode, one PUT) to a memcpy-like pass and the crate free of an Arrow dependency.
//!
//! Segment: `b"LHVSEG01"`, seq u64, dim u32, op count u32, ops, checksum u64.
//! Op: tag u8 (1 upsert, 2 delete), key u64, id (u32 length + UTF-8); an upsert adds `dim` f32 and
//! metadata (u32 length + JSON object).
//! Entries: `b"LHVENT01"`, next_key u64, count u64, entries (key u64, id, metadata), checksum u64.
//! All integers little-endian; the checksum covers every byte before it.

use lakehouse_types::vector::Metadata;

use crate::error::{Error, Result};

const SEGMENT_MAGIC: &[u8; 8] = b"LHVSEG01";
/// Entry tables carry each item's vector norm since version 2; version 1 tables are still read.
const ENTRIES_MAGIC: &[u8; 8] = b"LHVENT02";
const ENTRIES_MAGIC_V1: &[u8; 8] = b"LHVENT01";
const TAG_UPSERT: u8 = 1;
const TAG_DELETE: u8 = 2;

/// One change to an index, as logged and replayed.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Insert or replace an item.
    Upsert {
        /// The HNSW key the item lives under.
        key: u64,
        /// The user's id.
        id: String,
        /// The vector.
        vector: Vec<f32>,
        /// The metadata.
        metadata: Metadata,
    },
    /// Remove an item.
    Delete {
        /// The HNSW key it lived under.
        key: u64,
        /// The user's id.
        id: String,
    },
}

/// A decoded segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Its sequence number.
    pub seq: u64,
    /// Its changes, in order.
    pub ops: Vec<Op>,
}

/// One item of a snapshot's entry table.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRecord {
    /// HNSW key.
    pub key: u64,
    /// User id.
    pub id: String,
    /// Metadata.
    pub metadata: Metadata,
    /// The vector's length before a cosine index scaled it to unit length (1 where nothing was scaled).
    pub norm: f32,
}

/// A 64-bit checksum (FNV-1a over 8-byte words): detects torn or damaged objects, not tampering.
pub fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(word);
        hash = (hash ^ u64::from_le_bytes(buf))
            .wrapping_mul(PRIME)
            .rotate_left(29);
    }
    for byte in words.remainder() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(PRIME);
    }
    hash
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) -> Result<()> {
        let len = u32::try_from(v.len())
            .map_err(|_| Error::InvalidParameter("a field is over 4 GiB".to_owned()))?;
        self.u32(len);
        self.buf.extend_from_slice(v);
        Ok(())
    }
    fn metadata(&mut self, metadata: &Metadata) -> Result<()> {
        let json = serde_json::to_vec(metadata)
            .map_err(|e| Error::Corrupt(format!("metadata does not serialise: {e}")))?;
        self.bytes(&json)
    }
    fn finish(mut self) -> Vec<u8> {
        let sum = checksum(&self.buf);
        self.u64(sum);
        self.buf
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Corrupt(format!("{} ends early", self.what)));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn string(&mut self) -> Result<String> {
        let what = self.what;
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| Error::Corrupt(format!("{what} holds an id that is not UTF-8")))
    }
    fn metadata(&mut self) -> Result<Metadata> {
        let what = self.what;
        serde_json::from_slice(self.bytes()?)
            .map_err(|e| Error::Corrupt(format!("{what} holds unreadable metadata: {e}")))
    }
    fn vector(&mut self, dim: usize) -> Result<Vec<f32>> {
        let raw = self.take(dim * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Splits off and verifies the trailing checksum and the leading magic.
fn verified<'a>(bytes: &'a [u8], magic: &[u8; 8], what: &'static str) -> Result<Reader<'a>> {
    if bytes.len() < 16 || &bytes[..8] != magic {
        return Err(Error::Corrupt(format!("{what} has no valid header")));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(sum);
    if checksum(body) != u64::from_le_bytes(stored) {
        return Err(Error::Corrupt(format!(
            "{what} fails its checksum (torn or damaged)"
        )));
    }
    Ok(Reader {
        buf: &body[8..],
        what,
    })
}

/// Encodes a segment.
pub fn encode_segment(seq: u64, dim: usize, ops: &[Op]) -> Result<Vec<u8>> {
    let per_op = dim * 4 + 64;
    let mut w = Writer {
        buf: Vec::with_capacity(32 + ops.len() * per_op),
    };
    w.buf.extend_from_slice(SEGMENT_MAGIC);
    w.u64(seq);
    w.u32(u32::try_from(dim).map_err(|_| Error::InvalidParameter("dimension too large".into()))?);
    w.u32(u32::try_from(ops.len()).map_err(|_| Error::InvalidParameter("too many ops".into()))?);
    for op in ops {
        match op {
            Op::Upsert {
                key,
                id,
                vector,
                metadata,
            } => {
                w.u8(TAG_UPSERT);
                w.u64(*key);
                w.bytes(id.as_bytes())?;
                for x in vector {
                    w.buf.extend_from_slice(&x.to_le_bytes());
                }
                w.metadata(metadata)?;
            }
            Op::Delete { key, id } => {
                w.u8(TAG_DELETE);
                w.u64(*key);
                w.bytes(id.as_bytes())?;
            }
        }
    }
    Ok(w.finish())
}

/// Decodes and verifies a segment of an index of dimension `dim`.
pub fn decode_segment(bytes: &[u8], dim: usize) -> Result<Segment> {
    let mut r = verified(bytes, SEGMENT_MAGIC, "segment")?;
    let seq = r.u64()?;
    let stored_dim = r.u32()? as usize;
    if stored_dim != dim {
        return Err(Error::Corrupt(format!(
            "segment {seq} has dimension {stored_dim}, not {dim}"
        )));
    }
    let count = r.u32()? as usize;
    let mut ops = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let tag = r.u8()?;
        let key = r.u64()?;
        let id = r.string()?;
        ops.push(match tag {
            TAG_UPSERT => {
                let vector = r.vector(dim)?;
                let metadata = r.metadata()?;
                Op::Upsert {
                    key,
                    id,
                    vector,
                    metadata,
                }
            }
            TAG_DELETE => Op::Delete { key, id },
            other => {
                return Err(Error::Corrupt(format!(
                    "segment {seq} has unknown op {other}"
                )));
            }
        });
    }
    Ok(Segment { seq, ops })
}

/// Encodes a snapshot's entry table.
pub fn encode_entries<'a>(
    next_key: u64,
    entries: impl ExactSizeIterator<Item = (u64, &'a str, &'a Metadata, f32)>,
) -> Result<Vec<u8>> {
    let mut w = Writer {
        buf: Vec::with_capacity(24 + entries.len() * 96),
    };
    w.buf.extend_from_slice(ENTRIES_MAGIC);
    w.u64(next_key);
    w.u64(entries.len() as u64);
    for (key, id, metadata, norm) in entries {
        w.u64(key);
        w.buf.extend_from_slice(&norm.to_le_bytes());
        w.bytes(id.as_bytes())?;
        w.metadata(metadata)?;
    }
    Ok(w.finish())
}

/// Decodes and verifies a snapshot's entry table: `(next_key, entries)`.
pub fn decode_entries(bytes: &[u8]) -> Result<(u64, Vec<EntryRecord>)> {
    let v1 = bytes.starts_with(ENTRIES_MAGIC_V1);
    let magic = if v1 { ENTRIES_MAGIC_V1 } else { ENTRIES_MAGIC };
    let mut r = verified(bytes, magic, "snapshot entry table")?;
    let next_key = r.u64()?;
    let count = r.u64()?;
    let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 20));
    for _ in 0..count {
        let key = r.u64()?;
        let norm = if v1 { 1.0 } else { r.f32()? };
        let id = r.string()?;
        let metadata = r.metadata()?;
        entries.push(EntryRecord {
            key,
            id,
            metadata,
            norm,
        });
    }
    Ok((next_key, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Metadata {
        let mut m = Metadata::new();
        m.insert("state".into(), json!("TX"));
        m
    }

    #[test]
    fn segments_round_trip_and_detect_damage() {
        let ops = vec![
            Op::Upsert {
                key: 7,
                id: "w-1".into(),
                vector: vec![0.5, -1.0, 3.25],
                metadata: meta(),
            },
            Op::Delete {
                key: 3,
                id: "w-0".into(),
            },
        ];
        let bytes = encode_segment(42, 3, &ops).expect("encode");
        let back = decode_segment(&bytes, 3).expect("decode");
        assert_eq!(back, Segment { seq: 42, ops });

        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert!(matches!(
            decode_segment(&damaged, 3),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decode_segment(&bytes[..bytes.len() - 5], 3),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(decode_segment(&bytes, 4), Err(Error::Corrupt(_))));
    }

    #[test]
    fn entries_round_trip() {
        let m = meta();
        let items = [(1u64, "a", &m, 1.0f32), (9, "b", &m, 2.5)];
        let bytes = encode_entries(10, items.iter().map(|(k, id, m, n)| (*k, *id, *m, *n)))
            .expect("encode");
        let (next, entries) = decode_entries(&bytes).expect("decode");
        assert_eq!(next, 10);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].id, "b");
        assert_eq!(entries[1].metadata, m);
        assert_eq!(entries[1].norm, 2.5);
        assert!(decode_entries(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn version_1_entry_tables_are_still_read() {
        let m = meta();
        let mut w = Writer { buf: Vec::new() };
        w.buf.extend_from_slice(ENTRIES_MAGIC_V1);
        w.u64(4);
        w.u64(1);
        w.u64(3);
        w.bytes(b"w-3").expect("id");
        w.metadata(&m).expect("metadata");
        let (next, entries) = decode_entries(&w.finish()).expect("decode");
        assert_eq!(next, 4);
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].key, entries[0].id.as_str()), (3, "w-3"));
        assert_eq!(entries[0].metadata, m);
        assert_eq!(entries[0].norm, 1.0);
    }
}
