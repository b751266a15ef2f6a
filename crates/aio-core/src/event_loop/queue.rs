//! The ready queue of a loop ([`RunQueue`]): task steps and callbacks, in
//! the order they became ready. Loop thread only.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::rc::Rc;

use std::num::NonZeroUsize;
use std::ptr::NonNull;

use crate::task::header::{Header, TaskPtr};

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

/// A [`Runnable`] as the queue keeps it: two words, not three. Which of
/// a task's entries it is (`QUEUED` or `SCHEDULED`) is the low bit of the
/// task's pointer (headers are word-aligned), so a task entry fits the
/// callback's data word and the callback's never-null vtable word tells
/// them apart. A queue of a hundred thousand spawned tasks then fills a
/// third fewer cache lines, which is what a burst of spawns waits on.
enum Slot {
    Task(NonNull<Header>),
    Call(Rc<dyn Callback>),
}

/// The tag of a `Woken` entry in [`Slot::Task`]'s pointer.
const WOKEN: usize = 1;

impl From<Runnable> for Slot {
    #[inline]
    fn from(r: Runnable) -> Slot {
        match r {
            Runnable::Task(t) => Slot::Task(t.0),
            Runnable::Woken(t) => Slot::Task(t.0.map_addr(|a| a | WOKEN)),
            Runnable::Call(cb) => Slot::Call(cb),
        }
    }
}

impl From<Slot> for Runnable {
    #[inline]
    fn from(s: Slot) -> Runnable {
        match s {
            Slot::Task(p) if p.addr().get() & WOKEN != 0 => {
                // SAFETY: clearing the tag bit of a non-null, word-aligned
                // pointer leaves it non-null.
                Runnable::Woken(TaskPtr(
                    p.map_addr(|a| unsafe { NonZeroUsize::new_unchecked(a.get() & !WOKEN) }),
                ))
            }
            Slot::Task(p) => Runnable::Task(TaskPtr(p)),
            Slot::Call(cb) => Runnable::Call(cb),
        }
    }
}

/// The ready queue. Accessed only in short, non-reentrant calls (no user
/// code runs while it is borrowed), so an `UnsafeCell` is enough.
pub(crate) struct RunQueue {
    q: UnsafeCell<VecDeque<Slot>>,
}

impl RunQueue {
    #[inline]
    pub(crate) fn push(&self, r: Runnable) {
        // SAFETY: no reference into the queue outlives these methods, and
        // the loop thread is the only one calling them.
        unsafe { (*self.q.get()).push_back(r.into()) }
    }
    #[inline]
    pub(super) fn pop(&self) -> Option<Runnable> {
        // SAFETY: as `push`.
        unsafe { (*self.q.get()).pop_front() }.map(Runnable::from)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_entry_is_two_words() {
        assert_eq!(size_of::<Slot>(), 2 * size_of::<usize>());
        assert!(align_of::<Header>() > WOKEN);
    }
}
