//! [`TaskRef`]: the untyped handle of a task (`current_task`, `all_tasks`,
//! and what `Task<T>` derefs to): asyncio's `Task` API that needs no output
//! type.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::error::TaskError;
use super::header::{ABORT, Header, OBSERVED, Outcome, POLLING};
use super::run::finish;
use super::{header, raw};
use crate::callback::CallbackCell;
use crate::cancel::Cancelled;
use crate::context::with_core;
use crate::event_loop::core::Core;

/// Names a done callback for [`TaskRef::remove_done_callback`]. Unique in
/// the process: handed to another task, it removes nothing there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoneCallbackId(u64);

/// An untyped handle to a task: what [`current_task`](crate::current_task) and [`all_tasks`](crate::all_tasks)
/// return, and what [`Task<T>`](crate::Task) derefs to. Clones refer to the same task.
pub struct TaskRef {
    pub(super) ptr: NonNull<Header>,
    _not_send: PhantomData<*const ()>,
}

impl TaskRef {
    /// Takes over a reference the caller owns.
    pub(crate) fn from_owned(ptr: NonNull<Header>) -> TaskRef {
        TaskRef {
            ptr,
            _not_send: PhantomData,
        }
    }

    /// Adds a reference.
    pub(crate) fn from_ptr(ptr: NonNull<Header>) -> TaskRef {
        // SAFETY: the caller guarantees the task is live.
        header::add_ref(unsafe { ptr.as_ref() });
        TaskRef::from_owned(ptr)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we own a reference.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    /// The loop core owning this task.
    ///
    /// Only valid while the task is not complete: a loop completes all its
    /// tasks when it closes, before its core goes away.
    fn core(&self) -> &Core {
        // SAFETY: see above; callers check `done()` first.
        unsafe { self.header().shared.core() }
    }

    /// Requests cancellation: the task's next aio await point returns
    /// `Err(Cancelled)`. Returns `false` if the task is already done; a
    /// failure it ended with then counts as seen, and is not reported as
    /// never retrieved (asyncio's `cancel()` clears `_log_traceback`
    /// first).
    /// Several requests before the task runs are delivered once, and counted
    /// by [`cancelling`](TaskRef::cancelling).
    pub fn cancel(&self) -> bool {
        self.cancel_opt(None)
    }

    /// [`cancel`](TaskRef::cancel) with a message, carried by the
    /// `Cancelled` the task sees.
    pub fn cancel_with(&self, msg: impl Into<String>) -> bool {
        self.cancel_opt(Some(Arc::new(msg.into())))
    }

    pub(crate) fn cancel_opt(&self, msg: Option<Arc<String>>) -> bool {
        if self.done() {
            // Whoever cancels a finished task knows it is over: its failure
            // is no longer "never retrieved".
            self.header().set_flag(OBSERVED, true);
            return false;
        }
        if self.core().debug.get() {
            match &msg {
                Some(m) => log::debug!("aio: cancelling {} ({m})", self.name()),
                None => log::debug!("aio: cancelling {}", self.name()),
            }
        }
        self.header().scope.cancel(msg);
        raw::schedule(self.ptr);
        true
    }

    /// The number of cancel requests not taken back by
    /// [`uncancel`](TaskRef::uncancel).
    pub fn cancelling(&self) -> u32 {
        self.header().scope.cancelling()
    }

    /// Takes back one cancel request (asyncio's `uncancel`); returns how
    /// many remain. A request taken back before it was delivered is not
    /// delivered. (Whether the task ends cancelled does not depend on it:
    /// that is decided by whether the cancellation propagates out.)
    pub fn uncancel(&self) -> u32 {
        self.header().scope.uncancel()
    }

    /// Whether the task has finished (with a value, cancelled or panicked).
    pub fn done(&self) -> bool {
        self.header().outcome() != Outcome::Running
    }

    /// Whether the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.header().outcome() == Outcome::Cancelled
    }

    /// Whether the task ended with a panic.
    pub fn panicked(&self) -> bool {
        self.header().outcome() == Outcome::Panicked
    }

    /// The task's name; `Task-N` unless set.
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// Names the task (shown in debug warnings and reports).
    pub fn set_name(&self, name: impl Into<String>) {
        let name = name.into().into_boxed_str();
        self.header().local.with_extras(|e| e.name = Some(name));
    }

    /// A number unique among the tasks of the loop.
    pub fn id(&self) -> u64 {
        self.header().id()
    }

