//! Building blocks for fair, cancellation-safe primitives: what `Lock`,
//! `Semaphore` and `Event` here, and aio-queue's queues, are made of.
//!
//! - [`RawSemaphore`]: a counting semaphore with FIFO hand-off. A release
//!   gives the permit straight to the first waiter, so nobody can barge in
//!   ahead of it; a waiter that gives up after it was handed a permit passes
//!   it on. The uncontended paths are one atomic compare-and-swap. It can be
//!   closed, which fails every waiter once the permits run out. A
//!   [strict](RawSemaphore::new_strict) one (asyncio's `Semaphore`) also
//!   counts a served waiter as waiting until it takes its permit.
//! - [`SpinLock`]: the short lock under the waiter lists (and aio-queue's
//!   FIFO store).
//! - [`WaitList`]: the FIFO of waiters every primitive here keeps under
//!   its lock, for primitives that keep their waiters under a lock of
//!   their own (aio-queue's queues).
//! - [`Notify`]: a list of waiters that [`Notify::notify_all`] wakes
//!   together, registered under a condition checked atomically with the
//!   registration, so a wake-up is never missed.
//!
//! The futures here do **not** observe aio's cancellation: they are the raw
//! material of leaf futures, which call
//! [`aio_core::cancel::check`] first and then poll these.

use std::fmt;
use std::future::Future;
use std::ops::DerefMut;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Under `cfg(loom)`, loom's mutex (with [`SpinLock`]'s interface), so
/// the models of crates built on it (aio-queue's) explore its locking.
#[cfg(loom)]
pub use crate::loom::sync::Mutex as SpinLock;
#[cfg(not(loom))]
pub use crate::spin::SpinLock;

use crate::const_unless_loom;
use crate::list::List;
pub use crate::list::{List as WaitList, Outcome, wake_all};
use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

/// The waiter list may be non-empty: set by the first waiter to queue, and
/// cleared only by a release that finds the list empty (which then adds
/// its permit to the pool in the same step). While it is set, acquires
/// queue, and every release goes through the list lock to hand its permit
/// to the first waiter. No permits are free while it is set — except in a
/// [strict](RawSemaphore::new_strict) semaphore whose served waiters have
/// not all taken their permits yet: there later acquires queue behind
/// them, and each served waiter, as it takes its permit (or gives it up),
/// hands the free permits to those queued. Leaving it set when the last
/// waiter is handed a permit saves two atomic steps in the common
/// alternation of "one waits, the other releases" (a queue's getter and
/// its putter): the release does not clear it, the next waiter does not
/// set it again.
const WAITERS: usize = 1;
/// Closed: waiters fail once the permits run out.
const CLOSED: usize = 2;
const ONE: usize = 4;
/// The most permits a semaphore can hold.
pub const MAX_PERMITS: usize = usize::MAX >> 2;

/// The error of acquiring from a closed [`RawSemaphore`] that has no
/// permits left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the semaphore is closed")
    }
}

impl std::error::Error for Closed {}

/// Why [`RawSemaphore::try_acquire`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// No permit is free (or the free ones are promised to waiters).
    NoPermits,
    /// The semaphore is closed and has no permits left.
    Closed,
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::NoPermits => f.write_str("no permits available"),
            TryAcquireError::Closed => f.write_str("the semaphore is closed"),
        }
    }
}

impl std::error::Error for TryAcquireError {}

/// A fair counting semaphore: the engine of aio's locks, semaphores and
/// queues.
///
/// Permits are counted in one atomic word together with two flags; the
/// waiter list sits behind a short spin lock that only the contended
/// paths take.
///
/// # Examples
/// ```
/// use aio_sync::raw::RawSemaphore;
///
/// static SEM: RawSemaphore = RawSemaphore::new(1);
/// assert!(SEM.try_acquire().is_ok());
/// assert!(SEM.try_acquire().is_err());
/// SEM.release();
/// aio_core::run(async { SEM.acquire().await }).unwrap();
/// assert_eq!(SEM.available_permits(), 0);
/// ```
pub struct RawSemaphore {
    state: AtomicUsize,
    /// The ticket of the last waiter served (handed a permit, or failed by
    /// `close`). Waiters are served in ticket order, so a waiter whose
    /// ticket is at most this was served: it reads its outcome here,
    /// without the list lock. Written under the lock.
    served: AtomicU64,
    /// The value of `served` when the semaphore was closed (`u64::MAX`
    /// while open): the waiters served after it were failed, not handed a
    /// permit. Written under the lock, before `served`.
    closed_after: AtomicU64,
    /// Counts the served waiters that have not taken their permit
    /// (`List::unclaimed`): asyncio's `Semaphore`, not `Lock` or queues.
    strict: bool,
    waiters: Mutex<List>,
}

