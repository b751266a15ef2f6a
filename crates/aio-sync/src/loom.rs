//! Where the waiter lists get their atomics and their mutex: std's
//! atomics and [`SpinLock`](crate::raw::SpinLock) in a normal build,
//! loom's under `cfg(loom)`, so the loom models (`tests/loom_*.rs`)
//! explore the very code the primitives run. In a normal build these are
//! plain re-exports and cost nothing.
//!
//! loom's types cannot be made in a `const fn`, so under `cfg(loom)` the
//! constructors that are `const` otherwise are plain functions: each is
//! written once, inside [`const_unless_loom!`](crate::const_unless_loom),
//! which aio-queue uses too.

/// Defines a `const fn` that is a plain `fn` under `cfg(loom)` (for the
/// constructors of aio-sync and aio-queue; not part of the API).
#[doc(hidden)]
#[macro_export]
macro_rules! const_unless_loom {
    ($(#[$m:meta])* $v:vis const fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $v const fn $($rest)*
        #[cfg(loom)]
        $(#[$m])* $v fn $($rest)*
    };
}

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use crate::spin::SpinLock as Mutex;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    }
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    }

    /// The spin lock's interface on loom's mutex
    /// (which returns a `Result`, as std's does); `raw::SpinLock` under
    /// loom.
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// An unlocked lock holding `value`.
        pub fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        /// Takes the lock; released when the guard drops.
        pub fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().expect("a model thread panicked holding the lock")
        }
    }
}
