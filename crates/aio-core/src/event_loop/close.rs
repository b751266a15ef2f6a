//! Closing a loop, asyncio's sequence: cancel the tasks still pending,
//! let them clean up (bounded by the shutdown timeout), shut the thread
//! pool down, then drop what is left. The last owning [`Loop`] closes it
//! when dropped.

use super::Loop;
use super::core::Core;
use super::exception::debug_warning;
use super::queue::Runnable;
use super::registry::Registry;
use crate::delay::delay_ns;
use crate::task::header;
use crate::task::{self, TaskRef};

impl Core {
    /// asyncio's close sequence: cancel what is pending, let it clean up
    /// (bounded by the shutdown timeout), shut the thread pool down, then
    /// drop everything that is left.
    #[track_caller]
    pub(super) fn close(&self) {
        if self.closed.get() {
            return;
        }
        assert!(!self.running.get(), "cannot close a running event loop");
        // Closing runs turns; nothing new is taken on meanwhile. A `stop()`
        // made before is for a run, not for the close's clean-up turns
        // (which would then look at the driver without ever sleeping).
        drop(self.idle.borrow_mut().take());
        self.stopping.set(false);
        {
            let _run = self.enter_run();
            let pending = self.all_tasks();
            if self.debug.get() && !pending.is_empty() {
                let names: Vec<String> = pending.iter().map(TaskRef::name).collect();
                debug_warning(format_args!(
                    "{} task(s) still pending when the loop closed, cancelling: {}",
                    names.len(),
                    names.join(", ")
                ));
            }
            for t in &pending {
                t.cancel();
            }
            self.shutdown_ids.set(self.next_task_id.get());
            let deadline = self.clock.now().saturating_add(delay_ns(self.shutdown_timeout));
            while self.live_tasks() > 0 && self.clock.now() < deadline {
                self.run_once(Some(deadline));
            }
            // A task that failed as it was cancelled: reported, as asyncio's
            // `run()` reports it, once. (A detached one was, as it ended.)
            for t in pending {
                if let Some(ctx) = task::shutdown_failure(&t) {
                    self.report(ctx);
                }
            }
            self.shutdown_ids.set(0);
            for t in self.all_tasks() {
                if self.debug.get() {
                    debug_warning(format_args!(
                        "task {:?} did not finish within the shutdown timeout; dropping it",
                        t.name()
                    ));
                }
                t.abort();
            }
            // Whatever is still queued: drop callbacks, release tasks.
            self.drain_injector();
            while let Some(r) = self.queue.pop() {
                match r {
                    Runnable::Task(t) => {
                        // SAFETY: a `QUEUED` entry, taken on the loop thread.
                        let _ = unsafe { header::dequeue_local(t.0) };
                    }
                    Runnable::Woken(t) => {
                        // SAFETY: a `SCHEDULED` entry, taken on the loop thread.
                        let _ = unsafe { header::dequeue_remote(t.0, true) };
                    }
                    Runnable::Call(cb) => cb.cancel(),
                }
            }
            let calls = self.timers.borrow_mut().clear();
            drop(calls);
            self.clear_registry();
        }
        if let Some(pool) = self.pool.borrow_mut().take() {
            let left = pool.shutdown(self.shutdown_timeout);
            if left > 0 {
                // asyncio's RuntimeWarning from shutdown_default_executor.
                debug_warning(format_args!(
                    "the thread pool did not finish joining its threads within {:.3} s: \
                     {left} still running, left to end on their own",
                    self.shutdown_timeout.as_secs_f64()
                ));
            }
        }
        self.closed.set(true);
        self.shared.close();
    }

    /// Empties the registry (loop close: every task is complete by now).
    pub(super) fn clear_registry(&self) {
        *self.tasks.borrow_mut() = Registry::default();
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let core = &self.core;
        core.owners.set(core.owners.get() - 1);
        // The last owner closes the loop, while the core is still intact
        // (tasks being dropped may still call `get_running_loop`). Sockets
        // and tasks hold their own references to the core, so waiting for
        // the last reference would wait forever.
        if core.owners.get() == 0 && !core.closed.get() && !core.running.get() {
            // Dropped inside another loop's task: close this one as if
            // nothing ran here, then give the outer one its context back.
            let _outer = crate::context::Restore::suspend();
            core.close();
        }
    }
}
