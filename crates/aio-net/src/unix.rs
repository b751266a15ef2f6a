//! Unix domain sockets: `UnixListener`, `UnixStream`, `UnixDatagram`.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use std::cell::RefCell;
use std::future::poll_fn;

use aio_core::driver::FdKind;
use aio_core::io::{self as aio_io, AcceptStream, BufResult, IoBuf, IoBufMut, Registered};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::compat::Compat;
use crate::sock::{self, sref};

/// A Unix socket address: a path, an abstract name (Linux), or unnamed.
#[derive(Clone)]
pub struct UnixSocketAddr(SockAddr);

impl UnixSocketAddr {
    /// The path, for a pathname address.
    pub fn as_pathname(&self) -> Option<&Path> {
        self.0.as_pathname()
    }

    /// Whether the address is unnamed (an unbound or `pair` socket).
    pub fn is_unnamed(&self) -> bool {
        self.0.is_unnamed()
    }

    /// The name in the abstract namespace (Linux).
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        self.0.as_abstract_namespace()
    }
}

impl fmt::Debug for UnixSocketAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.as_pathname() {
            write!(f, "{p:?} (pathname)")
        } else if let Some(n) = self.as_abstract_name() {
            write!(f, "{:?} (abstract)", String::from_utf8_lossy(n))
        } else {
            f.write_str("(unnamed)")
        }
    }
}

fn unix_addr(a: SockAddr) -> UnixSocketAddr {
    UnixSocketAddr(a)
}

/// A listening Unix stream socket.
pub struct UnixListener {
    // Declared first: dropped before the descriptor closes.
    accepts: RefCell<AcceptStream>,
    fd: Registered,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl UnixListener {
    /// Binds to `path` and listens (backlog 1024).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let s = sock::socket(Domain::UNIX, Type::STREAM, None)?;
        s.bind(&SockAddr::unix(path)?)?;
        s.listen(1024)?;
        UnixListener::from_registered(sock::register(s, FdKind::StreamSocket)?)
    }

    fn from_registered(fd: Registered) -> io::Result<UnixListener> {
        Ok(UnixListener {
            accepts: RefCell::new(AcceptStream::new(fd.as_raw_fd())),
            fd,
        })
    }

    /// Stops listening now, while tasks may still hold the listener: see
    /// [`sock::stop_listening`].
    pub(crate) fn stop_listening(&self) {
        sock::stop_listening(&self.fd);
    }

    /// Waits for a connection (a multishot accept stays armed on io_uring).
    ///
    /// # Cancellation
    /// A cancelled accept takes no connection: one the kernel accepted
    /// meanwhile waits for the next call.
    pub async fn accept(&self) -> io::Result<(UnixStream, UnixSocketAddr)> {
        let (fd, addr) = poll_fn(|cx| {
            aio_core::cancel::check()?;
            self.accepts.borrow_mut().poll_accept_from(cx)
        })
        .await?;
        let s = UnixStream::from_registered(Registered::with_kind(fd, FdKind::StreamSocket)?);
        // The accept's own address where it reported one (the one-shot
        // accept does), else the socket's.
        let addr = match addr {
            Some(a) => unix_addr(a),
            None => s
                .peer_addr()
                .or_else(|_| Ok::<_, io::Error>(unix_addr(SockAddr::unix("")?)))?,
        };
        Ok((s, addr))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        Ok(unix_addr(sref(&self.fd).local_addr()?))
    }

    /// Adopts a standard listener (made non-blocking here).
    pub fn from_std(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        l.set_nonblocking(true)?;
        UnixListener::from_registered(sock::register(l, FdKind::StreamSocket)?)
    }

