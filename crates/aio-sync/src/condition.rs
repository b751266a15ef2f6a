//! `Condition`: asyncio's condition variable, over a [`Lock`].

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use aio_core::Cancelled;
use aio_core::cancel;
use parking_lot::Mutex;

use crate::list::{List, Outcome, wake_all};
use crate::lock::{Lock, LockAcquire, LockGuard};
use crate::raw::RawAcquire;

enum LockRef {
    Own(Lock),
    Shared(Arc<Lock>),
}

impl Deref for LockRef {
    type Target = Lock;
    fn deref(&self) -> &Lock {
        match self {
            LockRef::Own(l) => l,
            LockRef::Shared(l) => l,
        }
    }
}

/// A condition variable for tasks: asyncio's `Condition`.
///
/// Tasks hold the condition's [`Lock`] ([`acquire`](Condition::acquire)),
/// check some shared state, and [`wait`](Condition::wait) for another task
/// to change it and call [`notify`](Condition::notify) or
/// [`notify_all`](Condition::notify_all). `wait` releases the lock while it
/// waits and takes it back before it returns — also when it was cancelled,
/// as in asyncio.
///
/// Notifications go to the waiters in the order they started waiting, and
/// a notified waiter that is cancelled before it runs passes its
/// notification on (the fix asyncio made in Python 3.13), so `notify(n)`
/// always reaches `n` waiters if there are that many.
///
/// Differences from asyncio: `notify` does not require the lock to be held
/// (it never hurts: woken waiters take the lock before they return), and
/// `wait` takes the guard it releases and re-acquires, as `&mut`.
///
/// # Examples
/// ```
/// use std::cell::Cell;
///
/// let got = aio_core::run(async {
///     let cond = aio_sync::Condition::new();
///     let ready = Cell::new(false);
///     let consumer = async {
///         let mut guard = cond.acquire().await?;
///         cond.wait_for(&mut guard, || ready.get()).await?;
///         Ok::<_, aio_core::Cancelled>("ready")
///     };
///     let producer = async {
///         let _guard = cond.acquire().await?;
///         ready.set(true);
///         cond.notify_all();
///         Ok(())
///     };
///     aio_core::gather!(consumer, producer).await
/// });
/// assert_eq!(got.unwrap().0, "ready");
/// ```
pub struct Condition {
    lock: LockRef,
    waiters: Mutex<List>,
    /// Whether the list has linked waiters: lets `notify` skip the lock
    /// when nobody waits. Written only under the list lock.
    waiting: AtomicBool,
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters.lock().len())
            .finish()
    }
}

impl Condition {
    /// A condition with a lock of its own. `const`, so it can be a
    /// `static`.
    pub const fn new() -> Condition {
        Condition {
            lock: LockRef::Own(Lock::new()),
            waiters: Mutex::new(List::new()),
            waiting: AtomicBool::new(false),
        }
    }

    /// A condition over a shared lock (asyncio's `Condition(lock)`):
    /// several conditions may use one lock.
    pub fn with_lock(lock: Arc<Lock>) -> Condition {
        Condition {
            lock: LockRef::Shared(lock),
            waiters: Mutex::new(List::new()),
            waiting: AtomicBool::new(false),
        }
    }

