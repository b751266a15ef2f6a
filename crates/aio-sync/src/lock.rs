//! `Lock`: asyncio's mutual-exclusion lock, fair and guard-based, with
//! asyncio's manual `release()` and owned guards for handing the lock to
//! another task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aio_core::Cancelled;
use aio_core::cancel;

use crate::const_unless_loom;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::raw::{AcquireSlot, RawAcquire, RawSemaphore};

/// The error of [`Lock::release`] on a lock that is not locked: asyncio's
/// `RuntimeError('Lock is not acquired.')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockReleaseError;

impl fmt::Display for LockReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lock is not acquired")
    }
}

impl std::error::Error for LockReleaseError {}

/// A mutual-exclusion lock for tasks: asyncio's `Lock`.
///
/// `async with lock:` is `let _guard = lock.acquire().await?;`; the lock
/// is released when the guard drops. Like asyncio's, the lock protects no
/// data of its own: it orders critical sections that await in the middle.
/// Unlike asyncio's, it is fair across threads and loops too: waiters are
/// served strictly in arrival order, and a release hands the lock straight
/// to the first waiter, so a newcomer cannot take it first.
///
/// asyncio's manual style, `await lock.acquire()` ... `lock.release()`, is
/// `lock.acquire().await?.forget()` ... `lock.release()?` (see
/// [`LockGuard::forget`] and [`Lock::release`]). A guard that must outlive
/// the borrow, to move into another task or a struct, comes from
/// [`acquire_owned`](Lock::acquire_owned) on an `Arc<Lock>`.
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
    /// Held by a task that has run with it: set by every acquire as it
    /// returns, cleared by every unlock before it hands the lock on. While
    /// the lock is handed to a waiter that has not run, it is clear, as
    /// asyncio's `_locked` is: `locked()` is false and a stray `release()`
    /// fails instead of letting a second task in.
    taken: AtomicBool,
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
    const_unless_loom! {
        /// An unlocked lock. `const`, so a lock can be a `static`, as a
        /// module-level lock is in Python.
        pub const fn new() -> Lock {
            Lock {
                sem: RawSemaphore::new(1),
                taken: AtomicBool::new(false),
            }
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

    /// Waits for the lock and returns a guard that owns a reference to
    /// it: `'static`, so it can move into another task or thread, and it
    /// releases the lock when dropped there. The lock is queued for in the
    /// same FIFO order as [`acquire`](Lock::acquire).
    ///
    /// # Cancellation
    /// As [`acquire`](Lock::acquire): if the task is cancelled while
    /// waiting, the future returns `Err(Cancelled)`, and a lock already
    /// handed to it passes to the next waiter or is unlocked. Dropping the
    /// future does the same.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    ///
    /// # aio_core::run(async {
    /// let lock = Arc::new(aio_sync::Lock::new());
    /// let guard = lock.acquire_owned().await?;
    /// // The worker holds the lock until it finishes.
    /// let worker = aio_core::create_task(async move {
    ///     aio_core::sleep(0.001).await?;
    ///     drop(guard);
    ///     Ok::<_, aio_core::Cancelled>(())
    /// });
    /// assert!(lock.locked());
    /// let _g = lock.acquire().await?; // waits for the worker's drop
    /// worker.await.unwrap()?;
    /// # Ok::<(), aio_core::Cancelled>(())
    /// # }).unwrap();
    /// ```
    pub fn acquire_owned(self: &Arc<Self>) -> LockAcquireOwned {
        LockAcquireOwned {
            lock: Some(self.clone()),
            slot: AcquireSlot::new(),
        }
    }

    /// [`try_acquire`](Lock::try_acquire) returning an
    /// [`OwnedLockGuard`].
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<OwnedLockGuard> {
        self.sem.try_acquire().ok().map(|()| {
            self.took();
            OwnedLockGuard {
                lock: self.clone(),
                held: true,
            }
        })
    }

    /// Unlocks the lock: asyncio's `release()`, the partner of
    /// [`LockGuard::forget`]. If tasks are waiting, the lock goes straight
    /// to the first of them, exactly as when a guard drops.
    ///
    /// As in asyncio, any task may release the lock, not only the one that
    /// acquired it. Do not release a lock a live guard holds: the guard's
    /// drop would then release whoever holds it next. (If it is still
    /// unlocked by then, the drop does nothing: the lock never counts as
    /// free twice.)
    ///
    /// # Errors
    /// [`LockReleaseError`] if the lock is not locked (asyncio raises
    /// `RuntimeError`); nothing changes.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run(async {
    /// let lock = aio_sync::Lock::new();
    /// lock.acquire().await?.forget(); // `await lock.acquire()`
    /// assert!(lock.locked());
    /// assert_eq!(lock.release(), Ok(())); // `lock.release()`
    /// assert_eq!(lock.release(), Err(aio_sync::LockReleaseError));
    /// # Ok::<(), aio_core::Cancelled>(())
    /// # }).unwrap();
    /// ```
    pub fn release(&self) -> Result<(), LockReleaseError> {
        // Not held (free, or handed to a waiter that has not run): asyncio's
        // "Lock is not acquired".
        if !self.taken.swap(false, Ordering::AcqRel) {
            return Err(LockReleaseError);
        }
        if self.sem.release_bounded(1) {
            Ok(())
        } else {
            Err(LockReleaseError)
        }
    }

    /// Whether a task holds the lock. As asyncio's, false while the lock is
    /// handed to a waiter that has not run yet (an acquire still waits
    /// then: the lock is that waiter's).
    pub fn locked(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }

    /// An acquire returns: the lock is held.
    #[inline]
    pub(crate) fn took(&self) {
        self.taken.store(true, Ordering::Release);
    }

    /// The one way the lock is given up, by guards, by `release` and by
    /// `Condition::wait`: to the first waiter, else unlocked. Returns false,
    /// changing nothing, if the lock was not locked (bounded, so a stray
    /// release can never make it free twice).
    pub(crate) fn unlock(&self) -> bool {
        // Cleared first: the waiter it goes to sets it again.
        self.taken.store(false, Ordering::Release);
        self.sem.release_bounded(1)
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
        lock.took();
        LockGuard { lock, held: true }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a Lock {
        self.lock
    }

    /// Keeps the lock locked: dropping the guard no longer releases it.
    /// Unlock it later with [`Lock::release`] (asyncio's manual
    /// `acquire()`/`release()` pairing).
    ///
    /// # Examples
    /// ```
    /// let lock = aio_sync::Lock::new();
    /// lock.try_acquire().unwrap().forget();
    /// assert!(lock.locked());
    /// lock.release().unwrap();
    /// assert!(!lock.locked());
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
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
            self.lock.unlock();
        }
    }
}

