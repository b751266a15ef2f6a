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
        // Control characters (a NUL, a newline) escaped, never printed raw.
        let shown = self.path.display().to_string();
        let escaped: String = shown
            .chars()
            .flat_map(|c| {
                let raw = (!c.is_control()).then_some(c);
                raw.into_iter()
                    .chain(c.is_control().then(|| c.escape_debug()).into_iter().flatten())
            })
            .collect();
        write!(f, "{}: '{}'", self.source, escaped)
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
