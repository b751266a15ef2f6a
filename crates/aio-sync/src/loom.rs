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

/// The thread id kept in `id`, drawn from `next` on first use.
fn id_in(id: &std::cell::Cell<usize>, next: impl FnOnce() -> usize) -> usize {
    match id.get() {
        0 => {
            let new = next();
            id.set(new);
            new
        }
        n => n,
    }
}

/// What a biased [`Lock`](crate::Lock) needs besides atomics: the fences
/// of its asymmetric protocol, an identity for the current thread, and a
/// way to wait for another thread. In a normal build, aio-core's
/// asymmetric fences; under loom, both fences are full `SeqCst` fences —
/// the symmetric form of the same guarantee, which the models can check.
#[cfg(not(loom))]
pub(crate) mod bias {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(crate) use aio_core::fence::{heavy_supported, light};

    /// The rare side's fence (see `aio_core::fence`).
    pub(crate) fn heavy() {
        aio_core::fence::heavy();
    }

    /// A number for the current thread, never 0 or 1 and never reused.
    #[inline]
    pub(crate) fn thread_id() -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(2);
        thread_local! {
            // No destructor: readable until the thread is gone.
            static ID: Cell<usize> = const { Cell::new(0) };
        }
        ID.with(|id| super::id_in(id, || NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    /// One step of waiting for another thread to finish a short section.
    pub(crate) fn spin(round: &mut u32) {
        if *round < 6 {
            for _ in 0..1u32 << *round {
                std::hint::spin_loop();
            }
            *round += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(loom)]
pub(crate) mod bias {
    use loom::sync::atomic::{Ordering, fence};

    pub(crate) fn heavy_supported() -> bool {
        true
    }

    pub(crate) fn light() {
        fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy() {
        fence(Ordering::SeqCst);
    }

    pub(crate) fn thread_id() -> usize {
        loom::lazy_static! {
            static ref NEXT: loom::sync::atomic::AtomicUsize = loom::sync::atomic::AtomicUsize::new(2);
        }
        loom::thread_local! {
            static ID: std::cell::Cell<usize> = std::cell::Cell::new(0);
        }
        ID.with(|id| super::id_in(id, || NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    pub(crate) fn spin(_round: &mut u32) {
        loom::thread::yield_now();
    }
}
