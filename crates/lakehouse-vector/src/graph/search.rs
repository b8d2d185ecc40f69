//! Searching the graph: the walk of one level, the greedy descent through the upper levels, the neighbour
//! heuristic, the scratch a walk reuses, and the exact scans. [`View`] is what a walk reads, so the same
//! walk serves searches (over a graph no one is modifying) and the insert threads (under their locks).

use super::*;

/// A node and its distance to whatever is being compared against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Item {
    pub(super) distance: f32,
    pub(super) id: u32,
}

impl Item {
    pub(super) fn order(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

/// Max-heap order: the farthest on top (the result set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Far(pub(super) Item);

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
pub(super) type Near = Reverse<Far>;

/// Per-search working memory, pooled: an epoch-stamped visited array, the two heaps and a link buffer.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    pub(super) marks: Vec<u16>,
    pub(super) epoch: u16,
    pub(super) candidates: BinaryHeap<Near>,
    pub(super) results: BinaryHeap<Far>,
    pub(super) links: Vec<u32>,
    pub(super) fresh: Vec<u32>,
}

impl Scratch {
    /// Forgets every visit (in O(1) except once per 65,535 searches).
    pub(super) fn begin(&mut self, slots: usize) {
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
    pub(super) fn visit(&mut self, id: u32) -> bool {
        match self.marks.get_mut(id as usize) {
            Some(mark) if *mark != self.epoch => {
                *mark = self.epoch;
                true
            }
            _ => false,
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.marks.capacity() * 2
            + (self.candidates.capacity() + self.results.capacity()) * size_of::<Item>()
            + (self.links.capacity() + self.fresh.capacity()) * 4
    }
}

/// Read access to the graph for a walk: lock-free on a frozen graph, locked while inserting.
pub(super) trait View {
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
pub(super) fn greedy<V: View>(
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
pub(super) fn search_layer<V: View>(
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
pub(super) fn select<'v>(
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

/// Lock-free reads of a graph no one is modifying.
pub(super) struct Frozen<'a>(&'a Graph);

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
    pub(super) fn take_scratch(&self) -> Scratch {
        self.scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    pub(super) fn give_scratch(&self, scratch: Scratch) {
        let mut pool = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < 64 {
            pool.push(scratch);
        }
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
}
