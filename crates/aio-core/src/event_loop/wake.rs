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
        } else if header::mark_scheduled(task.header()) {
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
