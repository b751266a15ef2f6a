//! The thread-local context of the loop thread: which loop runs here, which
//! task is being polled, the chain of cancel scopes of that poll, and where
//! the current context variables live.
//!
//! Everything here is a plain pointer that is set for the duration of one
//! call and restored afterwards, so a nested poll (an eager task started
//! inside another task) sees its own values and the outer ones come back.

use std::cell::Cell;
use std::ptr;

use crate::cancel::scope::Scope;
use crate::contextvars::vars::ContextSlot;
use crate::event_loop::core::Core;
use crate::task::header::Header;

pub(crate) struct Context {
    /// The loop running on this thread (null when none).
    pub(crate) core: Cell<*const Core>,
    /// The task being polled (null outside a task poll).
    pub(crate) task: Cell<*const Header>,
    /// The innermost cancel scope of the current poll (null outside a poll).
    pub(crate) chain: Cell<*const Scope>,
    /// The current context variables' slot: the running task's, callback's
    /// or child's (null: the thread's own).
    pub(crate) vars: Cell<*const ContextSlot>,
}

thread_local! {
    pub(crate) static CONTEXT: Context = const {
        Context {
            core: Cell::new(ptr::null()),
            task: Cell::new(ptr::null()),
            chain: Cell::new(ptr::null()),
            vars: Cell::new(ptr::null()),
        }
    };
}

/// Runs `f` with a reference to the running loop's core, if there is one.
#[inline]
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    CONTEXT.with(|c| {
        let p = c.core.get();
        // SAFETY: `core` is set by `CoreGuard` for exactly as long as the
        // `Core` it points to is alive and running on this thread; it is
        // reset to the previous value when the guard drops.
        f(unsafe { p.as_ref() })
    })
}

/// Like [`with_core`] but panics with asyncio's message when no loop runs.
///
/// The panic is raised here, outside any closure, so that it carries the
/// location of the `#[track_caller]` chain's first caller.
#[inline]
#[track_caller]
pub(crate) fn expect_core<R>(f: impl FnOnce(&Core) -> R) -> R {
    let p = CONTEXT.with(|c| c.core.get());
    // SAFETY: as in `with_core`: `core` is set by `CoreGuard` for exactly
    // as long as the `Core` it points to is alive and running on this
    // thread, which covers this call.
    match unsafe { p.as_ref() } {
        Some(core) => f(core),
        None => no_running_loop(),
    }
}

#[cold]
#[track_caller]
pub(crate) fn no_running_loop() -> ! {
    panic!("no running event loop: this must be called from code running on an aio loop")
}

/// Marks `core` as the loop of this thread until dropped.
pub(crate) struct CoreGuard {
    prev: *const Core,
}

impl CoreGuard {
    pub(crate) fn enter(core: &Core) -> CoreGuard {
        let prev = CONTEXT.with(|c| c.core.replace(core));
        CoreGuard { prev }
    }
}

impl Drop for CoreGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.core.set(self.prev));
    }
}

/// Marks a task as current and installs its root scope and its context
/// variables for one poll.
pub(crate) struct PollGuard {
    prev_task: *const Header,
    prev_chain: *const Scope,
    prev_vars: *const ContextSlot,
}

impl PollGuard {
    /// # Safety
    /// `header` and `scope` must stay valid and unmoved until the guard drops.
    pub(crate) unsafe fn enter(header: *const Header, scope: *const Scope) -> PollGuard {
        CONTEXT.with(|c| {
            let prev_task = c.task.replace(header);
            let prev_chain = c.chain.replace(scope);
            // SAFETY: the caller guarantees `header` is valid for the guard's life.
            let prev_vars = c.vars.replace(unsafe { &raw const (*header).vars });
            // SAFETY: the caller guarantees `scope` is valid. A task's root
            // scope has no parent: cancellation never crosses tasks.
            unsafe { (*scope).parent.set(ptr::null()) };
            PollGuard {
                prev_task,
                prev_chain,
                prev_vars,
            }
        })
    }
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| {
            c.task.set(self.prev_task);
            c.chain.set(self.prev_chain);
            c.vars.set(self.prev_vars);
        });
    }
}

/// Clears this thread's context until dropped, then restores it: lets a
/// loop be closed (which runs it) from inside another loop's task.
pub(crate) struct Suspended {
    core: *const Core,
    task: *const Header,
    chain: *const Scope,
    vars: *const ContextSlot,
}

impl Suspended {
    pub(crate) fn enter() -> Suspended {
        CONTEXT.with(|c| Suspended {
            core: c.core.replace(ptr::null()),
            task: c.task.replace(ptr::null()),
            chain: c.chain.replace(ptr::null()),
            vars: c.vars.replace(ptr::null()),
        })
    }
}

impl Drop for Suspended {
    fn drop(&mut self) {
        CONTEXT.with(|c| {
            c.core.set(self.core);
            c.task.set(self.task);
            c.chain.set(self.chain);
            c.vars.set(self.vars);
        });
    }
}
