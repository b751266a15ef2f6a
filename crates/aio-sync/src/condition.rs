//! `Condition`: asyncio's condition variable, over a [`Lock`], and the
//! [`Truthy`] results its `wait_for` predicates give.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use aio_core::Cancelled;
use aio_core::cancel;

use crate::const_unless_loom;
use crate::list::{List, Outcome, wake_all};
use crate::lock::{Lock, LockAcquire, LockGuard};
use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::raw::RawAcquire;

/// The error of [`Condition::notify`] and [`Condition::notify_all`] when
/// the condition's lock is not locked: asyncio's
/// `RuntimeError('cannot notify on un-acquired lock')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyError;

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot notify on un-acquired lock")
    }
}

impl std::error::Error for NotifyError {}

/// What a [`Condition::wait_for`] predicate returns: a value that is
/// either "true", carrying what `wait_for` hands back, or "false" (keep
/// waiting). Python's truthiness, for the two types Rust uses for it.
///
/// | predicate returns | `wait_for` keeps waiting on | and returns |
/// |---|---|---|
/// | `bool` | `false` | `true` (asyncio's `True`) |
/// | `Option<T>` | `None` | the `T` in `Some` |
///
/// `Option` lets the predicate take what it waited for while it still
/// holds the lock, as `lambda: queue and queue.popleft()` would.
pub trait Truthy {
    /// What `wait_for` returns once the predicate is true.
    type Value;

    /// `Some(value)` if true, `None` if false.
    fn into_truthy(self) -> Option<Self::Value>;
}

impl Truthy for bool {
    type Value = bool;

    fn into_truthy(self) -> Option<bool> {
        self.then_some(true)
    }
}

impl<T> Truthy for Option<T> {
    type Value = T;

