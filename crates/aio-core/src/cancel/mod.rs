//! Cooperative, catchable cancellation: asyncio's `CancelledError`, in Rust.
//!
//! A cancel request is recorded on a *scope* and delivered to the first aio
//! await point (a *leaf*: sleep, I/O, lock, queue, ...) that is polled inside
//! that scope. The leaf drops its own registration and returns
//! `Err(Cancelled)`; code after it may clean up, awaiting normally, and then
//! return the error (`?`) or handle it.
//!
//! **What decides the outcome** is what propagates, as in asyncio: each
//! delivered [`Cancelled`] remembers the scopes it was delivered for. When a
//! task, `timeout` or combinator child finishes, it counts as cancelled only
//! if one of its deliveries is still alive (returned inside the output, as
//! `Err(c)`, or converted into an error that keeps it, like `io::Error`) or
//! a delivery is still pending. Code that drops the `Cancelled` it got
//! (matched it, logged it, replaced it with another error) has handled the
//! cancellation, and what it returns stands.
//!
//! Scopes form a chain while a task is polled: the task's own scope at the
//! root, then one scope per `timeout`, per `gather` / `TaskGroup` child and
//! per `shield` it is inside. A leaf consumes the pending delivery of the
//! nearest scope that has one, walking outwards and stopping at a *boundary*
//! (a child of a combinator, or a shield): cancelling a parent reaches its
//! children only through the combinator, which cancels each child itself.
//!
//! # Writing a leaf future outside aio-core
//!
//! Call [`check`] at the top of `poll`; on `Err`, drop whatever the future
//! registered (a waiter slot, an I/O interest) and return the error:
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//!
//! struct Flag<'a>(&'a std::cell::Cell<bool>);
//!
//! impl Future for Flag<'_> {
//!     type Output = Result<(), aio_core::Cancelled>;
//!     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
//!         if let Err(c) = aio_core::cancel::check() {
//!             return Poll::Ready(Err(c)); // nothing registered to undo here
//!         }
//!         if self.0.get() { Poll::Ready(Ok(())) } else {
//!             cx.waker().wake_by_ref(); // (a real leaf would register the waker)
//!             Poll::Pending
//!         }
//!     }
//! }
//! # aio_core::run(async {
//! #     let f = std::cell::Cell::new(true);
//! #     Flag(&f).await.unwrap();
//! # });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) mod scope;

pub use scope::Cancelled;
pub(crate) use scope::{Delivery, Scope};

use crate::context::{CONTEXT, Restore};

impl Scope {
    /// Makes this scope the innermost one of the current chain until the
    /// guard drops. The borrow keeps the scope in place meanwhile.
    pub(crate) fn enter(&self) -> ScopeGuard<'_> {
        let restore = Restore::change(|c| {
            self.parent.set(c.chain.get());
            c.chain.set(self);
        });
        ScopeGuard {
            scope: self,
            _restore: restore,
        }
    }
}

/// An entered scope: it leaves the chain when dropped.
pub(crate) struct ScopeGuard<'a> {
    scope: &'a Scope,
    _restore: Restore<'a>,
}

impl Drop for ScopeGuard<'_> {
    fn drop(&mut self) {
        // Its parent is only meaningful while it is entered; the chain
        // itself is restored by `_restore` next.
        self.scope.parent.set(ptr::null());
    }
}

/// Walks the current chain from the innermost scope outwards, up to and
/// including the first boundary, and returns the first scope for which
/// `pick` holds.
fn find(mut pick: impl FnMut(&Scope) -> bool) -> Option<*const Scope> {
    CONTEXT.with(|c| {
        let mut p = c.chain.get();
        while !p.is_null() {
            // SAFETY: every pointer on the chain was installed by a live
            // `ScopeGuard` (or `Restore::poll`) whose scope is borrowed until the
            // guard drops, and guards restore the chain in LIFO order.
            let s = unsafe { &*p };
            if pick(s) {
                return Some(p);
            }
            if s.is_boundary() {
                break;
            }
            p = s.parent.get();
        }
        None
    })
}

