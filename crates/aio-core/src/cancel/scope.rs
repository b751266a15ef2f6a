//! The data of cancellation: [`Cancelled`] (a delivery, and what its
//! scopes watch) and [`Scope`] (one level of a task's cancellation chain).
//! Plain data: what reads the thread-local chain is in the parent module.

use std::cell::Cell;
use std::fmt;
use std::ptr;
use std::sync::{Arc, OnceLock, Weak};

use crate::delay::InvalidDelay;

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
    pub(super) inner: Option<Arc<Delivery>>,
}

/// A cancellation's message; as the `Arc` of a delivery, also what its
/// scopes watch (see [`Cancelled`]).
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    pub(super) msg: Option<Arc<String>>,
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

    /// This cancellation raised inside the code `scope` runs, by what it
    /// awaited (a future someone cancelled) rather than by a scope: a
    /// delivery carrying the same message, watched by `scope` unless a
    /// delivery of it is alive already. If it propagates out (the
    /// scope's future ends holding it), the scope's future ends
    /// cancelled, as an asyncio task does when a `CancelledError`
    /// escapes its coroutine; handled (dropped), it changes nothing.
    pub(crate) fn raised_in(&self, scope: &Scope) -> Cancelled {
        let delivery = Arc::new(Delivery {
            msg: self.msg().cloned(),
        });
        if !scope.propagating() {
            scope.witness.set(Arc::downgrade(&delivery));
        }
        Cancelled { inner: Some(delivery) }
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
    pub(super) msg: Cell<Option<Arc<String>>>,
    /// This scope's live delivery, watched (see [`Cancelled`]).
    pub(super) witness: Cell<Weak<Delivery>>,
    /// asyncio's `cancelling()`: requests not yet taken back by `uncancel`.
    pub(super) requested: Cell<u32>,
    /// `delivered << 2 | BOUNDARY | PENDING`, one word so a scope is four
    /// words (it sits in every task's header): how many deliveries were
    /// consumed (to tell whether a step saw one; counted modulo 2³⁰),
    /// whether leaves inside do not look past this scope, whether a
    /// delivery waits for the next leaf polled inside it.
    bits: Cell<u32>,
}

/// A delivery waits for the next leaf polled inside the scope.
const PENDING: u32 = 1;
/// Leaves inside do not look past the scope.
const BOUNDARY: u32 = 2;
/// One delivery, in [`Scope::bits`].
const DELIVERY: u32 = 4;

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
            bits: Cell::new(if boundary { BOUNDARY } else { 0 }),
        }
    }

    /// Whether leaves inside do not look past this scope.
    #[inline]
    pub(crate) fn is_boundary(&self) -> bool {
        self.bits.get() & BOUNDARY != 0
    }

    /// Marks a delivery waiting (or not) for the next leaf.
    #[inline]
    pub(crate) fn set_pending(&self, on: bool) {
        let b = self.bits.get();
        self.bits.set(if on { b | PENDING } else { b & !PENDING });
    }

    /// Records a cancel request: asyncio's `Task.cancel()`.
    pub(crate) fn cancel(&self, msg: Option<Arc<String>>) {
        self.requested.set(self.requested.get().saturating_add(1));
        self.set_pending(true);
        if msg.is_some() {
            self.msg.set(msg);
        }
    }

    /// asyncio's `uncancel()`: returns the remaining number of requests.
    pub(crate) fn uncancel(&self) -> u32 {
        let n = self.requested.get().saturating_sub(1);
        self.requested.set(n);
        if n == 0 {
            self.set_pending(false);
        }
        n
    }

    pub(crate) fn cancelling(&self) -> u32 {
        self.requested.get()
    }

    /// Whether a delivery is waiting for a leaf.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.bits.get() & PENDING != 0
    }

    /// How many deliveries were consumed so far (modulo 2³⁰: compared for
    /// equality around one step).
    #[inline]
    pub(crate) fn deliveries(&self) -> u32 {
        self.bits.get() / DELIVERY
    }

    /// The cancellation this scope reports, keeping its message (not a
    /// delivery: no scope watches it).
    pub(crate) fn error(&self) -> Cancelled {
        Cancelled::from_msg(self.message())
    }

    pub(super) fn message(&self) -> Option<Arc<String>> {
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
    pub(super) fn live_witness(&self) -> Option<Arc<Delivery>> {
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

    pub(super) fn mark_delivered(&self, witness: &Arc<Delivery>) {
        self.bits.set((self.bits.get() & !PENDING).wrapping_add(DELIVERY));
        self.witness.set(Arc::downgrade(witness));
    }

    /// Whether this scope's live delivery is also `other`'s.
    pub(super) fn shares_delivery(&self, other: &Weak<Delivery>) -> bool {
        let w = self.witness.take();
        let same = w.strong_count() > 0 && Weak::ptr_eq(&w, other);
        self.witness.set(w);
        same
    }

    /// Drops the pending delivery without handing it to anyone (the hard
    /// path: the future that should have seen it is being dropped).
    pub(crate) fn clear_pending(&self) {
        self.set_pending(false);
    }
}

// SAFETY: `parent` is only meaningful while the scope is entered, which
// happens inside one poll on one thread; it is reset to null when the
// guard drops, so a future holding a scope may move between polls. The
// other fields are plain values (`Arc<String>` is `Send`).
unsafe impl Send for Scope {}
