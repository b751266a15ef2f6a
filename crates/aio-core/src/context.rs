//! The thread-local context of the loop thread: which loop runs here, which
//! task is being polled, the chain of cancel scopes of that poll, and where
//! the current context variables live.
//!
//! Everything here is a plain pointer that is set for the duration of one
//! call and restored afterwards ([`Restore`]), so a nested poll (an eager
//! task started inside another task) sees its own values and the outer
//! ones come back.

use std::cell::Cell;
use std::marker::PhantomData;
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
        // SAFETY: `core` is set by `Restore::core` for exactly as long as the
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
    // SAFETY: as in `with_core`: `core` is set by `Restore::core` for exactly
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

/// The four fields of the context, as they were.
#[derive(Clone, Copy)]
struct Saved {
    core: *const Core,
    task: *const Header,
    chain: *const Scope,
    vars: *const ContextSlot,
}

/// The context as it was before a change, put back when dropped: the one
/// scoped helper for everything that holds for the length of a call (the
/// running loop, a task's poll, a cancel scope entered, a context entered,
/// a loop closed from inside another's task). Guards nest strictly (they
/// are locals), so putting every field back is putting back what this
/// change changed: anything changed inside it was put back already.
///
/// `'a` is the borrow of what the change installed (a scope, a slot),
/// which must stay in place while it is installed.
#[must_use = "the change lasts until the guard drops"]
pub(crate) struct Restore<'a> {
    saved: Saved,
    _installed: PhantomData<&'a ()>,
}

impl<'a> Restore<'a> {
    /// Saves the context, applies `change`, and returns the guard that
    /// restores it.
    #[inline]
    pub(crate) fn change(change: impl FnOnce(&Context)) -> Restore<'a> {
        CONTEXT.with(|c| {
            let saved = Saved {
                core: c.core.get(),
                task: c.task.get(),
                chain: c.chain.get(),
                vars: c.vars.get(),
            };
            change(c);
            Restore {
                saved,
                _installed: PhantomData,
            }
        })
    }

    /// Marks `core` as the loop of this thread.
    pub(crate) fn core(core: &'a Core) -> Restore<'a> {
        Restore::change(|c| c.core.set(core))
    }

    /// Marks a task as current and installs its root scope and its context
    /// variables for one poll. A task's root scope has no parent:
    /// cancellation never crosses tasks.
    ///
    /// # Safety
    /// `header` and `scope` must stay valid and unmoved until the guard drops.
    pub(crate) unsafe fn poll(header: *const Header, scope: *const Scope) -> Restore<'a> {
        Restore::change(|c| {
            c.task.set(header);
            c.chain.set(scope);
            // SAFETY: the caller guarantees `header` and `scope` are valid.
            unsafe {
                c.vars.set(&raw const (*header).vars);
                (*scope).parent.set(ptr::null());
            }
        })
    }

    /// Clears the context: lets a loop be closed (which runs it) from
    /// inside another loop's task.
    pub(crate) fn suspend() -> Restore<'static> {
        Restore::change(|c| {
            c.core.set(ptr::null());
            c.task.set(ptr::null());
            c.chain.set(ptr::null());
            c.vars.set(ptr::null());
        })
    }
}

impl Drop for Restore<'_> {
    #[inline]
    fn drop(&mut self) {
        let s = self.saved;
        CONTEXT.with(|c| {
            c.core.set(s.core);
            c.task.set(s.task);
            c.chain.set(s.chain);
            c.vars.set(s.vars);
        });
    }
}
