//! A hierarchical navigable small world graph (Malkov & Yashunin, "Efficient and robust approximate nearest
//! neighbor search using Hierarchical Navigable Small World graphs").
//!
//! # Layout
//!
//! A graph walk is bound by memory: each step loads a neighbour's vector that is rarely in cache. So each
//! node's level-0 data sits in one fixed-size block of one big 64-byte-aligned allocation: the neighbour
//! count, room for `2·M` neighbour ids (u32 slot numbers), padding to the next cache line, then the f32
//! vector. The block is the only copy of the vector. Upper levels (a node reaches level `l` with
//! probability `M^-l`, so they hold few nodes) live in a separate array of `1 + M`-word lists. While the
//! distances to one node's neighbours are computed, the next neighbour's block is prefetched.
//!
//! # Concurrency
//!
//! Searches take `&self` and read without locks: every mutation takes `&mut self`, so none can run beside
//! them. A batch insert (`&mut self`) runs on several threads that share the graph through a [`Builder`],
//! which guards every link list with a lock (striped over a fixed set of mutexes; no thread ever holds two
//! of them) and the entry point with another, as hnswlib does. Vectors are written before the threads
//! start and are never written while they run. A new node's own list is merged with whatever links other
//! threads added to it before it was written, never overwritten (see [`Builder::set_own_links`]).
//!
//! # Deletes
//!
//! A removed node is marked deleted: searches still walk through it (its links keep the graph connected)
//! but never return it, and its key is free at once. Its slot is reclaimed by consolidation, which runs
//! before an insert batch once deleted nodes reach a quarter of the live ones: every live node that links
//! to a deleted one gets its list rebuilt from its live neighbours plus the deleted ones' live neighbours
//! (the neighbour heuristic picks among them), the entry point moves to a live node if needed, and the
//! deleted slots, which nothing links to any more, go on a free list that later inserts take from. Slots
//! are therefore only ever reused when unreachable, so an insert into one is a plain insert, and a
//! workload that keeps replacing the same keys holds at most about 1.25 times its live nodes (plus one
//! batch). Rebuilding the whole graph instead would also bound memory, but would stall the writer for a
//! full build each time. Consolidation comes in two halves: [`Graph::plan_consolidation`] computes the new
//! lists reading only (the service runs it beside searches), [`Graph::finish_consolidation`] writes them and
//! frees the slots, a short step.
//!
//! # Files
//!
//! Here the layout, the graph's state and its plain accessors; `search` the walks and scans; `build` the
//! inserts (the unsafe [`build::Builder`]); `consolidate` the reclaiming of deleted slots; `format` save and
//! load.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytemuck::{Pod, Zeroable};

use crate::distance::{DistanceFn, Kernel, prefetch};

mod build;
mod consolidate;
mod format;
mod search;

pub(crate) use consolidate::Consolidation;
pub(crate) use format::MAGIC;
use search::{Item, Scratch, View, greedy, search_layer, select};

const LIVE: u8 = 0;
const DELETED: u8 = 1;
const FREE: u8 = 2;
/// No node (an empty graph's entry point).
const NONE: u32 = u32::MAX;
/// Levels are capped; `M^-24` is far below one node in any graph that fits in memory.
const MAX_LEVEL: usize = 24;
/// Largest M accepted (from configuration or a snapshot).
pub(crate) const MAX_CONNECTIVITY: usize = 1024;
/// Mutexes the link lists are striped over during a parallel insert.
const LOCK_STRIPES: usize = 1024;
/// Cache lines of a vector prefetched ahead of its distance computation (the hardware streams the rest;
/// between 4 and all 24 lines of a 384-float vector measured alike).
const PREFETCH_LINES: usize = 8;

/// One 64-byte cache line of node data.
#[repr(C, align(64))]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Line([u32; 16]);

const LINE_WORDS: usize = 16;

