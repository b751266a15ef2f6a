//! I/O operations, defined once and executed by every driver.
//!
//! An [`Operation`] owns the memory a system call uses (buffers, address
//! storage) and describes the call as a [`RawOp`]; [`submit`] runs it on
//! the loop's I/O driver: aio-poll tries the call at once and waits for
//! readiness when it would block, aio-uring submits it to the kernel. A
//! network or pipe type built on these (aio-net) never names epoll or
//! io_uring.

mod buf;
mod file;
mod future;
mod multi;
mod ops;
mod raw;
mod registered;

pub use buf::{BufResult, IoBuf, IoBufMut};
pub use file::{
    Fsync, Ftruncate, Getdents, MkdirAt, OpenAt, RenameAt, SendFile, Splice, Statx, UnlinkAt, c_path, set_nonblocking,
};
pub use future::{OpFuture, submit, submit_shielded};
pub use multi::{AcceptStream, RecvStream};
pub use ops::{
    Accept, Close, Connect, Operation, PeerAddr, PollReady, Read, Recv, RecvFrom, Send, SendTo, Shutdown, Write,
};
pub use raw::{Interest, RawOp};
pub use registered::{Borrowed, Registered};

use std::io;
use std::os::fd::RawFd;

use crate::context::expect_core;

/// Registers `fd` with the running loop's I/O driver (see
/// [`IoDriver::register`](crate::driver::IoDriver::register)). Sockets and
/// pipes call this once when they are created.
///
/// # Panics
/// When no aio loop runs on this thread.
#[track_caller]
pub fn register(fd: RawFd) -> io::Result<()> {
    expect_core(|core| match core.driver_mut().io() {
        Some(io) => io.register(fd),
        None => Err(future::no_io_driver()),
    })
}

/// Deregisters `fd` from the running loop's I/O driver, if a loop runs.
pub fn deregister(fd: RawFd) {
    crate::context::with_core(|core| {
        if let Some(core) = core {
            if let Some(io) = core.driver_mut().io() {
                io.deregister(fd);
            }
        }
    });
}

/// Runs `op` once without waiting when the running loop's driver can (a
/// readiness driver): `None` when it would block, when the driver is
/// completion-based, or when no loop runs.
pub fn try_op<T: Operation>(op: &mut T) -> Option<io::Result<usize>> {
    crate::context::with_core(|core| {
        let core = core?;
        let mut d = core.driver_mut();
        let io = d.io()?;
        io.try_op(&op.raw())
    })
}

/// Whether the running loop's driver is completion-based (io_uring).
pub fn is_completion_based() -> bool {
    crate::context::with_core(|core| {
        core.and_then(|c| c.driver_mut().io().map(|io| io.is_completion_based()))
            .unwrap_or(false)
    })
}
