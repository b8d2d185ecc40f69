//! Building the graph: slots placed and levels drawn, then a batch linked on several threads through a
//! [`Builder`]. The only unsafe code of the graph is here (and in the distance kernels): the builder's
//! shared access to the link lists, each guarded by its stripe lock.

use super::*;

impl Graph {
    pub(super) fn next_level(&mut self) -> usize {
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
    pub(super) fn allocate(&mut self) -> u32 {
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
    pub(super) fn place(
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
    pub(super) fn link(&mut self, ids: &[u32], threads: usize) -> Result<(), GraphError> {
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
}

/// Shared access to a graph for the threads of one batch insert.
///
/// Holds raw pointers into the graph's block and upper-list arrays, derived from the `&mut Graph` it is
/// built from, which it keeps borrowed for its lifetime: nothing else reads or writes the graph meanwhile.
/// Among the insert threads, link lists are only read or written under their node's stripe lock; vectors,
/// levels, keys and states are only read (new nodes were placed before the threads start).
pub(super) struct Builder<'a> {
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
