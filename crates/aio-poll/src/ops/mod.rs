//! Running a [`RawOp`] as one non-blocking system call. Each operation's
//! arm is here once; the compiler points at any new operation without one.

mod fd;
mod net;

use std::io;

use aio_core::io::RawOp;

/// Runs `op` once. `WouldBlock` means: wait for readiness and try again.
pub(crate) fn execute(op: &RawOp) -> io::Result<usize> {
    match *op {
        RawOp::Read { fd, buf, len, offset } => fd::read(fd, buf, len, offset),
        RawOp::Write { fd, buf, len, offset } => fd::write(fd, buf, len, offset),
        RawOp::Close { fd } => fd::close(fd),
        RawOp::PollReady { fd, interest } => fd::poll_ready(fd, interest),
        RawOp::Recv { fd, buf, len, flags } => net::recv(fd, buf, len, flags),
        RawOp::Send { fd, buf, len, flags } => net::send(fd, buf, len, flags),
        RawOp::RecvMsg { fd, msg, flags } => net::recvmsg(fd, msg, flags),
        RawOp::SendMsg { fd, msg, flags } => net::sendmsg(fd, msg, flags),
        RawOp::Accept { fd, addr, len } => net::accept(fd, addr, len),
        RawOp::Connect { fd, addr, len } => net::connect(fd, addr, len),
        RawOp::Shutdown { fd, how } => net::shutdown(fd, how),
        // File calls run on the file-call threads (the driver sends them
        // there); this runs them here only if asked to. Splice and
        // sendfile run here, non-blocking on their socket or pipe.
        RawOp::OpenAt { .. }
        | RawOp::Statx { .. }
        | RawOp::Fsync { .. }
        | RawOp::Ftruncate { .. }
        | RawOp::UnlinkAt { .. }
        | RawOp::RenameAt { .. }
        | RawOp::MkdirAt { .. }
        | RawOp::Getdents { .. }
        | RawOp::Splice { .. }
        | RawOp::SendFile { .. } => {
            // SAFETY: the operation keeps the memory its pointers name
            // alive while it runs (the `RawOp` contract).
            unsafe { aio_core::driver::blocking::execute_raw(op) }
        }
    }
}

/// The result of a libc call that returns -1 on error.
pub(crate) fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Retries a call interrupted by a signal.
pub(crate) fn retry(mut f: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
