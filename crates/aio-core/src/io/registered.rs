//! `Registered`: a descriptor registered with its loop's I/O driver.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use super::raw::RawOp;
use crate::context::expect_core;
use crate::driver::FdKind;
use crate::event_loop::Loop;
use crate::event_loop::busy::Deferred;

/// A descriptor registered with the I/O driver of the loop that created
/// it; deregistered and closed when dropped (even after that loop stopped
/// running, so a reused descriptor number never meets a stale
/// registration). Dropped while its loop runs, it is closed by the driver
/// ([`IoDriver::close`](crate::driver::IoDriver::close): on io_uring a
/// file closes in the ring with the turn's other work, by the time the
/// loop next waits or stops running). Sockets, pipes and files are built
/// on it.
pub struct Registered {
    fd: Option<OwnedFd>,
    lp: Loop,
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered").field("fd", &self.as_raw_fd()).finish()
    }
}

impl Registered {
    /// Registers `fd` with the running loop's driver. The descriptor must be
    /// in non-blocking mode.
    ///
    /// # Panics
    /// When no aio loop runs on this thread.
    #[track_caller]
    pub fn new(fd: OwnedFd) -> io::Result<Registered> {
        Registered::with_kind(fd, FdKind::Unknown)
    }

    /// [`Registered::new`] for a descriptor whose kind the caller knows
    /// (see [`IoDriver::register_kind`](crate::driver::IoDriver::register_kind)).
    ///
    /// # Panics
    /// When no aio loop runs on this thread.
    #[track_caller]
    pub fn with_kind(fd: OwnedFd, kind: FdKind) -> io::Result<Registered> {
        let lp = expect_core(|core| Loop::from_core_ptr(core));
        super::calls::register_on(&lp.core, fd.as_raw_fd(), kind)?;
        Ok(Registered { fd: Some(fd), lp })
    }

    /// The loop the descriptor is registered with.
    pub fn owner(&self) -> &Loop {
        &self.lp
    }

    /// Deregisters the descriptor and gives it back.
    pub fn into_inner(mut self) -> OwnedFd {
        let fd = self.fd.take().expect("present until dropped");
        self.deregister(fd.as_raw_fd());
        fd
    }

    fn deregister(&self, fd: RawFd) {
        // While the driver is busy (dropped by a waker it woke), the
        // descriptor is still open; no other can take its number before
        // the driver is free again and deregisters it.
        self.lp.core.driver_work(Deferred::Deregister(fd));
    }

    /// Runs a borrowed-buffer operation on a readiness driver: the system
    /// call runs now and, if it would block, the waker is registered.
    /// A completion driver needs memory owned by the operation (use
    /// [`submit`](super::submit) with an owned buffer): there this
    /// returns `None`, except for a send the driver can run at once
    /// ([`IoDriver::try_op`](crate::driver::IoDriver::try_op): io_uring
    /// sends what the socket takes now, as a readiness driver does, and
    /// says `None` when it would block). The caller must have no send of
    /// its own in flight on the descriptor, or the bytes could overtake it.
    ///
    /// This is what `futures-io`/tokio `AsyncRead`/`AsyncWrite` impls use;
    /// it does not observe cancellation (those traits have no way to report
    /// it), so a task waiting only here is dropped when cancelled.
    pub fn poll_borrowed(&self, op: Borrowed<'_>, cx: &mut Context<'_>) -> Option<Poll<io::Result<usize>>> {
        let fd = self.as_raw_fd();
        let raw = match op {
            Borrowed::Recv(b) => RawOp::Recv {
                fd,
                buf: b.as_mut_ptr(),
                len: b.len(),
                flags: 0,
            },
            Borrowed::Send(b) => RawOp::Send {
                fd,
                buf: b.as_ptr(),
                len: b.len(),
                flags: 0,
            },
            Borrowed::Read(b) => RawOp::Read {
                fd,
                buf: b.as_mut_ptr(),
                len: b.len(),
                offset: None,
            },
            Borrowed::Write(b) => RawOp::Write {
                fd,
                buf: b.as_ptr(),
                len: b.len(),
                offset: None,
            },
        };
        let mut d = self.lp.core.driver_mut();
        let io = d.io()?;
        if io.is_completion_based() {
            // Nothing is left with the kernel: the call runs now or not at all.
            return match raw {
                RawOp::Send { .. } => io.try_op(&raw).map(Poll::Ready),
                _ => None,
            };
        }
        // A readiness driver runs the call before returning and keeps no
        // pointer to the buffer, so borrowing it for this call is enough.
        Some(io.poll_op(&raw, &mut None, cx.waker()))
    }

    /// Starts watching this stream socket for data after a read found it
    /// empty; see [`IoDriver::watch_readable`](crate::driver::IoDriver::watch_readable).
    /// `None`: no watch (wait with a [`PollReady`](super::PollReady)).
    pub fn watch_readable(&self) -> Option<u32> {
        let fd = self.as_raw_fd();
        self.lp.core.driver_mut().io()?.watch_readable(fd)
    }

    /// `Ready` once the watch reported an event after it counted `seen`
    /// (see [`IoDriver::poll_readable`](crate::driver::IoDriver::poll_readable)).
    pub fn poll_readable(&self, seen: u32, cx: &mut Context<'_>) -> Poll<()> {
        let fd = self.as_raw_fd();
        match self.lp.core.driver_mut().io() {
            Some(io) => io.poll_readable(fd, seen, cx.waker()),
            None => Poll::Ready(()),
        }
    }

    /// Whether the loop's driver is completion-based.
    pub fn is_completion_based(&self) -> bool {
        self.lp
            .core
            .driver_mut()
            .io()
            .is_some_and(|io| io.is_completion_based())
    }
}

/// A borrowed buffer for [`Registered::poll_borrowed`].
#[derive(Debug)]
pub enum Borrowed<'a> {
    /// `recv(2)` into the slice.
    Recv(&'a mut [u8]),
    /// `send(2)` from the slice.
    Send(&'a [u8]),
    /// `read(2)` into the slice.
    Read(&'a mut [u8]),
    /// `write(2)` from the slice.
    Write(&'a [u8]),
}

impl AsRawFd for Registered {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
    }
}

impl AsFd for Registered {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("present until dropped").as_fd()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        // While the loop runs, the driver closes it (io_uring: in the
        // ring, with the turn's other work); else at once, here. While the
        // driver is busy, as soon as it is free (the number stays taken).
        self.lp.core.driver_work(Deferred::Close(fd));
    }
}
