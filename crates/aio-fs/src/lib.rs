//! aio-fs: asynchronous files for aio.
//!
//! asyncio has no file I/O (its users reach for threads); tokio::fs runs
//! every call on its blocking pool. aio's files run every call the way the
//! loop's driver does best: on io_uring each is one submission (`openat`,
//! `read`, `write`, `fsync`, `statx`, `ftruncate`, `unlinkat`,
//! `renameat`, `mkdirat`, `close`), so a task reading a file costs no
//! thread; on the readiness driver (epoll), where no readiness applies to
//! regular files, each call runs on the loop's file-call threads. Either
//! way a call is defined once (in aio-core's I/O operations) and the code
//! here never names the backend. Listing a directory (`getdents64`, which
//! io_uring lacks) runs on a thread on both.
//!
//! Buffers are owned, as for sockets: `read_at(vec, pos)` gives the vector
//! back with the data, so the kernel can write into it while the task
//! waits. [`File`] also implements the `futures-io` traits (and tokio's,
//! with the `tokio-io` feature).
//!
//! Errors name the path: `No such file or directory (os error 2):
//! 'missing.txt'` ([`PathError`]); reading past the end gives `Ok(0)`;
//! opening a directory as a file works (as in std) but reading it fails
//! with `EISDIR`, naming the path.
//!
//! # Cancellation
//! Every call is an aio await point. A cancelled call either did not
//! start or finished in the kernel first, in which case its result stands
//! (how much a write wrote) and the cancellation comes at the next await
//! point. A dropped call never frees a buffer the kernel (or a thread)
//! still writes: the driver keeps it until the call ends.
//!
//! # Examples
//! ```
//! # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
//! let dir = std::env::temp_dir().join(format!("aio-fs-doc-{}", std::process::id()));
//! aio_fs::create_dir_all(&dir).await?;
//! let path = dir.join("hello.txt");
//! aio_fs::write(&path, b"hello, files").await?;
//! assert_eq!(aio_fs::read_to_string(&path).await?, "hello, files");
//!
//! let f = aio_fs::File::open(&path).await?;
//! let (n, buf) = f.read_at(vec![0u8; 5], 7).await;
//! assert_eq!(&buf[..n?], b"files");
//! assert_eq!(f.metadata().await?.len(), 12);
//!
//! let err = aio_fs::read(dir.join("missing")).await.unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
//! assert!(err.to_string().contains("missing"));
//! aio_fs::remove_dir_all(&dir).await?;
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod dir;
mod error;
mod file;
mod metadata;

pub use dir::{DirEntry, ReadDir, read_dir};
pub use error::PathError;
pub use file::{File, OpenOptions, PartialWrite};
pub use metadata::{FileType, Metadata};

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aio_core::io::{self as aio_io, MkdirAt, RenameAt, Statx, UnlinkAt, c_path};

use error::at;

/// How much `copy` moves per call.
const COPY_CHUNK: usize = 1 << 20;

/// Reads a whole file: std's `fs::read`.
///
/// # Cancellation
/// An aio await point at every read; what was read is dropped.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let f = File::open(path.as_ref()).await?;
    let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    f.read_to_end(&mut out).await?;
    Ok(out)
}

/// Reads a whole file as UTF-8: std's `fs::read_to_string`.
///
/// # Cancellation
/// As [`read`].
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    String::from_utf8(read(path).await?).map_err(|_| {
        at(
            io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8"),
            path,
        )
    })
}

/// Writes `contents` to a file, creating or truncating it: std's
/// `fs::write`.
///
/// # Cancellation
/// Stops between writes: the file may hold a prefix.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let f = File::create(path).await?;
    f.write_all(contents.as_ref().to_vec()).await.0
}

