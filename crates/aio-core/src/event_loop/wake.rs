//! Where a woken task goes: the running loop's own ready queue when the
//! wake comes from its thread while it runs, else the injection queue of
//! [`Shared`]. The waker (`task::raw`) calls this on every wake; which
//! flag each path sets is told in `task::header`.

use super::core::Core;
use super::queue::Runnable;
use super::shared::{Remote, Shared};
use crate::context::CONTEXT;
use crate::loom::sync::atomic::Ordering;
use crate::task::header::{self, TaskPtr};

impl Shared {
    /// Queues a woken task: locally when on the loop thread while it runs
    /// (a plain flag, no atomic step), through the injection queue
    /// otherwise.
    #[inline]
    pub(crate) fn schedule(&self, task: TaskPtr) {
        let core = CONTEXT.with(|c| c.core.get());
        if core as usize == self.core_addr.load(Ordering::Relaxed) {
            if header::mark_queued(task.header()) {
                // SAFETY: `core` is the running loop of this thread (set by a
                // live `Restore::core`), and it is the loop owning this task.
                unsafe { (*core).queue.push(Runnable::Task(task)) };
            }
        } else {
            self.schedule_elsewhere(task);
        }
    }

    /// A wake from outside the running loop. On the loop's own thread
    /// while it is not running (a future completed between two
    /// `run_until_complete`s), the task goes into the loop's queue as a
    /// local wake does, in order with the callbacks scheduled there, as
    /// asyncio's `call_soon` keeps them; from another thread, through the
    /// injection queue.
    #[cold]
    fn schedule_elsewhere(&self, task: TaskPtr) {
        // (loom runs its threads on one OS thread: every wake is remote there.)
        // A closing loop takes nothing more (the injection queue discards
        // what it is sent then).
        #[cfg(not(loom))]
        if super::shared::thread_token() == self.owner && !self.is_closed() {
            if header::mark_queued(task.header()) {
                // SAFETY: the loop's own thread, and the loop is not
                // closed, so its core is alive (only a close frees it:
                // the last `Loop` handle's drop closes first).
                unsafe { self.core().queue.push(Runnable::Task(task)) };
            }
            return;
        }
        if header::mark_scheduled(task.header()) {
            self.inject(Remote::Wake(task));
        }
    }

    /// The owning loop's core.
    ///
    /// # Safety
    /// Loop thread only, and only while the loop is alive — which holds for
    /// any task that is not complete, since closing a loop completes them all.
    pub(crate) unsafe fn core(&self) -> &Core {
        // SAFETY: guaranteed by the caller.
        unsafe { &*(self.core_addr() as *const Core) }
    }
}
