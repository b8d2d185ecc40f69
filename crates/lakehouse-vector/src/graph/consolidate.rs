//! Reclaiming deleted nodes: the live nodes around them get new link lists (planned reading only, beside
//! searches, then written in a short step), and their slots go on the free list.

use super::*;

/// New link lists for the live nodes around deleted ones, computed by [`Graph::plan_consolidation`] for
/// the graph as it was then ([`Graph::shape`] says which state).
#[derive(Debug)]
pub(crate) struct Consolidation {
    repairs: Vec<Vec<(u32, usize, Vec<u32>)>>,
    shape: [usize; 4],
}

impl Graph {
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
    pub(super) fn shape(&self) -> [usize; 4] {
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
    pub(super) fn repairs(&self, range: std::ops::Range<u32>) -> Vec<(u32, usize, Vec<u32>)> {
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
}
