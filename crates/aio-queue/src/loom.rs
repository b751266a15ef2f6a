//! Where the queues get their atomics and their lock: std's atomics
//! aio-sync's [`SpinLock`](aio_sync::raw::SpinLock) in a normal build, loom's under `cfg(loom)`, so the loom models
//! (`tests/loom_*.rs`) explore the very code the queues run. In a normal
//! build these are plain re-exports and cost nothing.
//!
//! loom's types cannot be made in a `const fn`, so under `cfg(loom)` the
//! constructors that are `const` otherwise are plain functions
//! (aio-sync's `const_unless_loom!`).

pub(crate) use aio_sync::const_unless_loom;

#[cfg(not(loom))]
pub(crate) mod sync {
    /// The queue's lock: a spin lock (see `Base`).
    pub(crate) use aio_sync::raw::SpinLock;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    }
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    }

    /// aio-sync's spin lock is loom's mutex under loom.
    pub(crate) use aio_sync::raw::SpinLock;
}
