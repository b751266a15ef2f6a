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

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};

use crate::context::CONTEXT;
use crate::time::InvalidDelay;

/// The error an aio await point returns when its task (or an enclosing
/// `timeout`, `gather` or `TaskGroup`) was cancelled: asyncio's
/// `CancelledError`.
///
/// It may carry the message given to [`Task::cancel_with`](crate::TaskRef::cancel_with).
///
/// A `Cancelled` an await point returned is a delivery: while it (or a
/// clone, or an error that wraps it) is alive, the cancellation is
/// propagating; dropping every copy handles it (see the module docs).
///
/// It is also what [`sleep`](crate::sleep) returns for a delay that is not
/// a number, asyncio's `ValueError`: not a cancellation, but bad input
/// reported through the await point's error type so that
/// `sleep(d).await?` keeps working in an `aio::Result` function.
/// [`is_invalid_delay`](Cancelled::is_invalid_delay) tells it apart; it
/// displays as `invalid delay: NaN (not a number)`, converts to an
/// `InvalidInput` [`io::Error`](std::io::Error), and never makes a task
/// cancelled (no scope delivered it).
#[derive(Clone, Default)]
pub struct Cancelled {
    /// One pointer wide (it sits in every `Task` handle). The scopes a
    /// delivery was made for hold this `Arc` weakly: it is alive while any
    /// copy of the delivery is. `None`: no message, not a delivery.
    inner: Option<Arc<Delivery>>,
}

/// A cancellation's message; as the `Arc` of a delivery, also what its
/// scopes watch (see [`Cancelled`]).
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    msg: Option<Arc<String>>,
}

/// The message of an invalid-delay `Cancelled`, recognised by address.
fn invalid_marker() -> &'static Arc<String> {
    static INVALID: OnceLock<Arc<String>> = OnceLock::new();
    INVALID.get_or_init(|| Arc::new(InvalidDelay.to_string()))
}

impl PartialEq for Cancelled {
    fn eq(&self, other: &Cancelled) -> bool {
        self.is_invalid_delay() == other.is_invalid_delay() && self.msg() == other.msg()
    }
}

impl Eq for Cancelled {}

impl From<InvalidDelay> for Cancelled {
    fn from(_: InvalidDelay) -> Cancelled {
        Cancelled::from_msg(Some(invalid_marker().clone()))
    }
}

impl Cancelled {
    /// Whether this is not a cancellation but a delay that is not a number
    /// (NaN), given to [`sleep`](crate::sleep) or
    /// [`sleep_until`](crate::sleep_until).
    pub fn is_invalid_delay(&self) -> bool {
        self.msg().is_some_and(|m| Arc::ptr_eq(m, invalid_marker()))
    }

    fn msg(&self) -> Option<&Arc<String>> {
        self.inner.as_ref().and_then(|d| d.msg.as_ref())
    }

    /// A value carrying `msg` that no scope watches (not a delivery).
    fn from_msg(msg: Option<Arc<String>>) -> Cancelled {
        Cancelled {
            inner: msg.map(|m| Arc::new(Delivery { msg: Some(m) })),
        }
    }

    /// The [`InvalidDelay`] this stands for, if it is one.
    pub fn invalid_delay(&self) -> Option<InvalidDelay> {
        self.is_invalid_delay().then_some(InvalidDelay)
    }

    /// A cancellation with no message.
    pub const fn new() -> Cancelled {
        Cancelled { inner: None }
    }

    /// A cancellation carrying `msg`.
    pub fn with_message(msg: impl Into<String>) -> Cancelled {
        Cancelled::from_msg(Some(Arc::new(msg.into())))
    }

    /// The message given when the cancellation was requested, if any
    /// (`None` for an invalid delay).
    pub fn message(&self) -> Option<&str> {
        if self.is_invalid_delay() {
            return None;
        }
        self.msg().map(|m| m.as_str())
    }

    pub(crate) fn shared_message(&self) -> Option<Arc<String>> {
        self.msg().cloned()
    }

    /// The same cancellation (message kept) but not a delivery: what a
    /// cancelled `Future` stores, so holding on to it does not keep the
    /// awaiter's cancellation propagating.
    pub(crate) fn detached(&self) -> Cancelled {
        Cancelled::from_msg(self.msg().cloned())
    }
}

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_invalid_delay() {
            return f.debug_tuple("Cancelled").field(&InvalidDelay).finish();
        }
        match self.msg() {
            None => f.write_str("Cancelled"),
            Some(m) => f.debug_tuple("Cancelled").field(m).finish(),
        }
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_invalid_delay() {
            return fmt::Display::fmt(&InvalidDelay, f);
        }
        match self.msg() {
            None => f.write_str("cancelled"),
            Some(m) => write!(f, "cancelled: {m}"),
        }
    }
}

impl std::error::Error for Cancelled {}

impl From<Cancelled> for std::io::Error {
    fn from(c: Cancelled) -> std::io::Error {
        if c.is_invalid_delay() {
            return InvalidDelay.into();
        }
        std::io::Error::new(std::io::ErrorKind::Interrupted, c)
    }
}

/// One level of the cancellation chain. Only ever touched on the loop
/// thread, so plain `Cell`s suffice.
pub(crate) struct Scope {
    /// The enclosing scope, valid only while this one is entered.
    pub(crate) parent: Cell<*const Scope>,
    msg: Cell<Option<Arc<String>>>,
    /// This scope's live delivery, watched (see [`Cancelled`]).
    witness: Cell<Weak<Delivery>>,
    /// asyncio's `cancelling()`: requests not yet taken back by `uncancel`.
    requested: Cell<u32>,
    /// How many deliveries were consumed (to tell whether a step saw one).
    delivered: Cell<u32>,
    /// A delivery waits for the next leaf polled inside this scope.
    pending: Cell<bool>,
    /// Leaves inside do not look past this scope.
    boundary: bool,
}

