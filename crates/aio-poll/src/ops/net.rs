//! Socket operations.

use std::io;
use std::net::Shutdown;
use std::os::fd::RawFd;

use super::{cvt, retry};

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const NOSIGNAL: i32 = libc::MSG_NOSIGNAL;
// Elsewhere (macOS) aio-net sets SO_NOSIGPIPE on the socket instead.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
const NOSIGNAL: i32 = 0;

pub(crate) fn recv(fd: RawFd, buf: *mut u8, len: usize, flags: i32) -> io::Result<usize> {
    // SAFETY: the operation keeps `len` writable bytes at `buf` alive.
    retry(|| unsafe { libc::recv(fd, buf.cast(), len, flags) })
}

pub(crate) fn send(fd: RawFd, buf: *const u8, len: usize, flags: i32) -> io::Result<usize> {
    // SAFETY: the operation keeps `len` readable bytes at `buf` alive.
    retry(|| unsafe { libc::send(fd, buf.cast(), len, flags | NOSIGNAL) })
}

pub(crate) fn recvmsg(fd: RawFd, msg: *mut libc::msghdr, flags: i32) -> io::Result<usize> {
    // SAFETY: the operation keeps the header and what it points to alive.
    retry(|| unsafe { libc::recvmsg(fd, msg, flags) })
}

pub(crate) fn sendmsg(fd: RawFd, msg: *const libc::msghdr, flags: i32) -> io::Result<usize> {
    // SAFETY: as above.
    retry(|| unsafe { libc::sendmsg(fd, msg, flags | NOSIGNAL) })
}

pub(crate) fn accept(fd: RawFd, addr: *mut libc::sockaddr_storage, len: *mut libc::socklen_t) -> io::Result<usize> {
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    {
        // SAFETY: the operation keeps the address storage and length alive.
        retry(|| unsafe { libc::accept4(fd, addr.cast(), len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) } as isize)
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        // SAFETY: as above.
        let new = retry(|| unsafe { libc::accept(fd, addr.cast(), len) } as isize)? as RawFd;
        // SAFETY: `new` is a descriptor we own.
        unsafe {
            libc::fcntl(new, libc::F_SETFD, libc::FD_CLOEXEC);
            let fl = libc::fcntl(new, libc::F_GETFL);
            libc::fcntl(new, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Ok(new as usize)
    }
}

/// A non-blocking connect, safe to call again until it completes: a
/// pending error is reported first (from `SO_ERROR`), then `connect` says
/// whether it is done (`EISCONN`) or still in progress.
pub(crate) fn connect(fd: RawFd, addr: *const libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<usize> {
    let mut err: libc::c_int = 0;
    let mut elen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the right size.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut elen,
        )
    } as isize)?;
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    // SAFETY: the operation keeps `len` bytes of address at `addr` alive.
    match retry(|| unsafe { libc::connect(fd, addr.cast(), len) } as isize) {
        Ok(_) => Ok(0),
        Err(e) => match e.raw_os_error() {
            Some(libc::EISCONN) => Ok(0),
            Some(libc::EINPROGRESS) | Some(libc::EALREADY) | Some(libc::EAGAIN) => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            _ => Err(e),
        },
    }
}

pub(crate) fn shutdown(fd: RawFd, how: Shutdown) -> io::Result<usize> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: plain syscall on a descriptor.
    cvt(unsafe { libc::shutdown(fd, how) } as isize)
}
