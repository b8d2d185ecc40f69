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

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytemuck::{Pod, Zeroable};

use crate::distance::{DistanceFn, Kernel, prefetch};

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

/// A node and its distance to whatever is being compared against.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Item {
    distance: f32,
    id: u32,
}

impl Item {
    fn order(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

/// Max-heap order: the farthest on top (the result set).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Far(Item);

impl Eq for Far {}
impl Ord for Far {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.order(&other.0)
    }
}
impl PartialOrd for Far {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Min-heap order: the nearest on top (the candidates to expand).
type Near = Reverse<Far>;

/// Per-search working memory, pooled: an epoch-stamped visited array, the two heaps and a link buffer.
#[derive(Debug, Default)]
struct Scratch {
    marks: Vec<u16>,
    epoch: u16,
    candidates: BinaryHeap<Near>,
    results: BinaryHeap<Far>,
    links: Vec<u32>,
    fresh: Vec<u32>,
}

impl Scratch {
    /// Forgets every visit (in O(1) except once per 65,535 searches).
    fn begin(&mut self, slots: usize) {
        if self.marks.len() < slots {
            self.marks.resize(slots, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
        self.candidates.clear();
        self.results.clear();
    }

    /// Marks a node visited; whether it was new.
    fn visit(&mut self, id: u32) -> bool {
        match self.marks.get_mut(id as usize) {
            Some(mark) if *mark != self.epoch => {
                *mark = self.epoch;
                true
            }
            _ => false,
        }
    }

    fn bytes(&self) -> usize {
        self.marks.capacity() * 2
            + (self.candidates.capacity() + self.results.capacity()) * size_of::<Item>()
            + (self.links.capacity() + self.fresh.capacity()) * 4
    }
}

/// Read access to the graph for a walk: lock-free on a frozen graph, locked while inserting.
trait View {
    fn layout(&self) -> &Layout;
    fn slots(&self) -> usize;
    fn vector(&self, id: u32) -> &[f32];
    /// Copies a node's links at `level` into `out`.
    fn links(&self, id: u32, level: usize, out: &mut Vec<u32>);
    /// The start of a node's vector, for prefetching.
    fn vector_ptr(&self, id: u32) -> *const f32;

    fn distance(&self, query: &[f32], id: u32) -> f32 {
        (self.layout().distance)(query, self.vector(id))
    }

    /// The start of a node's level-0 block (its link count and links), for prefetching.
    fn block_ptr(&self, id: u32) -> *const u32;

    fn prefetch_vector(&self, id: u32) {
        let p = self.vector_ptr(id);
        let lines = (self.layout().dim * 4)
            .div_ceil(64)
            .min(self.layout().prefetch_lines);
        for line in 0..lines {
            prefetch(p.wrapping_add(line * LINE_WORDS));
        }
    }
}

/// Greedy descent on one upper level: moves to the nearest neighbour until none is nearer.
fn greedy<V: View>(
    view: &V,
    query: &[f32],
    mut current: Item,
    level: usize,
    buf: &mut Vec<u32>,
) -> Item {
    loop {
        let mut moved = false;
        view.links(current.id, level, buf);
        for &n in buf.iter() {
            let distance = view.distance(query, n);
            if distance < current.distance {
                current = Item { distance, id: n };
                moved = true;
            }
        }
        if !moved {
            return current;
        }
    }
}

/// The best-first search of one level (the paper's SEARCH-LAYER): leaves up to `ef` accepted nodes in
/// `scratch.results`. Rejected nodes are walked through but never enter the results; the walk stops when
/// the nearest unexpanded candidate is farther than the worst result and the results are full, so with a
/// selective predicate it keeps expanding until it has `ef` hits or has run out of graph.
fn search_layer<V: View>(
    view: &V,
    scratch: &mut Scratch,
    query: &[f32],
    start: Item,
    ef: usize,
    level: usize,
    accept: impl Fn(u32) -> bool,
) {
    scratch.begin(view.slots());
    scratch.visit(start.id);
    scratch.candidates.push(Reverse(Far(start)));
    if accept(start.id) {
        scratch.results.push(Far(start));
    }
    let mut bound = scratch
        .results
        .peek()
        .map_or(f32::INFINITY, |f| f.0.distance);
    let mut links = std::mem::take(&mut scratch.links);
    let mut fresh = std::mem::take(&mut scratch.fresh);
    while let Some(Reverse(Far(current))) = scratch.candidates.pop() {
        if current.distance > bound && scratch.results.len() >= ef {
            break;
        }
        view.links(current.id, level, &mut links);
        fresh.clear();
        for &n in &links {
            if scratch.visit(n) {
                fresh.push(n);
            }
        }
        if let Some(&first) = fresh.first() {
            view.prefetch_vector(first);
        }
        for (j, &n) in fresh.iter().enumerate() {
            if let Some(&next) = fresh.get(j + 1) {
                view.prefetch_vector(next);
            }
            let distance = view.distance(query, n);
            if scratch.results.len() < ef || distance < bound {
                let item = Item { distance, id: n };
                scratch.candidates.push(Reverse(Far(item)));
                if let Some(next) = scratch.candidates.peek() {
                    prefetch(view.block_ptr(next.0.0.id));
                }
                if accept(n) {
                    scratch.results.push(Far(item));
                    if scratch.results.len() > ef {
                        scratch.results.pop();
                    }
                    bound = scratch
                        .results
                        .peek()
                        .map_or(f32::INFINITY, |f| f.0.distance);
                }
            }
        }
    }
    scratch.links = links;
    scratch.fresh = fresh;
}

/// The paper's neighbour-selection heuristic: walking candidates nearest first, keep one only if it is
/// nearer to the base than to every neighbour already kept (so the kept links point in different
/// directions), up to `max`.
fn select<'v>(
    distance: DistanceFn,
    vector: impl Fn(u32) -> &'v [f32],
    sorted: &[Item],
    max: usize,
) -> Vec<Item> {
    let mut kept: Vec<Item> = Vec::with_capacity(max.min(sorted.len()));
    for candidate in sorted {
        if kept.len() >= max {
            break;
        }
        let v = vector(candidate.id);
        if kept
            .iter()
            .all(|k| distance(v, vector(k.id)) >= candidate.distance)
        {
            kept.push(*candidate);
        }
    }
    kept
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// New link lists for the live nodes around deleted ones, computed by [`Graph::plan_consolidation`] for
/// the graph as it was then ([`Graph::shape`] says which state).
#[derive(Debug)]
pub(crate) struct Consolidation {
    repairs: Vec<Vec<(u32, usize, Vec<u32>)>>,
    shape: [usize; 4],
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

/// Lock-free reads of a graph no one is modifying.
struct Frozen<'a>(&'a Graph);

impl View for Frozen<'_> {
    fn layout(&self) -> &Layout {
        &self.0.layout
    }
    fn slots(&self) -> usize {
        self.0.slots
    }
    fn vector(&self, id: u32) -> &[f32] {
        self.0.vector(id)
    }
    fn links(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(self.0.links(id, level));
    }
    fn vector_ptr(&self, id: u32) -> *const f32 {
        self.0.vector(id).as_ptr()
    }
    fn block_ptr(&self, id: u32) -> *const u32 {
        self.0.words().as_ptr().wrapping_add(self.0.block(id))
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

    fn next_level(&mut self) -> usize {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Uniform in (0, 1]; level = floor(−ln(u) · 1/ln(M)).
        let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let mult = 1.0 / (self.layout.m as f64).ln();
        ((-u.ln() * mult) as usize).min(MAX_LEVEL)
    }

    fn take_scratch(&self) -> Scratch {
        self.scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give_scratch(&self, scratch: Scratch) {
        let mut pool = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < 64 {
            pool.push(scratch);
        }
    }

    /// Makes room for `more` new slots without reallocating during the next inserts.
    pub(crate) fn reserve(&mut self, more: usize) {
        let wanted = self
            .slots
            .saturating_add(more)
            .saturating_sub(self.free.len());
        let lines = wanted.saturating_mul(self.layout.block / LINE_WORDS);
        if lines > self.lines.capacity() {
            // The block array is nearly all of the memory: grow it by a quarter at a time rather than
            // doubling (a batch at a time still copies it only O(1) times per item on average).
            let more = (lines - self.lines.len()).max(self.lines.len() / 4);
            self.lines.reserve_exact(more);
        }
        self.keys.reserve(wanted.saturating_sub(self.keys.len()));
        self.upper_at
            .reserve(wanted.saturating_sub(self.upper_at.len()));
        for v in [&mut self.levels, &mut self.state, &mut self.upper_room] {
            v.reserve(wanted.saturating_sub(v.len()));
        }
        self.slot_of
            .reserve(wanted.saturating_sub(self.slot_of.len()));
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

    /// The `k` nearest live nodes whose key `allow` accepts, as `(key, distance)`, nearest first.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        allow: impl Fn(u64) -> bool,
    ) -> Vec<(u64, f32)> {
        if self.entry == NONE || k == 0 || query.len() != self.layout.dim {
            return Vec::new();
        }
        let ef = self.ef_search.load(AtomicOrdering::Relaxed).max(k);
        let view = Frozen(self);
        let mut scratch = self.take_scratch();
        let mut current = Item {
            distance: view.distance(query, self.entry),
            id: self.entry,
        };
        for level in (1..=self.max_level).rev() {
            current = greedy(&view, query, current, level, &mut scratch.links);
        }
        search_layer(&view, &mut scratch, query, current, ef, 0, |id| {
            self.state[id as usize] == LIVE && allow(self.keys[id as usize])
        });
        let mut found: Vec<Item> = scratch.results.drain().map(|f| f.0).collect();
        found.sort_unstable_by(Item::order);
        found.truncate(k);
        self.give_scratch(scratch);
        found
            .into_iter()
            .map(|item| (self.keys[item.id as usize], item.distance))
            .collect()
    }

    /// Every live node's distance to `query`, through `push` (for exact search).
    /// Like [`Graph::scan`], over `keys` only (keys not in the graph are skipped).
    pub(crate) fn scan_keys(&self, query: &[f32], keys: &[u64], mut push: impl FnMut(u64, f32)) {
        if query.len() != self.layout.dim {
            return;
        }
        for key in keys {
            if let Some(&id) = self.slot_of.get(key) {
                push(*key, (self.layout.distance)(query, self.vector(id)));
            }
        }
    }

    pub(crate) fn scan(&self, query: &[f32], mut push: impl FnMut(u64, f32)) {
        if query.len() != self.layout.dim {
            return;
        }
        for id in 0..self.slots as u32 {
            if self.state[id as usize] == LIVE {
                push(
                    self.keys[id as usize],
                    (self.layout.distance)(query, self.vector(id)),
                );
            }
        }
    }

    /// Inserts `(key, vector)` pairs (vectors already in the form the graph compares), on up to `threads`
    /// threads. Keys must be new; nothing is changed when any is not or a vector has the wrong length.
    /// `prepare` copies each vector into its block (scaling it on the way if the graph stores a derived
    /// form), so the batch is never copied whole.
    pub(crate) fn insert(
        &mut self,
        items: &[(u64, &[f32])],
        threads: usize,
        prepare: fn(&[f32], &mut [f32]),
    ) -> Result<(), GraphError> {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        for (key, vector) in items {
            if vector.len() != self.layout.dim {
                return Err(GraphError::Dimension {
                    expected: self.layout.dim,
                    got: vector.len(),
                });
            }
            if self.slot_of.contains_key(key) || !seen.insert(*key) {
                return Err(GraphError::DuplicateKey(*key));
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        if self.deleted_reach(4) {
            self.consolidate(threads);
        }
        let new_slots = items.len().saturating_sub(self.free.len());
        if self.slots.saturating_add(new_slots) >= NONE as usize {
            return Err(GraphError::Full);
        }
        self.reserve(items.len());
        let mut ids = Vec::with_capacity(items.len());
        for (key, vector) in items {
            // A reused slot keeps the level it was drawn for (levels are drawn independently of the
            // vector, so this changes no distribution), and its upper lists fit where they were.
            let (id, level) = match self.free.pop() {
                Some(id) => (id, self.levels[id as usize] as usize),
                None => (self.allocate(), self.next_level()),
            };
            self.place(id, *key, vector, level, prepare);
            ids.push(id);
        }
        self.link(&ids, threads)
    }

    /// A new slot at the end.
    fn allocate(&mut self) -> u32 {
        let id = self.slots as u32;
        self.slots += 1;
        let lines = self.slots * (self.layout.block / LINE_WORDS);
        self.lines.resize(lines, Line([0; LINE_WORDS]));
        self.levels.push(0);
        self.upper_at.push(self.upper.len());
        self.upper_room.push(0);
        self.keys.push(0);
        self.state.push(FREE);
        id
    }

    /// Writes a new node's key, vector and level into its (unlinked) slot, with empty lists.
    fn place(
        &mut self,
        id: u32,
        key: u64,
        vector: &[f32],
        level: usize,
        prepare: fn(&[f32], &mut [f32]),
    ) {
        let slot = id as usize;
        let at = self.block(id);
        let (vector_at, dim) = (self.layout.vector_at, self.layout.dim);
        let words = self.words_mut();
        words[at] = 0;
        let stored: &mut [f32] =
            bytemuck::cast_slice_mut(&mut words[at + vector_at..at + vector_at + dim]);
        prepare(vector, stored);
        let stride = self.layout.stride();
        if level > self.upper_room[slot] as usize {
            self.upper_at[slot] = self.upper.len();
            self.upper.resize(self.upper.len() + level * stride, 0);
            self.upper_room[slot] = level as u8;
        }
        let start = self.upper_at[slot];
        for l in 0..self.upper_room[slot] as usize {
            self.upper[start + l * stride] = 0;
        }
        self.levels[slot] = level as u8;
        self.keys[slot] = key;
        self.state[slot] = LIVE;
        self.slot_of.insert(key, id);
    }

    /// Links placed nodes into the graph, in parallel when there are enough of them.
    fn link(&mut self, ids: &[u32], threads: usize) -> Result<(), GraphError> {
        let threads = if ids.len() < 64 { 1 } else { threads.max(1) };
        let builder = Builder::new(self);
        let next = AtomicUsize::new(0);
        let work = |builder: &Builder<'_>| {
            let mut scratch = Scratch::default();
            loop {
                let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                let Some(&id) = ids.get(i) else { break };
                builder.insert(&mut scratch, id);
            }
        };
        let result = if threads == 1 {
            work(&builder);
            Ok(())
        } else {
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| scope.spawn(|| work(&builder)))
                    .collect();
                let joined: Vec<bool> = workers.into_iter().map(|w| w.join().is_ok()).collect();
                if joined.iter().all(|ok| *ok) {
                    Ok(())
                } else {
                    Err(GraphError::Panicked)
                }
            })
        };
        let (entry, max_level) = builder.finish();
        self.entry = entry;
        self.max_level = max_level;
        result
    }

    /// Unlinks deleted nodes and frees their slots (see the module docs).
    pub(crate) fn consolidate(&mut self, threads: usize) {
        if self.deleted == 0 {
            return;
        }
        let plan = self.plan_consolidation(threads);
        self.finish_consolidation(plan);
    }

    /// Slots, live, deleted and free nodes: any insert, remove or consolidation changes one of them, and a
    /// deleted count only goes down by a consolidation, which frees slots.
    fn shape(&self) -> [usize; 4] {
        [self.slots, self.len(), self.deleted, self.free.len()]
    }

    /// Whether deleted nodes have reached `1 / fraction` of the live ones.
    pub(crate) fn deleted_reach(&self, fraction: usize) -> bool {
        self.deleted > 0 && self.deleted.saturating_mul(fraction) >= self.len()
    }

    /// The expensive half of [`Graph::consolidate`], reading only, so it can run beside searches: the new
    /// link lists of every live node that links to a deleted one. Computed on `threads` threads (a live
    /// node's new list depends on its own list and on deleted nodes' lists, which no repair changes).
    pub(crate) fn plan_consolidation(&self, threads: usize) -> Consolidation {
        let threads = if self.slots < 4096 {
            1
        } else {
            threads.clamp(1, 64)
        };
        let chunk = self.slots.div_ceil(threads).max(1);
        let this = self;
        let repairs: Vec<Vec<(u32, usize, Vec<u32>)>> = if threads == 1 {
            vec![self.repairs(0..self.slots as u32)]
        } else {
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..self.slots)
                    .step_by(chunk)
                    .map(|start| {
                        let end = (start + chunk).min(this.slots);
                        scope.spawn(move || this.repairs(start as u32..end as u32))
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or_default())
                    .collect()
            })
        };
        Consolidation {
            repairs,
            shape: self.shape(),
        }
    }

