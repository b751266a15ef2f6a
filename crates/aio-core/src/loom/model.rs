//! What the loom models (`tests/loom_*.rs`) drive: a loop's thread-safe
//! half parking in the real [`ParkDriver`], and tasks with their real
//! header, waker and state word.
//!
//! A whole [`Loop`](crate::Loop) cannot run under loom (its thread-locals
//! would be shared by loom's threads, which all run on one OS thread), so
//! the loop thread's side is reduced to the steps that meet other threads:
//! park, take what was sent, run a task step, complete a task, close. Each
//! step calls what the loop calls — `Shared::park`, `Shared::take_remote`,
//! `header::dequeue_remote`, `header::set_complete`, `header::release`,
//! `Shared::close` —
//! and the other threads use the real [`LoopHandle`] and task wakers.
//! The loop's own run queue is a plain queue of `QUEUED` entries
//! ([`LoopModel::wake_local`], [`LoopModel::run_local`]). Only the
//! loop-thread bookkeeping in between (the task registry, cancel scopes,
//! done callbacks) is left out.
//!
//! Compiled only under `cfg(loom)`; not an API.

use std::collections::VecDeque;
use std::future::Future;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Waker};

use crate::driver::{Driver, ParkDriver};
use crate::event_loop::shared::{Remote, Shared};
use crate::handle::LoopHandle;
use crate::task::header::{self, Header, PollOutcome};
use crate::task::raw;

/// The loop side of the models: a loop's thread-safe half (`Shared`) and
/// its [`ParkDriver`]. Lives on the model's loop thread.
pub struct LoopModel {
    shared: Arc<Shared>,
    driver: ParkDriver,
    next_id: u64,
    /// The loop's own run queue: entries of wakes on the loop thread.
    local: VecDeque<NonNull<Header>>,
}

impl Default for LoopModel {
    fn default() -> Self {
        LoopModel::new()
    }
}

impl LoopModel {
    /// A loop that has not parked yet (its parker does not know its thread).
    pub fn new() -> LoopModel {
        let driver = ParkDriver::new();
        let shared = Arc::new(Shared::new(driver.unparker()));
        LoopModel {
            shared,
            driver,
            next_id: 0,
            local: VecDeque::new(),
        }
    }

