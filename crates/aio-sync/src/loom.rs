//! Where the waiter lists get their atomics and their mutex: std's and
//! a short spin lock (below) in a normal build, loom's under `cfg(loom)`, so the loom
//! models (`tests/loom_*.rs`) explore the very code the primitives run. In
//! a normal build these are plain re-exports and cost nothing.
//!
//! loom's types cannot be made in a `const fn`, so under `cfg(loom)` the
//! constructors that are `const` otherwise are plain functions.

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use super::spin_lock::Mutex;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    }
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    }

    /// parking_lot's `Mutex` interface on loom's mutex (which returns a
    /// `Result`, as std's does).
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().expect("a model thread panicked holding the lock")
        }
    }
}

/// The waiter lists' mutex: a test-and-test-and-set spin lock that backs
/// off to `yield_now`. Every critical section it guards is a few list
/// steps (no wake, no allocation once the slab is warm), so a waiting
/// thread rarely spins; what it buys is the release, a plain store where
/// parking_lot's costs a second atomic read-modify-write. That is one of
/// the three or four atomic steps a contended lock hand-off or a queue
/// wake-up takes. A thread that finds it held spins a little, then yields
/// its time slice, so a holder that was preempted gets the CPU back.
#[cfg(not(loom))]
mod spin_lock {
    use spin::mutex::{SpinMutex, SpinMutexGuard};

    pub(crate) struct Mutex<T>(SpinMutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Mutex<T> {
            Mutex(SpinMutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> SpinMutexGuard<'_, T> {
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
}
