//! `Metadata`: what `statx(2)` says about a file.

use std::fmt;
use std::time::{Duration, SystemTime};

/// What kind of file a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileType(u32);

impl FileType {
    pub(crate) fn from_mode(mode: u32) -> FileType {
        FileType(mode & libc::S_IFMT)
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.0 == libc::S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.0 == libc::S_IFDIR
    }

    /// A symbolic link (seen only without following links).
    pub fn is_symlink(&self) -> bool {
        self.0 == libc::S_IFLNK
    }
}

/// A file's metadata (`statx(2)`): size, type, permissions, times.
#[derive(Clone, Copy)]
pub struct Metadata {
    st: libc::statx,
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("file_type", &self.file_type())
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .finish_non_exhaustive()
    }
}

fn time(t: libc::statx_timestamp) -> Option<SystemTime> {
    let d = Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec);
    if t.tv_sec >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(d)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(d)
    }
}

impl Metadata {
    pub(crate) fn new(st: libc::statx) -> Metadata {
        Metadata { st }
    }

    /// The file's type.
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(u32::from(self.st.stx_mode))
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// Whether it is a symbolic link (from `symlink_metadata`).
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        self.st.stx_size
    }

    /// Whether the size is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The permission bits and the set-id and sticky bits (`st_mode & 07777`).
    pub fn mode(&self) -> u32 {
        u32::from(self.st.stx_mode) & 0o7777
    }

    /// Whether no write permission bit is set (std's `readonly`).
    pub fn readonly(&self) -> bool {
        self.mode() & 0o222 == 0
    }

    /// The last modification time.
    pub fn modified(&self) -> Option<SystemTime> {
        time(self.st.stx_mtime)
    }

    /// The last access time.
    pub fn accessed(&self) -> Option<SystemTime> {
        time(self.st.stx_atime)
    }

    /// The creation time, where the file system records it.
    pub fn created(&self) -> Option<SystemTime> {
        (self.st.stx_mask & libc::STATX_BTIME != 0)
            .then(|| time(self.st.stx_btime))
            .flatten()
    }

    /// The device the file is on (std's `MetadataExt::dev`): with
    /// [`ino`](Metadata::ino), which file this is.
    pub fn dev(&self) -> u64 {
        libc::makedev(self.st.stx_dev_major, self.st.stx_dev_minor)
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.st.stx_ino
    }

    /// The number of hard links.
    pub fn nlink(&self) -> u32 {
        self.st.stx_nlink
    }

    /// The owner's user id.
    pub fn uid(&self) -> u32 {
        self.st.stx_uid
    }

    /// The owner's group id.
    pub fn gid(&self) -> u32 {
        self.st.stx_gid
    }
}
