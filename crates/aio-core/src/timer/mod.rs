//! Timers: a min-heap of deadlines over a slab of entries.
//!
//! Removal is lazy: a removed entry frees its slab slot and bumps the slot's
//! generation, so its heap node is recognised as stale when it reaches the
//! top. When stale nodes outnumber live ones the heap is rebuilt, so a
//! server that arms and cancels a million timeouts keeps a heap the size of
//! what is really pending. Deadlines are exact (nanoseconds); ties fire in
//! insertion order.

mod sleep;

pub use sleep::{Sleep, YieldNow, sleep, sleep_until, yield_now};

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::task::Waker;

use crate::callback::Callback;

/// Identifies a timer entry; stale keys are detected by generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    generation: u32,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    deadline: u64,
    seq: u64,
    slot: u32,
    generation: u32,
}

impl PartialEq for Node {
    fn eq(&self, o: &Node) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Node {}
impl PartialOrd for Node {
    fn partial_cmp(&self, o: &Node) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Node {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Node) -> Ordering {
        (o.deadline, o.seq).cmp(&(self.deadline, self.seq))
    }
}

enum Entry {
    Free { next: u32 },
    Waiting(Option<Waker>),
    Fired,
    Call(Rc<dyn Callback>),
}

struct Slot {
    generation: u32,
    entry: Entry,
}

const NIL: u32 = u32::MAX;

/// What firing produced: wakers to wake and callbacks to queue, collected
/// so that no user code runs while the timer table is borrowed.
#[derive(Default)]
pub(crate) struct Fired {
    pub(crate) wakers: Vec<Waker>,
    pub(crate) calls: Vec<Rc<dyn Callback>>,
}

pub(crate) struct Timers {
    heap: BinaryHeap<Node>,
    slots: Vec<Slot>,
    free: u32,
    live: usize,
    seq: u64,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: NIL,
            live: 0,
            seq: 0,
        }
    }

    /// Number of armed entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    fn alloc(&mut self, entry: Entry) -> TimerKey {
        self.live += 1;
        if self.free != NIL {
            let slot = self.free;
            let s = &mut self.slots[slot as usize];
            let Entry::Free { next } = s.entry else {
                unreachable!("free list points at a used slot")
            };
            self.free = next;
            s.entry = entry;
            TimerKey {
                slot,
                generation: s.generation,
            }
        } else {
            let slot = u32::try_from(self.slots.len()).expect("more than 4 billion timers");
            self.slots.push(Slot { generation: 0, entry });
            TimerKey { slot, generation: 0 }
        }
    }

    fn push_node(&mut self, deadline: u64, key: TimerKey) {
        self.seq += 1;
        self.heap.push(Node {
            deadline,
            seq: self.seq,
            slot: key.slot,
            generation: key.generation,
        });
    }

    /// Arms a timer that will wake `waker` at `deadline`.
    pub(crate) fn insert_waker(&mut self, deadline: u64, waker: Waker) -> TimerKey {
        let key = self.alloc(Entry::Waiting(Some(waker)));
        self.push_node(deadline, key);
        key
    }

    /// Arms a timer that will queue `cb` at `deadline`.
    pub(crate) fn insert_call(&mut self, deadline: u64, cb: Rc<dyn Callback>) -> TimerKey {
        let key = self.alloc(Entry::Call(cb));
        self.push_node(deadline, key);
        key
    }

    fn slot_mut(&mut self, key: TimerKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|s| s.generation == key.generation)
    }

    /// Replaces the waker of a waiting entry unless it would wake the same task.
    pub(crate) fn update_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(Slot {
            entry: Entry::Waiting(w),
            ..
        }) = self.slot_mut(key)
        {
            match w {
                Some(old) if old.will_wake(waker) => {}
                _ => *w = Some(waker.clone()),
            }
        }
    }

    /// Whether the entry has fired (it stays allocated until removed).
    pub(crate) fn is_fired(&self, key: TimerKey) -> bool {
        matches!(
            self.slots.get(key.slot as usize),
            Some(Slot { generation, entry: Entry::Fired }) if *generation == key.generation
        )
    }

    /// Frees an entry, fired or not. Stale keys are ignored.
    pub(crate) fn remove(&mut self, key: TimerKey) {
        let free = self.free;
        if let Some(s) = self.slot_mut(key) {
            if matches!(s.entry, Entry::Free { .. }) {
                return;
            }
            s.generation = s.generation.wrapping_add(1);
            let old = std::mem::replace(&mut s.entry, Entry::Free { next: free });
            self.free = key.slot;
            self.live -= 1;
            drop(old);
            self.maybe_compact();
        }
    }

    fn is_stale(&self, n: &Node) -> bool {
        let s = &self.slots[n.slot as usize];
        s.generation != n.generation || !matches!(s.entry, Entry::Waiting(_) | Entry::Call(_))
    }

    fn maybe_compact(&mut self) {
        if self.heap.len() > 1024 && self.heap.len() > 2 * self.live {
            let slots = &self.slots;
            self.heap.retain(|n| {
                let s = &slots[n.slot as usize];
                s.generation == n.generation && matches!(s.entry, Entry::Waiting(_) | Entry::Call(_))
            });
        }
    }

    /// The earliest live deadline, discarding stale nodes on the way.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        while let Some(top) = self.heap.peek() {
            if self.is_stale(top) {
                self.heap.pop();
            } else {
                return Some(top.deadline);
            }
        }
        None
    }

    /// Fires every entry due at `now`, in deadline order.
    pub(crate) fn fire(&mut self, now: u64, out: &mut Fired) {
        while let Some(top) = self.heap.peek() {
            if top.deadline > now {
                break;
            }
            let n = self.heap.pop().expect("peeked");
            if self.is_stale(&n) {
                continue;
            }
            let s = &mut self.slots[n.slot as usize];
            match std::mem::replace(&mut s.entry, Entry::Fired) {
                Entry::Waiting(w) => out.wakers.extend(w),
                Entry::Call(cb) => {
                    out.calls.push(cb);
                    // A fired callback's entry is done with.
                    self.remove(TimerKey {
                        slot: n.slot,
                        generation: n.generation,
                    });
                }
                Entry::Free { .. } | Entry::Fired => unreachable!("stale nodes are skipped"),
            }
        }
    }

    /// Drops every entry (loop close).
    pub(crate) fn clear(&mut self) -> Vec<Rc<dyn Callback>> {
        let mut calls = Vec::new();
        for s in &mut self.slots {
            if let Entry::Call(cb) = std::mem::replace(&mut s.entry, Entry::Fired) {
                calls.push(cb);
            }
        }
        self.heap.clear();
        self.slots.clear();
        self.free = NIL;
        self.live = 0;
        calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering as O};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, O::SeqCst);
        }
    }

    #[test]
    fn fires_in_deadline_then_insertion_order_and_skips_removed() {
        let mut t = Timers::new();
        let c = Arc::new(Count(AtomicUsize::new(0)));
        let w = Waker::from(c.clone());
        let a = t.insert_waker(30, w.clone());
        let b = t.insert_waker(10, w.clone());
        let d = t.insert_waker(10, w.clone());
        t.remove(d);
        assert_eq!(t.next_deadline(), Some(10));
        let mut out = Fired::default();
        t.fire(20, &mut out);
        assert_eq!(out.wakers.len(), 1);
        assert!(t.is_fired(b));
        assert!(!t.is_fired(a));
        t.remove(b);
        assert_eq!(t.next_deadline(), Some(30));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_million_armed_and_cancelled_timers_keep_the_heap_small() {
        let mut t = Timers::new();
        let w = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        for i in 0..1_000_000u64 {
            let k = t.insert_waker(1_000_000 + i, w.clone());
            t.remove(k);
        }
        assert_eq!(t.len(), 0);
        assert!(t.heap.len() <= 2048, "heap kept {} stale nodes", t.heap.len());
        assert_eq!(t.next_deadline(), None);
    }
}
