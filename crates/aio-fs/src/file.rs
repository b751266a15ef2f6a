//! `File` and `OpenOptions`.

use std::fmt;
use std::io::{self, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use aio_core::driver::FdKind;
use aio_core::io::{
    self as aio_io, BufResult, Fsync, Ftruncate, IoBuf, IoBufMut, OpFuture, OpenAt, Read, Registered, Statx, Write,
    c_path,
};

use crate::error::at;
use crate::metadata::Metadata;

/// How much a poll-based read (`futures-io`, tokio) asks for at most.
const TRAIT_READ_MAX: usize = 1 << 20;

/// Options for opening a file, as std's `OpenOptions`.
///
/// # Examples
/// ```no_run
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let f = aio_fs::OpenOptions::new().append(true).create(true).open("log.txt").await?;
/// f.write_all(b"one more line\n".to_vec()).await.0?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off; a created file gets mode `0o666` (before the umask).
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut OpenOptions {
        self.read = on;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut OpenOptions {
        self.write = on;
        self
    }

    /// Every write goes to the end (implies writing).
    pub fn append(&mut self, on: bool) -> &mut OpenOptions {
        self.append = on;
        self
    }

    /// Truncate an existing file to zero length.
    pub fn truncate(&mut self, on: bool) -> &mut OpenOptions {
        self.truncate = on;
        self
    }

    /// Create the file if it does not exist.
    pub fn create(&mut self, on: bool) -> &mut OpenOptions {
        self.create = on;
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, on: bool) -> &mut OpenOptions {
        self.create_new = on;
        self
    }

    /// The mode of a created file (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.mode = mode;
        self
    }

    /// Extra `O_*` flags (`O_DIRECT`, `O_NOATIME`, ...).
    pub fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.custom_flags = flags;
        self
    }

    fn flags(&self) -> io::Result<i32> {
        let access = match (self.read, self.write || self.append) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "open a file for reading, writing or appending",
                ));
            }
        };
        if (self.truncate || self.create || self.create_new) && !(self.write || self.append) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "creating or truncating a file needs write access",
            ));
        }
        let mut flags = access | self.custom_flags;
        if self.append {
            flags |= libc::O_APPEND;
        }
        if self.truncate && !self.append {
            flags |= libc::O_TRUNC;
        }
        if self.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        } else if self.create {
            flags |= libc::O_CREAT;
        }
        Ok(flags)
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    /// The error names the path: `No such file or directory (os error 2):
    /// 'missing.txt'`.
    ///
    /// # Cancellation
    /// A cancelled open returns `Interrupted`; a descriptor the kernel
    /// opened meanwhile is closed, never leaked.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        let flags = self.flags()?;
        let c = c_path(path.as_os_str()).map_err(|e| at(e, path))?;
        let fd = aio_io::submit(OpenAt::new(c, flags, self.mode))
            .await
            .map_err(|e| at(e, path))?;
        let mut f = File::from_owned(fd, path.to_owned())?;
        f.blocking_mode = flags & libc::O_NONBLOCK == 0;
        Ok(f)
    }
}

/// An open file: owned-buffer reads and writes at an offset or at the
/// cursor, sync, length, metadata; and the `futures-io` (and, with the
/// `tokio-io` feature, tokio's) `AsyncRead`/`AsyncWrite`/`AsyncSeek`.
///
/// On io_uring every call is one submission; on the readiness driver each
/// runs on the loop's file-call threads. Errors name the file's path.
///
/// # Cancellation
/// Every method is an aio await point. A cancelled call either did not
/// start (nothing was read or written) or finished in the kernel first, in
/// which case its result stands and the cancellation comes at the next
/// await point; a dropped call's buffer stays with the driver until the
/// kernel (or the thread) is done with it, never freed under it.
/// [`write_all`](File::write_all) cancelled midway reports how much it
/// wrote ([`PartialWrite`]).
pub struct File {
    /// Before `fd`: a dropped file gives up its operations in flight
    /// before its descriptor closes.
    io: TraitState,
    fd: Registered,
    path: Arc<Path>,
    /// Opened here without `O_NONBLOCK` (a FIFO may have been put into
    /// non-blocking mode for the readiness driver: see
    /// [`into_std`](File::into_std)).
    blocking_mode: bool,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.fd.as_raw_fd())
            .field("path", &self.path)
            .finish()
    }
}

