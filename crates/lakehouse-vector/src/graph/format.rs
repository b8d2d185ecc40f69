//! The graph's file format: versioned, little-endian; a load checks every count, link and state, and fails
//! (never panics) on a damaged file.

use super::*;

/// The first bytes of a saved graph.
pub(crate) const MAGIC: &[u8; 8] = b"LHHNSW\r\n";
/// The saved format's version.
pub(super) const FORMAT_VERSION: u32 = 1;

/// Reads little-endian values off a byte slice, failing (never panicking) when it runs out.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("the graph file is truncated".to_owned());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

impl Graph {
    /// The graph in its versioned little-endian format: header, then per slot its state, level, key,
    /// links per level and vector.
    pub(crate) fn save(&self) -> Vec<u8> {
        let per_slot = 10 + 4 * (1 + self.layout.m0) + 4 * self.layout.dim;
        let mut out = Vec::with_capacity(64 + self.slots * per_slot + self.upper.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.layout.dim as u32).to_le_bytes());
        out.push(self.kernel.code());
        out.extend_from_slice(&(self.layout.m as u32).to_le_bytes());
        out.extend_from_slice(&(self.slots as u64).to_le_bytes());
        out.extend_from_slice(&self.entry.to_le_bytes());
        out.extend_from_slice(&(self.max_level as u32).to_le_bytes());
        out.extend_from_slice(&self.rng.to_le_bytes());
        for id in 0..self.slots as u32 {
            let slot = id as usize;
            out.push(self.state[slot]);
            let level = if self.state[slot] == FREE {
                0
            } else {
                self.levels[slot]
            };
            out.push(level);
            out.extend_from_slice(&self.keys[slot].to_le_bytes());
            for l in 0..=level as usize {
                let links = if self.state[slot] == FREE {
                    &[][..]
                } else {
                    self.links(id, l)
                };
                out.extend_from_slice(&(links.len() as u32).to_le_bytes());
                for n in links {
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
            for x in self.vector(id) {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// A graph read back from [`Graph::save`]'s bytes; every length, id and level is checked, and any
    /// inconsistency is reported (never a panic).
    pub(crate) fn load(
        bytes: &[u8],
        dim: usize,
        ef_construction: usize,
        ef_search: usize,
    ) -> Result<Graph, String> {
        let mut r = Reader { bytes };
        if r.take(MAGIC.len())? != MAGIC {
            return Err("not a graph file".to_owned());
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(format!("graph format version {version} is not supported"));
        }
        let stored_dim = r.u32()? as usize;
        if stored_dim != dim {
            return Err(format!(
                "the graph holds {stored_dim}-dimensional vectors, the index is {dim}-dimensional"
            ));
        }
        let kernel = Kernel::from_code(r.u8()?).ok_or("unknown distance kernel")?;
        let m = r.u32()? as usize;
        if !(2..=MAX_CONNECTIVITY).contains(&m) {
            return Err(format!("connectivity {m} is out of range"));
        }
        let slots = usize::try_from(r.u64()?).map_err(|_| "slot count out of range")?;
        let entry = r.u32()?;
        let max_level = r.u32()? as usize;
        let rng = r.u64()?;
        // Each slot takes at least its state, level, key, one count and its vector.
        let min_slot = 2 + 8 + 4 + 4 * dim;
        if slots >= NONE as usize || slots > r.bytes.len() / min_slot {
            return Err(format!("{slots} slots do not fit in the graph file"));
        }
        if max_level > MAX_LEVEL {
            return Err(format!("top level {max_level} is out of range"));
        }
        let mut graph = Graph::new(dim, kernel, m, ef_construction, ef_search);
        graph.rng = rng;
        let layout = graph.layout;
        graph
            .lines
            .resize(slots * (layout.block / LINE_WORDS), Line([0; LINE_WORDS]));
        graph.levels = vec![0; slots];
        graph.upper_at = vec![0; slots];
        graph.upper_room = vec![0; slots];
        graph.keys = vec![0; slots];
        graph.state = vec![FREE; slots];
        graph.slots = slots;
        let mut ids = Vec::new();
        for id in 0..slots as u32 {
            let slot = id as usize;
            let state = r.u8()?;
            if ![LIVE, DELETED, FREE].contains(&state) {
                return Err(format!("slot {id} has an unknown state"));
            }
            let level = r.u8()? as usize;
            if level > max_level {
                return Err(format!("slot {id} is above the top level"));
            }
            let key = r.u64()?;
            graph.state[slot] = state;
            graph.levels[slot] = level as u8;
            graph.keys[slot] = key;
            if level > 0 {
                graph.upper_at[slot] = graph.upper.len();
                graph.upper_room[slot] = level as u8;
                let words = level
                    .checked_mul(layout.stride())
                    .ok_or("upper lists overflow")?;
                if words > r.bytes.len() / 4 {
                    return Err("the graph file is truncated".to_owned());
                }
                graph.upper.resize(graph.upper.len() + words, 0);
            }
            for l in 0..=level {
                let count = r.u32()? as usize;
                if count > layout.capacity(l) {
                    return Err(format!("slot {id} has {count} links at level {l}"));
                }
                ids.clear();
                for _ in 0..count {
                    let n = r.u32()?;
                    if n as usize >= slots || n == id {
                        return Err(format!("slot {id} links to slot {n}"));
                    }
                    ids.push(n);
                }
                if state == FREE && count > 0 {
                    return Err(format!("free slot {id} has links"));
                }
                graph.set_links(id, l, &ids);
            }
            let at = graph.block(id) + layout.vector_at;
            let raw = r.take(4 * dim)?;
            let words = graph.words_mut();
            for (word, chunk) in words[at..at + dim].iter_mut().zip(raw.chunks_exact(4)) {
                *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            match state {
                LIVE => {
                    if graph.slot_of.insert(key, id).is_some() {
                        return Err(format!("key {key} appears twice"));
                    }
                }
                DELETED => graph.deleted += 1,
                _ => graph.free.push(id),
            }
        }
        if !r.bytes.is_empty() {
            return Err("trailing bytes after the graph".to_owned());
        }
        // Links may only point at nodes that exist on that level and are not free.
        for id in 0..slots as u32 {
            if graph.state[id as usize] == FREE {
                continue;
            }
            for l in 0..=graph.levels[id as usize] as usize {
                for &n in graph.links(id, l) {
                    let target = n as usize;
                    if graph.state[target] == FREE || (graph.levels[target] as usize) < l {
                        return Err(format!("slot {id} links to slot {n} at level {l}"));
                    }
                }
            }
        }
        let used = graph.state.iter().any(|s| *s != FREE);
        if entry == NONE {
            if used || max_level != 0 {
                return Err("the graph has nodes but no entry point".to_owned());
            }
        } else {
            let e = entry as usize;
            if e >= slots || graph.state[e] == FREE || graph.levels[e] as usize != max_level {
                return Err(format!("entry point {entry} is invalid"));
            }
        }
        graph.entry = entry;
        graph.max_level = max_level;
        graph.free.sort_unstable_by(|a, b| b.cmp(a));
        Ok(graph)
    }
}