/// Where things are inside a node block, in u32 words.
#[derive(Clone, Copy)]
struct Layout {
    dim: usize,
    /// Upper-level list capacity (M).
    m: usize,
    /// Level-0 list capacity (2M).
    m0: usize,
    /// Start of the vector inside a block.
    vector_at: usize,
    /// Block size (a whole number of cache lines).
    block: usize,
    distance: DistanceFn,
    prefetch_lines: usize,
}

impl Layout {
    fn new(dim: usize, m: usize, distance: DistanceFn) -> Layout {
        let m0 = 2 * m;
        let vector_at = (1 + m0).next_multiple_of(LINE_WORDS);
        let block = (vector_at + dim).max(1).next_multiple_of(LINE_WORDS);
        Layout {
            dim,
            m,
            m0,
            vector_at,
            block,
            distance,
            prefetch_lines: PREFETCH_LINES,
        }
    }

    fn capacity(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    /// Words of one node's upper-level lists, per level.
    fn stride(&self) -> usize {
        1 + self.m
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Errors a graph operation reports (turned into the crate's error type by [`crate::hnsw`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GraphError {
    /// A key is already present (or appears twice in one batch).
    DuplicateKey(u64),
    /// A vector of the wrong length.
    Dimension { expected: usize, got: usize },
    /// More nodes than u32 slot numbers.
    Full,
    /// An insert thread panicked.
    Panicked,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::DuplicateKey(key) => write!(f, "key {key} is already in the index"),
            GraphError::Dimension { expected, got } => {
                write!(f, "vector has {got} dimensions, the index {expected}")
            }
            GraphError::Full => write!(f, "the index is full"),
            GraphError::Panicked => write!(f, "an insert thread panicked"),
        }
    }
}

/// The graph with its vectors and keys.
pub(crate) struct Graph {
    layout: Layout,
    kernel: Kernel,
    isa: &'static str,
    ef_construction: usize,
    ef_search: AtomicUsize,
    /// Level-0 blocks of every slot, `layout.block` words each.
    lines: Vec<Line>,
    /// Slots in use (live, deleted or free); the blocks beyond are spare capacity.
    slots: usize,
    levels: Vec<u8>,
    /// Per slot: where its upper-level lists start in `upper`, and for how many levels there is room.
    upper_at: Vec<usize>,
    upper_room: Vec<u8>,
    upper: Vec<u32>,
    keys: Vec<u64>,
    state: Vec<u8>,
    slot_of: HashMap<u64, u32>,
    free: Vec<u32>,
    deleted: usize,
    entry: u32,
    max_level: usize,
    /// splitmix64 state for levels: deterministic, so a build from the same inputs is reproducible.
    rng: u64,
    scratch: Mutex<Vec<Scratch>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("dim", &self.layout.dim)
            .field("m", &self.layout.m)
            .field("kernel", &self.kernel)
            .field("live", &self.len())
            .field("deleted", &self.deleted)
            .field("free", &self.free.len())
            .field("max_level", &self.max_level)
            .finish()
    }
}

impl Graph {
    /// An empty graph.
    pub(crate) fn new(
        dim: usize,
        kernel: Kernel,
        m: usize,
        ef_construction: usize,
        ef_search: usize,
    ) -> Graph {
        let m = m.clamp(2, MAX_CONNECTIVITY);
        let (distance, isa) = kernel.select();
        Graph {
            layout: Layout::new(dim, m, distance),
            kernel,
            isa,
            ef_construction: ef_construction.max(1),
            ef_search: AtomicUsize::new(ef_search.max(1)),
            lines: Vec::new(),
            slots: 0,
            levels: Vec::new(),
            upper_at: Vec::new(),
            upper_room: Vec::new(),
            upper: Vec::new(),
            keys: Vec::new(),
            state: Vec::new(),
            slot_of: HashMap::new(),
            free: Vec::new(),
            deleted: 0,
            entry: NONE,
            max_level: 0,
            rng: 0x5eed_1a4e_40f5_e001,
            scratch: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn kernel(&self) -> Kernel {
        self.kernel
    }

    pub(crate) fn isa(&self) -> &'static str {
        self.isa
    }

    pub(crate) fn connectivity(&self) -> usize {
        self.layout.m
    }

    pub(crate) fn set_ef_search(&self, ef: usize) {
        self.ef_search.store(ef.max(1), AtomicOrdering::Relaxed);
    }

    /// Slots in use: live, deleted and free.
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.slots
    }