impl fmt::Debug for RawSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("RawSemaphore")
            .field("permits", &(s / ONE))
            .field("waiters", &(s & WAITERS != 0))
            .field("closed", &(s & CLOSED != 0))
            .finish()
    }
}

impl RawSemaphore {
    const_unless_loom! {
        /// A semaphore holding `permits` permits.
        ///
        /// # Panics
        /// If `permits` exceeds [`MAX_PERMITS`].
        pub const fn new(permits: usize) -> RawSemaphore {
            RawSemaphore::build(permits, false)
        }
    }

    const_unless_loom! {
        /// A semaphore holding `permits` permits that counts a waiter handed a
        /// permit as waiting until it takes it, as asyncio's `Semaphore` does:
        /// an acquire made meanwhile queues behind it even if another permit
        /// is free (CPython's `test_acquire_fifo_order_2`). Costs one more
        /// turn of the waiter lock per permit taken after a wait.
        ///
        /// # Panics
        /// If `permits` exceeds [`MAX_PERMITS`].
        pub const fn new_strict(permits: usize) -> RawSemaphore {
            RawSemaphore::build(permits, true)
        }
    }

    const_unless_loom! {
        const fn build(permits: usize, strict: bool) -> RawSemaphore {
            assert!(permits <= MAX_PERMITS, "too many permits for a semaphore");
            RawSemaphore {
                state: AtomicUsize::new(permits * ONE),
                served: AtomicU64::new(0),
                closed_after: AtomicU64::new(u64::MAX),
                strict,
                waiters: Mutex::new(List::new()),
            }
        }
    }

