//! Where the code that crosses threads gets its atomics, its `OnceLock` and
//! its thread parking: std's in a normal build, loom's under `cfg(loom)`,
//! so the loom models (`tests/loom_*.rs`) explore the very code the loop
//! runs (tokio's `loom` facade). In a normal build everything here is a
//! plain re-export and costs nothing.
//!
//! Users: the task header's state word and reference count
//! (`task::raw`), a loop's thread-safe half (`event_loop::Shared`: the
//! injection queue, the park state, the closed flag) and the driver-less
//! parker (`driver::park`). Under `cfg(loom)` this module is public and
//! also holds [`model`], the internals the models drive.

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use std::sync::OnceLock;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering, fence};
    }
}

#[cfg(not(loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::{Thread, current, park, park_timeout};
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) use self::once_lock::OnceLock;

    pub(crate) mod atomic {
        pub(crate) use ::loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering, fence};
    }

    mod once_lock {
        use ::loom::cell::UnsafeCell;
        use ::loom::sync::atomic::{AtomicU8, Ordering};

        const EMPTY: u8 = 0;
        const RUNNING: u8 = 1;
        const DONE: u8 = 2;

        /// std's `OnceLock`, as far as aio uses it, on loom's atomics (loom
        /// has none): set once, then read from any thread.
        pub(crate) struct OnceLock<T> {
            state: AtomicU8,
            value: UnsafeCell<Option<T>>,
        }

        // SAFETY: the value is written once, before `state` says `DONE`
        // with release ordering, and only read after an acquire load saw
        // `DONE`; from then on it is shared immutably, as std's is.
        unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}
        // SAFETY: moving the lock moves the value; nothing is shared.
        unsafe impl<T: Send> Send for OnceLock<T> {}

        impl<T> OnceLock<T> {
            pub(crate) fn new() -> OnceLock<T> {
                OnceLock {
                    state: AtomicU8::new(EMPTY),
                    value: UnsafeCell::new(None),
                }
            }

            pub(crate) fn get(&self) -> Option<&T> {
                if self.state.load(Ordering::Acquire) != DONE {
                    return None;
                }
                // SAFETY: `DONE` was stored (release) after the value was
                // written, and the value is never written again.
                self.value.with(|p| unsafe { (*p).as_ref() })
            }

            pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
                let mut f = Some(f);
                loop {
                    if let Some(v) = self.get() {
                        return v;
                    }
                    match self
                        .state
                        .compare_exchange(EMPTY, RUNNING, Ordering::Acquire, Ordering::Acquire)
                    {
                        Ok(_) => {
                            let v = f.take().map(|f| f());
                            // SAFETY: winning `EMPTY -> RUNNING` makes this
                            // the only writer, and readers wait for `DONE`.
                            self.value.with_mut(|p| unsafe { *p = v });
                            self.state.store(DONE, Ordering::Release);
                        }
                        Err(_) => ::loom::thread::yield_now(),
                    }
                }
            }
        }
    }
}

#[cfg(loom)]
pub(crate) mod thread {
    pub(crate) use ::loom::thread::{Thread, current, park};

    /// loom has no timed park: under loom the time runs out at once (a
    /// timed park may always end early; the loop takes it as a turn).
    pub(crate) fn park_timeout(_: std::time::Duration) {
        ::loom::thread::yield_now();
    }
}

#[cfg(loom)]
pub mod model;