/// The error of a [`File::write_all`] that stopped midway (cancelled, or a
/// write failed): how much it wrote, and why it stopped (its source).
#[derive(Debug)]
pub struct PartialWrite {
    written: usize,
    source: io::Error,
}

impl PartialWrite {
    /// The bytes written before it stopped.
    pub fn written(&self) -> usize {
        self.written
    }

    /// How much an error from `write_all` says was written (0 when it
    /// stopped before writing, or is another error).
    pub fn of(e: &io::Error) -> usize {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<PartialWrite>())
            .map_or(0, PartialWrite::written)
    }
}

impl fmt::Display for PartialWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (after writing {} bytes)", self.source, self.written)
    }
}

impl std::error::Error for PartialWrite {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl File {
    /// Opens `path` for reading: std's `File::open`.
    ///
    /// # Cancellation
    /// As [`OpenOptions::open`].
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates (or truncates) `path` for writing: std's `File::create`.
    ///
    /// # Cancellation
    /// As [`OpenOptions::open`].
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// An [`OpenOptions`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    fn from_owned(fd: OwnedFd, path: PathBuf) -> io::Result<File> {
        Ok(File {
            io: TraitState::default(),
            fd: Registered::with_kind(fd, FdKind::File).map_err(|e| at(e, &path))?,
            path: path.into(),
            blocking_mode: false,
        })
    }

    /// Takes over an open std file (on the running loop). `path` is what
    /// errors name.
    ///
    /// # Panics
    /// When no aio loop runs on this thread.
    pub fn from_std(f: std::fs::File, path: impl Into<PathBuf>) -> io::Result<File> {
        File::from_owned(f.into(), path.into())
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn named<T>(&self, r: io::Result<T>) -> io::Result<T> {
        r.map_err(|e| at(e, &self.path))
    }

    /// Reads into `buf` from byte `pos` of the file: its spare capacity,
    /// or the whole buffer when it has none (`vec![0; n]`). `Ok(0)` at
    /// the end of the file.
    ///
    /// # Cancellation
    /// See [`File`]: nothing is read, or the read that finished stands.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let (r, buf) = aio_io::submit(Read::new(self.raw(), buf, Some(pos))).await;
        (self.named(r), buf)
    }

