//! Timers: a radix heap of nodes that carry what they wake (a waker, or
//! a call of the loop's, `C`). Plain data: nothing here reads the
//! thread-local context.
//!
//! Timer deadlines are monotone — a new one is never before the turn's
//! clock, which never goes back — and a radix heap exploits exactly that:
//! a node goes into one of 65 buckets by the highest bit in which its
//! deadline differs from the last deadline taken out, so arming is an
//! append, and taking out the minimum rescans only the first non-empty
//! bucket, moving its nodes to lower buckets with sequential memory access.
//! Nodes with equal deadlines always share a bucket and keep their
//! insertion order, so ties fire first-in first-out.
//!
//! Measured with 100k concurrent timers (`benches/benches/core.rs`): binary
//! and 4-ary heaps lose to this several times over because each pop misses
//! the cache at every level, and a slab of entries (for lazy deletion) costs
//! a cache miss per timer when its slots are recycled in firing order. So
//! there is no slab: a node carries its waker or callback, a disarmed timer
//! is remembered by sequence number in a set that is empty in the common
//! case (firing then checks nothing), and an armed sleep knows it fired by
//! comparing its deadline with the turn's clock. Disarmed nodes are dropped
//! when they come out, or in a sweep when they outnumber live ones, so a
//! server that arms and cancels a timeout per request keeps only what is
//! really pending.
//!
//! A deadline that has already passed when it is armed (`call_later(-1, f)`,
//! `call_at` a time gone by) cannot enter the heap, whose keys never go
//! below the last minimum. It waits in a side list instead, which the next
//! turn fires first — every deadline still in the heap is later — sorted
//! by deadline, so past deadlines keep asyncio's order. The list is empty
//! but for such timers, and arming checks one comparison it made anyway.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::task::Waker;

/// Identifies an armed timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    pub(crate) deadline: u64,
    seq: u64,
}

/// Which task a waker wakes (`Waker::will_wake`'s test), kept as plain
/// numbers so a future can remember it and stay `Send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WakerId(usize, usize);

impl WakerId {
    pub(crate) fn of(w: &Waker) -> WakerId {
        WakerId(w.data() as usize, w.vtable() as *const _ as usize)
    }
}

enum Payload<C> {
    Wake(Waker),
    Call(C),
    /// Taken out by a sweep (the node is on its way out too).
    Gone,
}

/// What disarmed timers held (wakers, callbacks), taken out of the table
/// to be dropped once it is no longer borrowed: dropping a waker may drop
/// a task, whose output may disarm another timer.
#[must_use = "drop it once the timer table's borrow has ended"]
pub(crate) struct Discarded<C> {
    /// Held only to be dropped.
    _payloads: Vec<Payload<C>>,
}

impl<C> Discarded<C> {
    fn of(payloads: Vec<Payload<C>>) -> Discarded<C> {
        Discarded { _payloads: payloads }
    }
}

struct Node<C> {
    deadline: u64,
    seq: u64,
    payload: Payload<C>,
}

/// What firing produced: wakers to wake and callbacks to queue, collected
/// so that no user code runs while the timer table is borrowed.
pub(crate) struct Fired<C> {
    pub(crate) wakers: Vec<Waker>,
    pub(crate) calls: Vec<C>,
    /// The payloads of disarmed timers that came out.
    discarded: Vec<Payload<C>>,
}

impl<C> Fired<C> {
    /// What disarmed timers held: drop it outside the table's borrow.
    pub(crate) fn take_discarded(&mut self) -> Discarded<C> {
        Discarded::of(std::mem::take(&mut self.discarded))
    }
}

impl<C> Default for Fired<C> {
    fn default() -> Fired<C> {
        Fired {
            wakers: Vec::new(),
            calls: Vec::new(),
            discarded: Vec::new(),
        }
    }
}

/// Sequence numbers are unique, so they hash as themselves.
#[derive(Default)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        // Spread the bits: sequence numbers are consecutive.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const BUCKETS: usize = 65;