    /// The underlying lock.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Acquires the underlying lock (`async with cond:`).
    ///
    /// # Cancellation
    /// As [`Lock::acquire`]: the lock is passed on if it had been handed
    /// to this waiter; never lost.
    pub fn acquire(&self) -> LockAcquire<'_> {
        self.lock.acquire()
    }

    /// Whether the underlying lock is held.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Releases the lock held by `guard`, waits for a notification, and
    /// takes the lock back.
    ///
    /// # Cancellation
    /// On cancellation the wait stops, a notification this task had
    /// received but not yet acted on is passed to the next waiter, and the
    /// lock is taken back before `Err(Cancelled)` is returned — so `guard`
    /// holds the lock whenever the future completes. (A second cancellation
    /// while it re-acquires the lock is absorbed into the same error, as in
    /// asyncio.)
    ///
    /// Dropping the future before it completes also passes on a pending
    /// notification, or a lock handed to it; `guard` then no longer holds
    /// the lock, and dropping it does nothing.
    ///
    /// # Panics
    /// If `guard` belongs to another lock, or no longer holds its lock
    /// (after a dropped wait).
    pub fn wait<'a, 'l>(&'a self, guard: &'a mut LockGuard<'l>) -> ConditionWait<'a, 'l> {
        assert!(
            std::ptr::eq(guard.lock(), self.lock()),
            "Condition::wait called with a guard of another lock"
        );
        assert!(guard.held, "Condition::wait called with a guard that lost its lock");
        ConditionWait {
            cond: self,
            guard,
            phase: Phase::Start,
            reacquire: None,
            err: None,
        }
    }

    /// Waits until `predicate()` is true: asyncio's `wait_for`. The
    /// predicate is called with the lock held, first before any waiting
    /// (if it holds, this returns at once) and again after every
    /// notification.
    ///
    /// # Cancellation
    /// As [`wait`](Condition::wait): the lock is held again when this
    /// returns `Err(Cancelled)`, and a notification is never lost.
    ///
    /// # Panics
    /// As [`wait`](Condition::wait).
    pub async fn wait_for<'l>(
        &self,
        guard: &mut LockGuard<'l>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(), Cancelled> {
        while !predicate() {
            self.wait(guard).await?;
        }
        Ok(())
    }

    /// Wakes up to `n` waiters, the longest-waiting first; returns how many
    /// were woken.
    pub fn notify(&self, n: usize) -> usize {
        if n == 0 || !self.waiting.load(Ordering::SeqCst) {
            return 0;
        }
        if n == 1 {
            let w = {
                let mut list = self.waiters.lock();
                let w = list.pop(Outcome::Granted);
                self.update_waiting(&list);
                w
            };
            return match w {
                Some(w) => {
                    w.wake();
                    1
                }
                None => 0,
            };
        }
        let mut wakers: Vec<Waker> = Vec::new();
        {
            let mut list = self.waiters.lock();
            for _ in 0..n {
                match list.pop(Outcome::Granted) {
                    Some(w) => wakers.push(w),
                    None => break,
                }
            }
            self.update_waiting(&list);
        }
        let k = wakers.len();
        wake_all(&mut wakers);
        k
    }

    /// Wakes every waiter; returns how many.
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
    }

    /// Links a waiter; the lock must be held.
    fn register(&self, waker: &Waker) -> usize {
        let mut list = self.waiters.lock();
        let key = list.push(waker.clone());
        self.waiting.store(true, Ordering::SeqCst);
        key
    }

    /// Call with the list lock held after unlinking waiters.
    fn update_waiting(&self, list: &List) {
        if list.is_empty() {
            self.waiting.store(false, Ordering::SeqCst);
        }
    }

    /// Leaves the waiter list; a notification received but not acted on
    /// goes to the next waiter.
    fn leave(&self, key: usize) {
        let mut list = self.waiters.lock();
        let next = match list.remove(key) {
            Some(Outcome::Granted) => list.pop(Outcome::Granted),
            _ => None,
        };
        self.update_waiting(&list);
        drop(list);
        if let Some(w) = next {
            w.wake();
        }
    }
}

enum Phase {
    Start,
    Waiting(usize),
    Reacquire,
    Done,
}

/// Future of [`Condition::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct ConditionWait<'a, 'l> {
    cond: &'a Condition,
    guard: &'a mut LockGuard<'l>,
    phase: Phase,
    reacquire: Option<RawAcquire<'a>>,
    err: Option<Cancelled>,
}

impl fmt::Debug for ConditionWait<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Start => "start",
            Phase::Waiting(_) => "waiting",
            Phase::Reacquire => "reacquiring",
            Phase::Done => "done",
        };
        f.debug_struct("ConditionWait").field("phase", &phase).finish()
    }
}

impl Future for ConditionWait<'_, '_> {
    type Output = Result<(), Cancelled>;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let cond = this.cond;
        loop {
            match this.phase {
                Phase::Start => {
                    if let Err(c) = cancel::check() {
                        this.phase = Phase::Done;
                        return Poll::Ready(Err(c));
                    }
                    // Register before releasing, so a notifier that takes
                    // the lock after us sees us.
                    let key = cond.register(cx.waker());
                    this.guard.held = false;
                    cond.lock.sem.release();
                    this.phase = Phase::Waiting(key);
                    return Poll::Pending;
                }
                Phase::Waiting(key) => {
                    if let Err(c) = cancel::check() {
                        cond.leave(key);
                        this.err = Some(c);
                        this.phase = Phase::Reacquire;
                        continue;
                    }
                    match cond.waiters.lock().poll(key, cx.waker()) {
                        None => return Poll::Pending,
                        Some(_) => this.phase = Phase::Reacquire,
                    }
                }
                Phase::Reacquire => {
                    // asyncio re-acquires even when cancelled meanwhile.
                    if let Err(c) = cancel::check() {
                        this.err.get_or_insert(c);
                    }
                    let acq = this.reacquire.get_or_insert_with(|| cond.lock.sem.acquire());
                    match acq.poll_acquire(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => {
                            debug_assert!(r.is_ok(), "a lock is never closed");
                            this.reacquire = None;
                            this.guard.held = true;
                            this.phase = Phase::Done;
                            return Poll::Ready(match this.err.take() {
                                Some(c) => Err(c),
                                None => Ok(()),
                            });
                        }
                    }
                }
                Phase::Done => panic!("`Condition::wait` polled after completion"),
            }
        }
    }
}

impl Drop for ConditionWait<'_, '_> {
    fn drop(&mut self) {
        if let Phase::Waiting(key) = self.phase {
            self.cond.leave(key);
        }
        // A pending re-acquire passes the lock on when it drops.
    }
}
