//! The ready queue of a loop ([`RunQueue`]): task steps and callbacks, in
//! the order they became ready. Loop thread only.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::task::header::TaskPtr;

/// A callback waiting in the ready queue or on a timer.
pub(crate) trait Callback {
    /// Runs the callback unless it was cancelled; runs at most once.
    fn run(&self);
    fn cancel(&self);
    fn is_cancelled(&self) -> bool;
}

pub(crate) enum Runnable {
    /// A task queued on the loop thread (`QUEUED`).
    Task(TaskPtr),
    /// A task woken from another thread (`SCHEDULED`), moved here from the
    /// injection queue.
    Woken(TaskPtr),
    Call(Rc<dyn Callback>),
}

/// The ready queue. Accessed only in short, non-reentrant calls (no user
/// code runs while it is borrowed), so an `UnsafeCell` is enough.
pub(crate) struct RunQueue {
    q: UnsafeCell<VecDeque<Runnable>>,
}

impl RunQueue {
    #[inline]
    pub(crate) fn push(&self, r: Runnable) {
        // SAFETY: no reference into the queue outlives these methods, and
        // the loop thread is the only one calling them.
        unsafe { (*self.q.get()).push_back(r) }
    }
    #[inline]
    pub(super) fn pop(&self) -> Option<Runnable> {
        // SAFETY: as `push`.
        unsafe { (*self.q.get()).pop_front() }
    }
    #[inline]
    pub(super) fn len(&self) -> usize {
        // SAFETY: as `push`.
        unsafe { (*self.q.get()).len() }
    }
}

impl RunQueue {
    /// An empty queue with room for `n` entries.
    pub(super) fn with_capacity(n: usize) -> RunQueue {
        RunQueue {
            q: UnsafeCell::new(VecDeque::with_capacity(n)),
        }
    }
}