/// Below this many nodes a table is never swept: its disarmed nodes come
/// out when they fire, and hold at most this many wakers meanwhile.
const SWEEP_MIN: usize = 64;

pub(crate) struct Timers<C> {
    /// Bucket 0 holds deadlines equal to `last`; bucket `i > 0` those whose
    /// highest bit differing from `last` is bit `i - 1`.
    buckets: Vec<Vec<Node<C>>>,
    /// Bit `i` set when bucket `i` is not empty.
    occupied: u128,
    /// The earliest deadline in each bucket (`u64::MAX` when empty; it
    /// may be a disarmed node's), so a turn with nothing due, and the
    /// park's look at the next deadline, cost no scan of the bucket: a
    /// server that arms and cancels a timeout per request keeps up to a
    /// thousand disarmed nodes there until the sweep.
    mins: [u64; BUCKETS],
    /// The last minimum taken out; every node's deadline is at least this.
    last: u64,
    /// Everything due at this time has fired.
    fired_to: u64,
    /// Nodes in the buckets, disarmed ones included.
    nodes: usize,
    /// Disarmed timers whose nodes are still in a bucket.
    disarmed: HashSet<u64, BuildHasherDefault<SeqHasher>>,
    seq: u64,
    /// Timers armed with a deadline at or before `fired_to`, in arming
    /// order: the next turn fires them, before the buckets.
    overdue: Vec<Node<C>>,
}

impl<C> Timers<C> {
    pub(crate) fn new() -> Timers<C> {
        Timers {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: 0,
            mins: [u64::MAX; BUCKETS],
            last: 0,
            fired_to: 0,
            nodes: 0,
            disarmed: HashSet::default(),
            seq: 0,
            overdue: Vec::new(),
        }
    }

    fn arm(&mut self, deadline: u64, payload: Payload<C>) -> TimerKey {
        self.seq += 1;
        let node = Node {
            deadline,
            seq: self.seq,
            payload,
        };
        if deadline <= self.fired_to {
            return self.arm_overdue(node);
        }
        debug_assert!(self.last <= self.fired_to, "a heap key below the last minimum");
        self.push(node);
        TimerKey {
            deadline,
            seq: self.seq,
        }
    }

    /// Arms a timer whose deadline has passed: it fires at the next turn
    /// (whose clock is past `fired_to`), ordered by its own deadline.
    #[cold]
    fn arm_overdue(&mut self, node: Node<C>) -> TimerKey {
        let seq = node.seq;
        self.overdue.push(node);
        self.nodes += 1;
        TimerKey {
            // When it fires, for `has_fired`: the next turn's clock.
            deadline: self.fired_to.saturating_add(1),
            seq,
        }
    }

    /// Arms a timer that will wake `waker` at `deadline`.
    pub(crate) fn insert_waker(&mut self, deadline: u64, waker: Waker) -> TimerKey {
        self.arm(deadline, Payload::Wake(waker))
    }

    /// Arms a timer that will queue `cb` at `deadline`.
    pub(crate) fn insert_call(&mut self, deadline: u64, cb: C) -> TimerKey {
        self.arm(deadline, Payload::Call(cb))
    }

    /// Whether the timer has fired (its deadline was reached by a turn).
    pub(crate) fn has_fired(&self, key: TimerKey) -> bool {
        key.deadline <= self.fired_to
    }

    /// Disarms a timer. Timers that fired (or were disarmed) are ignored.
    /// What a sweep took out comes back, to be dropped by the caller once
    /// the table is no longer borrowed.
    pub(crate) fn remove(&mut self, key: TimerKey) -> Discarded<C> {
        if self.has_fired(key) || !self.disarmed.insert(key.seq) {
            return Discarded::of(Vec::new());
        }
        // Disarmed nodes keep their wakers (and so their tasks' memory)
        // until they come out: swept once they are half the nodes, which
        // costs O(1) a removal.
        if self.nodes > SWEEP_MIN && self.disarmed.len() * 2 > self.nodes {
            return self.sweep();
        }
        Discarded::of(Vec::new())
    }

