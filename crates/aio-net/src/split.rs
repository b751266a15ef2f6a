//! A TCP connection in two halves, as tokio has them: [`TcpStream::split`]
//! (borrowed) and [`TcpStream::into_split`] (owned, [`reunite`]-able), so
//! one task reads while another writes.
//!
//! Each half carries its own direction's state (the readiness poll of a
//! completion driver), so the two never wait on each other. They are not
//! `Send`, like the stream: both halves stay on the stream's loop.
//!
//! [`reunite`]: OwnedReadHalf::reunite

use std::error::Error;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use aio_core::io::Registered;

use crate::TcpStream;
use crate::compat::{self, Compat, Side};
use crate::sock::{self, sref};

/// The reading half of a borrowed [`TcpStream::split`]: `AsyncRead`
/// (futures-io's, and tokio's with `tokio-io`).
pub struct ReadHalf<'a> {
    fd: &'a Registered,
    side: &'a mut Side,
}

/// The writing half of a borrowed [`TcpStream::split`]: `AsyncWrite`
/// (futures-io's, and tokio's with `tokio-io`). Shutting it down
/// (`poll_close`/`poll_shutdown`) shuts down the connection's sending
/// side; dropping it does nothing.
pub struct WriteHalf<'a> {
    fd: &'a Registered,
    side: &'a mut Side,
}

/// The reading half of [`TcpStream::into_split`], to move into a task of
/// its own (on the same loop).
pub struct OwnedReadHalf {
    fd: Rc<Registered>,
    side: Side,
}

/// The writing half of [`TcpStream::into_split`]. As tokio's, dropping it
/// shuts down the connection's sending side (the peer reads EOF) unless
/// [`forget`](OwnedWriteHalf::forget) was called; the socket closes when
/// both halves are gone.
pub struct OwnedWriteHalf {
    fd: Rc<Registered>,
    side: Side,
    shutdown_on_drop: bool,
}

/// [`reunite`](OwnedReadHalf::reunite) was given halves of two different
/// streams: both come back.
///
/// It is large (two halves with their read and write state); `reunite`
/// returns it unboxed anyway, as tokio's does, since it only happens on
/// a mistake and the halves are given back as they were.
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl TcpStream {
    /// Borrows the stream as a reading half and a writing half, to read
    /// and write at once from one task (`join`, `select`) with no
    /// allocation. tokio's `TcpStream::split`.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        let Compat { read, write } = &mut self.compat;
        (
            ReadHalf {
                fd: &self.fd,
                side: read,
            },
            WriteHalf {
                fd: &self.fd,
                side: write,
            },
        )
    }

    /// Splits the stream into halves that own it together, to move into
    /// two tasks (of this loop); [`reunite`](OwnedReadHalf::reunite) puts
    /// them back together. tokio's `TcpStream::into_split`.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let TcpStream { fd, compat } = self;
        let fd = Rc::new(fd);
        (
            OwnedReadHalf {
                fd: fd.clone(),
                side: compat.read,
            },
            OwnedWriteHalf {
                fd,
                side: compat.write,
                shutdown_on_drop: true,
            },
        )
    }
}

macro_rules! addresses {
    () => {
        /// The local address.
        pub fn local_addr(&self) -> io::Result<SocketAddr> {
            sock::inet(sref(&self.fd).local_addr()?)
        }

        /// The peer's address.
        pub fn peer_addr(&self) -> io::Result<SocketAddr> {
            sock::inet(sref(&self.fd).peer_addr()?)
        }
    };
}

impl ReadHalf<'_> {
    addresses!();
}

impl WriteHalf<'_> {
    addresses!();
}

impl OwnedReadHalf {
    addresses!();

    /// The stream again, from its two halves; [`ReuniteError`] if `w` is
    /// the half of another stream.
    #[expect(clippy::result_large_err, reason = "tokio's signature; see ReuniteError")]
    pub fn reunite(self, w: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        reunite(self, w)
    }
}

impl OwnedWriteHalf {
    addresses!();

    /// The stream again, from its two halves; [`ReuniteError`] if `r` is
    /// the half of another stream.
    #[expect(clippy::result_large_err, reason = "tokio's signature; see ReuniteError")]
    pub fn reunite(self, r: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        reunite(r, self)
    }

    /// Drops the half without shutting down the sending side.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }
}

#[expect(clippy::result_large_err, reason = "tokio's signature; see ReuniteError")]
fn reunite(r: OwnedReadHalf, mut w: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    if !Rc::ptr_eq(&r.fd, &w.fd) {
        return Err(ReuniteError(r, w));
    }
    w.shutdown_on_drop = false;
    let OwnedReadHalf { fd: rfd, side: read } = r;
    let write = std::mem::take(&mut w.side);
    let wfd = w.fd.clone();
    drop(w);
    drop(rfd);
    let fd = Rc::try_unwrap(wfd).unwrap_or_else(|_| unreachable!("the two halves held the only references"));
    Ok(TcpStream {
        fd,
        compat: Compat { read, write },
    })
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // Nothing of ours is in flight (a send never is, see `compat`):
            // what was written is in the kernel, ahead of the EOF.
            let _ = sref(&self.fd).shutdown(Shutdown::Write);
        }
    }
}

compat::impl_async_read!(ReadHalf<'_>, |this| (this.fd, &mut *this.side));
compat::impl_async_write!(WriteHalf<'_>, |this| (this.fd, &mut *this.side));
compat::impl_async_read!(OwnedReadHalf, |this| (&*this.fd, &mut this.side));
compat::impl_async_write!(OwnedWriteHalf, |this| (&*this.fd, &mut this.side));

macro_rules! debug_and_fd {
    ($($t:ty),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("local_addr", &self.local_addr().ok())
                    .field("peer_addr", &self.peer_addr().ok())
                    .finish()
            }
        }

        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }
    )*};
}
debug_and_fd!(ReadHalf<'_>, WriteHalf<'_>, OwnedReadHalf, OwnedWriteHalf);

impl fmt::Debug for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl Error for ReuniteError {}
