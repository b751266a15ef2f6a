//! Directories: `read_dir`, and creating and removing trees.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use aio_core::io::{self as aio_io, Getdents, OpenAt, c_path};

use crate::error::at;
use crate::metadata::{FileType, Metadata};

/// How much one `getdents64` asks for.
const DIRENT_BUF: usize = 32 * 1024;

/// The entries of a directory: asyncio has none, this is tokio's
/// `ReadDir` (`next_entry().await`). `.` and `..` are skipped.
pub struct ReadDir {
    dir: OwnedFd,
    path: PathBuf,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir").field("path", &self.path).finish()
    }
}

/// One entry of a directory.
#[derive(Debug, Clone)]
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    d_type: u8,
}

impl DirEntry {
    /// The entry's full path (the directory's path joined with its name).
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name in its directory.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The entry's type, from the directory listing when the file system
    /// gives it, else from `statx` (not following a symbolic link).
    ///
    /// # Cancellation
    /// An aio await point only when it has to ask `statx`.
    pub async fn file_type(&self) -> io::Result<FileType> {
        let mode = match self.d_type {
            libc::DT_REG => libc::S_IFREG,
            libc::DT_DIR => libc::S_IFDIR,
            libc::DT_LNK => libc::S_IFLNK,
            libc::DT_FIFO => libc::S_IFIFO,
            libc::DT_SOCK => libc::S_IFSOCK,
            libc::DT_CHR => libc::S_IFCHR,
            libc::DT_BLK => libc::S_IFBLK,
            _ => return Ok(crate::symlink_metadata(&self.path).await?.file_type()),
        };
        Ok(FileType::from_mode(mode))
    }

    /// The entry's metadata, not following a symbolic link.
    ///
    /// # Cancellation
    /// An aio await point.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        crate::symlink_metadata(&self.path).await
    }
}

/// Opens `path` as a directory to read its entries.
///
/// # Cancellation
/// An aio await point; nothing is leaked if cancelled.
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref();
    let c = c_path(path.as_os_str()).map_err(|e| at(e, path))?;
    let dir = aio_io::submit(OpenAt::new(c, libc::O_RDONLY | libc::O_DIRECTORY, 0))
        .await
        .map_err(|e| at(e, path))?;
    Ok(ReadDir {
        dir,
        path: path.to_owned(),
        buf: Vec::new(),
        pos: 0,
        done: false,
    })
}

impl ReadDir {
    /// The next entry, or `None` at the end.
    ///
    /// # Cancellation
    /// A cancelled call loses no entry: a listing the kernel returned
    /// stays buffered for the next call (a dropped call's listing is lost
    /// with its buffer; entries are then missed, as with a dropped std
    /// iterator).
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        loop {
            if let Some(e) = self.parse_one() {
                if e.name == "." || e.name == ".." {
                    continue;
                }
                return Ok(Some(e));
            }
            if self.done {
                return Ok(None);
            }
            let mut b = std::mem::take(&mut self.buf);
            b.clear();
            b.reserve(DIRENT_BUF);
            let (r, b) = aio_io::submit(Getdents::new(self.dir.as_raw_fd(), b)).await;
            self.buf = b;
            self.pos = 0;
            if r.map_err(|e| at(e, &self.path))? == 0 {
                self.done = true;
            }
        }
    }

    /// Parses the next `linux_dirent64` in the buffer: `d_ino` (8 bytes),
    /// `d_off` (8), `d_reclen` (2), `d_type` (1), the NUL-terminated name.
    fn parse_one(&mut self) -> Option<DirEntry> {
        let rest = self.buf.get(self.pos..)?;
        if rest.len() < 19 {
            return None;
        }
        let reclen = usize::from(u16::from_ne_bytes([rest[16], rest[17]]));
        if reclen < 19 || reclen > rest.len() {
            return None;
        }
        let d_type = rest[18];
        let name_bytes = &rest[19..reclen];
        let name_len = name_bytes.iter().position(|&b| b == 0).unwrap_or(name_bytes.len());
        let name = OsStr::from_bytes(&name_bytes[..name_len]).to_owned();
        self.pos += reclen;
        Some(DirEntry {
            path: self.path.join(&name),
            name,
            d_type,
        })
    }
}
