//! `Semaphore` and `BoundedSemaphore`: asyncio's counting semaphores, fair.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use aio_core::Cancelled;
use aio_core::cancel;

use crate::const_unless_loom;
use crate::raw::{RawAcquire, RawSemaphore};

/// The error of releasing a [`BoundedSemaphore`] more times than it was
/// acquired: asyncio's `ValueError('BoundedSemaphore released too many
/// times')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReleaseError;

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundedSemaphore released too many times")
    }
}

impl std::error::Error for ReleaseError {}

/// A counting semaphore: asyncio's `Semaphore`.
///
/// It holds a number of permits; [`acquire`](Semaphore::acquire) waits for
/// one and returns a guard that gives it back on drop (`async with sem:`).
/// [`release`](Semaphore::release) adds a permit by hand, as asyncio's
/// `release()`; with plain `Semaphore` it may raise the count above the
/// initial value ([`BoundedSemaphore`] refuses that).
///
/// Waiters are served in arrival order, across threads and loops too: a
/// release hands its permit straight to the first waiter, whose task then
/// runs after the tasks already ready — asyncio's order exactly. As in
/// asyncio, a waiter handed a permit still counts as waiting until its
/// task runs: an acquire made meanwhile waits behind it even if another
/// permit is free (and [`locked`](Semaphore::locked) is true), and gets
/// that permit when the waiter runs. An uncontended acquire or release is
/// one atomic compare-and-swap.
///
/// # Examples
/// ```
/// use std::cell::Cell;
///
/// async fn fetch(sem: &aio_sync::Semaphore, busy: &Cell<u32>, peak: &Cell<u32>) -> aio_core::Result<()> {
///     let _permit = sem.acquire().await?;
///     busy.set(busy.get() + 1);
///     peak.set(peak.get().max(busy.get()));
///     aio_core::sleep(0.001).await?;
///     busy.set(busy.get() - 1);
///     Ok(())
/// }
///
/// let peak = aio_core::run(async {
///     let sem = aio_sync::Semaphore::new(3);
///     let (busy, peak) = (Cell::new(0), Cell::new(0));
///     aio_core::gather((0..8).map(|_| fetch(&sem, &busy, &peak))).await?;
///     Ok::<_, aio_core::Cancelled>(peak.get())
/// });
/// assert_eq!(peak.unwrap(), 3);
/// ```
pub struct Semaphore {
    sem: RawSemaphore,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("value", &self.value()).finish()
    }
}

impl Semaphore {
    const_unless_loom! {
        /// A semaphore with `value` permits (asyncio's default is 1).
        ///
        /// # Panics
        /// If `value` exceeds [`raw::MAX_PERMITS`](crate::raw::MAX_PERMITS).
        pub const fn new(value: usize) -> Semaphore {
            Semaphore {
                sem: RawSemaphore::new_strict(value),
            }
        }
    }

    /// Waits for a permit; the guard returns it on drop.
    ///
    /// # Cancellation
    /// If the task is cancelled while waiting, the future returns
    /// `Err(Cancelled)` and leaves the queue. A permit that had already
    /// been handed to it (released while this task had not run yet) passes
    /// to the next waiter, or back to the semaphore: no permit is ever
    /// lost. Dropping the future does the same.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run(async {
    /// let sem = aio_sync::Semaphore::new(2);
    /// let a = sem.acquire().await?;
    /// let _b = sem.acquire().await?;
    /// assert!(sem.locked());
    /// drop(a);
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), aio_core::Cancelled>(())
    /// # }).unwrap();
    /// ```
    pub fn acquire(&self) -> SemaphoreAcquire<'_> {
        SemaphoreAcquire {
            owner: Owner::Plain(self),
            raw: self.sem.acquire(),
        }
    }

    /// Takes a permit if one is free and nobody is waiting.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.sem.try_acquire().ok().map(|()| SemaphoreGuard {
            sem: &self.sem,
            bound: usize::MAX,
        })
    }

    /// Adds a permit (to the first waiter, if any): asyncio's `release()`.
    /// Pairs with [`SemaphoreGuard::forget`].
    ///
    /// # Panics
    /// If the count would exceed [`raw::MAX_PERMITS`](crate::raw::MAX_PERMITS).
    pub fn release(&self) {
        self.sem.release();
    }

    /// Whether an acquire would wait: no permit is free, or tasks wait
    /// (asyncio's `locked()`).
    pub fn locked(&self) -> bool {
        self.sem.would_wait()
    }

    /// The number of free permits (asyncio's `_value`).
    pub fn value(&self) -> usize {
        self.sem.available_permits()
    }
}

