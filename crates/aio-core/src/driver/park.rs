//! The driver-less parker: the loop thread parks with `std::thread::park`
//! (a futex on Linux) and other threads unpark it.

use std::any::Any;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Driver, Unpark};
use crate::loom::sync::OnceLock;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::thread::{self, Thread};

/// A [`Driver`] with no I/O: parks the loop thread until a timer is due or
/// another thread unparks it.
pub struct ParkDriver {
    inner: Arc<Parker>,
}

struct Parker {
    /// A wake that the next park must not sleep through.
    notified: AtomicBool,
    /// The loop's thread, known from its first park.
    thread: OnceLock<Thread>,
}

impl ParkDriver {
    /// A new parker.
    pub fn new() -> ParkDriver {
        ParkDriver {
            inner: Arc::new(Parker {
                notified: AtomicBool::new(false),
                thread: OnceLock::new(),
            }),
        }
    }
}

impl Default for ParkDriver {
    fn default() -> Self {
        ParkDriver::new()
    }
}

impl Driver for ParkDriver {
    fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let p = &self.inner;
        p.thread.get_or_init(thread::current);
        if p.notified.swap(false, Ordering::AcqRel) || timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        // `thread::park` may return spuriously, and a stale token may end it
        // early: the loop tolerates both (it just runs a turn).
        match timeout {
            None => thread::park(),
            Some(t) => {
                let deadline = Instant::now().checked_add(t);
                match deadline {
                    Some(d) => {
                        let now = Instant::now();
                        if d > now {
                            thread::park_timeout(d - now);
                        }
                    }
                    None => thread::park(),
                }
            }
        }
        p.notified.store(false, Ordering::Release);
        Ok(())
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.inner.clone()
    }

    fn name(&self) -> &'static str {
        "park"
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

impl Unpark for Parker {
    fn unpark(&self) {
        // A swap, not a store (found by the loom model `loom_inject`): on
        // its first park the loop publishes its thread and then swaps the
        // flag; this side raises the flag and then looks for the thread.
        // With a plain store each side could miss the other's write (a
        // store-load reordering, which x86 does too): no thread to unpark,
        // no flag seen, and the loop sleeps through the wake. Two
        // read-modify-writes of one word are ordered: either the loop's
        // swap reads this flag, or this swap reads the loop's, and with it
        // sees the thread published before.
        self.notified.swap(true, Ordering::AcqRel);
        // Before the loop's first park there is no thread to wake, and the
        // flag is enough: that park returns at once.
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}
