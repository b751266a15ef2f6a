//! What every socket type shares: creation, registration with the loop,
//! and the owned-buffer operations.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Poll, Waker};

use aio_core::driver::FdKind;
use aio_core::io::{self as aio_io, Borrowed, BufResult, IoBuf, IoBufMut, Registered};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

/// A new non-blocking, close-on-exec socket.
pub(crate) fn socket(domain: Domain, ty: Type, proto: Option<Protocol>) -> io::Result<Socket> {
    let s = Socket::new(domain, ty, proto)?;
    s.set_nonblocking(true)?;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    s.set_nosigpipe(true)?;
    Ok(s)
}

/// Registers a non-blocking socket of `kind` with the running loop.
pub(crate) fn register(s: impl Into<OwnedFd>, kind: FdKind) -> io::Result<Registered> {
    Registered::with_kind(s.into(), kind)
}

/// socket2's view of a registered socket, for options and addresses.
pub(crate) fn sref(r: &Registered) -> SockRef<'_> {
    SockRef::from(r)
}

/// Makes a listening socket refuse connections from now on, though its
/// descriptor stays open (a task holding the listener, or an io_uring
/// accept in flight, keeps it until it ends): asyncio's `Server.close()`
/// closes its sockets at once. On Linux, shutting down the receiving side
/// of a listening socket takes it out of the listening state — new
/// connections are refused, those waiting in the backlog are reset, and
/// pending accepts end. Elsewhere the call may fail; the socket then stops
/// listening when its last handle closes it.
pub(crate) fn stop_listening(r: &Registered) {
    let _ = sref(r).shutdown(Shutdown::Read);
}

pub(crate) fn inet(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an internet address"))
}

/// Connects a new stream socket of `addr`'s family (TCP, Unix stream).
pub(crate) async fn connect_stream(addr: &SockAddr, proto: Option<Protocol>) -> io::Result<Registered> {
    let s = register(socket(addr.domain(), Type::STREAM, proto)?, FdKind::StreamSocket)?;
    aio_io::submit(aio_io::Connect::new(s.as_raw_fd(), addr.clone())).await?;
    Ok(s)
}

pub(crate) async fn recv<B: IoBufMut>(s: &Registered, buf: B) -> BufResult<usize, B> {
    aio_io::submit(aio_io::Recv::new(s.as_raw_fd(), buf, 0)).await
}

pub(crate) async fn send<B: IoBuf>(s: &Registered, buf: B) -> BufResult<usize, B> {
    aio_io::submit(aio_io::Send::new(s.as_raw_fd(), buf, 0, 0)).await
}

/// Sends all of `buf`, however many calls it takes.
pub(crate) async fn send_all<B: IoBuf>(s: &Registered, buf: B) -> BufResult<(), B> {
    send_all_from(s, buf, 0).await
}

/// Runs a borrowed send (or a pipe's write) at once if the descriptor
/// takes some of it, on either driver (io_uring runs a send as a plain
/// non-blocking `send(2)`, see `IoDriver::try_op`): the bytes taken, 0
/// when it would block (or the driver cannot run it directly). The caller
/// must have no send of its own in flight on `fd`, or these bytes could
/// overtake it.
pub(crate) fn send_now(fd: &Registered, op: Borrowed<'_>) -> io::Result<usize> {
    let mut cx = Context::from_waker(Waker::noop());
    match fd.poll_borrowed(op, &mut cx) {
        Some(Poll::Ready(r)) => r,
        Some(Poll::Pending) | None => Ok(0),
    }
}

/// [`send_all`], first as [`send_now`]: the bytes leave now instead of at
/// the loop's next submission on io_uring, which may come only after other
/// tasks' work (a server's next handshake). As for `send_now`, the caller
/// has no other send in flight on `s`.
#[cfg(feature = "tls")]
pub(crate) async fn send_all_now(s: &Registered, buf: Vec<u8>) -> io::Result<()> {
    let sent = send_now(s, Borrowed::Send(&buf))?;
    if sent == buf.len() {
        return Ok(());
    }
    send_all_from(s, buf, sent).await.0
}

/// Sends `buf` from byte `sent` on.
async fn send_all_from<B: IoBuf>(s: &Registered, mut buf: B, mut sent: usize) -> BufResult<(), B> {
    let total = buf.bytes_init();
    while sent < total {
        let (res, b) = aio_io::submit(aio_io::Send::new(s.as_raw_fd(), buf, sent, 0)).await;
        buf = b;
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => sent += n,
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

pub(crate) async fn shutdown(s: &Registered, how: Shutdown) -> io::Result<()> {
    aio_io::submit(aio_io::Shutdown::new(s.as_raw_fd(), how)).await
}

/// Implements the owned-buffer stream methods for a stream socket type with
/// a `fd: Registered` field.
macro_rules! stream_methods {
    () => {
        /// Receives into `buf`: appended after its data when it has spare
        /// capacity (`Vec::with_capacity(n)`), or over the whole buffer
        /// when it has none (`vec![0u8; n]`: then `buf[..n]` is what came,
        /// as with `std::io::Read::read`). `Ok(0)` means the peer closed
        /// its side (EOF); a buffer with no capacity at all is an
        /// `InvalidInput` error.
        ///
        /// # Cancellation
        /// Nothing is lost when cancelled or dropped: data the kernel
        /// received for this call (io_uring) is kept and returned first by
        /// the next receive on the socket; `buf` comes back.
        pub async fn read<B: aio_core::io::IoBufMut>(&self, buf: B) -> aio_core::io::BufResult<usize, B> {
            crate::sock::recv(&self.fd, buf).await
        }

        /// Sends some of `buf`'s data; returns how much.
        ///
        /// # Cancellation
        /// Nothing is sent when cancelled before the kernel took the data.
        pub async fn write<B: aio_core::io::IoBuf>(&self, buf: B) -> aio_core::io::BufResult<usize, B> {
            crate::sock::send(&self.fd, buf).await
        }

        /// Sends all of `buf`'s data.
        ///
        /// # Cancellation
        /// A cancellation stops between calls: a prefix may have been sent.
        pub async fn write_all<B: aio_core::io::IoBuf>(&self, buf: B) -> aio_core::io::BufResult<(), B> {
            crate::sock::send_all(&self.fd, buf).await
        }

        /// Shuts down reading, writing, or both (`write_eof` is
        /// `shutdown(Shutdown::Write)`).
        pub async fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
            crate::sock::shutdown(&self.fd, how).await
        }
    };
}
pub(crate) use stream_methods;