    /// The handle other threads use ([`LoopHandle::call_soon_threadsafe`]).
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.shared.clone(),
        }
    }

    /// Parks as a loop with nothing ready and no timer does: until another
    /// thread unparks it, unless something was sent already. A lost wake-up
    /// parks it forever, which loom reports as a deadlock.
    pub fn park(&mut self) {
        self.shared
            .park(&mut self.driver, None)
            .expect("the park driver does not fail");
    }

    /// Takes everything other threads sent, as a turn does: runs the calls
    /// and steps the woken tasks. Returns how many entries it took.
    pub fn run_remote(&self) -> usize {
        let mut n = 0;
        while let Some(r) = self.shared.take_remote() {
            n += 1;
            match r {
                Remote::Wake(t) => {
                    // SAFETY: a queue entry, holding the alive reference.
                    if unsafe { header::dequeue_remote(t.0, true) } {
                        step(t.0);
                    }
                }
                Remote::Call(f) => f(),
                // SAFETY: a cancel request carries a reference of its own
                // (the models send none; the loop would cancel the task).
                Remote::Cancel(t, _) => unsafe { header::release(t.0) },
            }
        }
        n
    }

    /// Queues `task` in the loop's own run queue, as a wake on the loop
    /// thread does (`QUEUED`, no atomic step). Returns `false` if it is
    /// queued there already, or complete.
    pub fn wake_local(&mut self, task: &TaskModel) -> bool {
        // SAFETY: the handle reference keeps the header live.
        let queued = header::mark_queued(unsafe { task.ptr.as_ref() });
        if queued {
            self.local.push_back(task.ptr);
        }
        queued
    }

    /// Takes the entries of the loop's own run queue, as a turn does:
    /// steps the tasks that are not complete. Returns how many it took.
    pub fn run_local(&mut self) -> usize {
        let mut n = 0;
        while let Some(p) = self.local.pop_front() {
            n += 1;
            // SAFETY: a `QUEUED` entry on the loop thread, holding the alive
            // reference.
            if unsafe { header::dequeue_local(p) } {
                step(p);
            }
        }
        n
    }

    /// Completes `task` without stepping it, as aborting a queued task does
    /// (its future dropped on the loop thread), whatever entries it has
    /// queued: the alive reference goes now, or with the last of them.
    pub fn abort(&mut self, task: &TaskModel) {
        // SAFETY: the handle reference keeps the header live.
        let h = unsafe { task.ptr.as_ref() };
        // SAFETY: the model's loop thread; the task is not being polled.
        unsafe { (h.vtable.drop_stage)(task.ptr) };
        // SAFETY: the alive reference, released once (the handle's keeps
        // the header live).
        unsafe { header::complete_and_release(task.ptr) };
    }

    /// Closes the loop as [`Loop::close`](crate::Loop::close) ends: takes
    /// what is left in its own queue, then closes the thread-safe half
    /// (from now on senders drop what they send).
    pub fn close(&mut self) {
        while let Some(p) = self.local.pop_front() {
            // SAFETY: as in `run_local`; every task is complete by now.
            let _ = unsafe { header::dequeue_local(p) };
        }
        self.shared.close();
    }

    /// Whether something sent is still waiting in the injection queue.
    pub fn has_remote(&self) -> bool {
        self.shared.has_remote()
    }

    /// How many references to the loop's thread-safe half exist besides
    /// this model's: one per live task header and per [`LoopHandle`]. Zero
    /// once every task is freed and every handle dropped.
    pub fn outside_refs(&self) -> usize {
        Arc::strong_count(&self.shared) - 1
    }

    /// Creates a task running `fut` and polls it once, as an eager task
    /// starts. The returned handle holds the handle reference; the task
    /// keeps its alive reference until it completes.
    pub fn spawn<F: Future<Output = ()> + 'static>(&mut self, fut: F) -> TaskModel {
        self.next_id += 1;
        let ptr = raw::allocate(fut, raw::vtable::<F>(), self.shared.clone(), self.next_id, None, None);
        step(ptr);
        TaskModel { ptr }
    }
}

/// One step of a task, reduced to what meets other threads: the poll with
/// the task's own waker and, when it finishes, the completion.
fn step(ptr: NonNull<Header>) {
    // SAFETY: the caller holds the alive reference.
    let h = unsafe { ptr.as_ref() };
    // What the state word is for: a queue entry of a completed task is
    // released by `dequeue_remote`, never run (its alive reference would go
    // twice).
    assert!(!h.is_complete(), "a completed task was run");
    let waker = raw::waker_ref(ptr);
    let mut cx = Context::from_waker(&waker);
    // SAFETY: the model's loop thread; no other poll of this task runs.
    match unsafe { (h.vtable.poll)(ptr, &mut cx) } {
        PollOutcome::Pending => {}
        PollOutcome::Ready | PollOutcome::Panicked => {
            // The output nobody reads goes on the loop thread, as a
            // detached task's does, before the completion's last step.
            // SAFETY: loop thread; the future is done.
            unsafe { (h.vtable.drop_stage)(ptr) };
            // SAFETY: the alive reference, released once; `h` is not used
            // after.
            unsafe { header::complete_and_release(ptr) };
        }
    }
}

/// A task's handle in the models (loop thread only, like [`Task`](crate::Task)).
pub struct TaskModel {
    ptr: NonNull<Header>,
}

impl TaskModel {
    /// A waker of the task, with a reference of its own (what a future
    /// registers when it clones `cx.waker()`).
    pub fn waker(&self) -> Waker {
        (*raw::waker_ref(self.ptr)).clone()
    }

    /// Whether the task completed.
    pub fn is_complete(&self) -> bool {
        // SAFETY: the handle reference keeps the header live.
        unsafe { self.ptr.as_ref() }.is_complete()
    }
}

impl Drop for TaskModel {
    fn drop(&mut self) {
        // SAFETY: the handle reference, given up once.
        unsafe { header::release(self.ptr) };
    }
}