    /// Live nodes no walk from the entry point can reach (for tests).
    #[cfg(test)]
    pub(crate) fn unreachable(&self) -> usize {
        if self.entry == NONE {
            return self.len();
        }
        let mut seen = vec![false; self.slots];
        let mut stack = vec![self.entry];
        seen[self.entry as usize] = true;
        while let Some(id) = stack.pop() {
            for level in 0..=self.levels[id as usize] as usize {
                for &n in self.links(id, level) {
                    if !seen[n as usize] {
                        seen[n as usize] = true;
                        stack.push(n);
                    }
                }
            }
        }
        (0..self.slots)
            .filter(|&id| self.state[id] == LIVE && !seen[id])
            .count()
    }

    /// Live nodes.
    pub(crate) fn len(&self) -> usize {
        self.slot_of.len()
    }

    fn words(&self) -> &[u32] {
        bytemuck::cast_slice(&self.lines)
    }

    fn words_mut(&mut self) -> &mut [u32] {
        bytemuck::cast_slice_mut(&mut self.lines)
    }

    fn block(&self, id: u32) -> usize {
        id as usize * self.layout.block
    }

    fn vector(&self, id: u32) -> &[f32] {
        let at = self.block(id) + self.layout.vector_at;
        bytemuck::cast_slice(&self.words()[at..at + self.layout.dim])
    }

    /// Where a node's list at `level` starts (its count word) and which array holds it.
    fn links(&self, id: u32, level: usize) -> &[u32] {
        let (words, at) = if level == 0 {
            (self.words(), self.block(id))
        } else {
            let at = self.upper_at[id as usize] + (level - 1) * self.layout.stride();
            (self.upper.as_slice(), at)
        };
        let count = (words[at] as usize).min(self.layout.capacity(level));
        &words[at + 1..at + 1 + count]
    }

    fn set_links(&mut self, id: u32, level: usize, ids: &[u32]) {
        let at = if level == 0 {
            self.block(id)
        } else {
            self.upper_at[id as usize] + (level - 1) * self.layout.stride()
        };
        let words = if level == 0 {
            self.words_mut()
        } else {
            self.upper.as_mut_slice()
        };
        words[at] = ids.len() as u32;
        words[at + 1..at + 1 + ids.len()].copy_from_slice(ids);
    }

    /// Copies a key's vector into `out`; whether the key is present.
    pub(crate) fn get(&self, key: u64, out: &mut [f32]) -> bool {
        let Some(&id) = self.slot_of.get(&key) else {
            return false;
        };
        let v = self.vector(id);
        let n = v.len().min(out.len());
        out[..n].copy_from_slice(&v[..n]);
        true
    }

    /// Marks a key's node deleted; whether it was there.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some(id) = self.slot_of.remove(&key) else {
            return false;
        };
        self.state[id as usize] = DELETED;
        self.deleted += 1;
        true
    }

    /// Memory held by the graph: blocks, upper lists, per-slot arrays, the key map and search scratch.
    pub(crate) fn memory_bytes(&self) -> usize {
        let scratch: usize = self
            .scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(Scratch::bytes)
            .sum();
        self.lines.capacity() * size_of::<Line>()
            + self.upper.capacity() * 4
            + self.levels.capacity()
            + self.upper_room.capacity()
            + self.state.capacity()
            + self.upper_at.capacity() * size_of::<usize>()
            + self.keys.capacity() * 8
            + self.free.capacity() * 4
            // hashbrown: key, value and one control byte per bucket (capacity is ~7/8 of the buckets).
            + self.slot_of.capacity() * (8 + 4 + 1) * 8 / 7
            + scratch
    }
}