    /// The quick half of [`Graph::consolidate`]: writes a plan's lists and frees the deleted slots. A plan
    /// made before the graph changed is not used; the graph is consolidated afresh instead.
    pub(crate) fn finish_consolidation(&mut self, plan: Consolidation) {
        if plan.shape != self.shape() {
            let fresh = self.plan_consolidation(1);
            return self.finish_consolidation(fresh);
        }
        // A repair thread that panicked leaves its nodes' lists as they were, still pointing at deleted
        // nodes; those nodes must then stay deleted rather than be freed.
        let mut repaired = vec![false; self.slots];
        for (id, level, ids) in plan.repairs.into_iter().flatten() {
            self.set_links(id, level, &ids);
            repaired[id as usize] = true;
        }
        let unrepaired = (0..self.slots as u32).any(|id| {
            self.state[id as usize] == LIVE
                && !repaired[id as usize]
                && (0..=self.levels[id as usize] as usize).any(|l| {
                    self.links(id, l)
                        .iter()
                        .any(|&n| self.state[n as usize] != LIVE)
                })
        });
        if unrepaired {
            return;
        }
        for id in 0..self.slots as u32 {
            if self.state[id as usize] == DELETED {
                self.state[id as usize] = FREE;
                self.set_links(id, 0, &[]);
                self.free.push(id);
            }
        }
        self.deleted = 0;
        if self.entry != NONE && self.state[self.entry as usize] != LIVE {
            let best = (0..self.slots as u32)
                .filter(|&id| self.state[id as usize] == LIVE)
                .max_by_key(|&id| (self.levels[id as usize], std::cmp::Reverse(id)));
            match best {
                Some(id) => {
                    self.entry = id;
                    self.max_level = self.levels[id as usize] as usize;
                }
                None => {
                    self.entry = NONE;
                    self.max_level = 0;
                }
            }
        }
        // Reused slots are taken from the end of the free list; hand out low slot numbers first.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// The new link lists of the live nodes in `range` that link to deleted ones: their live neighbours
    /// plus the deleted neighbours' live neighbours, all of them when they fit, else picked by the
    /// heuristic.
    fn repairs(&self, range: std::ops::Range<u32>) -> Vec<(u32, usize, Vec<u32>)> {
        let distance = self.layout.distance;
        let mut out = Vec::new();
        let mut candidates: Vec<Item> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        for id in range {
            if self.state[id as usize] != LIVE {
                continue;
            }
            for level in 0..=self.levels[id as usize] as usize {
                let links = self.links(id, level);
                if links.iter().all(|&n| self.state[n as usize] == LIVE) {
                    continue;
                }
                seen.clear();
                seen.push(id);
                candidates.clear();
                let base = self.vector(id);
                let offer = |n: u32, seen: &mut Vec<u32>, candidates: &mut Vec<Item>| {
                    if self.state[n as usize] == LIVE && !seen.contains(&n) {
                        seen.push(n);
                        candidates.push(Item {
                            distance: distance(base, self.vector(n)),
                            id: n,
                        });
                    }
                };
                for &n in links {
                    if self.state[n as usize] == LIVE {
                        offer(n, &mut seen, &mut candidates);
                    } else if (self.levels[n as usize] as usize) >= level {
                        for &nn in self.links(n, level) {
                            offer(nn, &mut seen, &mut candidates);
                        }
                    }
                }
                candidates.sort_unstable_by(Item::order);
                let cap = self.layout.capacity(level);
                let kept = if candidates.len() <= cap {
                    candidates.clone()
                } else {
                    select(distance, |n| self.vector(n), &candidates, cap)
                };
                out.push((id, level, kept.iter().map(|i| i.id).collect()));
            }
        }
        out
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

/// Shared access to a graph for the threads of one batch insert.
///
/// Holds raw pointers into the graph's block and upper-list arrays, derived from the `&mut Graph` it is
/// built from, which it keeps borrowed for its lifetime: nothing else reads or writes the graph meanwhile.
/// Among the insert threads, link lists are only read or written under their node's stripe lock; vectors,
/// levels, keys and states are only read (new nodes were placed before the threads start).
struct Builder<'a> {
    layout: Layout,
    words: *mut u32,
    words_len: usize,
    upper: *mut u32,
    upper_len: usize,
    levels: &'a [u8],
    upper_at: &'a [usize],
    state: &'a [u8],
    slots: usize,
    ef_construction: usize,
    locks: Box<[Mutex<()>]>,
    /// Entry point and top level.
    entry: Mutex<(u32, usize)>,
    _graph: std::marker::PhantomData<&'a mut Graph>,
}

// SAFETY: the raw pointers address the arrays of a graph borrowed mutably for 'a, so only the threads
// sharing this builder touch them. Those threads write only link lists (count word and ids), each time
// holding that node's stripe mutex, and read link lists only under the same mutex, so no list is read and
// written at once; the mutex also orders a node's list writes before any later reader. The vector part
// of each block is only read during the builder's life. Everything else is behind shared references or
// mutexes.
#[allow(unsafe_code)]
unsafe impl Sync for Builder<'_> {}

#[allow(unsafe_code)]
impl<'a> Builder<'a> {
    fn new(graph: &'a mut Graph) -> Builder<'a> {
        let words: &mut [u32] = bytemuck::cast_slice_mut(&mut graph.lines);
        let (words_len, words) = (words.len(), words.as_mut_ptr());
        let (upper_len, upper) = (graph.upper.len(), graph.upper.as_mut_ptr());
        Builder {
            layout: graph.layout,
            words,
            words_len,
            upper,
            upper_len,
            levels: &graph.levels,
            upper_at: &graph.upper_at,
            state: &graph.state,
            slots: graph.slots,
            ef_construction: graph.ef_construction,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            entry: Mutex::new((graph.entry, graph.max_level)),
            _graph: std::marker::PhantomData,
        }
    }

    fn finish(self) -> (u32, usize) {
        self.entry
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self, id: u32) -> MutexGuard<'_, ()> {
        lock(&self.locks[id as usize % LOCK_STRIPES])
    }

    /// The count word of a node's list at `level`, and the capacity after it.
    fn list(&self, id: u32, level: usize) -> (*mut u32, usize) {
        let cap = self.layout.capacity(level);
        if level == 0 {
            let at = id as usize * self.layout.block;
            assert!(at + 1 + cap <= self.words_len, "node block out of range");
            // SAFETY: in bounds of the block array (checked above).
            (unsafe { self.words.add(at) }, cap)
        } else {
            let at = self.upper_at[id as usize] + (level - 1) * self.layout.stride();
            assert!(at + 1 + cap <= self.upper_len, "upper list out of range");
            // SAFETY: in bounds of the upper-list array (checked above).
            (unsafe { self.upper.add(at) }, cap)
        }
    }

    /// Copies a list; the caller holds the node's lock.
    fn read_locked(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        let (p, cap) = self.list(id, level);
        // SAFETY: `list` checked the range; the caller holds the node's stripe lock, so no thread writes
        // this list while the slice lives.
        let words = unsafe { std::slice::from_raw_parts(p, 1 + cap) };
        let count = (words[0] as usize).min(cap);
        out.clear();
        out.extend_from_slice(&words[1..1 + count]);
    }

    /// Overwrites a list; the caller holds the node's lock.
    fn write_locked(&self, id: u32, level: usize, ids: &[u32]) {
        let (p, cap) = self.list(id, level);
        // SAFETY: `list` checked the range; the caller holds the node's stripe lock, so this is the only
        // reference to the list while it lives.
        let words = unsafe { std::slice::from_raw_parts_mut(p, 1 + cap) };
        let count = ids.len().min(cap);
        words[0] = count as u32;
        words[1..1 + count].copy_from_slice(&ids[..count]);
    }

    /// Inserts the placed node `id` (the paper's INSERT).
    fn insert(&self, scratch: &mut Scratch, id: u32) {
        let level = self.levels[id as usize] as usize;
        let query = self.vector(id);
        let mut top = lock(&self.entry);
        let (entry, max_level) = *top;
        if entry == NONE {
            *top = (id, level);
            return;
        }
        // A node that raises the top level keeps the entry lock until it is linked, as in hnswlib.
        let raise = if level > max_level {
            Some(top)
        } else {
            drop(top);
            None
        };
        let mut current = Item {
            distance: self.distance(query, entry),
            id: entry,
        };
        let mut buf = Vec::new();
        for l in (level + 1..=max_level).rev() {
            current = greedy(self, query, current, l, &mut buf);
        }
        let mut found: Vec<Item> = Vec::new();
        for l in (0..=level.min(max_level)).rev() {
            search_layer(
                self,
                scratch,
                query,
                current,
                self.ef_construction,
                l,
                |n| n != id && self.state[n as usize] == LIVE,
            );
            found.clear();
            found.extend(scratch.results.drain().map(|f| f.0));
            found.sort_unstable_by(Item::order);
            let mut chosen = select(
                self.layout.distance,
                |n| self.vector(n),
                &found,
                self.layout.m,
            );
            if chosen.is_empty() && current.id != id {
                chosen.push(current);
            }
            self.set_own_links(id, query, l, &chosen, &mut buf);
            for neighbour in &chosen {
                self.connect(neighbour.id, id, neighbour.distance, l, &mut buf);
            }
            if let Some(nearest) = chosen.first() {
                current = *nearest;
            }
        }
        if let Some(mut top) = raise {
            *top = (id, level);
        }
    }

    /// Writes a new node's list at `level`. Another thread may already have linked its own new node into
    /// this one (it can reach it through the levels above, or start from it); those links are kept, with
    /// the heuristic choosing among all of them if they do not fit, rather than overwritten and lost.
    fn set_own_links(
        &self,
        id: u32,
        query: &[f32],
        level: usize,
        chosen: &[Item],
        buf: &mut Vec<u32>,
    ) {
        let _guard = self.lock(id);
        self.read_locked(id, level, buf);
        let mut merged: Vec<Item> = chosen.to_vec();
        for &n in buf.iter() {
            if n != id && !merged.iter().any(|m| m.id == n) {
                merged.push(Item {
                    distance: self.distance(query, n),
                    id: n,
                });
            }
        }
        let cap = self.layout.capacity(level);
        if merged.len() > cap {
            merged.sort_unstable_by(Item::order);
            merged = select(self.layout.distance, |n| self.vector(n), &merged, cap);
        }
        buf.clear();
        buf.extend(merged.iter().map(|m| m.id));
        self.write_locked(id, level, buf);
    }

    /// Adds the link `node → new` at `level`, shrinking `node`'s list with the heuristic when full.
    fn connect(&self, node: u32, new: u32, distance: f32, level: usize, buf: &mut Vec<u32>) {
        let _guard = self.lock(node);
        self.read_locked(node, level, buf);
        if buf.contains(&new) || node == new {
            return;
        }
        let cap = self.layout.capacity(level);
        if buf.len() < cap {
            buf.push(new);
            self.write_locked(node, level, buf);
            return;
        }
        let base = self.vector(node);
        let mut candidates: Vec<Item> = buf
            .iter()
            .map(|&n| Item {
                distance: self.distance(base, n),
                id: n,
            })
            .collect();
        candidates.push(Item { distance, id: new });
        candidates.sort_unstable_by(Item::order);
        let kept = select(self.layout.distance, |n| self.vector(n), &candidates, cap);
        buf.clear();
        buf.extend(kept.iter().map(|k| k.id));
        self.write_locked(node, level, buf);
    }
}

#[allow(unsafe_code)]
impl View for Builder<'_> {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn vector(&self, id: u32) -> &[f32] {
        let at = id as usize * self.layout.block + self.layout.vector_at;
        assert!(
            at + self.layout.dim <= self.words_len,
            "node block out of range"
        );
        // SAFETY: in bounds (checked above) and 4-byte aligned (the array is 64-byte aligned, f32 and u32
        // share size and alignment, and every bit pattern is a valid f32); vectors are never written while
        // the builder lives (see the `Sync` impl).
        unsafe { std::slice::from_raw_parts(self.words.add(at).cast::<f32>(), self.layout.dim) }
    }

    fn links(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        let _guard = self.lock(id);
        self.read_locked(id, level, out);
    }

    fn vector_ptr(&self, id: u32) -> *const f32 {
        let at = id as usize * self.layout.block + self.layout.vector_at;
        self.words.wrapping_add(at).cast::<f32>()
    }

    fn block_ptr(&self, id: u32) -> *const u32 {
        self.words.wrapping_add(id as usize * self.layout.block)
    }
}

/// The first bytes of a saved graph.
pub(crate) const MAGIC: &[u8; 8] = b"LHHNSW\r\n";
/// The saved format's version.
const FORMAT_VERSION: u32 = 1;

/// Reads little-endian values off a byte slice, failing (never panicking) when it runs out.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("the graph file is truncated".to_owned());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
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