impl Scope {
    /// A scope that passes outer cancellations through (a task's root
    /// scope, a timeout).
    pub(crate) const fn new() -> Scope {
        Scope::with_boundary(false)
    }

    /// A scope that outer cancellations do not cross (a combinator child,
    /// a shield).
    pub(crate) const fn boundary() -> Scope {
        Scope::with_boundary(true)
    }

    const fn with_boundary(boundary: bool) -> Scope {
        Scope {
            parent: Cell::new(ptr::null()),
            msg: Cell::new(None),
            witness: Cell::new(Weak::new()),
            requested: Cell::new(0),
            delivered: Cell::new(0),
            pending: Cell::new(false),
            boundary,
        }
    }

    /// Records a cancel request: asyncio's `Task.cancel()`.
    pub(crate) fn cancel(&self, msg: Option<Arc<String>>) {
        self.requested.set(self.requested.get().saturating_add(1));
        self.pending.set(true);
        if msg.is_some() {
            self.msg.set(msg);
        }
    }

    /// asyncio's `uncancel()`: returns the remaining number of requests.
    pub(crate) fn uncancel(&self) -> u32 {
        let n = self.requested.get().saturating_sub(1);
        self.requested.set(n);
        if n == 0 {
            self.pending.set(false);
        }
        n
    }

    pub(crate) fn cancelling(&self) -> u32 {
        self.requested.get()
    }

    /// Whether a delivery is waiting for a leaf.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.get()
    }

    /// How many deliveries were consumed so far.
    pub(crate) fn deliveries(&self) -> u32 {
        self.delivered.get()
    }

    /// The cancellation this scope reports, keeping its message (not a
    /// delivery: no scope watches it).
    pub(crate) fn error(&self) -> Cancelled {
        Cancelled::from_msg(self.message())
    }

    fn message(&self) -> Option<Arc<String>> {
        let msg = self.msg.take();
        self.msg.set(msg.clone());
        msg
    }

    /// A copy of this scope's delivery that is still alive (its message
    /// kept, not itself a delivery: holding it keeps nothing propagating),
    /// or this scope's own cancellation if none is.
    pub(crate) fn delivered_copy(&self) -> Cancelled {
        match self.live_witness() {
            Some(w) => Cancelled::from_msg(w.msg.clone()),
            None => self.error(),
        }
    }

    /// This scope's live witness, if a delivery of it is alive.
    fn live_witness(&self) -> Option<Arc<Delivery>> {
        let w = self.witness.take();
        let live = w.upgrade();
        self.witness.set(w);
        live
    }

    /// Whether a delivery of this scope is still alive somewhere: the
    /// cancellation propagated out of the code it was delivered to.
    pub(crate) fn propagating(&self) -> bool {
        let w = self.witness.take();
        let live = w.strong_count() > 0;
        self.witness.set(w);
        live
    }

    /// Whether, finishing now, this scope's future counts as cancelled: a
    /// delivery is still pending, or one propagated.
    pub(crate) fn ends_cancelled(&self) -> bool {
        self.is_pending() || self.propagating()
    }

    /// Consumes the pending delivery of this scope alone.
    pub(crate) fn deliver(&self) -> Cancelled {
        let witness = self
            .live_witness()
            .unwrap_or_else(|| Arc::new(Delivery { msg: self.message() }));
        self.mark_delivered(&witness);
        Cancelled { inner: Some(witness) }
    }

    fn mark_delivered(&self, witness: &Arc<Delivery>) {
        self.pending.set(false);
        self.delivered.set(self.delivered.get().wrapping_add(1));
        self.witness.set(Arc::downgrade(witness));
    }

    /// Whether this scope's live delivery is also `other`'s.
    fn shares_delivery(&self, other: &Weak<Delivery>) -> bool {
        let w = self.witness.take();
        let same = w.strong_count() > 0 && Weak::ptr_eq(&w, other);
        self.witness.set(w);
        same
    }

    /// Drops the pending delivery without handing it to anyone (the hard
    /// path: the future that should have seen it is being dropped).
    pub(crate) fn clear_pending(&self) {
        self.pending.set(false);
    }

    /// Makes this scope the innermost one of the current chain until the
    /// guard drops. The borrow keeps the scope in place meanwhile.
    pub(crate) fn enter(&self) -> ScopeGuard<'_> {
        let prev = CONTEXT.with(|c| c.chain.replace(self));
        self.parent.set(prev);
        ScopeGuard { scope: self, prev }
    }
}

// SAFETY: `parent` is only meaningful while the scope is entered, which
// happens inside one poll on one thread; it is reset to null when the
// guard drops, so a future holding a scope may move between polls. The
// other fields are plain values (`Arc<String>` is `Send`).
unsafe impl Send for Scope {}

pub(crate) struct ScopeGuard<'a> {
    scope: &'a Scope,
    prev: *const Scope,
}

impl Drop for ScopeGuard<'_> {
    fn drop(&mut self) {
        self.scope.parent.set(ptr::null());
        CONTEXT.with(|c| c.chain.set(self.prev));
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
            // `ScopeGuard`/`PollGuard` whose scope is borrowed until the
            // guard drops, and guards restore the chain in LIFO order.
            let s = unsafe { &*p };
            if pick(s) {
                return Some(p);
            }
            if s.boundary {
                break;
            }
            p = s.parent.get();
        }
        None
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
        if s.boundary {
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
        if s.boundary {
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
            unsafe { (*scope).pending.set(true) };
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
