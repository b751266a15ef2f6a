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
    /// `openat(2)`; the result is the new descriptor (close-on-exec).
    OpenAt {
        /// The directory `path` is relative to (`AT_FDCWD`).
        dirfd: RawFd,
        /// A NUL-terminated path.
        path: *const libc::c_char,
        /// `O_*` flags.
        flags: i32,
        /// The mode of a created file.
        mode: u32,
    },
    /// `statx(2)` into `buf`.
    Statx {
        /// The directory `path` is relative to, or the file itself with an
        /// empty `path` and `AT_EMPTY_PATH`.
        dirfd: RawFd,
        /// A NUL-terminated path.
        path: *const libc::c_char,
        /// `AT_*` flags.
        flags: i32,
        /// `STATX_*` fields wanted.
        mask: u32,
        /// Where the kernel writes.
        buf: *mut libc::statx,
    },
    /// `fsync(2)`, or `fdatasync(2)` with `datasync`.
    Fsync {
        /// The file.
        fd: RawFd,
        /// Only the data (and the metadata needed to read it).
        datasync: bool,
    },
    /// `ftruncate(2)`.
    Ftruncate {
        /// The file.
        fd: RawFd,
        /// Its new length.
        len: u64,
    },
    /// `unlinkat(2)` (`AT_REMOVEDIR` in `flags` removes a directory).
    UnlinkAt {
        /// The directory `path` is relative to.
        dirfd: RawFd,
        /// A NUL-terminated path.
        path: *const libc::c_char,
        /// `AT_*` flags.
        flags: i32,
    },
    /// `renameat2(2)`.
    RenameAt {
        /// The directory `from` is relative to.
        from_dir: RawFd,
        /// A NUL-terminated path.
        from: *const libc::c_char,
        /// The directory `to` is relative to.
        to_dir: RawFd,
        /// A NUL-terminated path.
        to: *const libc::c_char,
        /// `RENAME_*` flags.
        flags: u32,
    },
    /// `mkdirat(2)`.
    MkdirAt {
        /// The directory `path` is relative to.
        dirfd: RawFd,
        /// A NUL-terminated path.
        path: *const libc::c_char,
        /// The new directory's mode.
        mode: u32,
    },
    /// `splice(2)` of up to `len` bytes from `fd_in` (at `off_in`, for a
    /// file) to `fd_out`; one end must be a pipe. A readiness driver waits
    /// for `fd_out` to be writable.
    Splice {
        /// Where the data comes from.
        fd_in: RawFd,
        /// The offset in `fd_in` when it is a file (`None`: a pipe).
        off_in: Option<u64>,
        /// Where it goes (a pipe or a socket).
        fd_out: RawFd,
        /// How much at most.
        len: usize,
    },
    /// `sendfile(2)` of up to `len` bytes of the file `in_fd` from
    /// `offset` to the socket `fd`; waits for `fd` to be writable.
    SendFile {
        /// The socket.
        fd: RawFd,
        /// The file.
        in_fd: RawFd,
        /// Where in the file.
        offset: u64,
        /// How much at most.
        len: usize,
    },
    /// `getdents64(2)`: directory entries into `len` bytes at `buf`.
    Getdents {
        /// The open directory.
        fd: RawFd,
        /// Where to write the entries.
        buf: *mut u8,
        /// How many bytes fit.
        len: usize,
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
            | RawOp::PollReady { fd, .. }
            | RawOp::Fsync { fd, .. }
            | RawOp::Ftruncate { fd, .. }
            | RawOp::Getdents { fd, .. } => fd,
            RawOp::OpenAt { dirfd, .. }
            | RawOp::Statx { dirfd, .. }
            | RawOp::UnlinkAt { dirfd, .. }
            | RawOp::MkdirAt { dirfd, .. } => dirfd,
            RawOp::RenameAt { from_dir, .. } => from_dir,
            RawOp::Splice { fd_out, .. } => fd_out,
            RawOp::SendFile { fd, .. } => fd,
        }
    }

    /// Whether a successful result is a new descriptor (`accept`,
    /// `openat`): one that arrives for an operation whose future is gone
    /// must be closed by the driver, never leaked.
    pub fn returns_fd(&self) -> bool {
        matches!(self, RawOp::Accept { .. } | RawOp::OpenAt { .. })
    }

    /// Whether the call works on the file system and may block the thread
    /// that makes it (no readiness applies to regular files): a readiness
    /// driver runs it on a thread pool. `Read`/`Write` on a regular file
    /// are such calls too, which the driver knows from how the descriptor
    /// was registered ([`FdKind::File`](crate::driver::FdKind::File)).
    pub fn is_file_op(&self) -> bool {
        matches!(
            self,
            RawOp::OpenAt { .. }
                | RawOp::Statx { .. }
                | RawOp::Fsync { .. }
                | RawOp::Ftruncate { .. }
                | RawOp::UnlinkAt { .. }
                | RawOp::RenameAt { .. }
                | RawOp::MkdirAt { .. }
                | RawOp::Getdents { .. }
        )
    }

    /// The readiness a readiness driver waits for when the call would block
    /// (`None`: the call never blocks).
    pub fn interest(&self) -> Option<Interest> {
        match *self {
            RawOp::Read { .. } | RawOp::Recv { .. } | RawOp::RecvMsg { .. } | RawOp::Accept { .. } => {
                Some(Interest::Readable)
            }
            RawOp::Write { .. }
            | RawOp::Send { .. }
            | RawOp::SendMsg { .. }
            | RawOp::Connect { .. }
            | RawOp::Splice { .. }
            | RawOp::SendFile { .. } => Some(Interest::Writable),
            RawOp::PollReady { interest, .. } => Some(interest),
            RawOp::Shutdown { .. } | RawOp::Close { .. } => None,
            RawOp::OpenAt { .. }
            | RawOp::Statx { .. }
            | RawOp::Fsync { .. }
            | RawOp::Ftruncate { .. }
            | RawOp::UnlinkAt { .. }
            | RawOp::RenameAt { .. }
            | RawOp::MkdirAt { .. }
            | RawOp::Getdents { .. } => None,
        }
    }
}
