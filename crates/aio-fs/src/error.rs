//! Errors that name the path they are about.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O error about a path: `No such file or directory (os error 2):
/// '/etc/nothing'`. Its kind is the original error's, which is its
/// [`source`](std::error::Error::source) (with the OS error number).
#[derive(Debug)]
pub struct PathError {
    path: PathBuf,
    source: io::Error,
}

impl PathError {
    /// The path the failed call was about.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: '{}'", self.source, self.path.display())
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `e`, saying which path it is about (cancellations pass unchanged: they
/// are about the task, not the path).
pub(crate) fn at(e: io::Error, path: &Path) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    io::Error::new(
        e.kind(),
        PathError {
            path: path.to_owned(),
            source: e,
        },
    )
}