    /// Takes a permit if one is free and nobody is queued for one. Never
    /// takes one promised to a waiter.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), TryAcquireError> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            // `WAITERS` with permits free: a strict semaphore's queue
            // waits for its served waiters to run.
            if s < ONE || s & WAITERS != 0 {
                return Err(if s & CLOSED != 0 {
                    TryAcquireError::Closed
                } else {
                    TryAcquireError::NoPermits
                });
            }
            match self
                .state
                .compare_exchange_weak(s, s - ONE, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => s = actual,
            }
        }
    }

    /// Waits for a permit, in FIFO order with the other waiters.
    ///
    /// # Cancellation
    /// This raw future does not observe aio's cancellation itself (a leaf
    /// built on it calls [`aio_core::cancel::check`] first). Dropping it, or
    /// calling [`RawAcquire::cancel`], leaves the queue; a permit already
    /// handed to it goes to the next waiter or back to the pool.
    pub fn acquire(&self) -> RawAcquire<'_> {
        RawAcquire {
            sem: self,
            slot: AcquireSlot::new(),
        }
    }

    /// Gives a permit back: to the first waiter if there is one, otherwise
    /// to the pool.
    ///
    /// # Panics
    /// If the count would exceed [`MAX_PERMITS`].
    #[inline]
    pub fn release(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & WAITERS != 0 {
                self.release_slow(usize::MAX);
                return;
            }
            assert!(s / ONE < MAX_PERMITS, "semaphore permit count overflow");
            match self
                .state
                .compare_exchange_weak(s, s + ONE, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    /// [`release`](Self::release), unless that would leave more than
    /// `bound` permits free; then nothing happens and `false` is returned.
    /// A permit handed to a waiter always fits.
    pub fn release_bounded(&self, bound: usize) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & WAITERS != 0 {
                return self.release_slow(bound);
            }
            if s / ONE >= bound.min(MAX_PERMITS) {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s + ONE, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    #[cold]
    fn release_slow(&self, bound: usize) -> bool {
        let mut list = self.waiters.lock();
        let (ok, waker) = self.release_locked(&mut list, bound);
        drop(list);
        if let Some(w) = waker {
            w.wake();
        }
        ok
    }

    /// Hands a popped waiter its permit: publishes the hand-off (and,
    /// with it, whatever the releaser wrote before releasing) to the
    /// waiter's lock-free check; a strict semaphore counts it unclaimed.
    /// Under the waiter lock.
    fn hand_off(&self, list: &mut List, ticket: u64) {
        if self.strict {
            list.unclaimed += 1;
        }
        self.served.store(ticket, Ordering::Release);
    }

    /// Strict semaphores, with permits free while waiters queue (behind
    /// served waiters that had not run): hands free permits to queued
    /// waiters, as asyncio's acquire does when a waiter resumes or gives up
    /// ("wake up as many as are allowed"); clears `WAITERS` once nobody
    /// queues and no served waiter is left to run. Takes the held waiter
    /// lock and wakes the served ones after releasing it.
    fn serve_from_pool(&self, mut list: impl DerefMut<Target = List>) {
        let mut wakers = Vec::new();
        let mut s = self.state.load(Ordering::Relaxed);
        while s >= ONE && s & WAITERS != 0 {
            match list.pop_served() {
                Some((w, ticket)) => {
                    // While `WAITERS` is set only the lock holder takes
                    // permits (the lock-free acquires stand aside).
                    s = self.state.fetch_sub(ONE, Ordering::AcqRel) - ONE;
                    self.hand_off(&mut list, ticket);
                    wakers.push(w);
                }
                // Served waiters still to run hold the queue.
                None if list.unclaimed != 0 => break,
                None => match self
                    .state
                    .compare_exchange(s, s & !WAITERS, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(actual) => s = actual,
                },
            }
        }
        drop(list);
        wake_all(&mut wakers);
    }

    /// A strict semaphore's served waiter took its permit, or gave it up
    /// (then passed on): it stops holding the queue, and the waiters that
    /// queued behind it while permits were free get them. The count is
    /// the waiter list's, under its lock: an acquire deciding whether to
    /// queue and a claim deciding whether to serve it see each other.
    fn claimed(&self) {
        if self.strict {
            let mut list = self.waiters.lock();
            list.unclaimed -= 1;
            self.serve_from_pool(list);
        }
    }

    /// Hands a permit to the first waiter, or adds it to the pool (if that
    /// stays within `bound`). The caller holds the waiter lock and wakes the
    /// returned waker after releasing it.
    fn release_locked(&self, list: &mut List, bound: usize) -> (bool, Option<Waker>) {
        if let Some((w, ticket)) = list.pop_served() {
            self.hand_off(list, ticket);
            // `WAITERS` stays set even if the list is now empty (see its
            // docs): the next release clears it.
            return (true, Some(w));
        }
        // No waiters: clear a `WAITERS` left set and add the permit, in
        // one step. While `WAITERS` is set nothing but `close` changes the
        // word (no permits are free, the lock-free paths stand aside);
        // while it is clear only the lock-free paths race with us.
        // A strict semaphore keeps `WAITERS` while served waiters have not
        // run (the caller then looks again, after adding the permit).
        let keep = if list.unclaimed != 0 { WAITERS } else { 0 };
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let fits = s / ONE < bound.min(MAX_PERMITS);
            let next = (s & !WAITERS | s & keep) + if fits { ONE } else { 0 };
            if next == s {
                return (false, None);
            }
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return (fits, None),
                Err(actual) => s = actual,
            }
        }
    }

    /// The number of free permits (not counting those handed to waiters
    /// that have not run yet).
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE
    }

    /// Whether an acquire now would wait: no permit is free, or waiters
    /// are queued (in a [strict](RawSemaphore::new_strict) semaphore, or
    /// served waiters that have not run yet hold the queue).
    pub fn would_wait(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        s < ONE || s & WAITERS != 0
    }

    /// Whether tasks are waiting for a permit.
    pub fn has_waiters(&self) -> bool {
        // `WAITERS` may outlive the last waiter; the list says for sure.
        self.state.load(Ordering::Acquire) & WAITERS != 0 && !self.waiters.lock().is_empty()
    }

    /// Closes the semaphore: every waiter fails with [`Closed`], and so do
    /// later acquires once the free permits are gone. Releases still count.
    pub fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut wakers = Vec::new();
        {
            let mut list = self.waiters.lock();
            // Under the lock, so the first close to get here marks where
            // hand-offs end and failures begin (no waiter queues once
            // `CLOSED` is set, and only the lock holder serves).
            if self.closed_after.load(Ordering::Relaxed) == u64::MAX {
                let served = self.served.load(Ordering::Relaxed);
                self.closed_after.store(served, Ordering::Relaxed);
            }
            let mut last = None;
            while let Some((w, ticket)) = list.pop_served() {
                wakers.push(w);
                last = Some(ticket);
            }
            if let Some(ticket) = last {
                self.served.store(ticket, Ordering::Release);
            }
            self.state.fetch_and(!WAITERS, Ordering::Release);
        }
        wake_all(&mut wakers);
    }

    /// The outcome of the waiter holding `ticket`, if it was served.
    #[inline]
    fn served(&self, ticket: u64) -> Option<Result<(), Closed>> {
        if ticket > self.served.load(Ordering::Acquire) {
            return None;
        }
        // `closed_after` was written before the `served` we just read.
        Some(if ticket > self.closed_after.load(Ordering::Relaxed) {
            Err(Closed)
        } else {
            Ok(())
        })
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

/// Future of [`RawSemaphore::acquire`]: `Ok(())` with one permit, or
/// `Err(Closed)`.
///
/// Dropping it, or calling [`cancel`](RawAcquire::cancel), after a permit
/// was handed to it passes the permit to the next waiter. It does not
/// observe aio's cancellation (see the [module docs](self)).
#[must_use = "futures do nothing unless awaited"]
pub struct RawAcquire<'a> {
    sem: &'a RawSemaphore,
    slot: AcquireSlot,
}

