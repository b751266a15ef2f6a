//! The loop's borrow of its driver, and the driver work that comes up
//! while the driver is busy.
//!
//! A driver wakes wakers inside its own calls (readiness in `park`, a
//! deregistered descriptor's waiters), and waking a waker may drop it. An
//! aio task's waker runs no user code there, but another executor's may:
//! its wake can drop that executor's task, and with it aio sockets or an
//! operation in flight — work that needs the very driver that is busy. That
//! work waits in [`Core::deferred`] and runs as soon as the driver's borrow
//! ends ([`DriverRef`]'s drop), before anything else can use the driver:
//! no descriptor number is reused under a stale registration, no memory is
//! freed under the kernel.

use std::any::Any;
use std::cell::RefMut;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::core::Core;
use crate::driver::Driver;

/// Driver work that can wait for the driver's borrow to end.
pub(crate) enum Deferred {
    /// A registered descriptor was dropped: deregister it and close it.
    Close(OwnedFd),
    /// A descriptor was handed back to its owner: deregister it only.
    Deregister(RawFd),
    /// The future of an operation in flight was dropped
    /// ([`IoDriver::forget_op`](crate::driver::IoDriver::forget_op)).
    Forget(u64, Box<dyn Any>),
}

/// The loop's driver, borrowed: what the loop and aio's I/O use to reach
/// it. Dropping it runs the work deferred meanwhile.
pub(crate) struct DriverRef<'a> {
    core: &'a Core,
    driver: Option<RefMut<'a, Box<dyn Driver>>>,
}

impl Deref for DriverRef<'_> {
    type Target = Box<dyn Driver>;

    fn deref(&self) -> &Box<dyn Driver> {
        self.driver.as_ref().expect("present until dropped")
    }
}

impl DerefMut for DriverRef<'_> {
    fn deref_mut(&mut self) -> &mut Box<dyn Driver> {
        self.driver.as_mut().expect("present until dropped")
    }
}

impl Drop for DriverRef<'_> {
    #[inline]
    fn drop(&mut self) {
        self.driver = None;
        if self.core.has_deferred.get() {
            self.core.run_deferred();
        }
    }
}

impl Core {
    /// The driver, for a call on it.
    ///
    /// # Panics
    /// When the driver is busy: called from a waker that the driver is
    /// waking or dropping (drops of sockets and operations are deferred
    /// instead; other I/O there cannot be).
    #[track_caller]
    #[inline]
    pub(crate) fn driver_mut(&self) -> DriverRef<'_> {
        match self.driver.try_borrow_mut() {
            Ok(d) => DriverRef {
                core: self,
                driver: Some(d),
            },
            Err(_) => panic!(
                "aio: I/O started from inside the loop's driver (a waker that the \
                 driver woke or dropped used an aio socket); schedule it with \
                 `call_soon` instead"
            ),
        }
    }

    /// The driver, or `None` while it is busy.
    #[inline]
    pub(crate) fn driver_try_mut(&self) -> Option<DriverRef<'_>> {
        self.driver.try_borrow_mut().ok().map(|d| DriverRef {
            core: self,
            driver: Some(d),
        })
    }

    /// Does `work` now (what it defers in turn runs as the borrow ends),
    /// or as soon as the driver is free.
    pub(crate) fn driver_work(&self, work: Deferred) {
        match self.driver_try_mut() {
            Some(mut d) => self.apply(&mut **d, work),
            None => {
                self.deferred.borrow_mut().push(work);
                self.has_deferred.set(true);
            }
        }
    }

    /// Runs the deferred work, in the order it came, with what it defers in
    /// turn (a deregistration wakes waiters, which may drop more).
    pub(super) fn run_deferred(&self) {
        loop {
            let Ok(mut d) = self.driver.try_borrow_mut() else {
                return; // the borrow that ends later runs it
            };
            let work = std::mem::take(&mut *self.deferred.borrow_mut());
            if work.is_empty() {
                self.has_deferred.set(false);
                return;
            }
            for w in work {
                self.apply(&mut **d, w);
            }
        }
    }

    /// Does `work` on the driver, borrowed by the caller.
    fn apply(&self, d: &mut dyn Driver, work: Deferred) {
        let Some(io) = d.io() else {
            // No I/O driver to wait for the kernel: never free the memory
            // (as `OpFuture`'s drop does when its driver is gone).
            if let Deferred::Forget(_, owner) = work {
                std::mem::forget(owner);
            }
            return;
        };
        match work {
            // While the loop runs, the driver closes it (io_uring: in the
            // ring, with the turn's other work); else at once.
            Deferred::Close(fd) if self.running.get() => io.close(fd),
            Deferred::Close(fd) => {
                io.deregister(fd.as_raw_fd());
                drop(fd);
            }
            Deferred::Deregister(fd) => io.deregister(fd),
            Deferred::Forget(token, owner) => io.forget_op(token, owner),
        }
    }
}