/// `c`, the cancellation of something the running task awaited (a future
/// cancelled by someone else), raised in the task: asyncio's
/// `CancelledError` from `await fut`. If it propagates out of the task,
/// the task ends cancelled, as in asyncio (see [`Cancelled::raised_in`]);
/// outside a task it is a plain copy of `c`.
pub(crate) fn raise_in_task(c: &Cancelled) -> Cancelled {
    CONTEXT.with(|cx| {
        // SAFETY: `task` is set by `Restore::poll` for exactly the
        // duration of that task's poll, which covers this call.
        match unsafe { cx.task.get().as_ref() } {
            Some(h) => c.raised_in(&h.scope),
            None => c.clone(),
        }
    })
}

/// The cancellation hook every aio await point calls first.
///
/// Returns `Err(Cancelled)` — once — when the current task, or an enclosing
/// `timeout`/combinator scope, has a cancellation waiting to be delivered;
/// the delivery is consumed, so the next await point runs normally (that is
/// what lets clean-up code await). Outside an aio task it always returns
/// `Ok(())`, so leaves built on it work on any executor.
///
/// One delivery serves every scope of the chain (up to the first boundary)
/// that has one pending, as one `CancelledError` does in asyncio when a
/// task is cancelled and its timeout expires in the same turn.
#[inline]
pub fn check() -> Result<(), Cancelled> {
    match find(Scope::is_pending) {
        None => Ok(()),
        // SAFETY: see `find`; the scope is alive for the current poll.
        Some(s) => Err(unsafe { deliver_from(s, &mut |_| {}) }),
    }
}

/// Delivers one cancellation for every pending scope from `first` (the
/// innermost pending one) out to the first boundary; `each` sees them.
///
/// # Safety
/// `first` must be on the live chain (see `find`).
unsafe fn deliver_from(first: *const Scope, each: &mut dyn FnMut(*const Scope)) -> Cancelled {
    // The outermost pending scope owns the delivery: its live witness (if
    // it has one) is shared, and a message comes from the innermost scope
    // that has one.
    let mut witness = None;
    let mut msg = None;
    let mut p = first;
    while !p.is_null() {
        // SAFETY: on the live chain (caller's promise, and `find`'s
        // argument for each parent).
        let s = unsafe { &*p };
        if s.is_pending() {
            if msg.is_none() {
                msg = s.message();
            }
            if let Some(w) = s.live_witness() {
                witness = Some(w);
            }
        }
        if s.is_boundary() {
            break;
        }
        p = s.parent.get();
    }
    let witness = witness.unwrap_or_else(|| Arc::new(Delivery { msg }));
    let mut p = first;
    while !p.is_null() {
        // SAFETY: as above.
        let s = unsafe { &*p };
        if s.is_pending() {
            s.mark_delivered(&witness);
            each(p);
        }
        if s.is_boundary() {
            break;
        }
        p = s.parent.get();
    }
    Cancelled { inner: Some(witness) }
}

/// The scopes a delivery taken with [`take`] came from.
pub(crate) struct Taken(Vec<*const Scope>);

/// Consumes the pending delivery, remembering which scopes it came from,
/// so an operation that cannot stop at once (an io_uring request in
/// flight) can finish and then either report the cancellation or put it
/// back with [`restore`].
pub(crate) fn take() -> Option<(Cancelled, Taken)> {
    let first = find(Scope::is_pending)?;
    let mut scopes = Vec::new();
    // SAFETY: see `find`.
    let c = unsafe { deliver_from(first, &mut |s| scopes.push(s)) };
    Some((c, Taken(scopes)))
}

/// Puts back a delivery taken with [`take`], so the next await point sees
/// it. Scopes no longer on the current chain are skipped (they always are
/// on it when called from the poll of the future that took it).
pub(crate) fn restore(taken: Taken) {
    for scope in taken.0 {
        if find(|s| std::ptr::eq(s, scope)).is_some() {
            // SAFETY: found on the live chain.
            unsafe { (*scope).set_pending(true) };
        }
    }
}

/// Whether a scope of the current chain (up to the first boundary) shares
/// `inner`'s live delivery or has one pending, `inner` being a scope that
/// was entered inside this chain and has just been left. Then a
/// cancellation that propagates out of `inner` belongs to an outer scope
/// too, and keeps propagating (asyncio's `Timeout.__aexit__` re-raises when
/// `uncancel()` leaves requests of others).
pub(crate) fn owned_further_out(inner: &Scope) -> bool {
    let w = inner.witness.take();
    let found = find(|s| s.is_pending() || s.shares_delivery(&w)).is_some();
    inner.witness.set(w);
    found
}