impl fmt::Debug for RawAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAcquire")
            .field("queued", &self.slot.is_queued())
            .finish()
    }
}

impl<'a> RawAcquire<'a> {
    /// The semaphore this acquires from.
    pub fn semaphore(&self) -> &'a RawSemaphore {
        self.sem
    }

    /// Whether this waiter is in the semaphore's queue (or was handed a
    /// permit it has not picked up yet).
    pub fn is_queued(&self) -> bool {
        self.slot.is_queued()
    }

    /// Gives up: leaves the queue, passing on a permit it was handed. The
    /// future may be polled again afterwards and queues anew.
    pub fn cancel(&mut self) {
        self.slot.cancel(self.sem);
    }

    /// Polls for the permit.
    pub fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        self.slot.poll_acquire(self.sem, cx)
    }
}

impl Future for RawAcquire<'_> {
    type Output = Result<(), Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_acquire(cx)
    }
}

impl Drop for RawAcquire<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// One acquire's place in a [`RawSemaphore`]'s queue, kept apart from the
/// semaphore so that futures holding it by `Arc` (the owned acquires) share
/// [`RawAcquire`]'s logic. Every call must pass the same semaphore, and
/// its owner must call [`cancel`](AcquireSlot::cancel) when dropped.
///
/// A queued waiter holds its slot key and its ticket. Once served, its slot
/// is already free (the server freed it): the waiter learns its outcome
/// from [`RawSemaphore::served`], without the list lock, and a poll with
/// the same waker as before, while not served, takes no lock either.
#[derive(Debug, Default)]
pub(crate) struct AcquireSlot {
    key: usize,
    /// 0 while not queued.
    ticket: u64,
    /// The waker the list holds for us, as [`Waker::will_wake`] compares
    /// them (data and vtable addresses).
    waker: (usize, usize),
}

/// What [`Waker::will_wake`] compares, kept as plain numbers.
#[inline]
fn waker_id(w: &Waker) -> (usize, usize) {
    (w.data() as usize, std::ptr::from_ref(w.vtable()) as usize)
}

impl AcquireSlot {
    pub(crate) const fn new() -> AcquireSlot {
        AcquireSlot {
            key: 0,
            ticket: 0,
            waker: (0, 0),
        }
    }