    /// Takes the disarmed nodes out of every bucket.
    fn sweep(&mut self) -> Discarded<C> {
        let mut disarmed = std::mem::take(&mut self.disarmed);
        let mut gone = Vec::with_capacity(disarmed.len());
        let mut take = |n: &mut Node<C>| {
            if disarmed.contains(&n.seq) {
                gone.push(std::mem::replace(&mut n.payload, Payload::Gone));
                false
            } else {
                true
            }
        };
        self.overdue.retain_mut(&mut take);
        self.nodes = self.overdue.len();
        self.occupied = 0;
        for (i, b) in self.buckets.iter_mut().enumerate() {
            b.retain_mut(&mut take);
            self.nodes += b.len();
            self.mins[i] = b.iter().map(|n| n.deadline).min().unwrap_or(u64::MAX);
            if !b.is_empty() {
                self.occupied |= 1 << i;
            }
        }
        // Emptied, its table kept for the next round.
        disarmed.clear();
        self.disarmed = disarmed;
        Discarded::of(gone)
    }

    /// The earliest deadline. It may belong to a disarmed timer (checking
    /// each node would cost more than it saves): that costs one early
    /// wake-up, after which firing drops the node.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if !self.overdue.is_empty() {
            // Due at the next turn; every bucket's deadline is later.
            return Some(self.fired_to.saturating_add(1));
        }
        let i = self.first_bucket()?;
        if i == 0 {
            return Some(self.last);
        }
        Some(self.mins[i])
    }

    /// Fires every timer due at `now`, in deadline order.
    pub(crate) fn fire(&mut self, now: u64, out: &mut Fired<C>) {
        if now > self.fired_to && !self.overdue.is_empty() {
            self.fire_overdue(out);
        }
        self.fired_to = self.fired_to.max(now);
        while let Some(i) = self.first_bucket() {
            if i > 0 {
                if self.mins[i] > now {
                    break;
                }
                let (min, max) = self.buckets[i]
                    .iter()
                    .fold((u64::MAX, 0), |(lo, hi), n| (lo.min(n.deadline), hi.max(n.deadline)));
                if max <= now {
                    // All due (a loop that fell behind): one sort beats
                    // moving every node down bucket by bucket. Every other
                    // bucket holds later deadlines that share `max`'s high
                    // bits, so `last = max` keeps them where they are.
                    let mut due = self.take_bucket(i);
                    due.sort_unstable_by_key(|n| (n.deadline, n.seq));
                    self.last = max;
                    self.fire_nodes(&mut due, out);
                    if self.buckets[i].capacity() < due.capacity() {
                        self.buckets[i] = due;
                    }
                    continue;
                }
                self.last = min;
                self.redistribute(i);
                continue;
            }
            // Bucket 0: every node is due at `last <= now`, in insertion order.
            let mut due = self.take_bucket(0);
            self.fire_nodes(&mut due, out);
            if self.buckets[0].capacity() < due.capacity() {
                self.buckets[0] = due;
            }
        }
    }

    /// Fires the timers armed in the past, by deadline then arming order.
    /// Their deadlines are at most the old `fired_to`, every bucket's are
    /// later: they come first.
    #[cold]
    fn fire_overdue(&mut self, out: &mut Fired<C>) {
        let mut due = std::mem::take(&mut self.overdue);
        self.nodes -= due.len();
        // Stable: equal deadlines keep their arming order.
        due.sort_by_key(|n| n.deadline);
        self.fire_nodes(&mut due, out);
        self.overdue = due;
    }

    /// Moves the payloads of `due` (in order) to `out`, skipping disarmed ones.
    fn fire_nodes(&mut self, due: &mut Vec<Node<C>>, out: &mut Fired<C>) {
        for n in due.drain(..) {
            if !self.disarmed.is_empty() && self.disarmed.remove(&n.seq) {
                out.discarded.push(n.payload);
                continue;
            }
            match n.payload {
                Payload::Wake(w) => out.wakers.push(w),
                Payload::Call(cb) => out.calls.push(cb),
                Payload::Gone => {}
            }
        }
    }

    /// Takes every timer out (loop close), returning what they held so it
    /// is dropped outside the borrow.
    pub(crate) fn clear(&mut self) -> Discarded<C> {
        let mut all = Vec::with_capacity(self.nodes);
        for b in std::iter::once(&mut self.overdue).chain(&mut self.buckets) {
            all.extend(b.drain(..).map(|n| n.payload));
        }
        self.occupied = 0;
        self.mins = [u64::MAX; BUCKETS];
        self.nodes = 0;
        self.disarmed.clear();
        Discarded::of(all)
    }

    #[inline]
    fn bucket_of(&self, deadline: u64) -> usize {
        (u64::BITS - (deadline ^ self.last).leading_zeros()) as usize
    }

    #[inline]
    fn push(&mut self, n: Node<C>) {
        let i = self.bucket_of(n.deadline);
        self.mins[i] = self.mins[i].min(n.deadline);
        self.buckets[i].push(n);
        self.occupied |= 1 << i;
        self.nodes += 1;
    }

    /// Takes every node out of bucket `i`.
    #[inline]
    fn take_bucket(&mut self, i: usize) -> Vec<Node<C>> {
        let b = std::mem::take(&mut self.buckets[i]);
        self.occupied &= !(1 << i);
        self.mins[i] = u64::MAX;
        self.nodes -= b.len();
        b
    }

    #[inline]
    fn first_bucket(&self) -> Option<usize> {
        (self.occupied != 0).then(|| self.occupied.trailing_zeros() as usize)
    }

    /// Moves every node of bucket `i` to a lower bucket, relative to the new
    /// `last` (the bucket's minimum), keeping their order.
    fn redistribute(&mut self, i: usize) {
        let mut b = self.take_bucket(i);
        for n in b.drain(..) {
            self.push(n);
        }
        if self.buckets[i].capacity() < b.capacity() {
            self.buckets[i] = b;
        }
    }

    /// Whether no timer node is left (disarmed ones included).
    pub(crate) fn is_empty(&self) -> bool {
        self.nodes == 0
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.nodes - self.disarmed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    use crate::event_loop::queue::Callback;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering as O};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, O::SeqCst);
        }
    }

    fn waker() -> Waker {
        Waker::from(Arc::new(Count(AtomicUsize::new(0))))
    }

    fn call(log: &Rc<std::cell::RefCell<Vec<u64>>>, i: u64) -> Rc<dyn Callback> {
        let log = log.clone();
        crate::callback::CallbackCell::rc(move || log.borrow_mut().push(i))
    }

    #[test]
    fn fires_in_deadline_then_insertion_order_and_skips_removed() {
        let mut t = Timers::new();
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let a = t.insert_call(30, call(&log, 1));
        let b = t.insert_call(10, call(&log, 2));
        let d = t.insert_call(10, call(&log, 3));
        let e = t.insert_call(10, call(&log, 4));
        drop(t.remove(d));
        assert_eq!(t.next_deadline(), Some(10));
        let mut out = Fired::default();
        t.fire(20, &mut out);
        out.calls.iter().for_each(|c| c.run());
        assert_eq!(*log.borrow(), [2, 4], "ties in insertion order, removed skipped");
        assert!(t.has_fired(b) && t.has_fired(e) && !t.has_fired(a));
        drop(t.remove(b)); // already fired: ignored
        assert_eq!(t.next_deadline(), Some(30));
        assert_eq!(t.len(), 1);
        drop(t.remove(a));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn deadlines_in_the_past_fire_next_in_deadline_order() {
        let mut t = Timers::new();
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut out = Fired::default();
        t.fire(1000, &mut out);
        t.insert_call(1500, call(&log, 5));
        t.insert_call(1000, call(&log, 3)); // now: 0 s
        let b = t.insert_call(990, call(&log, 2)); // -10
        let gone = t.insert_call(980, call(&log, 9));
        t.insert_call(0, call(&log, 1)); // long ago
        t.insert_call(1000, call(&log, 4)); // a tie keeps arming order
        drop(t.remove(gone));
        assert!(!t.has_fired(b), "not before the next turn");
        assert_eq!(t.next_deadline(), Some(1001));
        t.fire(1000, &mut out);
        assert!(out.calls.is_empty(), "a turn at the same time fires nothing new");
        t.fire(1001, &mut out);
        out.calls.drain(..).for_each(|c| c.run());
        assert!(t.has_fired(b));
        assert_eq!(*log.borrow(), [1, 2, 3, 4]);
        assert_eq!(t.len(), 1);
        t.fire(2000, &mut out);
        out.calls.drain(..).for_each(|c| c.run());
        assert_eq!(*log.borrow(), [1, 2, 3, 4, 5]);
        assert!(t.is_empty());
    }

    #[test]
    fn pops_in_order_like_a_sort() {
        let mut t = Timers::new();
        let log = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut expect = Vec::new();
        for i in 0..10_000u64 {
            let d = 1 + (i * 7919) % 1000;
            let k = t.insert_call(d, call(&log, i));
            if i % 3 == 0 {
                drop(t.remove(k));
            } else {
                expect.push((d, i));
            }
        }
        expect.sort();
        while let Some(d) = t.next_deadline() {
            let mut out = Fired::default();
            t.fire(d, &mut out);
            out.calls.iter().for_each(|c| c.run());
        }
        assert_eq!(*log.borrow(), expect.iter().map(|e| e.1).collect::<Vec<_>>());
    }

    /// The next deadline as a scan of the buckets finds it (what the
    /// cached minima stand for).
    fn scanned_next<C>(t: &Timers<C>) -> Option<u64> {
        if !t.overdue.is_empty() {
            return Some(t.fired_to.saturating_add(1));
        }
        let i = t.first_bucket()?;
        t.buckets[i].iter().map(|n| n.deadline).min()
    }

    #[test]
    fn cached_minima_follow_arming_firing_and_sweeps() {
        let mut t: Timers<Rc<dyn Callback>> = Timers::new();
        let w = waker();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut keys = Vec::new();
        let mut now = 0u64;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 8 {
                0..=3 => keys.push(t.insert_waker(now + x % 5_000, w.clone())),
                4 | 5 if !keys.is_empty() => {
                    let k = keys.swap_remove((x as usize / 8) % keys.len());
                    drop(t.remove(k));
                }
                _ => {
                    now += x % 700;
                    t.fire(now, &mut Fired::default());
                }
            }
            assert_eq!(t.next_deadline(), scanned_next(&t));
        }
    }

    #[test]
    fn a_million_armed_and_cancelled_timers_keep_the_table_small() {
        let mut t: Timers<Rc<dyn Callback>> = Timers::new();
        let w = waker();
        for i in 0..1_000_000u64 {
            let k = t.insert_waker(1_000_000 + i, w.clone());
            drop(t.remove(k));
        }
        assert_eq!(t.len(), 0);
        assert!(t.nodes <= 2048, "kept {} disarmed nodes", t.nodes);
    }

    #[test]
    fn a_million_pending_timers() {
        let mut t: Timers<Rc<dyn Callback>> = Timers::new();
        let w = waker();
        let keys: Vec<_> = (0..1_000_000u64)
            .map(|i| t.insert_waker(1_000_000 + (i * 7919) % 1_000_000, w.clone()))
            .collect();
        for k in keys.iter().step_by(2) {
            drop(t.remove(*k));
        }
        assert_eq!(t.len(), 500_000);
        let mut out = Fired::default();
        t.fire(u64::MAX - 1, &mut out);
        assert_eq!(out.wakers.len(), 500_000);
        assert_eq!(t.next_deadline(), None);
    }
}
