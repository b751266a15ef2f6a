//! Calls on the running loop's I/O driver for descriptors that aio-core
//! does not own: registration, one non-blocking try, the driver's kind.

use std::io;
use std::os::fd::RawFd;

use super::future::no_io_driver;
use super::ops::Operation;
use crate::context::{expect_core, with_core};
use crate::driver::FdKind;
use crate::event_loop::busy::Deferred;
use crate::event_loop::core::Core;

/// Registers `fd` with the running loop's I/O driver (see
/// [`IoDriver::register`](crate::driver::IoDriver::register)). Sockets and
/// pipes call this once when they are created.
///
/// # Panics
/// When no aio loop runs on this thread.
#[track_caller]
pub fn register(fd: RawFd) -> io::Result<()> {
    expect_core(|core| register_on(core, fd, FdKind::Unknown))
}

/// Registers `fd` with `core`'s I/O driver: an error where the loop has
/// none, or while the driver is busy (a waker it woke or dropped is
/// registering a descriptor).
pub(crate) fn register_on(core: &Core, fd: RawFd, kind: FdKind) -> io::Result<()> {
    let Some(mut d) = core.driver_try_mut() else {
        return Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            "the loop's I/O driver is busy: a waker it woke or dropped tried to \
             register a descriptor (schedule that work with `call_soon`)",
        ));
    };
    match d.io() {
        Some(io) => io.register_kind(fd, kind),
        None => Err(no_io_driver()),
    }
}

/// Deregisters `fd` from the running loop's I/O driver, if a loop runs.
pub fn deregister(fd: RawFd) {
    with_core(|core| {
        if let Some(core) = core {
            core.driver_work(Deferred::Deregister(fd));
        }
    });
}

/// Runs `op` once without waiting when the running loop's driver can (a
/// readiness driver; io_uring runs a send this way, see
/// [`IoDriver::try_op`](crate::driver::IoDriver::try_op)): `None` when it
/// would block, when the driver cannot, or when no loop runs.
pub fn try_op<T: Operation>(op: &mut T) -> Option<io::Result<usize>> {
    with_core(|core| {
        let core = core?;
        let mut d = core.driver_mut();
        let io = d.io()?;
        io.try_op(&op.raw())
    })
}

/// Whether the running loop's driver is completion-based (io_uring).
pub fn is_completion_based() -> bool {
    with_core(|core| {
        core.and_then(|c| c.driver_mut().io().map(|io| io.is_completion_based()))
            .unwrap_or(false)
    })
}
