//! `StreamWriter::sendfile`: asyncio's `loop.sendfile(transport, file)`,
//! without copying the file through user space.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use aio_core::io::{self as aio_io, Read, SendFile, Splice};

use super::StreamWriter;
use crate::sys;

/// How much one call moves at most (a pipe holds 64 KiB by default).
const SPLICE_CHUNK: usize = 64 * 1024;
const SENDFILE_CHUNK: usize = 1 << 20;

impl StreamWriter {
    /// Sends `count` bytes of `file` from `offset` (to its end with
    /// `None`) after everything written before: asyncio's
    /// `loop.sendfile(transport, file, offset, count)`. Returns the bytes
    /// sent, fewer than asked only at the end of the file.
    ///
    /// The data goes from the page cache to the socket without a copy
    /// through user space: `splice(2)` through a pipe on io_uring (two
    /// submissions per chunk), `sendfile(2)` on the readiness driver. On a
    /// TLS connection, which must encrypt it, it is read in chunks and
    /// written as `write` would (asyncio's fallback).
    ///
    /// # Errors
    /// `NotConnected` after `write_eof`, `close` or `abort` (asyncio's
    /// `RuntimeError`: nothing may be sent then), and the connection's
    /// errors.
    ///
    /// # Cancellation
    /// Stops between chunks: a prefix of the range may have been sent, and
    /// the connection is then not at a message boundary (as with a
    /// cancelled `drain` after a partial write).
    pub async fn sendfile(&self, file: &impl AsFd, offset: u64, count: Option<u64>) -> io::Result<u64> {
        if self.is_shut() {
            return Err(shut());
        }
        // Everything written before goes first.
        self.flushed().await?;
        let sock = self
            .raw_fd()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the writer is closed"))?;
        let file = file.as_fd();
        let end = match count {
            Some(n) => offset.saturating_add(n),
            None => std::fs::File::from(file.try_clone_to_owned()?).metadata()?.len(),
        };
        let mut pos = offset;
        if self.encrypts() {
            let mut buf = Vec::with_capacity(SPLICE_CHUNK);
            while pos < end {
                let want = usize::try_from(end - pos).unwrap_or(usize::MAX).min(SPLICE_CHUNK);
                buf.clear();
                buf.reserve_exact(want);
                let (n, b) = aio_io::submit(Read::new(file.as_raw_fd(), buf, Some(pos))).await;
                buf = b;
                let n = n?.min(want);
                if n == 0 {
                    break;
                }
                if self.is_shut() {
                    // Shut meanwhile (by another task): stop, say so.
                    return Err(shut());
                }
                self.write(&buf[..n]);
                self.drain().await?;
                pos += n as u64;
            }
        } else if aio_io::is_completion_based() {
            let (pipe_r, pipe_w) = sys::pipe()?;
            while pos < end {
                let want = usize::try_from(end - pos).unwrap_or(usize::MAX).min(SPLICE_CHUNK);
                let n = aio_io::submit(Splice::new(file.as_raw_fd(), Some(pos), pipe_w.as_raw_fd(), want)).await?;
                if n == 0 {
                    break; // the end of the file
                }
                let mut left = n;
                while left > 0 {
                    let m = aio_io::submit(Splice::new(pipe_r.as_raw_fd(), None, sock, left)).await?;
                    if m == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the connection took no more bytes",
                        ));
                    }
                    left -= m;
                }
                pos += n as u64;
            }
        } else {
            while pos < end {
                let want = usize::try_from(end - pos).unwrap_or(usize::MAX).min(SENDFILE_CHUNK);
                let n = aio_io::submit(SendFile::new(sock, file.as_raw_fd(), pos, want)).await?;
                if n == 0 {
                    break;
                }
                pos += n as u64;
            }
        }
        Ok(pos - offset)
    }
}

/// What `sendfile` says once nothing may be sent.
fn shut() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "sendfile after write_eof, close or abort: nothing may be sent",
    )
}
