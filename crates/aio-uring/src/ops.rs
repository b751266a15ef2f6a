//! One submission queue entry per [`RawOp`]. Each operation's arm is here
//! once; the compiler points at any new operation without one.

use std::net::Shutdown;

use std::os::fd::RawFd;

use aio_core::io::{Interest, RawOp};
use io_uring::{opcode, squeue::Entry, types};

const NOSIGNAL: i32 = libc::MSG_NOSIGNAL;

/// Where an entry names its descriptor: by number, or by its slot in the
/// ring's table of registered files (which spares the kernel looking the
/// descriptor up, and counting a reference on it, for every operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Fd(RawFd),
    Fixed(u32),
}

/// Builds `$e` with `$f` bound to `$t` as the builders take it (a plain or
/// a registered descriptor: two types, so one arm each).
macro_rules! on {
    ($t:expr, $f:ident => $e:expr) => {
        match $t {
            Target::Fd(fd) => {
                let $f = types::Fd(fd);
                $e
            }
            Target::Fixed(slot) => {
                let $f = types::Fixed(slot);
                $e
            }
        }
    };
}
pub(crate) use on;

/// The entry for `op`, whose descriptor is at `t`. The pointers it carries
/// come from the operation, which keeps the memory alive until the
/// completion (see the crate docs).
pub(crate) fn entry(op: &RawOp, t: Target) -> Entry {
    match *op {
        RawOp::Read { buf, len, offset, .. } => on!(t, f => opcode::Read::new(f, buf, clamp(len))
            .offset(offset.unwrap_or(u64::MAX))
            .build()),
        RawOp::Write { buf, len, offset, .. } => on!(t, f => opcode::Write::new(f, buf, clamp(len))
            .offset(offset.unwrap_or(u64::MAX))
            .build()),
        RawOp::Recv { buf, len, flags, .. } => on!(t, f => opcode::Recv::new(f, buf, clamp(len)).flags(flags).build()),
        RawOp::Send { buf, len, flags, .. } => on!(t, f => opcode::Send::new(f, buf, clamp(len))
            .flags(flags | NOSIGNAL)
            .build()),
        RawOp::RecvMsg { msg, flags, .. } => on!(t, f => opcode::RecvMsg::new(f, msg).flags(flags as u32).build()),
        RawOp::SendMsg { msg, flags, .. } => on!(t, f => opcode::SendMsg::new(f, msg)
            .flags((flags | NOSIGNAL) as u32)
            .build()),
        RawOp::Accept { addr, len, .. } => on!(t, f => opcode::Accept::new(f, addr.cast(), len)
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()),
        RawOp::Connect { addr, len, .. } => on!(t, f => opcode::Connect::new(f, addr.cast(), len).build()),
        RawOp::Shutdown { how, .. } => {
            let how = match how {
                Shutdown::Read => libc::SHUT_RD,
                Shutdown::Write => libc::SHUT_WR,
                Shutdown::Both => libc::SHUT_RDWR,
            };
            on!(t, f => opcode::Shutdown::new(f, how).build())
        }
        // By number always: closing a registered slot would close the slot.
        RawOp::Close { fd } => opcode::Close::new(types::Fd(fd)).build(),
        RawOp::PollReady { interest, .. } => poll(t, interest),
        // Paths relative to a directory: `AT_FDCWD` by number (never a
        // registered slot).
        RawOp::OpenAt {
            dirfd,
            path,
            flags,
            mode,
        } => opcode::OpenAt::new(types::Fd(dirfd), path)
            .flags(flags | libc::O_CLOEXEC)
            .mode(mode)
            .build(),
        RawOp::Statx {
            dirfd,
            path,
            flags,
            mask,
            buf,
        } => opcode::Statx::new(types::Fd(dirfd), path, buf.cast::<types::statx>())
            .flags(flags)
            .mask(mask)
            .build(),
        RawOp::Fsync { datasync, .. } => {
            let flags = if datasync {
                types::FsyncFlags::DATASYNC
            } else {
                types::FsyncFlags::empty()
            };
            on!(t, f => opcode::Fsync::new(f).flags(flags).build())
        }
        RawOp::Ftruncate { len, .. } => on!(t, f => opcode::Ftruncate::new(f, len).build()),
        RawOp::UnlinkAt { dirfd, path, flags } => opcode::UnlinkAt::new(types::Fd(dirfd), path).flags(flags).build(),
        RawOp::RenameAt {
            from_dir,
            from,
            to_dir,
            to,
            flags,
        } => opcode::RenameAt::new(types::Fd(from_dir), from, types::Fd(to_dir), to)
            .flags(flags)
            .build(),
        RawOp::MkdirAt { dirfd, path, mode } => opcode::MkDirAt::new(types::Fd(dirfd), path).mode(mode).build(),
        RawOp::Splice {
            fd_in,
            off_in,
            fd_out,
            len,
        } => opcode::Splice::new(
            types::Fd(fd_in),
            off_in.map_or(-1, |o| o as i64),
            types::Fd(fd_out),
            -1,
            clamp(len),
        )
        .build(),
        RawOp::Getdents { .. } | RawOp::SendFile { .. } => {
            unreachable!("io_uring has no getdents or sendfile: the driver runs them on a thread")
        }
    }
}