/// How many deliveries the scopes of the current chain (up to the first
/// boundary) have had: a combinator compares it before and after polling
/// code of its own, to tell whether that code took the caller's
/// cancellation.
pub(crate) fn chain_deliveries() -> u32 {
    let mut n = 0u32;
    find(|s| {
        n = n.wrapping_add(s.deliveries());
        false
    });
    n
}

/// A copy of a delivery of the current chain (up to the first boundary)
/// that is still alive, if there is one: lets a combinator hand on a
/// caller's cancellation that its body propagated, keeping it propagating.
pub(crate) fn live_delivery() -> Option<Cancelled> {
    let p = find(|s| s.propagating())?;
    // SAFETY: see `find`.
    let s = unsafe { &*p };
    let witness = s.live_witness()?;
    Some(Cancelled { inner: Some(witness) })
}

/// Whether the innermost scope of the current chain (a task's root scope,
/// for a task's own future) ends cancelled if its future finishes now.
pub(crate) fn current_ends_cancelled() -> bool {
    CONTEXT.with(|c| {
        let p = c.chain.get();
        // SAFETY: see `find`.
        !p.is_null() && unsafe { (*p).ends_cancelled() }
    })
}

/// Whether a cancellation is waiting to be delivered in the current chain,
/// without consuming it. Combinators that poll only woken children use this
/// to poll every child while a delivery is pending.
#[inline]
pub fn is_pending() -> bool {
    find(Scope::is_pending).is_some()
}

/// Suppresses a cancellation that was delivered: asyncio's `uncancel()`.
///
/// Acts on the nearest scope of the current chain that has an outstanding
/// request and returns how many requests remain on it. A task, `timeout` or
/// `TaskGroup` child whose requests are all taken back finishes normally;
/// one that finishes with requests outstanding counts as cancelled and its
/// output is discarded (asyncio: "should the coroutine decide to suppress
/// the cancellation, it needs to call `uncancel()`"). Outside an aio task,
/// returns 0.
pub fn uncancel() -> u32 {
    match find(|s| s.cancelling() > 0) {
        None => 0,
        // SAFETY: see `find`.
        Some(s) => unsafe { (*s).uncancel() },
    }
}

/// The number of outstanding cancel requests on the nearest scope that has
/// any (asyncio's `Task.cancelling()` for the current context).
pub fn cancelling() -> u32 {
    match find(|s| s.cancelling() > 0) {
        None => 0,
        // SAFETY: see `find`.
        Some(s) => unsafe { (*s).cancelling() },
    }
}

/// An await point that does nothing but observe cancellation: it completes
/// at once with `Err(Cancelled)` if a delivery is pending, `Ok(())`
/// otherwise. Use it in long computations that should stay cancellable
/// without yielding (`yield_now` also yields to other tasks).
///
/// # Cancellation
/// This is the cancellation point; nothing is lost.
pub fn checkpoint() -> Checkpoint {
    Checkpoint { _priv: () }
}

/// Future of [`checkpoint`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Checkpoint {
    _priv: (),
}

impl Future for Checkpoint {
    type Output = Result<(), Cancelled>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(check())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_task_nothing_is_pending() {
        assert!(check().is_ok());
        assert!(!is_pending());
        assert_eq!(uncancel(), 0);
    }

    #[test]
    fn delivery_walks_outwards_and_stops_at_boundaries() {
        let root = Scope::new();
        let _r = root.enter();
        let child = Scope::boundary();
        root.cancel(None);
        {
            let _c = child.enter();
            assert!(!is_pending(), "a boundary hides the parent's request");
            let inner = Scope::new();
            let _i = inner.enter();
            child.cancel(Some(Arc::new("stop".into())));
            let c = check().unwrap_err();
            assert_eq!(c.message(), Some("stop"));
            assert!(check().is_ok(), "a delivery is consumed once");
        }
        assert!(is_pending());
        assert!(check().is_err());
        assert_eq!(root.cancelling(), 1);
        assert_eq!(uncancel(), 0);
    }
}
