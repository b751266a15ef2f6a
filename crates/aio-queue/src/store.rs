//! Where the items live: one strategy per queue kind, chosen by a private
//! enum.
//!
//! The stores know nothing of waiting, capacity or locking: they live in
//! [`Base`](crate::base::Base)'s state, under its lock, whose counts
//! guarantee a pop only happens for an item that was pushed and a push
//! never exceeds `maxsize`. No store allocates more than [`RING_BYTES`]
//! for its capacity: beyond that, memory follows the items it holds. The
//! enum needs no bound on `T` (the heap keeps its `Ord`-using functions as
//! plain function pointers), so a queue of `!Send` items works on one
//! loop, and a queue is `Send + Sync` exactly when `T: Send`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// The most a FIFO store allocates before it holds any item: a bounded
/// queue whose slots fit keeps them in a ring allocated up front; a
/// larger one grows with its items instead. A FIFO that drains after a
/// burst gives back what it holds beyond this.
pub(crate) const RING_BYTES: usize = 64 << 10;

/// One store per queue kind.
pub(crate) enum Store<T> {
    /// First in, first out: a ring buffer.
    Fifo(VecDeque<T>),
    /// Smallest first: a binary heap.
    Heap(Heap<T>),
    /// Last in, first out: a vector.
    Stack(Vec<T>),
}

pub(crate) struct Heap<T> {
    heap: BinaryHeap<Reverse<T>>,
    push: fn(&mut BinaryHeap<Reverse<T>>, T),
    pop: fn(&mut BinaryHeap<Reverse<T>>) -> Option<T>,
}

/// How many items a FIFO ring keeps room for when it drains (what
/// [`RING_BYTES`] holds, at least 16).
const fn kept_capacity<T>() -> usize {
    let n = match RING_BYTES.checked_div(std::mem::size_of::<T>()) {
        Some(n) => n,
        None => usize::MAX,
    };
    if n < 16 { 16 } else { n }
}

impl<T> Store<T> {
    /// A ring allocated up front when `maxsize` items take at most
    /// [`RING_BYTES`] (no allocation per item), else one that grows with
    /// its items and shrinks back when drained. `Base` enforces `maxsize`
    /// either way; a ring for any maxsize would cost 153 MiB for an empty
    /// queue of maxsize 10 million, and an abort or a panic for larger
    /// ones.
    pub(crate) fn fifo(maxsize: usize) -> Store<T> {
        if maxsize != 0 && maxsize <= kept_capacity::<T>() && std::mem::size_of::<T>() != 0 {
            Store::Fifo(VecDeque::with_capacity(maxsize))
        } else {
            Store::Fifo(VecDeque::new())
        }
    }

    /// An unbounded FIFO store (what [`fifo`](Store::fifo) makes for
    /// `maxsize` 0), in a constant.
    pub(crate) const fn fifo_unbounded() -> Store<T> {
        Store::Fifo(VecDeque::new())
    }

    pub(crate) const fn heap() -> Store<T>
    where
        T: Ord,
    {
        Store::Heap(Heap {
            heap: BinaryHeap::new(),
            push: |h, t| h.push(Reverse(t)),
            pop: |h| h.pop().map(|Reverse(t)| t),
        })
    }

    pub(crate) const fn stack() -> Store<T> {
        Store::Stack(Vec::new())
    }

    // `always`: generic, so it is compiled in the caller's crate, where a
    // plain `inline` was not followed (the criterion queue bench called
    // the store out of line).
    #[inline(always)]
    pub(crate) fn push(&mut self, item: T) {
        match self {
            Store::Fifo(d) => d.push_back(item),
            Store::Heap(h) => (h.push)(&mut h.heap, item),
            Store::Stack(v) => v.push(item),
        }
    }

    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<T> {
        match self {
            Store::Fifo(d) => {
                let item = d.pop_front();
                if d.is_empty() && d.capacity() > kept_capacity::<T>() {
                    // Drained after a burst: memory follows the items
                    // held, as the module docs promise.
                    d.shrink_to(kept_capacity::<T>());
                }
                item
            }
            Store::Heap(h) => (h.pop)(&mut h.heap),
            Store::Stack(v) => v.pop(),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Store::Fifo(d) => d.len(),
            Store::Heap(h) => h.heap.len(),
            Store::Stack(v) => v.len(),
        }
    }

    /// Moves every item out, leaving an empty store of the same kind: the
    /// caller drops them once it has released the lock (an item's `Drop`
    /// may use the queue).
    pub(crate) fn take_all(&mut self) -> Store<T> {
        let empty = match self {
            Store::Fifo(_) => Store::Fifo(VecDeque::new()),
            Store::Heap(h) => Store::Heap(Heap {
                heap: BinaryHeap::new(),
                push: h.push,
                pop: h.pop,
            }),
            Store::Stack(_) => Store::Stack(Vec::new()),
        };
        std::mem::replace(self, empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity<T>(s: &Store<T>) -> usize {
        match s {
            Store::Fifo(d) => d.capacity(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_fifo_preallocates_small_rings_and_gives_a_burst_back() {
        let small: Store<u64> = Store::fifo(8);
        assert!(capacity(&small) >= 8);
        let huge: Store<u64> = Store::fifo(10_000_000);
        assert_eq!(capacity(&huge), 0);

        let mut s: Store<u64> = Store::fifo_unbounded();
        for i in 0..100_000 {
            s.push(i);
        }
        for i in 0..100_000 {
            assert_eq!(s.pop(), Some(i));
        }
        assert_eq!(s.pop(), None);
        assert!(capacity(&s) <= kept_capacity::<u64>());
    }
}