    pub(crate) fn is_queued(&self) -> bool {
        self.ticket != 0
    }

    /// [`RawAcquire::cancel`].
    #[inline]
    pub(crate) fn cancel(&mut self, sem: &RawSemaphore) {
        // Every acquire that completes drops through here: keep that check
        // inline and the rest out of line.
        if self.ticket != 0 {
            let ticket = std::mem::take(&mut self.ticket);
            Self::leave(sem, self.key, ticket);
        }
    }

    #[cold]
    fn leave(sem: &RawSemaphore, key: usize, ticket: u64) {
        let outcome = match sem.served(ticket) {
            Some(outcome) => outcome,
            None => {
                let mut list = sem.waiters.lock();
                if list.waiting_waker(key, ticket).is_some() {
                    // Still queued: leave. A `WAITERS` left set with the
                    // list empty is cleared by the next release.
                    list.remove(key);
                    if sem.strict {
                        // Behind served waiters with permits free: those
                        // queued after us may be served now.
                        sem.serve_from_pool(list);
                    }
                    return;
                }
                drop(list);
                // Served between the check and the lock; the server wrote
                // `served` under the lock we just took.
                sem.served(ticket).expect("a waiter gone from the list was served")
            }
        };
        if outcome.is_ok() {
            // Handed a permit it will not use: pass it on.
            sem.claimed();
            sem.release();
        }
    }

    /// [`RawAcquire::poll_acquire`].
    pub(crate) fn poll_acquire(&mut self, sem: &RawSemaphore, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        if self.ticket != 0 {
            return self.poll_queued(sem, cx);
        }
        match sem.try_acquire() {
            Ok(()) => return Poll::Ready(Ok(())),
            Err(TryAcquireError::Closed) => return Poll::Ready(Err(Closed)),
            Err(TryAcquireError::NoPermits) => {}
        }
        let mut list = sem.waiters.lock();
        let mut s = sem.state.load(Ordering::Relaxed);
        loop {
            let (next, order) = if s >= ONE && s & WAITERS == 0 {
                (s - ONE, Ordering::Acquire)
            } else if s >= ONE {
                // A strict semaphore with permits free: queue behind its
                // served waiters, unless none is left to run (then nobody
                // waits: take a permit, and let acquires go lock-free again).
                if !list.is_empty() || list.unclaimed != 0 {
                    break;
                }
                ((s - ONE) & !WAITERS, Ordering::Acquire)
            } else if s & CLOSED != 0 {
                return Poll::Ready(Err(Closed));
            } else if s & WAITERS == 0 {
                (s | WAITERS, Ordering::Relaxed)
            } else {
                break;
            };
            match sem.state.compare_exchange_weak(s, next, order, Ordering::Relaxed) {
                Ok(_) if s >= ONE => return Poll::Ready(Ok(())),
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        (self.key, self.ticket) = list.push_ticketed(cx.waker().clone());
        self.waker = waker_id(cx.waker());
        Poll::Pending
    }

    #[inline]
    fn poll_queued(&mut self, sem: &RawSemaphore, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        if let Some(outcome) = sem.served(self.ticket) {
            self.ticket = 0;
            if outcome.is_ok() {
                sem.claimed();
            }
            return Poll::Ready(outcome);
        }
        let id = waker_id(cx.waker());
        if id == self.waker {
            return Poll::Pending;
        }
        let mut list = sem.waiters.lock();
        if let Some(w) = list.waiting_waker(self.key, self.ticket) {
            w.clone_from(cx.waker());
            self.waker = id;
            return Poll::Pending;
        }
        drop(list);
        // Served since the check above.
        let outcome = sem.served(self.ticket).expect("a waiter gone from the list was served");
        self.ticket = 0;
        if outcome.is_ok() {
            sem.claimed();
        }
        Poll::Ready(outcome)
    }
}

/// A list of waiters woken all at once: the engine of `Event` and of a
/// queue's `join`.
///
/// A waiter registers under a condition ([`NotifyWait::poll_until`]):
/// if the condition already holds it is ready at once; otherwise it waits
/// for the next [`notify_all`](Notify::notify_all). The condition is checked
/// after the waiter is visible to notifiers, with a sequentially consistent
/// fence on both sides, so a notifier that makes the condition true (with
/// any memory ordering) and then calls `notify_all` can never miss it.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
/// use aio_sync::raw::Notify;
///
/// static NOTIFY: Notify = Notify::new();
/// static FLAG: AtomicBool = AtomicBool::new(false);
/// aio_core::run(async {
///     let (notify, flag) = (&NOTIFY, &FLAG);
///     let waiter = async {
///         let mut w = notify.waiter();
///         std::future::poll_fn(|cx| w.poll_until(cx, || flag.load(SeqCst))).await;
///     };
///     let setter = async {
///         flag.store(true, SeqCst);
///         notify.notify_all();
///         Ok::<(), aio_core::Cancelled>(())
///     };
///     aio_core::gather!(async { waiter.await; Ok(()) }, setter).await
/// })
/// .unwrap();
/// ```
pub struct Notify {
    waiting: AtomicBool,
    list: Mutex<List>,
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
    }
}

impl Notify {
    const_unless_loom! {
        /// An empty list.
        pub const fn new() -> Notify {
            Notify {
                waiting: AtomicBool::new(false),
                list: Mutex::new(List::new()),
            }
        }
    }

