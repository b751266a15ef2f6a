//! Where the items live: one strategy per queue kind.
//!
//! The stores know nothing of waiting or capacity: the semaphores in
//! [`Base`](crate::base::Base) guarantee a pop only happens for an item that
//! was pushed, and a push never exceeds `maxsize`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use concurrent_queue::ConcurrentQueue;
use parking_lot::Mutex;

pub(crate) trait Store<T>: Send + Sync {
    fn push(&self, item: T);
    fn pop(&self) -> Option<T>;
    fn len(&self) -> usize;
}

/// First in, first out: a lock-free `concurrent-queue`.
pub(crate) struct Fifo<T>(ConcurrentQueue<T>);

impl<T> Fifo<T> {
    pub(crate) fn new(maxsize: usize) -> Fifo<T> {
        Fifo(if maxsize == 0 {
            ConcurrentQueue::unbounded()
        } else {
            ConcurrentQueue::bounded(maxsize)
        })
    }
}

impl<T: Send> Store<T> for Fifo<T> {
    #[inline]
    fn push(&self, item: T) {
        if self.0.push(item).is_err() {
            unreachable!("a queue store is pushed to only within its capacity, and never closed");
        }
    }
    #[inline]
    fn pop(&self) -> Option<T> {
        self.0.pop().ok()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Smallest first: a binary heap under a lock.
pub(crate) struct Heap<T>(Mutex<BinaryHeap<Reverse<T>>>);

impl<T: Ord> Heap<T> {
    pub(crate) fn new() -> Heap<T> {
        Heap(Mutex::new(BinaryHeap::new()))
    }
}

impl<T: Ord + Send> Store<T> for Heap<T> {
    fn push(&self, item: T) {
        self.0.lock().push(Reverse(item));
    }
    fn pop(&self) -> Option<T> {
        self.0.lock().pop().map(|Reverse(t)| t)
    }
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// Last in, first out: a vector under a lock.
pub(crate) struct Stack<T>(Mutex<Vec<T>>);

impl<T> Stack<T> {
    pub(crate) fn new() -> Stack<T> {
        Stack(Mutex::new(Vec::new()))
    }
}

impl<T: Send> Store<T> for Stack<T> {
    fn push(&self, item: T) {
        self.0.lock().push(item);
    }
    fn pop(&self) -> Option<T> {
        self.0.lock().pop()
    }
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}
