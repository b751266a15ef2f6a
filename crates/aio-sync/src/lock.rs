//! `Lock`: asyncio's mutual-exclusion lock, fair and guard-based.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use aio_core::Cancelled;
use aio_core::cancel;

use crate::raw::{RawAcquire, RawSemaphore};

/// A mutual-exclusion lock for tasks: asyncio's `Lock`.
///
/// `async with lock:` is `let _guard = lock.acquire().await?;`; the lock
/// is released when the guard drops. Like asyncio's, the lock protects no
/// data of its own: it orders critical sections that await in the middle.
/// Unlike asyncio's, it is fair across threads and loops too: waiters are
/// served strictly in arrival order, and a release hands the lock straight
/// to the first waiter, so a newcomer cannot take it first.
///
/// An uncontended acquire or release is one atomic compare-and-swap.
///
/// # Examples
/// ```
/// use std::cell::Cell;
///
/// static LOCK: aio_sync::Lock = aio_sync::Lock::new();
///
/// async fn increment(counter: &Cell<u32>) -> aio_core::Result<()> {
///     let _guard = LOCK.acquire().await?;
///     let current = counter.get();
///     aio_core::sleep(0).await?; // other tasks run here, but not this section
///     counter.set(current + 1);
///     Ok(())
/// }
///
/// let n = aio_core::run(async {
///     let counter = Cell::new(0);
///     aio_core::gather((0..10).map(|_| increment(&counter))).await?;
///     Ok::<_, aio_core::Cancelled>(counter.get())
/// });
/// assert_eq!(n.unwrap(), 10);
/// ```
pub struct Lock {
    pub(crate) sem: RawSemaphore,
}

impl Default for Lock {
    fn default() -> Lock {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiters", &self.sem.has_waiters())
            .finish()
    }
}

impl Lock {
    /// An unlocked lock. `const`, so a lock can be a `static`, as a
    /// module-level lock is in Python.
    pub const fn new() -> Lock {
        Lock {
            sem: RawSemaphore::new(1),
        }
    }

    /// Waits for the lock and returns a guard that releases it on drop.
    ///
    /// # Cancellation
    /// If the task is cancelled while waiting, the future returns
    /// `Err(Cancelled)` and leaves the queue. If the lock had already been
    /// handed to it (released by the holder, but this task had not run
    /// yet), it passes the lock on to the next waiter, or unlocks it: the
    /// lock is never lost. Dropping the future does the same.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run(async {
    /// let lock = aio_sync::Lock::new();
    /// let guard = lock.acquire().await?;
    /// assert!(lock.locked());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// # Ok::<(), aio_core::Cancelled>(())
    /// # }).unwrap();
    /// ```
    pub fn acquire(&self) -> LockAcquire<'_> {
        LockAcquire {
            lock: self,
            raw: self.sem.acquire(),
        }
    }

    /// Takes the lock if it is free and nobody is waiting for it.
    ///
    /// # Examples
    /// ```
    /// let lock = aio_sync::Lock::new();
    /// let g = lock.try_acquire().unwrap();
    /// assert!(lock.try_acquire().is_none());
    /// drop(g);
    /// ```
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.sem.try_acquire().ok().map(|()| LockGuard::new(self))
    }

    /// Whether the lock is held (or handed to a waiter that has not run
    /// yet).
    pub fn locked(&self) -> bool {
        self.sem.available_permits() == 0
    }
}

/// Future of [`Lock::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct LockAcquire<'a> {
    lock: &'a Lock,
    raw: RawAcquire<'a>,
}

impl fmt::Debug for LockAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockAcquire")
            .field("queued", &self.raw.is_queued())
            .finish()
    }
}

impl<'a> Future for LockAcquire<'a> {
    type Output = Result<LockGuard<'a>, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.raw.cancel();
            return Poll::Ready(Err(c));
        }
        match this.raw.poll_acquire(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(LockGuard::new(this.lock))),
            Poll::Ready(Err(_)) => unreachable!("a lock is never closed"),
        }
    }
}

/// Holds a [`Lock`]; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    /// False while a `Condition::wait` has the lock released (and after a
    /// wait was dropped before it got the lock back).
    pub(crate) held: bool,
}

impl<'a> LockGuard<'a> {
    fn new(lock: &'a Lock) -> LockGuard<'a> {
        LockGuard { lock, held: true }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a Lock {
        self.lock
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("held", &self.held).finish()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            self.lock.sem.release();
        }
    }
}