/// Future of [`Lock::acquire_owned`].
#[must_use = "futures do nothing unless awaited"]
pub struct LockAcquireOwned {
    /// Taken when the guard is made.
    lock: Option<Arc<Lock>>,
    slot: AcquireSlot,
}

impl fmt::Debug for LockAcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockAcquireOwned")
            .field("queued", &self.slot.is_queued())
            .finish()
    }
}

impl Future for LockAcquireOwned {
    type Output = Result<OwnedLockGuard, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.lock.as_ref().expect("`LockAcquireOwned` polled after completion");
        if let Err(c) = cancel::check() {
            this.slot.cancel(&lock.sem);
            return Poll::Ready(Err(c));
        }
        match this.slot.poll_acquire(&lock.sem, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                let lock = this.lock.take().expect("checked above");
                lock.took();
                Poll::Ready(Ok(OwnedLockGuard { lock, held: true }))
            }
            Poll::Ready(Err(_)) => unreachable!("a lock is never closed"),
        }
    }
}

impl Drop for LockAcquireOwned {
    fn drop(&mut self) {
        if let Some(lock) = &self.lock {
            self.slot.cancel(&lock.sem);
        }
    }
}

/// Holds a [`Lock`] through an `Arc`, so it is `'static` and `Send`: it can
/// move into another task or thread. Releases the lock when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedLockGuard {
    lock: Arc<Lock>,
    /// False after `forget`.
    held: bool,
}

impl OwnedLockGuard {
    /// The lock this guard holds.
    pub fn lock(&self) -> &Arc<Lock> {
        &self.lock
    }

    /// Keeps the lock locked: dropping the guard no longer releases it.
    /// Unlock it later with [`Lock::release`]. (The guard's reference to
    /// the lock is dropped; only the lock stays taken.)
    pub fn forget(mut self) {
        self.held = false;
    }
}

impl fmt::Debug for OwnedLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedLockGuard").field("held", &self.held).finish()
    }
}

impl Drop for OwnedLockGuard {
    fn drop(&mut self) {
        if self.held {
            self.lock.unlock();
        }
    }
}