    /// Writes some of `buf` at byte `pos`; returns how much.
    ///
    /// # Cancellation
    /// See [`File`].
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let (r, buf) = aio_io::submit(Write::new(self.raw(), buf, Some(pos))).await;
        (self.named(r), buf)
    }

    /// Writes all of `buf` from byte `pos`.
    ///
    /// # Cancellation
    /// Stops between writes with a [`PartialWrite`] saying how much was
    /// written.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        self.write_all_from(buf, Some(pos)).await
    }

    /// Reads into `buf` at the file's cursor (advancing it).
    ///
    /// # Cancellation
    /// See [`File`]: a read the kernel finished moved the cursor, and its
    /// data is returned (or, if the future was dropped, given to the next
    /// read at the cursor).
    pub async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        let (r, buf) = aio_io::submit(Read::new(self.raw(), buf, None)).await;
        (self.named(r), buf)
    }

    /// Writes some of `buf` at the cursor; returns how much.
    ///
    /// # Cancellation
    /// See [`File`].
    pub async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        let (r, buf) = aio_io::submit(Write::new(self.raw(), buf, None)).await;
        (self.named(r), buf)
    }

    /// Writes all of `buf` at the cursor.
    ///
    /// # Cancellation
    /// Stops between writes with a [`PartialWrite`] saying how much was
    /// written.
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        self.write_all_from(buf, None).await
    }

    async fn write_all_from<B: IoBuf>(&self, mut buf: B, pos: Option<u64>) -> BufResult<(), B> {
        let mut done = 0;
        let total = buf.bytes_init();
        while done < total {
            let at_pos = pos.map(|p| p.saturating_add(done as u64));
            let (r, b) = aio_io::submit(Write::at(self.raw(), buf, done, at_pos)).await;
            buf = b;
            match r {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "the file took no more bytes");
                    return (Err(self.partial(done, e)), buf);
                }
                Ok(n) => done += n,
                Err(e) => return (Err(self.partial(done, e)), buf),
            }
        }
        (Ok(()), buf)
    }

    fn partial(&self, written: usize, source: io::Error) -> io::Error {
        let kind = source.kind();
        if written == 0 {
            return at(source, &self.path);
        }
        let source = if kind == io::ErrorKind::Interrupted {
            source
        } else {
            at(source, &self.path)
        };
        io::Error::new(kind, PartialWrite { written, source })
    }

    /// Flushes data and metadata to the disk: std's `sync_all`.
    ///
    /// # Cancellation
    /// See [`File`].
    pub async fn sync_all(&self) -> io::Result<()> {
        self.named(aio_io::submit(Fsync::new(self.raw(), false)).await)
    }

    /// Flushes the data (and the metadata needed to read it): std's
    /// `sync_data`.
    ///
    /// # Cancellation
    /// See [`File`].
    pub async fn sync_data(&self) -> io::Result<()> {
        self.named(aio_io::submit(Fsync::new(self.raw(), true)).await)
    }

    /// Truncates or extends the file to `len` bytes.
    ///
    /// # Cancellation
    /// See [`File`].
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        self.named(aio_io::submit(Ftruncate::new(self.raw(), len)).await)
    }

    /// The file's metadata.
    ///
    /// # Cancellation
    /// See [`File`].
    pub async fn metadata(&self) -> io::Result<Metadata> {
        self.named(aio_io::submit(Statx::fd(self.raw())).await)
            .map(Metadata::new)
    }

    /// Gives the descriptor back as a std file (deregistered), in the
    /// mode it was opened in: a FIFO or device opened without
    /// `O_NONBLOCK`, which the readiness driver reads non-blocking, is
    /// blocking again.
    pub fn into_std(self) -> std::fs::File {
        let blocking = self.blocking_mode;
        let fd = self.fd.into_inner();
        if blocking {
            // Best effort: a descriptor that refuses fcntl stays as it is.
            let _ = aio_io::set_nonblocking(fd.as_fd(), false);
        }
        fd.into()
    }

    /// Reads the rest of the file from the cursor, appending to `out`;
    /// returns how much.
    ///
    /// # Cancellation
    /// The bytes read so far are in `out`.
    pub async fn read_to_end(&self, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        loop {
            if out.capacity() - out.len() < 8192 {
                out.reserve(64 * 1024);
            }
            let (r, b) = self.read(std::mem::take(out)).await;
            *out = b;
            if r? == 0 {
                return Ok(out.len() - start);
            }
        }
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// --- poll-based traits ---------------------------------------------------------

/// The operations the poll-based traits keep in flight between polls.
#[derive(Default)]
struct TraitState {
    read: Option<OpFuture<Read<Vec<u8>>>>,
    /// Read beyond what the caller's buffer took.
    leftover: Vec<u8>,
    leftover_pos: usize,
    /// A write in flight (the caller was told it was written), and how
    /// much of its buffer is done.
    write: Option<OpFuture<Write<Vec<u8>>>>,
    write_done: usize,
    /// A failed background write, reported at the next write or flush.
    write_err: Option<io::Error>,
    /// tokio's `start_seek` target, until `poll_complete`.
    #[cfg(feature = "tokio-io")]
    pending_seek: Option<SeekFrom>,
}

impl File {
    /// Drives a background write to its end (continuing short writes).
    fn poll_write_done(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(op) = self.io.write.as_mut() {
            let (r, buf) = ready!(Pin::new(op).poll(cx));
            self.io.write = None;
            match r {
                Ok(n) if n > 0 && self.io.write_done + n < buf.len() => {
                    self.io.write_done += n;
                    let start = self.io.write_done;
                    self.io.write = Some(aio_io::submit_shielded(Write::from(self.raw(), buf, start)));
                }
                Ok(0) if !buf.is_empty() => {
                    self.io.write_err = Some(io::Error::new(io::ErrorKind::WriteZero, "the file took no more bytes"));
                }
                Ok(_) => {}
                Err(e) => self.io.write_err = Some(at(e, &self.path)),
            }
        }
        self.io.write_done = 0;
        match self.io.write_err.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_read_into(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.io.leftover_pos < self.io.leftover.len() {
            let rest = &self.io.leftover[self.io.leftover_pos..];
            let n = rest.len().min(out.len());
            out[..n].copy_from_slice(&rest[..n]);
            self.io.leftover_pos += n;
            return Poll::Ready(Ok(n));
        }
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.poll_write_done(cx))?;
        let fd = self.raw();
        let want = out.len().min(TRAIT_READ_MAX);
        let op = self
            .io
            .read
            .get_or_insert_with(|| aio_io::submit_shielded(Read::new(fd, Vec::with_capacity(want), None)));
        let (r, buf) = ready!(Pin::new(op).poll(cx));
        self.io.read = None;
        let got = r.map_err(|e| at(e, &self.path))?;
        let n = got.min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        if got > n {
            self.io.leftover = buf;
            self.io.leftover_pos = n;
        } else {
            self.io.leftover.clear();
            self.io.leftover_pos = 0;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_from(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_write_done(cx))?;
        if self.io.read.is_some() || self.io.leftover_pos < self.io.leftover.len() {
            // Read ahead of the caller: the cursor must come back first.
            ready!(self.poll_seek_to(cx, SeekFrom::Current(0)))?;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Taken now, written in the background; errors come at the next
        // write or flush (as tokio's File does).
        self.io.write_done = 0;
        self.io.write = Some(aio_io::submit_shielded(Write::new(self.raw(), data.to_vec(), None)));
        Poll::Ready(Ok(data.len()))
    }

    fn poll_seek_to(&mut self, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>> {
        ready!(self.poll_write_done(cx))?;
        if let Some(op) = self.io.read.as_mut() {
            // Finish the read in flight: its data moved the cursor.
            let (r, buf) = ready!(Pin::new(op).poll(cx));
            self.io.read = None;
            if r.is_ok() {
                self.io.leftover = buf;
                self.io.leftover_pos = 0;
            }
        }
        let ahead = (self.io.leftover.len() - self.io.leftover_pos) as i64;
        self.io.leftover.clear();
        self.io.leftover_pos = 0;
        let pos = match pos {
            SeekFrom::Current(n) => SeekFrom::Current(n - ahead),
            other => other,
        };
        // `lseek` never blocks: run it here, on a descriptor that shares
        // the file's offset.
        let f = std::fs::File::from(self.fd.as_fd().try_clone_to_owned()?);
        Poll::Ready(io::Seek::seek(&mut &f, pos).map_err(|e| at(e, &self.path)))
    }
}

impl futures_io::AsyncRead for File {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_into(cx, buf)
    }
}

impl futures_io::AsyncWrite for File {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_from(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_done(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_done(cx)
    }
}

impl futures_io::AsyncSeek for File {
    fn poll_seek(self: Pin<&mut Self>, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>> {
        self.get_mut().poll_seek_to(cx, pos)
    }
}

#[cfg(feature = "tokio-io")]
mod tokio_io {
    use super::*;

    impl tokio::io::AsyncRead for File {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = ready!(self.get_mut().poll_read_into(cx, buf.initialize_unfilled()))?;
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
    }

    impl tokio::io::AsyncWrite for File {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.get_mut().poll_write_from(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_write_done(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_write_done(cx)
        }
    }

    impl tokio::io::AsyncSeek for File {
        fn start_seek(self: Pin<&mut Self>, pos: SeekFrom) -> io::Result<()> {
            self.get_mut().io.pending_seek = Some(pos);
            Ok(())
        }

        fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
            let this = self.get_mut();
            let pos = this.io.pending_seek.unwrap_or(SeekFrom::Current(0));
            let r = ready!(this.poll_seek_to(cx, pos));
            this.io.pending_seek = None;
            Poll::Ready(r)
        }
    }
}