    fn into_truthy(self) -> Option<T> {
        self
    }
}

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
/// a notified waiter that is cancelled before its `wait` returns — before
/// it runs, or while it takes the lock back — passes its notification on
/// (the fix asyncio made in Python 3.13), so `notify(n)` always reaches `n`
/// waiters if there are that many.
///
/// As in asyncio, `notify` and `notify_all` require the lock to be held
/// (they return [`NotifyError`] otherwise), and
/// [`wait_for`](Condition::wait_for) returns the predicate's final, true
/// value. The difference: `wait` takes the guard it releases and
/// re-acquires, as `&mut`.
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
///         cond.notify_all().expect("the lock is held");
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
    const_unless_loom! {
        /// A condition with a lock of its own. `const`, so it can be a
        /// `static`.
        pub const fn new() -> Condition {
            Condition {
                lock: LockRef::Own(Lock::new()),
                waiters: Mutex::new(List::new()),
                waiting: AtomicBool::new(false),
            }
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
    /// received but not yet acted on (also one it was taking the lock back
    /// for) is passed to the next waiter, and the lock is taken back before
    /// `Err(Cancelled)` is returned — so `guard` holds the lock whenever
    /// the future completes. (A second cancellation while it re-acquires
    /// the lock is absorbed into the same error, as in asyncio.)
    ///
    /// Dropping the future before it completes also passes on a
    /// notification not acted on, or a lock handed to it; `guard` then no
    /// longer holds the lock, and dropping it does nothing.
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

    /// Waits until `predicate()` is true, and returns its value: asyncio's
    /// `wait_for`. The predicate is called with the lock held, first
    /// before any waiting (if it is true, this returns at once) and again
    /// after every notification.
    ///
    /// The predicate returns a `bool` (then `wait_for` returns `true`, as
    /// asyncio returns `True`) or an `Option<T>` (then it returns the `T`):
    /// see [`Truthy`].
    ///
    /// # Cancellation
    /// As [`wait`](Condition::wait): the lock is held again when this
    /// returns `Err(Cancelled)`, and a notification is never lost. The
    /// predicate is not called again after a cancellation.
    ///
    /// # Panics
    /// As [`wait`](Condition::wait).
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::collections::VecDeque;
    ///
    /// let got = aio_core::run(async {
    ///     let cond = aio_sync::Condition::new();
    ///     let items = RefCell::new(VecDeque::new());
    ///     let consumer = async {
    ///         let mut guard = cond.acquire().await?;
    ///         // Takes the item under the lock it waited with.
    ///         cond.wait_for(&mut guard, || items.borrow_mut().pop_front()).await
    ///     };
    ///     let producer = async {
    ///         let _guard = cond.acquire().await?;
    ///         items.borrow_mut().push_back("job");
    ///         cond.notify(1).expect("the lock is held");
    ///         Ok(())
    ///     };
    ///     aio_core::gather!(consumer, producer).await
    /// });
    /// assert_eq!(got.unwrap().0, "job");
    /// ```
    pub async fn wait_for<'l, P: Truthy>(
        &self,
        guard: &mut LockGuard<'l>,
        mut predicate: impl FnMut() -> P,
    ) -> Result<P::Value, Cancelled> {
        loop {
            if let Some(value) = predicate().into_truthy() {
                return Ok(value);
            }
            self.wait(guard).await?;
        }
    }

    /// Wakes up to `n` waiters, the longest-waiting first; returns how many
    /// were woken. Each takes the lock back before its `wait` returns, so
    /// they run once the caller releases it.
    ///
    /// # Errors
    /// [`NotifyError`] if the lock is not locked (asyncio raises
    /// `RuntimeError`); nobody is woken. As in asyncio, only that the lock
    /// is locked is checked, not by whom.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run(async {
    /// let cond = aio_sync::Condition::new();
    /// assert_eq!(cond.notify(1), Err(aio_sync::NotifyError));
    /// let _guard = cond.acquire().await?;
    /// assert_eq!(cond.notify(1), Ok(0)); // nobody waits
    /// # Ok::<(), aio_core::Cancelled>(())
    /// # }).unwrap();
    /// ```
    pub fn notify(&self, n: usize) -> Result<usize, NotifyError> {
        if !self.locked() {
            return Err(NotifyError);
        }
        Ok(self.wake(n))
    }

    /// Wakes every waiter; returns how many.
    ///
    /// # Errors
    /// As [`notify`](Condition::notify): [`NotifyError`] if the lock is not
    /// locked.
    pub fn notify_all(&self) -> Result<usize, NotifyError> {
        self.notify(usize::MAX)
    }

    /// Wakes up to `n` waiters; returns how many.
    fn wake(&self, n: usize) -> usize {
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

    /// A wait that was notified ends without acting on it (cancelled or
    /// dropped while it took the lock back): the next waiter gets the
    /// notification, as asyncio's `wait` does since 3.13.
    fn pass_on(&self) {
        self.wake(1);
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
    /// Taking the lock back; `notified`: by a notification, not by a
    /// cancellation (which passed any notification on as it left the list).
    Reacquire {
        notified: bool,
    },
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
            Phase::Reacquire { .. } => "reacquiring",
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
                    // The wait takes the lock back through its semaphore.
                    cond.lock.unbias();
                    cond.lock.unlock();
                    this.phase = Phase::Waiting(key);
                    return Poll::Pending;
                }
                Phase::Waiting(key) => {
                    if let Err(c) = cancel::check() {
                        cond.leave(key);
                        this.err = Some(c);
                        this.phase = Phase::Reacquire { notified: false };
                        continue;
                    }
                    match cond.waiters.lock().poll(key, cx.waker()) {
                        None => return Poll::Pending,
                        Some(_) => this.phase = Phase::Reacquire { notified: true },
                    }
                }
                Phase::Reacquire { notified } => {
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
                            cond.lock.took();
                            this.phase = Phase::Done;
                            return Poll::Ready(match this.err.take() {
                                Some(c) => {
                                    if notified {
                                        cond.pass_on();
                                    }
                                    Err(c)
                                }
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
        match self.phase {
            Phase::Waiting(key) => self.cond.leave(key),
            Phase::Reacquire { notified: true } => self.cond.pass_on(),
            Phase::Reacquire { notified: false } | Phase::Start | Phase::Done => {}
        }
        // A pending re-acquire passes the lock on when it drops.
    }
}
