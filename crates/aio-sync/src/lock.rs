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
use crate::loom::bias;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
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
/// An uncontended acquire or release is one atomic compare-and-swap; on
/// Linux, a lock used by one thread only (a loop's tasks) takes none (see
/// "Biased" below).
///
/// # Biased
/// Once a lock is released with nobody waiting, it is *biased* to the
/// releasing thread: that thread's next acquires and releases are plain
/// loads and stores, with no atomic read-modify-write. Another thread
/// that touches the lock, or a second task of the same thread that must
/// wait for it, ends the bias for good (a `membarrier` system call, once;
/// the owner's own tasks need none), and the lock works as described
/// above from then on. Where the system offers no `membarrier`, a lock is
/// never biased.
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
    /// fails instead of letting a second task in. (While biased, `Bias::held`
    /// says it instead.)
    taken: AtomicBool,
    bias: Bias,
}

/// `Bias::owner` before any bias: the lock may be biased at a release.
const INITIAL: usize = 1;
/// `Bias::owner` for good once a bias is revoked (or was never possible).
const UNBIASED: usize = 0;

/// A lock's bias to one thread.
///
/// While biased, the semaphore's one permit is lent to the owner thread,
/// and `held` (written by the owner only, with plain stores) says whether
/// one of its tasks holds the lock. The owner's acquire stores `held`,
/// then, after a [light fence](bias::light), loads `revoking`; a revoker
/// stores `revoking`, then, after a [heavy fence](bias::heavy), loads
/// `held`. Whatever the interleaving, one sees the other: either the
/// owner sees `revoking`, or the revoker sees the owner's store. The
/// revoker records what it saw in `found_held` and moves the lock to the
/// semaphore (the permit back into it, or `taken` set); an owner that saw
/// `revoking` waits for that, then compares `found_held` with what it
/// stored to learn whether its operation counted.
struct Bias {
    /// `INITIAL`, the owner thread's id (`bias::thread_id`), or `UNBIASED`.
    owner: AtomicUsize,
    held: AtomicBool,
    revoking: AtomicBool,
    found_held: AtomicBool,
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
            .field("biased", &(self.bias.owner.load(Ordering::Relaxed) > INITIAL))
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
                bias: Bias {
                    owner: AtomicUsize::new(INITIAL),
                    held: AtomicBool::new(false),
                    revoking: AtomicBool::new(false),
                    found_held: AtomicBool::new(false),
                },
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
        self.try_take().then(|| LockGuard::new(self))
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
        self.try_take().then(|| OwnedLockGuard {
            lock: self.clone(),
            held: true,
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
        match self.biased_release() {
            Some(true) => return Ok(()),
            Some(false) => return Err(LockReleaseError),
            None => self.revoke_foreign(),
        }
        // Not held (free, or handed to a waiter that has not run): asyncio's
        // "Lock is not acquired".
        if !self.taken.swap(false, Ordering::AcqRel) {
            return Err(LockReleaseError);
        }
        if self.hand_on() { Ok(()) } else { Err(LockReleaseError) }
    }

    /// Whether a task holds the lock. As asyncio's, false while the lock is
    /// handed to a waiter that has not run yet (an acquire still waits
    /// then: the lock is that waiter's).
    pub fn locked(&self) -> bool {
        if self.bias.owner.load(Ordering::Acquire) > INITIAL {
            return self.bias.held.load(Ordering::Relaxed);
        }
        self.taken.load(Ordering::Acquire)
    }

    /// An unbiased acquire returns: the lock is held. (A biased one
    /// leaves `taken` alone: only unbiased paths and the revocation write
    /// it, so a stale biased write can never land after the revocation's.)
    #[inline]
    pub(crate) fn took(&self) {
        self.taken.store(true, Ordering::Release);
    }

    /// The one way the lock is given up, by guards, by `release` and by
    /// `Condition::wait`: to the first waiter, else unlocked. Returns false,
    /// changing nothing, if the lock was not locked (bounded, so a stray
    /// release can never make it free twice).
    #[inline]
    pub(crate) fn unlock(&self) -> bool {
        if let Some(released) = self.biased_release() {
            return released;
        }
        self.revoke_foreign();
        self.unlock_unbiased()
    }

    /// [`unlock`](Lock::unlock) once the lock is not biased (or biased
    /// from `INITIAL` by this very release, see `hand_on`).
    fn unlock_unbiased(&self) -> bool {
        // Cleared first: the waiter it goes to sets it again.
        self.taken.store(false, Ordering::Release);
        self.hand_on()
    }

    /// Takes the lock if it is free and nobody waits for it.
    fn try_take(&self) -> bool {
        match self.biased_acquire(false) {
            Some(true) => return true,
            Some(false) => return false,
            None => self.revoke_foreign(),
        }
        let ok = self.sem.try_acquire().is_ok();
        if ok {
            self.took();
        }
        ok
    }

    /// Gives the permit of a lock just unlocked (`taken` cleared) to the
    /// first waiter, or back to the semaphore; or, the first time nobody
    /// waits, lends it to this thread: the lock is biased from now on.
    fn hand_on(&self) -> bool {
        if self.bias.owner.load(Ordering::Relaxed) == INITIAL && self.try_bias() {
            return true;
        }
        self.sem.release_bounded(1)
    }

    /// Biases the lock, unlocked by this thread with nobody waiting, to
    /// this thread. False if it cannot (waiters, no heavy fence, or
    /// unbiased meanwhile): the caller releases the permit as usual.
    #[cold]
    fn try_bias(&self) -> bool {
        let b = &self.bias;
        if !bias::heavy_supported() {
            let _ = b
                .owner
                .compare_exchange(INITIAL, UNBIASED, Ordering::Relaxed, Ordering::Relaxed);
            return false;
        }
        if self.sem.has_waiters() {
            return false;
        }
        // The permit stays out of the semaphore, lent to the bias.
        b.held.store(false, Ordering::Relaxed);
        let me = bias::thread_id();
        if b.owner
            .compare_exchange(INITIAL, me, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // A waiter that queued as we biased: either it sees the bias (and
        // revokes it, `after_queueing`) or we see it here. Both fences are
        // SeqCst, so one of us does.
        fence(Ordering::SeqCst);
        if self.sem.has_waiters() {
            self.revoke(true);
        }
        true
    }

    /// Whether this thread owns the lock's bias.
    #[inline]
    fn owned_here(&self) -> bool {
        let owner = self.bias.owner.load(Ordering::Relaxed);
        owner > INITIAL && owner == bias::thread_id()
    }

    /// The owner thread's acquire, without atomic read-modify-writes.
    /// `None`: this thread does not own the bias. `Some(true)`: taken.
    /// `Some(false)`: not taken — the lock is held by another task of this
    /// thread (then, with `contend`, the bias ends so that the caller can
    /// queue), or a revocation just ended the bias before the take
    /// counted: either way the caller goes on the unbiased way.
    #[inline]
    fn biased_acquire(&self, contend: bool) -> Option<bool> {
        if !self.owned_here() {
            return None;
        }
        let b = &self.bias;
        if b.held.load(Ordering::Relaxed) {
            if contend {
                self.revoke(true);
            }
            return Some(false);
        }
        b.held.store(true, Ordering::Relaxed);
        bias::light();
        if !b.revoking.load(Ordering::Relaxed) {
            return Some(true);
        }
        self.wait_unbiased();
        // It counted if the revocation saw it (and moved it over as held).
        Some(b.found_held.load(Ordering::Relaxed))
    }

    /// The owner thread's release, without atomic read-modify-writes.
    /// `None`: this thread does not own the bias; `Some(false)`: the lock
    /// was not held.
    #[inline]
    fn biased_release(&self) -> Option<bool> {
        if !self.owned_here() {
            return None;
        }
        let b = &self.bias;
        if !b.held.load(Ordering::Relaxed) {
            return Some(false);
        }
        b.held.store(false, Ordering::Relaxed);
        bias::light();
        if b.revoking.load(Ordering::Relaxed) {
            self.wait_unbiased();
            if b.found_held.load(Ordering::Relaxed) {
                // The revocation saw it still held and moved it over so:
                // release it the unbiased way.
                self.unlock_unbiased();
            }
        }
        Some(true)
    }

    /// Ends a bias to another thread before this one uses the lock.
    #[inline]
    fn revoke_foreign(&self) {
        if self.bias.owner.load(Ordering::Acquire) > INITIAL {
            self.revoke(false);
        }
    }

    /// A waiter just queued in the semaphore: if the lock is biased (to
    /// this thread or another), the bias ends, so the permit comes back to
    /// the semaphore and reaches the queue. Pairs with the fence in
    /// `try_bias`.
    pub(crate) fn after_queueing(&self) {
        fence(Ordering::SeqCst);
        let owner = self.bias.owner.load(Ordering::Relaxed);
        if owner > INITIAL {
            self.revoke(owner == bias::thread_id());
        }
    }

    /// Ends the bias for good (before a `Condition` wait, which works on
    /// the semaphore directly).
    pub(crate) fn unbias(&self) {
        let owner = &self.bias.owner;
        loop {
            match owner.load(Ordering::Acquire) {
                UNBIASED => return,
                INITIAL => {
                    if owner
                        .compare_exchange(INITIAL, UNBIASED, Ordering::SeqCst, Ordering::Acquire)
                        .is_ok()
                    {
                        return;
                    }
                }
                o => return self.revoke(o == bias::thread_id()),
            }
        }
    }

    /// Ends the bias: moves the lock's state into the semaphore and marks
    /// the lock unbiased for good. `by_owner`: the owner thread itself,
    /// which has no biased operation in flight, so needs no heavy fence.
    #[cold]
    fn revoke(&self, by_owner: bool) {
        let b = &self.bias;
        if b.revoking
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            // Another thread revokes: wait until it is done.
            self.wait_unbiased();
            return;
        }
        if !by_owner {
            bias::heavy();
        }
        fence(Ordering::SeqCst);
        let held = b.held.load(Ordering::Relaxed);
        b.found_held.store(held, Ordering::Relaxed);
        self.taken.store(held, Ordering::Release);
        if !held {
            self.sem.release();
        }
        // Else the permit stays out: a task of the owner holds the lock.
        b.owner.store(UNBIASED, Ordering::Release);
    }

    /// Waits until a revocation in progress is done.
    #[cold]
    fn wait_unbiased(&self) {
        let mut round = 0;
        while self.bias.owner.load(Ordering::Acquire) != UNBIASED {
            bias::spin(&mut round);
        }
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
        let lock = this.lock;
        let queued = this.raw.is_queued();
        if !queued && lock.biased_acquire(true) == Some(true) {
            return Poll::Ready(Ok(LockGuard::new(lock)));
        }
        match this.raw.poll_acquire(cx) {
            Poll::Pending => {
                if !queued {
                    lock.after_queueing();
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                lock.took();
                Poll::Ready(Ok(LockGuard::new(lock)))
            }
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
    /// A guard for a lock this task holds (marked taken already: see
    /// `Lock::took`).
    fn new(lock: &'a Lock) -> LockGuard<'a> {
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
        let queued = this.slot.is_queued();
        let taken = !queued && lock.biased_acquire(true) == Some(true);
        if !taken {
            match this.slot.poll_acquire(&lock.sem, cx) {
                Poll::Pending => {
                    if !queued {
                        lock.after_queueing();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Ok(())) => lock.took(),
                Poll::Ready(Err(_)) => unreachable!("a lock is never closed"),
            }
        }
        let lock = this.lock.take().expect("checked above");
        Poll::Ready(Ok(OwnedLockGuard { lock, held: true }))
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
