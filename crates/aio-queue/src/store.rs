//! Where the items live: one strategy per queue kind, chosen by a private
//! enum.
//!
//! The stores know nothing of waiting or capacity: the semaphores in
//! [`Base`](crate::base::Base) guarantee a pop only happens for an item that
//! was pushed, and a push never exceeds `maxsize`. No store allocates
//! more than [`RING_BYTES`] for its capacity: beyond that, memory follows
//! the items it holds. The enum needs no bound
//! on `T` (the heap keeps its `Ord`-using functions as plain function
//! pointers), so a queue of `!Send` items works on one loop, and a queue is
//! `Send + Sync` exactly when `T: Send`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use concurrent_queue::ConcurrentQueue;
use parking_lot::Mutex;

/// The most a FIFO store allocates before it holds any item: a bounded
/// queue whose slots fit keeps them in a ring allocated up front; a
/// larger one grows with its items instead.
pub(crate) const RING_BYTES: usize = 64 << 10;

// One store per queue, inline: boxing the (cache-padded) FIFO would add
// an indirection to the hot path to save memory nobody misses.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store<T> {
    /// First in, first out: a lock-free `concurrent-queue`.
    Fifo(ConcurrentQueue<T>),
    /// Smallest first: a binary heap under a lock.
    Heap(Heap<T>),
    /// Last in, first out: a vector under a lock.
    Stack(Mutex<Vec<T>>),
}

pub(crate) struct Heap<T> {
    heap: Mutex<BinaryHeap<Reverse<T>>>,
    push: fn(&mut BinaryHeap<Reverse<T>>, T),
    pop: fn(&mut BinaryHeap<Reverse<T>>) -> Option<T>,
}

impl<T> Store<T> {
    /// A preallocated ring when its slots take at most [`RING_BYTES`]
    /// (the fastest store: no allocation per item), else an unbounded
    /// queue of linked blocks allocated as items arrive. `Base`'s `space`
    /// semaphore enforces `maxsize` either way; a ring for any maxsize
    /// would cost 153 MiB for an empty queue of maxsize 10 million, and
    /// an abort or a panic for larger ones.
    pub(crate) fn fifo(maxsize: usize) -> Store<T> {
        // concurrent-queue's ring slot: a stamp beside the value.
        let slot = std::mem::size_of::<(usize, T)>();
        Store::Fifo(if maxsize != 0 && maxsize <= RING_BYTES / slot {
            ConcurrentQueue::bounded(maxsize)
        } else {
            ConcurrentQueue::unbounded()
        })
    }

    /// An unbounded FIFO store (what [`fifo`](Store::fifo) makes for
    /// `maxsize` 0), in a constant.
    pub(crate) const fn fifo_unbounded() -> Store<T> {
        Store::Fifo(ConcurrentQueue::unbounded())
    }

    pub(crate) const fn heap() -> Store<T>
    where
        T: Ord,
    {
        Store::Heap(Heap {
            heap: Mutex::new(BinaryHeap::new()),
            push: |h, t| h.push(Reverse(t)),
            pop: |h| h.pop().map(|Reverse(t)| t),
        })
    }

    pub(crate) const fn stack() -> Store<T> {
        Store::Stack(Mutex::new(Vec::new()))
    }

    #[inline]
    pub(crate) fn push(&self, item: T) {
        match self {
            Store::Fifo(q) => {
                if q.push(item).is_err() {
                    unreachable!("a queue store is unbounded and never closed");
                }
            }
            Store::Heap(h) => (h.push)(&mut h.heap.lock(), item),
            Store::Stack(v) => v.lock().push(item),
        }
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        match self {
            Store::Fifo(q) => q.pop().ok(),
            Store::Heap(h) => (h.pop)(&mut h.heap.lock()),
            Store::Stack(v) => v.lock().pop(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Store::Fifo(q) => q.len(),
            Store::Heap(h) => h.heap.lock().len(),
            Store::Stack(v) => v.lock().len(),
        }
    }
}