    /// Gives the listener back as a standard (non-blocking) one.
    pub fn into_std(self) -> std::os::unix::net::UnixListener {
        let UnixListener { accepts, fd } = self;
        drop(accepts);
        fd.into_inner().into()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A Unix stream connection.
pub struct UnixStream {
    pub(crate) fd: Registered,
    pub(crate) compat: Compat,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl UnixStream {
    pub(crate) fn from_registered(fd: Registered) -> UnixStream {
        UnixStream {
            fd,
            compat: Compat::default(),
        }
    }

    /// Connects to the socket at `path`.
    ///
    /// # Cancellation
    /// A cancelled connect closes the socket.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        Ok(UnixStream::from_registered(sock::connect_stream(&addr, None).await?))
    }

    /// Two connected sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((
            UnixStream::from_registered(sock::register(a, FdKind::StreamSocket)?),
            UnixStream::from_registered(sock::register(b, FdKind::StreamSocket)?),
        ))
    }

    sock::stream_methods!();

    /// The local address.
    pub fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        Ok(unix_addr(sref(&self.fd).local_addr()?))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<UnixSocketAddr> {
        Ok(unix_addr(sref(&self.fd).peer_addr()?))
    }

    /// asyncio's streams on this connection.
    pub fn into_streams(self) -> (crate::StreamReader, crate::StreamWriter) {
        crate::stream::pair(crate::stream::Transport::unix(self))
    }

    pub(crate) fn addr_of(a: SockAddr) -> io::Result<UnixSocketAddr> {
        Ok(unix_addr(a))
    }

    /// Adopts a standard stream (made non-blocking here).
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        s.set_nonblocking(true)?;
        Ok(UnixStream::from_registered(sock::register(s, FdKind::StreamSocket)?))
    }

    /// Gives the stream back as a standard (non-blocking) one.
    pub fn into_std(self) -> std::os::unix::net::UnixStream {
        self.fd.into_inner().into()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A Unix datagram socket.
pub struct UnixDatagram {
    fd: Registered,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl UnixDatagram {
    /// Binds to `path`.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let s = sock::socket(Domain::UNIX, Type::DGRAM, None)?;
        s.bind(&SockAddr::unix(path)?)?;
        Ok(UnixDatagram {
            fd: sock::register(s, FdKind::Other)?,
        })
    }

    /// A socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        let s = sock::socket(Domain::UNIX, Type::DGRAM, None)?;
        Ok(UnixDatagram {
            fd: sock::register(s, FdKind::Other)?,
        })
    }

    /// Two connected sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::DGRAM, None)?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((
            UnixDatagram {
                fd: sock::register(a, FdKind::Other)?,
            },
            UnixDatagram {
                fd: sock::register(b, FdKind::Other)?,
            },
        ))
    }

    /// Sets the default destination.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        sref(&self.fd).connect(&SockAddr::unix(path)?)
    }

    /// Sends one datagram to the connected address.
    ///
    /// # Cancellation
    /// Nothing is sent when cancelled before the kernel took it.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        sock::send(&self.fd, buf).await
    }

    /// Receives one datagram.
    ///
    /// # Cancellation
    /// Nothing is lost when cancelled or dropped: a datagram the kernel
    /// delivered for this call (io_uring) is kept and returned by the next
    /// receive on the socket.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        sock::recv(&self.fd, buf).await
    }

    /// Sends one datagram to `path`.
    ///
    /// # Cancellation
    /// As [`send`](UnixDatagram::send).
    pub async fn send_to<B: IoBuf>(&self, buf: B, path: impl AsRef<Path>) -> BufResult<usize, B> {
        let addr = match SockAddr::unix(path) {
            Ok(a) => a,
            Err(e) => return (Err(e), buf),
        };
        aio_io::submit(aio_io::SendTo::new(self.fd.as_raw_fd(), buf, &addr, 0)).await
    }

    /// Receives one datagram and its source address.
    ///
    /// # Cancellation
    /// As [`recv`](UnixDatagram::recv).
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, UnixSocketAddr), B> {
        let (res, buf) = aio_io::submit(aio_io::RecvFrom::new(self.fd.as_raw_fd(), buf, 0)).await;
        (res.map(|(n, a)| (n, unix_addr(a))), buf)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        Ok(unix_addr(sref(&self.fd).local_addr()?))
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