/// A semaphore that refuses to be released above its initial value:
/// asyncio's `BoundedSemaphore`.
///
/// [`release`](BoundedSemaphore::release) returns [`ReleaseError`] instead
/// of raising the count past the bound. Otherwise it is a [`Semaphore`].
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let sem = aio_sync::BoundedSemaphore::new(1);
/// assert_eq!(sem.release(), Err(aio_sync::ReleaseError));
/// let permit = sem.acquire().await?;
/// permit.forget();
/// assert_eq!(sem.release(), Ok(()));
/// # Ok::<(), aio_core::Cancelled>(())
/// # }).unwrap();
/// ```
pub struct BoundedSemaphore {
    sem: RawSemaphore,
    bound: usize,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &self.bound)
            .finish()
    }
}

impl BoundedSemaphore {
    const_unless_loom! {
        /// A semaphore with `value` permits, which is also its bound.
        ///
        /// # Panics
        /// If `value` exceeds [`raw::MAX_PERMITS`](crate::raw::MAX_PERMITS).
        pub const fn new(value: usize) -> BoundedSemaphore {
            BoundedSemaphore {
                sem: RawSemaphore::new_strict(value),
                bound: value,
            }
        }
    }

    /// Waits for a permit; the guard returns it on drop.
    ///
    /// # Cancellation
    /// As [`Semaphore::acquire`]: a permit handed to a waiter that was
    /// cancelled or dropped passes on; none is lost.
    pub fn acquire(&self) -> SemaphoreAcquire<'_> {
        SemaphoreAcquire {
            owner: Owner::Bounded(self),
            raw: self.sem.acquire(),
        }
    }

    /// Takes a permit if one is free and nobody is waiting.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.sem.try_acquire().ok().map(|()| SemaphoreGuard {
            sem: &self.sem,
            bound: self.bound,
        })
    }

    /// Adds a permit, unless all `bound` permits are already free.
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.sem.release_bounded(self.bound) {
            Ok(())
        } else {
            Err(ReleaseError)
        }
    }

    /// Whether an acquire would wait.
    pub fn locked(&self) -> bool {
        self.sem.would_wait()
    }

    /// The number of free permits.
    pub fn value(&self) -> usize {
        self.sem.available_permits()
    }
}

#[derive(Clone, Copy)]
enum Owner<'a> {
    Plain(&'a Semaphore),
    Bounded(&'a BoundedSemaphore),
}

/// Future of [`Semaphore::acquire`] and [`BoundedSemaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct SemaphoreAcquire<'a> {
    owner: Owner<'a>,
    raw: RawAcquire<'a>,
}

impl fmt::Debug for SemaphoreAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreAcquire")
            .field("queued", &self.raw.is_queued())
            .finish()
    }
}

impl<'a> Future for SemaphoreAcquire<'a> {
    type Output = Result<SemaphoreGuard<'a>, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.raw.cancel();
            return Poll::Ready(Err(c));
        }
        match this.raw.poll_acquire(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(match this.owner {
                Owner::Plain(s) => SemaphoreGuard {
                    sem: &s.sem,
                    bound: usize::MAX,
                },
                Owner::Bounded(s) => SemaphoreGuard {
                    sem: &s.sem,
                    bound: s.bound,
                },
            })),
            Poll::Ready(Err(_)) => unreachable!("a semaphore is never closed"),
        }
    }
}

/// One permit of a [`Semaphore`] or [`BoundedSemaphore`]; given back when
/// dropped.
#[must_use = "the permit is released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a RawSemaphore,
    bound: usize,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit taken: dropping the guard no longer releases it.
    /// Give it back later with `release()` (asyncio's manual
    /// `acquire()`/`release()` pairing).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // A bounded semaphore that was over-released by hand meanwhile stays
        // at its bound: the extra permit is dropped, never an error in drop.
        self.sem.release_bounded(self.bound);
    }
}
