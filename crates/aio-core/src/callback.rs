//! Callbacks scheduled with `call_soon`, `call_later` and `call_at`, and the
//! handles that cancel them (asyncio's `Handle` and `TimerHandle`).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use crate::clock::ns_to_secs;
use crate::contextvars::{self, ContextSlot};
pub(crate) use crate::event_loop::queue::Callback;
use crate::timer::entry::Armed;

/// A fresh id for a done callback ([`Future::add_done_callback`],
/// [`TaskRef::add_done_callback`]): unique in the process, never 0, so an
/// id can only ever remove the callback it was issued for, whichever
/// future or task it is handed to (asyncio compares the callback itself).
///
/// [`Future::add_done_callback`]: crate::Future::add_done_callback
/// [`TaskRef::add_done_callback`]: crate::TaskRef::add_done_callback
pub(crate) fn done_callback_id() -> u64 {
    // Not part of any protocol loom models: std's atomic, in every build.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub(crate) struct CallbackCell<F> {
    f: Cell<Option<F>>,
    cancelled: Cell<bool>,
    /// The context current when it was scheduled, which it runs in.
    vars: ContextSlot,
}

impl<F: FnOnce() + 'static> CallbackCell<F> {
    /// A callback that will run in (a copy of) the current context.
    pub(crate) fn rc(f: F) -> Rc<dyn Callback> {
        Rc::new(CallbackCell {
            f: Cell::new(Some(f)),
            cancelled: Cell::new(false),
            vars: ContextSlot::new(contextvars::current()),
        })
    }
}

impl<F: FnOnce()> Callback for CallbackCell<F> {
    fn run(&self) {
        if let Some(f) = self.f.take() {
            let _g = self.vars.enter();
            f();
        }
    }

    fn cancel(&self) {
        self.cancelled.set(true);
        drop(self.f.take());
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

/// A callback that runs in a given [`Context`](crate::contextvars::Context)
/// itself, not a copy: what it sets stays there (asyncio's
/// `call_soon(cb, context=ctx)`).
pub(crate) struct CallbackIn<F> {
    f: Cell<Option<F>>,
    cancelled: Cell<bool>,
    ctx: Rc<ContextSlot>,
}

impl<F: FnOnce() + 'static> CallbackIn<F> {
    pub(crate) fn rc(ctx: &crate::contextvars::Context, f: F) -> Rc<dyn Callback> {
        Rc::new(CallbackIn {
            f: Cell::new(Some(f)),
            cancelled: Cell::new(false),
            ctx: ctx.shared_slot(),
        })
    }
}

impl<F: FnOnce()> Callback for CallbackIn<F> {
    fn run(&self) {
        if let Some(f) = self.f.take() {
            let _g = self.ctx.enter();
            f();
        }
    }

    fn cancel(&self) {
        self.cancelled.set(true);
        drop(self.f.take());
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

/// A callback scheduled with [`Loop::call_soon`](crate::Loop::call_soon):
/// asyncio's `Handle`.
#[derive(Clone)]
pub struct Handle {
    pub(crate) cb: Rc<dyn Callback>,
}

impl Handle {
    /// Cancels the callback; it will not run. Cancelling twice is harmless.
    pub fn cancel(&self) {
        self.cb.cancel();
    }

    /// Whether [`cancel`](Handle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.cb.is_cancelled()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("cancelled", &self.cancelled()).finish()
    }
}

/// A callback scheduled with [`Loop::call_later`](crate::Loop::call_later) or
/// [`Loop::call_at`](crate::Loop::call_at): asyncio's `TimerHandle`.
pub struct TimerHandle {
    pub(crate) cb: Rc<dyn Callback>,
    pub(crate) timer: Armed,
    pub(crate) when: u64,
}

impl TimerHandle {
    /// Cancels the callback and disarms its timer.
    pub fn cancel(&self) {
        if self.cb.is_cancelled() {
            return;
        }
        self.cb.cancel();
        self.timer.disarm();
    }

    /// Whether [`cancel`](TimerHandle::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.cb.is_cancelled()
    }

    /// When the callback is due, in seconds on the loop clock.
    pub fn when(&self) -> f64 {
        ns_to_secs(self.when)
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("when", &self.when())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
