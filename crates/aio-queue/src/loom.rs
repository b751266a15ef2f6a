//! Where the queues get their atomics and their locks: std's atomics,
//! aio-sync's [`SpinLock`](aio_sync::raw::SpinLock) and parking_lot's
//! mutex in a normal build, loom's under `cfg(loom)`, so the loom models
//! (`tests/loom_*.rs`) explore the very code the queues run. In a normal
//! build these are plain re-exports and cost nothing.
//!
//! loom's types cannot be made in a `const fn`, so under `cfg(loom)` the
//! constructors that are `const` otherwise are plain functions
//! (aio-sync's `const_unless_loom!`).

pub(crate) use aio_sync::const_unless_loom;

#[cfg(not(loom))]
pub(crate) mod sync {
    /// The FIFO store's lock: a spin lock (see `Store::Fifo`).
    pub(crate) use aio_sync::raw::SpinLock;
    /// The heap's and the stack's lock.
    pub(crate) use parking_lot::Mutex;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    }
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    }

    /// Both locks are aio-sync's under loom: loom's mutex.
    pub(crate) use aio_sync::raw::SpinLock;
    pub(crate) use aio_sync::raw::SpinLock as Mutex;
}