    /// Runs `f` (on the loop, soon, as asyncio's `call_soon`) once the task
    /// is done; at once (soon) if it already is. `f` sees the finished task
    /// (`done`, `cancelled`, `panicked`, [`exception`](TaskRef::exception)).
    /// Returns an id for [`remove_done_callback`](TaskRef::remove_done_callback)
    /// (Rust closures have no identity to compare, as asyncio compares
    /// callbacks).
    pub fn add_done_callback(&self, f: impl FnOnce(&TaskRef) + 'static) -> DoneCallbackId {
        let me = self.clone();
        // It runs in the context current now, as asyncio's callbacks do.
        let ctx = crate::contextvars::current();
        let cb = move || crate::contextvars::run_in(ctx, move || f(&me));
        if self.done() {
            with_core(|c| match c {
                Some(c) => c.call_soon_rc(CallbackCell::rc(cb)),
                None => cb(),
            });
            DoneCallbackId(0)
        } else {
            self.header().local.with_extras(|e| {
                let id = crate::callback::done_callback_id();
                e.callbacks.push((id, Box::new(cb)));
                DoneCallbackId(id)
            })
        }
    }

    /// Removes a done callback that has not been scheduled yet: asyncio's
    /// `remove_done_callback`. Returns how many were removed (0 once the
    /// task is done: its callbacks are scheduled by then).
    pub fn remove_done_callback(&self, id: DoneCallbackId) -> usize {
        if id.0 == 0 {
            return 0;
        }
        self.header().local.with_extras(|e| {
            let before = e.callbacks.len();
            e.callbacks.retain(|(i, _)| *i != id.0);
            before - e.callbacks.len()
        })
    }

    /// asyncio's `Task.exception()`, untyped: `None` while the task runs;
    /// `Some(Err(Cancelled))` if it was cancelled (asyncio raises
    /// `CancelledError`); `Some(Ok(Some(description)))` if it failed — the
    /// message of the panic it ended with, or the `Debug` of the `Err` it
    /// returned (an output that is a failure, see [`TaskOutput`](crate::TaskOutput));
    /// `Some(Ok(None))` if it finished otherwise. Reading it marks the
    /// failure retrieved, as asyncio's does: no "Task exception was never
    /// retrieved" report follows. [`Task::failure`](crate::Task::failure) gives the error itself,
    /// typed.
    pub fn exception(&self) -> Option<Result<Option<String>, Cancelled>> {
        if !self.done() {
            return None;
        }
        let h = self.header();
        Some(match h.outcome() {
            Outcome::Cancelled => Err(h.scope.error()),
            Outcome::Panicked => {
                // SAFETY: loop thread; the task is complete; the pointer is
                // read before anything can take the output.
                let e = unsafe { (h.vtable.error_ref)(self.ptr) };
                // asyncio: reading the exception marks it retrieved.
                h.set_flag(OBSERVED, true);
                // SAFETY: null, or the stage's error, alive for this call.
                match unsafe { e.as_ref() } {
                    Some(TaskError::Panicked(p)) => Ok(Some(
                        p.message().unwrap_or("(a panic with a non-string payload)").to_owned(),
                    )),
                    _ => Ok(Some("(the task panicked; its panic was taken)".to_owned())),
                }
            }
            _ => {
                h.set_flag(OBSERVED, true);
                // SAFETY: loop thread; the task is complete; `failure` reads
                // the stage of the future type it was made for.
                Ok(h.vtable.failure.and_then(|describe| unsafe { describe(self.ptr) }))
            }
        })
    }

    /// Drops the task's future now, without letting it observe the
    /// cancellation (tokio's `abort`). The task ends cancelled. If the task
    /// is the one running, this happens when its current step returns.
    pub fn abort(&self) {
        if self.done() {
            return;
        }
        let h = self.header();
        if h.flag(POLLING) {
            h.set_flag(ABORT, true);
            return;
        }
        let core = self.core();
        let ptr = self.ptr;
        // The alive reference is still held (the task is not complete).
        finish(core, ptr, Outcome::Cancelled, Some(h.scope.error()));
    }

    /// Registers `cx`'s waker to be woken when the task completes; `Ready`
    /// if it already has. Does not take the output.
    ///
    /// # Panics
    /// When the task waits for itself ("Task cannot await on itself",
    /// asyncio's `RuntimeError`): it would wait forever, and once
    /// cancelled, cancel itself every turn. The panic ends the task.
    #[track_caller]
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done() {
            return Poll::Ready(());
        }
        let slot = &self.header().local.join_waker;
        let w = slot.take();
        match w {
            Some(w) if w.will_wake(cx.waker()) => slot.set(Some(w)),
            _ => {
                // Looked at when a waiter registers, not at every poll of
                // the same one.
                let me = crate::context::CONTEXT.with(|c| c.task.get());
                assert!(!std::ptr::eq(me, self.ptr.as_ptr()), "Task cannot await on itself");
                slot.set(Some(cx.waker().clone()));
            }
        }
        Poll::Pending
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        TaskRef::from_ptr(self.ptr)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (a handle's: usually the last one
        // once the task is done and read).
        unsafe { header::release_likely_last(self.ptr) };
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &TaskRef) -> bool {
        self.ptr == other.ptr
    }
}
impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.header().outcome() {
            Outcome::Running => "pending",
            Outcome::Ok => "finished",
            Outcome::Cancelled => "cancelled",
            Outcome::Panicked => "panicked",
        };
        f.debug_struct("Task")
            .field("name", &self.name())
            .field("state", &state)
            .finish()
    }
}