/// Copies the contents of `from` to `to` (created or truncated) and gives
/// `to`, when it is a regular file, `from`'s permission bits; returns the
/// bytes copied: std's `fs::copy`.
///
/// # Errors
/// `InvalidInput` if `from` is not a regular file, or if `to` is the same
/// file (the same path, a hard link, a symbolic link to it): the file is
/// left as it was, where truncating the destination would empty the
/// source (Python's `shutil.copyfile` raises `SameFileError`).
///
/// # Cancellation
/// Stops between chunks: `to` may hold a prefix.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let src = File::open(from.as_ref()).await?;
    let meta = src.metadata().await?;
    if !meta.is_file() {
        return Err(at(
            io::Error::new(io::ErrorKind::InvalidInput, "the source is not a regular file"),
            from.as_ref(),
        ));
    }
    // Opened without truncation until it is known to be another file.
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(meta.mode())
        .open(to.as_ref())
        .await?;
    let to_meta = dst.metadata().await?;
    if (to_meta.dev(), to_meta.ino()) == (meta.dev(), meta.ino()) {
        return Err(at(
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the destination is the source file {}", from.as_ref().display()),
            ),
            to.as_ref(),
        ));
    }
    // A FIFO or a device is written to, not truncated (as O_TRUNC leaves
    // it), and keeps its permissions. A regular file gets the source's,
    // also when it existed (std does so; the mode given to `open` applies
    // only to a new file). `fchmod` may wait on a network file system:
    // on a thread.
    if to_meta.is_file() {
        dst.set_len(0).await?;
        let f = std::fs::File::from(dst.as_fd().try_clone_to_owned()?);
        let perm = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
        aio_core::to_thread(move || f.set_permissions(perm))
            .await?
            .map_err(|e| at(e, to.as_ref()))?;
    }
    let mut pos = 0u64;
    let mut buf = Vec::with_capacity(COPY_CHUNK);
    loop {
        buf.clear();
        let (r, b) = src.read_at(buf, pos).await;
        let n = r?;
        if n == 0 {
            return Ok(pos);
        }
        let (r, b) = dst.write_all_at(b, pos).await;
        r?;
        buf = b;
        pos += n as u64;
    }
}

async fn stat(path: &Path, follow: bool) -> io::Result<Metadata> {
    let c = c_path(path.as_os_str()).map_err(|e| at(e, path))?;
    aio_io::submit(Statx::path(c, follow))
        .await
        .map(Metadata::new)
        .map_err(|e| at(e, path))
}

/// The metadata of `path`, following symbolic links: std's `fs::metadata`.
///
/// # Cancellation
/// An aio await point.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), true).await
}

/// The metadata of `path` itself, not following a final symbolic link.
///
/// # Cancellation
/// An aio await point.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), false).await
}

async fn unlink(path: &Path, dir: bool) -> io::Result<()> {
    let c = c_path(path.as_os_str()).map_err(|e| at(e, path))?;
    aio_io::submit(UnlinkAt::new(c, dir)).await.map_err(|e| at(e, path))
}

/// Removes a file: std's `fs::remove_file`.
///
/// # Cancellation
/// An aio await point: the file is removed or not.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), false).await
}

/// Removes an empty directory: std's `fs::remove_dir`.
///
/// # Cancellation
/// As [`remove_file`].
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), true).await
}

/// Renames `from` to `to`, replacing `to`: std's `fs::rename`.
///
/// # Cancellation
/// As [`remove_file`].
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let f = c_path(from.as_os_str()).map_err(|e| at(e, from))?;
    let t = c_path(to.as_os_str()).map_err(|e| at(e, to))?;
    aio_io::submit(RenameAt::new(f, t)).await.map_err(|e| at(e, from))
}

/// Creates a directory: std's `fs::create_dir`.
///
/// # Cancellation
/// As [`remove_file`].
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let c = c_path(path.as_os_str()).map_err(|e| at(e, path))?;
    aio_io::submit(MkdirAt::new(c, 0o777)).await.map_err(|e| at(e, path))
}

/// Creates a directory and its missing parents: std's
/// `fs::create_dir_all` (an existing directory is fine).
///
/// # Cancellation
/// Stops between directories: some parents may exist.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if path.as_os_str().is_empty() {
        // std's rule: nothing to create.
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = path;
    loop {
        match create_dir(p).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if metadata(p).await?.is_dir() {
                    break;
                }
                return Err(e);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match p.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => {
                    missing.push(p);
                    p = parent;
                }
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    for p in missing.into_iter().rev() {
        match create_dir(p).await {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Removes a directory and everything in it, not following symbolic
/// links: std's `fs::remove_dir_all`.
///
/// # Cancellation
/// Stops between removals: part of the tree may be gone.
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    if symlink_metadata(path).await?.is_symlink() {
        return remove_file(path).await;
    }
    // Depth first, with an explicit stack (no recursion in async).
    let mut stack = vec![(path.to_owned(), false)];
    while let Some((dir, listed)) = stack.pop() {
        if listed {
            remove_dir(&dir).await?;
            continue;
        }
        stack.push((dir.clone(), true));
        let mut entries = read_dir(&dir).await?;
        while let Some(e) = entries.next_entry().await? {
            if e.file_type().await?.is_dir() {
                stack.push((e.path(), false));
            } else {
                remove_file(e.path()).await?;
            }
        }
    }
    Ok(())
}
