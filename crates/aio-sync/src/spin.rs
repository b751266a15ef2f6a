//! [`SpinLock`]: the short lock under the waiter lists here and under
//! aio-queue's FIFO store.

use std::ops::DerefMut;

use spin::mutex::{SpinMutex, SpinMutexGuard};

/// A test-and-test-and-set spin lock that backs off to `yield_now`, for
/// critical sections of a few steps (a list link, a ring buffer's push or
/// pop; no wake, no allocation once warm).
///
/// What it buys over a parking mutex is the release: a plain store, where
/// parking_lot's is a second atomic read-modify-write — one of the three
/// or four atomic steps a contended lock hand-off or a queue wake-up
/// takes. A thread that finds it held spins a little, then yields its time
/// slice, so a holder that was preempted gets the CPU back. Do not hold it
/// across anything that can block or take long.
///
/// # Examples
/// ```
/// use aio_sync::raw::SpinLock;
///
/// static COUNT: SpinLock<u64> = SpinLock::new(0);
/// *COUNT.lock() += 1;
/// assert_eq!(*COUNT.lock(), 1);
/// ```
pub struct SpinLock<T>(SpinMutex<T>);

impl<T: std::fmt::Debug> std::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinLock").field("locked", &self.0.is_locked()).finish()
    }
}

impl<T> SpinLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> SpinLock<T> {
        SpinLock(SpinMutex::new(value))
    }

    /// Takes the lock, spinning (then yielding) while another thread holds
    /// it; released when the guard drops.
    // `always`: called from another crate (aio-queue's store), a plain
    // `inline` was not followed, and the call made a queue round trip 20%
    // slower (`prof cmp queue`: 215 against 177 ns).
    #[inline(always)]
    pub fn lock(&self) -> impl DerefMut<Target = T> + '_ {
        match self.0.try_lock() {
            Some(guard) => guard,
            None => self.lock_contended(),
        }
    }

    #[cold]
    fn lock_contended(&self) -> SpinMutexGuard<'_, T> {
        let mut round = 0u32;
        loop {
            // Wait for it to look free before trying again, so waiting
            // threads do not bounce the cache line between them.
            while self.0.is_locked() {
                if round < 6 {
                    for _ in 0..1u32 << round {
                        std::hint::spin_loop();
                    }
                    round += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            if let Some(guard) = self.0.try_lock() {
                return guard;
            }
        }
    }
}
