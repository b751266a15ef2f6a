//! File-system operations, each defined once as the memory it owns and the
//! [`RawOp`] it asks for: io_uring runs each as one submission, a
//! readiness driver on its file-call threads (see
//! [`Blocking`](crate::driver::Blocking)).

use std::any::Any;
use std::ffi::{CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::buf::{BufResult, IoBufMut};
use super::ops::Operation;
use super::raw::RawOp;

/// A path as the kernel takes it; a path with a NUL byte is `InvalidInput`.
pub fn c_path(path: &OsStr) -> io::Result<CString> {
    CString::new(path.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path contains a NUL byte"))
}

/// Sets or clears `O_NONBLOCK` on `fd`'s open file description.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL and F_SETFL take no pointers; `fd` is open (borrowed).
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if new != flags && unsafe { libc::fcntl(raw, libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `openat(2)` relative to the working directory: the new descriptor.
#[derive(Debug)]
pub struct OpenAt {
    path: CString,
    flags: i32,
    mode: u32,
}

impl OpenAt {
    /// Opens `path` with `O_*` `flags` (`O_CLOEXEC` is added) and the
    /// `mode` of a created file.
    pub fn new(path: CString, flags: i32, mode: u32) -> OpenAt {
        OpenAt {
            path,
            flags: flags | libc::O_CLOEXEC,
            mode,
        }
    }
}

impl Operation for OpenAt {
    type Output = io::Result<OwnedFd>;
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        Some(Box::new(std::mem::take(&mut self.path)))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::OpenAt {
            dirfd: libc::AT_FDCWD,
            path: self.path.as_ptr(),
            flags: self.flags,
            mode: self.mode,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        let fd = res? as RawFd;
        // SAFETY: the driver returns a new descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `statx(2)` of a path, or of an open descriptor.
pub struct Statx {
    fd: RawFd,
    path: CString,
    flags: i32,
    buf: Box<MaybeUninit<libc::statx>>,
}

impl std::fmt::Debug for Statx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statx")
            .field("fd", &self.fd)
            .field("path", &self.path)
            .finish()
    }
}

impl Statx {
    /// The status of `path`; `follow` follows a final symbolic link.
    pub fn path(path: CString, follow: bool) -> Statx {
        Statx {
            fd: libc::AT_FDCWD,
            path,
            flags: if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW },
            buf: Box::new(MaybeUninit::zeroed()),
        }
    }

    /// The status of the open descriptor `fd`.
    pub fn fd(fd: RawFd) -> Statx {
        Statx {
            fd,
            path: CString::default(),
            flags: libc::AT_EMPTY_PATH,
            buf: Box::new(MaybeUninit::zeroed()),
        }
    }
}

impl Operation for Statx {
    type Output = io::Result<libc::statx>;
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        let buf = std::mem::replace(&mut self.buf, Box::new(MaybeUninit::zeroed()));
        Some(Box::new((std::mem::take(&mut self.path), buf)))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::Statx {
            dirfd: self.fd,
            path: self.path.as_ptr(),
            flags: self.flags,
            mask: libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            buf: self.buf.as_mut_ptr(),
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res?;
        // SAFETY: zeroed at creation (a valid `statx`), then written by the
        // kernel on success.
        Ok(unsafe { self.buf.assume_init_read() })
    }
}

/// `fsync(2)` or `fdatasync(2)`.
#[derive(Debug)]
pub struct Fsync {
    fd: RawFd,
    datasync: bool,
}

impl Fsync {
    /// Flushes `fd` (only its data with `datasync`).
    pub fn new(fd: RawFd, datasync: bool) -> Fsync {
        Fsync { fd, datasync }
    }
}

impl Operation for Fsync {
    type Output = io::Result<()>;
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        Some(Box::new(()))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::Fsync {
            fd: self.fd,
            datasync: self.datasync,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// `ftruncate(2)`.
#[derive(Debug)]
pub struct Ftruncate {
    fd: RawFd,
    len: u64,
}

impl Ftruncate {
    /// Sets the length of `fd` to `len`.
    pub fn new(fd: RawFd, len: u64) -> Ftruncate {
        Ftruncate { fd, len }
    }
}

impl Operation for Ftruncate {
    type Output = io::Result<()>;
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        Some(Box::new(()))
    }
    fn invalid(&self) -> Option<io::Error> {
        super::ops::bad_offset(Some(self.len))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::Ftruncate {
            fd: self.fd,
            len: self.len,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// `unlinkat(2)`: removes a file, or (with `dir`) an empty directory.
#[derive(Debug)]
pub struct UnlinkAt {
    path: CString,
    dir: bool,
}

impl UnlinkAt {
    /// Removes `path`; a directory when `dir`.
    pub fn new(path: CString, dir: bool) -> UnlinkAt {
        UnlinkAt { path, dir }
    }
}

impl Operation for UnlinkAt {
    type Output = io::Result<()>;
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        Some(Box::new(std::mem::take(&mut self.path)))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::UnlinkAt {
            dirfd: libc::AT_FDCWD,
            path: self.path.as_ptr(),
            flags: if self.dir { libc::AT_REMOVEDIR } else { 0 },
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// `renameat2(2)`.
#[derive(Debug)]
pub struct RenameAt {
    from: CString,
    to: CString,
}

impl RenameAt {
    /// Renames `from` to `to`, replacing `to` if it exists.
    pub fn new(from: CString, to: CString) -> RenameAt {
        RenameAt { from, to }
    }
}

impl Operation for RenameAt {
    type Output = io::Result<()>;
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        Some(Box::new((std::mem::take(&mut self.from), std::mem::take(&mut self.to))))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::RenameAt {
            from_dir: libc::AT_FDCWD,
            from: self.from.as_ptr(),
            to_dir: libc::AT_FDCWD,
            to: self.to.as_ptr(),
            flags: 0,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// `mkdirat(2)`.
#[derive(Debug)]
pub struct MkdirAt {
    path: CString,
    mode: u32,
}

impl MkdirAt {
    /// Creates the directory `path` with `mode` (before the umask).
    pub fn new(path: CString, mode: u32) -> MkdirAt {
        MkdirAt { path, mode }
    }
}

impl Operation for MkdirAt {
    type Output = io::Result<()>;
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        Some(Box::new(std::mem::take(&mut self.path)))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::MkdirAt {
            dirfd: libc::AT_FDCWD,
            path: self.path.as_ptr(),
            mode: self.mode,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// `getdents64(2)`: the next directory entries of `fd`, appended to `buf`'s
/// spare capacity in the kernel's `linux_dirent64` layout.
#[derive(Debug)]
pub struct Getdents<B> {
    fd: RawFd,
    buf: B,
}

impl<B: IoBufMut> Getdents<B> {
    /// Reads entries of the open directory `fd` into `buf`.
    pub fn new(fd: RawFd, buf: B) -> Getdents<B> {
        Getdents { fd, buf }
    }
}

impl<B: IoBufMut> Operation for Getdents<B> {
    type Output = BufResult<usize, B>;
    fn raw(&mut self) -> RawOp {
        let init = self.buf.bytes_init();
        RawOp::Getdents {
            fd: self.fd,
            // SAFETY: `init <= bytes_total`, within the buffer.
            buf: unsafe { self.buf.stable_mut_ptr().add(init) },
            len: self.buf.bytes_total() - init,
        }
    }
    fn complete(mut self, res: io::Result<usize>) -> Self::Output {
        if let Ok(n) = res {
            let init = self.buf.bytes_init();
            // SAFETY: the kernel wrote `n` bytes after the initialized part.
            unsafe { self.buf.set_init(init + n) };
        }
        (res, self.buf)
    }
}

/// `splice(2)`: moves up to `len` bytes from `fd_in` (a file at `off_in`,
/// or a pipe) to `fd_out` (a pipe or a socket) without copying them
/// through user space; one end must be a pipe. The result is the bytes
/// moved.
#[derive(Debug)]
pub struct Splice {
    fd_in: RawFd,
    off_in: Option<u64>,
    fd_out: RawFd,
    len: usize,
}

impl Splice {
    /// Moves up to `len` bytes from `fd_in` to `fd_out`.
    pub fn new(fd_in: RawFd, off_in: Option<u64>, fd_out: RawFd, len: usize) -> Splice {
        Splice {
            fd_in,
            off_in,
            fd_out,
            len,
        }
    }
}

impl Operation for Splice {
    type Output = io::Result<usize>;
    fn invalid(&self) -> Option<io::Error> {
        super::ops::bad_offset(self.off_in)
    }
    fn raw(&mut self) -> RawOp {
        RawOp::Splice {
            fd_in: self.fd_in,
            off_in: self.off_in,
            fd_out: self.fd_out,
            len: self.len,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res
    }
}

/// `sendfile(2)`: up to `len` bytes of the file `in_fd` from `offset` to
/// the socket `fd`; the result is the bytes sent.
#[derive(Debug)]
pub struct SendFile {
    fd: RawFd,
    in_fd: RawFd,
    offset: u64,
    len: usize,
}

impl SendFile {
    /// Sends up to `len` bytes of `in_fd` from `offset` on socket `fd`.
    pub fn new(fd: RawFd, in_fd: RawFd, offset: u64, len: usize) -> SendFile {
        SendFile { fd, in_fd, offset, len }
    }
}

impl Operation for SendFile {
    type Output = io::Result<usize>;
    fn invalid(&self) -> Option<io::Error> {
        super::ops::bad_offset(Some(self.offset))
    }
    fn raw(&mut self) -> RawOp {
        RawOp::SendFile {
            fd: self.fd,
            in_fd: self.in_fd,
            offset: self.offset,
            len: self.len,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res
    }
}
