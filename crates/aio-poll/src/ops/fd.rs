//! Descriptor operations: read, write, close, readiness.

use std::io;
use std::os::fd::RawFd;

use aio_core::io::Interest;

use super::retry;

pub(crate) fn read(fd: RawFd, buf: *mut u8, len: usize, offset: Option<u64>) -> io::Result<usize> {
    retry(|| match offset {
        // SAFETY: the operation keeps `len` writable bytes at `buf` alive.
        None => unsafe { libc::read(fd, buf.cast(), len) },
        // SAFETY: as above.
        Some(off) => unsafe { libc::pread(fd, buf.cast(), len, off as libc::off_t) },
    })
}

pub(crate) fn write(fd: RawFd, buf: *const u8, len: usize, offset: Option<u64>) -> io::Result<usize> {
    retry(|| match offset {
        // SAFETY: the operation keeps `len` readable bytes at `buf` alive.
        None => unsafe { libc::write(fd, buf.cast(), len) },
        // SAFETY: as above.
        Some(off) => unsafe { libc::pwrite(fd, buf.cast(), len, off as libc::off_t) },
    })
}

pub(crate) fn close(fd: RawFd) -> io::Result<usize> {
    // No retry on EINTR: the descriptor is released either way on Linux and
    // the BSDs, and retrying could close a reused number.
    // SAFETY: the operation owned `fd` and handed it to us to close.
    super::cvt(unsafe { libc::close(fd) } as isize)
}

/// Ready now (one `poll(2)` with a zero timeout), or `WouldBlock`.
pub(crate) fn poll_ready(fd: RawFd, interest: Interest) -> io::Result<usize> {
    let events = match interest {
        Interest::Readable => libc::POLLIN,
        Interest::Writable => libc::POLLOUT,
    };
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    let n = retry(|| unsafe { libc::poll(&mut p, 1, 0) } as isize)?;
    if n == 0 {
        Err(io::ErrorKind::WouldBlock.into())
    } else {
        Ok(0)
    }
}