/// Runs a send now, without the ring, if the socket takes some of it:
/// `None` for any other operation, and when it would block or a signal
/// interrupted it (the caller then submits it to the ring).
pub(crate) fn send_now(op: &RawOp) -> Option<std::io::Result<usize>> {
    let RawOp::Send { fd, buf, len, flags } = *op else {
        return None;
    };
    // SAFETY: the caller's buffer is valid for `len` bytes for this call,
    // which returns before anything else can touch it; MSG_DONTWAIT never
    // blocks the loop.
    let n = unsafe { libc::send(fd, buf.cast(), len, flags | NOSIGNAL | libc::MSG_DONTWAIT) };
    if n >= 0 {
        return Some(Ok(n as usize));
    }
    let e = std::io::Error::last_os_error();
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => None,
        _ => Some(Err(e)),
    }
}

/// The opcode an operation needs, for those the driver runs on a thread
/// when the kernel lacks it (`None`: always supported, or never an SQE).
pub(crate) fn file_opcode(op: &RawOp) -> Option<u8> {
    Some(match op {
        RawOp::OpenAt { .. } => opcode::OpenAt::CODE,
        RawOp::Statx { .. } => opcode::Statx::CODE,
        RawOp::Fsync { .. } => opcode::Fsync::CODE,
        RawOp::Ftruncate { .. } => opcode::Ftruncate::CODE,
        RawOp::UnlinkAt { .. } => opcode::UnlinkAt::CODE,
        RawOp::RenameAt { .. } => opcode::RenameAt::CODE,
        RawOp::MkdirAt { .. } => opcode::MkDirAt::CODE,
        RawOp::Splice { .. } => opcode::Splice::CODE,
        _ => return None,
    })
}

/// Whether the kernel completes `op` with no event from outside the
/// process: a `shutdown` or `close` (run on the kernel's workers when they
/// would block), a file-system call, or positional file I/O (the ring
/// also counts reads and writes of descriptors registered as files). A
/// paused loop clock waits for
/// these (`Driver::is_busy`); receives, accepts, connects and sends wait
/// for a peer, and do not hold it.
pub(crate) fn completes_by_itself(op: &RawOp) -> bool {
    matches!(
        op,
        RawOp::Shutdown { .. }
            | RawOp::Close { fd: 0.. }
            | RawOp::Read { offset: Some(_), .. }
            | RawOp::Write { offset: Some(_), .. }
            | RawOp::OpenAt { .. }
            | RawOp::Statx { .. }
            | RawOp::Fsync { .. }
            | RawOp::Ftruncate { .. }
            | RawOp::UnlinkAt { .. }
            | RawOp::RenameAt { .. }
            | RawOp::MkdirAt { .. }
    )
}

/// A one-shot readiness poll (also the fallback when the kernel answers an
/// operation with `EAGAIN`).
pub(crate) fn poll(t: Target, interest: Interest) -> Entry {
    let mask = match interest {
        Interest::Readable => libc::POLLIN,
        Interest::Writable => libc::POLLOUT,
    } as u32;
    on!(t, f => opcode::PollAdd::new(f, mask).build())
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
