//! One submission queue entry per [`RawOp`]. Each operation's arm is here
//! once; the compiler points at any new operation without one.

use std::net::Shutdown;

use aio_core::io::{Interest, RawOp};
use io_uring::{opcode, squeue::Entry, types::Fd};

const NOSIGNAL: i32 = libc::MSG_NOSIGNAL;

/// The entry for `op`. The pointers it carries come from the operation,
/// which keeps the memory alive until the completion (see the crate docs).
pub(crate) fn entry(op: &RawOp) -> Entry {
    match *op {
        RawOp::Read { fd, buf, len, offset } => opcode::Read::new(Fd(fd), buf, clamp(len))
            .offset(offset.unwrap_or(u64::MAX))
            .build(),
        RawOp::Write { fd, buf, len, offset } => opcode::Write::new(Fd(fd), buf, clamp(len))
            .offset(offset.unwrap_or(u64::MAX))
            .build(),
        RawOp::Recv { fd, buf, len, flags } => opcode::Recv::new(Fd(fd), buf, clamp(len)).flags(flags).build(),
        RawOp::Send { fd, buf, len, flags } => opcode::Send::new(Fd(fd), buf, clamp(len))
            .flags(flags | NOSIGNAL)
            .build(),
        RawOp::RecvMsg { fd, msg, flags } => opcode::RecvMsg::new(Fd(fd), msg).flags(flags as u32).build(),
        RawOp::SendMsg { fd, msg, flags } => opcode::SendMsg::new(Fd(fd), msg)
            .flags((flags | NOSIGNAL) as u32)
            .build(),
        RawOp::Accept { fd, addr, len } => opcode::Accept::new(Fd(fd), addr.cast(), len)
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build(),
        RawOp::Connect { fd, addr, len } => opcode::Connect::new(Fd(fd), addr.cast(), len).build(),
        RawOp::Shutdown { fd, how } => opcode::Shutdown::new(
            Fd(fd),
            match how {
                Shutdown::Read => libc::SHUT_RD,
                Shutdown::Write => libc::SHUT_WR,
                Shutdown::Both => libc::SHUT_RDWR,
            },
        )
        .build(),
        RawOp::Close { fd } => opcode::Close::new(Fd(fd)).build(),
        RawOp::PollReady { fd, interest } => poll(fd, interest),
    }
}

/// A one-shot readiness poll (also the fallback when the kernel answers an
/// operation with `EAGAIN`).
pub(crate) fn poll(fd: i32, interest: Interest) -> Entry {
    let mask = match interest {
        Interest::Readable => libc::POLLIN,
        Interest::Writable => libc::POLLOUT,
    };
    opcode::PollAdd::new(Fd(fd), mask as u32).build()
}

/// Whether a successful completion of `op` is a new descriptor (which must
/// be closed if nobody is left to take it).
pub(crate) fn returns_fd(op: &RawOp) -> bool {
    matches!(op, RawOp::Accept { .. })
}

/// The kernel's answer, as the operation expects it.
pub(crate) fn result(op: &RawOp, res: i32) -> std::io::Result<usize> {
    if res >= 0 {
        return Ok(res as usize);
    }
    match (op, -res) {
        // A connect that completed while we looked again.
        (RawOp::Connect { .. }, libc::EISCONN) => Ok(0),
        (_, e) => Err(std::io::Error::from_raw_os_error(e)),
    }
}

/// Whether the kernel asked us to wait for readiness and try again.
pub(crate) fn is_retry(op: &RawOp, res: i32) -> bool {
    match -res {
        libc::EAGAIN => true,
        libc::EINPROGRESS | libc::EALREADY => matches!(op, RawOp::Connect { .. }),
        _ => false,
    }
}

fn clamp(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
