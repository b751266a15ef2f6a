//! The driver-less parker: a mutex, a condition variable and a flag.

use std::any::Any;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Driver, Unpark};

/// A [`Driver`] with no I/O: parks the loop thread on a condition variable
/// until a timer is due or another thread unparks it.
pub struct ParkDriver {
    inner: Arc<Parker>,
}

struct Parker {
    notified: Mutex<bool>,
    cv: Condvar,
}

impl ParkDriver {
    /// A new parker.
    pub fn new() -> ParkDriver {
        ParkDriver {
            inner: Arc::new(Parker {
                notified: Mutex::new(false),
                cv: Condvar::new(),
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
        let mut notified = self.inner.notified.lock();
        if !*notified {
            match timeout {
                Some(Duration::ZERO) => {}
                Some(t) => {
                    let deadline = Instant::now().checked_add(t);
                    match deadline {
                        Some(d) => {
                            while !*notified {
                                if self.inner.cv.wait_until(&mut notified, d).timed_out() {
                                    break;
                                }
                            }
                        }
                        None => self.inner.cv.wait_while(&mut notified, |n| !*n),
                    }
                }
                None => self.inner.cv.wait_while(&mut notified, |n| !*n),
            }
        }
        *notified = false;
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
        let mut n = self.notified.lock();
        if !*n {
            *n = true;
            self.cv.notify_one();
        }
    }
}
