//! `RawOp`: what an operation asks of the kernel, as plain data.
//!
//! This is the one definition each driver executes: aio-poll runs it as a
//! non-blocking system call (waiting for readiness on `EAGAIN`), aio-uring
//! turns it into one submission queue entry. The pointers refer to memory
//! owned by the [`Operation`](super::Operation) that produced the
//! description, which keeps it alive and in place until the driver reports
//! completion (or takes the operation over, see
//! [`IoDriver::forget_op`](crate::driver::IoDriver::forget_op)).

use std::net::Shutdown;
use std::os::fd::RawFd;

/// Which readiness an operation waits for on a readiness driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data can be read, a connection accepted, or the peer closed.
    Readable,
    /// Data can be written, or a connection finished.
    Writable,
}

/// A system call to run, described with raw pointers.
#[derive(Debug, Clone, Copy)]
pub enum RawOp {
    /// `read(2)` / `pread(2)` into `len` bytes at `buf`.
    Read {
        /// The file descriptor.
        fd: RawFd,
        /// Where to write the data.
        buf: *mut u8,
        /// How many bytes fit.
        len: usize,
        /// `pread` offset; `None` reads at the current position.
        offset: Option<u64>,
    },
    /// `write(2)` / `pwrite(2)` of `len` bytes at `buf`.
    Write {
        /// The file descriptor.
        fd: RawFd,
        /// The data.
        buf: *const u8,
        /// Its length.
        len: usize,
        /// `pwrite` offset; `None` writes at the current position.
        offset: Option<u64>,
    },
    /// `recv(2)`.
    Recv {
        /// The socket.
        fd: RawFd,
        /// Where to write the data.
        buf: *mut u8,
        /// How many bytes fit.
        len: usize,
        /// `MSG_*` flags.
        flags: i32,
    },
    /// `send(2)` (drivers add `MSG_NOSIGNAL`).
    Send {
        /// The socket.
        fd: RawFd,
        /// The data.
        buf: *const u8,
        /// Its length.
        len: usize,
        /// `MSG_*` flags.
        flags: i32,
    },
    /// `recvmsg(2)`: datagrams with their source address.
    RecvMsg {
        /// The socket.
        fd: RawFd,
        /// The message header (its name, iovec and buffers stay valid).
        msg: *mut libc::msghdr,
        /// `MSG_*` flags.
        flags: i32,
    },
    /// `sendmsg(2)`: datagrams to an address (drivers add `MSG_NOSIGNAL`).
    SendMsg {
        /// The socket.
        fd: RawFd,
        /// The message header.
        msg: *const libc::msghdr,
        /// `MSG_*` flags.
        flags: i32,
    },
    /// `accept4(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC`; the result is the
    /// new descriptor.
    Accept {
        /// The listening socket.
        fd: RawFd,
        /// Where the peer address goes.
        addr: *mut libc::sockaddr_storage,
        /// In: the storage size; out: the address length.
        len: *mut libc::socklen_t,
    },
    /// `connect(2)` of a non-blocking socket; completes when connected.
    Connect {
        /// The socket.
        fd: RawFd,
        /// The address.
        addr: *const libc::sockaddr_storage,
        /// Its length.
        len: libc::socklen_t,
    },
    /// `shutdown(2)`.
    Shutdown {
        /// The socket.
        fd: RawFd,
        /// Which direction(s).
        how: Shutdown,
    },
    /// `close(2)`.
    Close {
        /// The descriptor, owned by the operation.
        fd: RawFd,
    },
    /// Waits until `fd` is ready (no data is moved).
    PollReady {
        /// The descriptor.
        fd: RawFd,
        /// For what.
        interest: Interest,
    },
}

impl RawOp {
    /// The descriptor the operation works on.
    pub fn fd(&self) -> RawFd {
        match *self {
            RawOp::Read { fd, .. }
            | RawOp::Write { fd, .. }
            | RawOp::Recv { fd, .. }
            | RawOp::Send { fd, .. }
            | RawOp::RecvMsg { fd, .. }
            | RawOp::SendMsg { fd, .. }
            | RawOp::Accept { fd, .. }
            | RawOp::Connect { fd, .. }
            | RawOp::Shutdown { fd, .. }
            | RawOp::Close { fd }
            | RawOp::PollReady { fd, .. } => fd,
        }
    }

    /// The readiness a readiness driver waits for when the call would block
    /// (`None`: the call never blocks).
    pub fn interest(&self) -> Option<Interest> {
        match *self {
            RawOp::Read { .. } | RawOp::Recv { .. } | RawOp::RecvMsg { .. } | RawOp::Accept { .. } => {
                Some(Interest::Readable)
            }
            RawOp::Write { .. } | RawOp::Send { .. } | RawOp::SendMsg { .. } | RawOp::Connect { .. } => {
                Some(Interest::Writable)
            }
            RawOp::PollReady { interest, .. } => Some(interest),
            RawOp::Shutdown { .. } | RawOp::Close { .. } => None,
        }
    }
}