    /// Wakes every registered waiter; returns how many. Takes no lock when
    /// nobody waits.
    pub fn notify_all(&self) -> usize {
        // The caller made the condition true before this fence; a waiter
        // raises `waiting` before the fence in `poll_until`, then checks
        // it. Either this load sees the waiter or its check sees the
        // condition (the loom model `loom_waiters`).
        fence(Ordering::SeqCst);
        if !self.waiting.load(Ordering::Relaxed) {
            return 0;
        }
        let mut wakers = Vec::new();
        {
            let mut list = self.list.lock();
            list.pop_all(Outcome::Granted, &mut wakers);
            self.waiting.store(false, Ordering::Relaxed);
        }
        let n = wakers.len();
        wake_all(&mut wakers);
        n
    }

    /// Whether any waiter is registered.
    pub fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::SeqCst)
    }

    /// A new, unregistered waiter.
    pub fn waiter(&self) -> NotifyWait<'_> {
        NotifyWait {
            notify: self,
            key: None,
        }
    }
}

/// One waiter of a [`Notify`]. Dropping it unregisters it.
#[must_use = "a waiter does nothing unless polled"]
pub struct NotifyWait<'a> {
    notify: &'a Notify,
    key: Option<usize>,
}

impl fmt::Debug for NotifyWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyWait")
            .field("queued", &self.key.is_some())
            .finish()
    }
}

impl NotifyWait<'_> {
    /// Whether this waiter is registered (or was notified and has not
    /// observed it yet).
    pub fn is_queued(&self) -> bool {
        self.key.is_some()
    }

    /// On the first poll: `Ready` if `done()` holds, else registers and
    /// waits. Later polls: `Ready` once notified (`done` is not consulted
    /// again: a notification counts even if the condition has changed back
    /// since, as with asyncio's `Event.wait`).
    pub fn poll_until(&mut self, cx: &mut Context<'_>, done: impl FnOnce() -> bool) -> Poll<()> {
        let n = self.notify;
        match self.key {
            None => {
                let mut list = n.list.lock();
                n.waiting.store(true, Ordering::Relaxed);
                // Pairs with the fence in `notify_all`.
                fence(Ordering::SeqCst);
                if done() {
                    if list.is_empty() {
                        n.waiting.store(false, Ordering::Relaxed);
                    }
                    return Poll::Ready(());
                }
                self.key = Some(list.push(cx.waker().clone()));
                Poll::Pending
            }
            Some(key) => {
                let mut list = n.list.lock();
                match list.poll(key, cx.waker()) {
                    None => Poll::Pending,
                    Some(_) => {
                        self.key = None;
                        Poll::Ready(())
                    }
                }
            }
        }
    }

    /// Unregisters (a notification it received but did not observe is
    /// dropped: `notify_all` woke everyone anyway).
    pub fn cancel(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut list = self.notify.list.lock();
        list.remove(key);
        if list.is_empty() {
            self.notify.waiting.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for NotifyWait<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}
