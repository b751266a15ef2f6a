//! TCP: `TcpListener`, `TcpStream`, and `TcpSocket` for options before
//! bind or connect.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use std::cell::RefCell;
use std::future::poll_fn;

use aio_core::driver::FdKind;
use aio_core::io::{self as aio_io, AcceptStream, Registered};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::addr::{ToSocketAddrs, lookup_host};
use crate::compat::Compat;
use crate::sock::{self, sref};

/// A TCP socket not yet bound or connected, to set options first (reuse of
/// addresses and ports, buffer sizes) — tokio's `TcpSocket`.
#[derive(Debug)]
pub struct TcpSocket {
    inner: Socket,
}

impl TcpSocket {
    /// A new IPv4 TCP socket.
    pub fn new_v4() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            inner: sock::socket(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?,
        })
    }

    /// A new IPv6 TCP socket.
    pub fn new_v6() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            inner: sock::socket(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?,
        })
    }

    /// A socket of the family of `addr`.
    pub fn for_addr(addr: SocketAddr) -> io::Result<TcpSocket> {
        if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
    }

    /// `SO_REUSEADDR`.
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_address(on)
    }

    /// `SO_REUSEPORT`: several sockets (one per loop, in thread-per-core
    /// servers) may listen on one port and the kernel spreads connections.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_port(on)
    }

    /// `IPV6_V6ONLY`.
    pub fn set_only_v6(&self, on: bool) -> io::Result<()> {
        self.inner.set_only_v6(on)
    }

    /// `SO_SNDBUF`.
    pub fn set_send_buffer_size(&self, n: usize) -> io::Result<()> {
        self.inner.set_send_buffer_size(n)
    }

    /// `SO_RCVBUF`.
    pub fn set_recv_buffer_size(&self, n: usize) -> io::Result<()> {
        self.inner.set_recv_buffer_size(n)
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_tcp_nodelay(on)
    }

    /// Binds to `addr`.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.bind(&addr.into())
    }

    /// Listens with a backlog of `backlog` connections.
    ///
    /// # Panics
    /// When no aio loop runs on this thread.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        self.inner.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        TcpListener::from_registered(sock::register(self.inner, FdKind::StreamSocket)?)
    }

    /// Connects to `addr`.
    ///
    /// # Cancellation
    /// A cancelled connect closes the socket.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = sock::register(self.inner, FdKind::StreamSocket)?;
        aio_io::submit(aio_io::Connect::new(fd.as_raw_fd(), addr.into())).await?;
        Ok(TcpStream::from_registered(fd))
    }
}

/// A listening TCP socket.
///
/// # Examples
/// ```
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let listener = aio_net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// let client = aio_core::create_task(async move { aio_net::TcpStream::connect(addr).await });
/// let (server_side, _peer) = listener.accept().await?;
/// let client_side = client.await.unwrap()?;
/// client_side.write_all(b"hi".to_vec()).await.0?;
/// let (n, buf) = server_side.read(Vec::with_capacity(8)).await;
/// assert_eq!((n?, &buf[..]), (2, &b"hi"[..]));
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct TcpListener {
    // Declared first: dropped (its multishot accept cancelled) before the
    // descriptor closes.
    accepts: RefCell<AcceptStream>,
    fd: Registered,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl TcpListener {
    /// Binds to the first of `addr`'s addresses that works, with
    /// `SO_REUSEADDR` (as asyncio and tokio do) and a backlog of 1024.
    ///
    /// # Cancellation
    /// Only the DNS lookup can be cancelled; nothing is bound then.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in lookup_host(addr).await? {
            match TcpListener::bind_addr(a, 1024, false) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Binds to one address with the given backlog, optionally with
    /// `SO_REUSEPORT`.
    pub fn bind_addr(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
        let s = TcpSocket::for_addr(addr)?;
        s.set_reuseaddr(true)?;
        if reuse_port {
            s.set_reuseport(true)?;
        }
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.bind(addr)?;
        s.listen(backlog)
    }

    fn from_registered(fd: Registered) -> io::Result<TcpListener> {
        Ok(TcpListener {
            accepts: RefCell::new(AcceptStream::new(fd.as_raw_fd())),
            fd,
        })
    }

    /// Waits for a connection: asyncio's `sock_accept`. On io_uring the
    /// listener keeps one multishot accept armed. The peer's address is
    /// read with `getpeername`; a peer that reset the connection before it
    /// was accepted gets the unspecified address (the connection is still
    /// returned: what it sent can be read).
    ///
    /// # Cancellation
    /// A cancelled accept takes no connection: one the kernel accepted
    /// meanwhile waits for the next call.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = poll_fn(|cx| {
            aio_core::cancel::check()?;
            self.accepts.borrow_mut().poll_accept_from(cx)
        })
        .await?;
        let stream = TcpStream::from_registered(Registered::with_kind(fd, FdKind::StreamSocket)?);
        let peer = match addr.and_then(|a| a.as_socket()).map_or_else(|| stream.peer_addr(), Ok) {
            Ok(a) => a,
            Err(_) => {
                let ip = self
                    .local_addr()
                    .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |l| match l {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
                    });
                SocketAddr::new(ip, 0)
            }
        };
        Ok((stream, peer))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock::inet(sref(&self.fd).local_addr()?)
    }

    /// Stops listening now, while tasks may still hold the listener: see
    /// [`sock::stop_listening`].
    pub(crate) fn stop_listening(&self) {
        sock::stop_listening(&self.fd);
    }

    /// `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        sref(&self.fd).set_ttl_v4(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        sref(&self.fd).ttl_v4()
    }

    /// Adopts a standard listener (made non-blocking here).
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        TcpListener::from_registered(sock::register(l, FdKind::StreamSocket)?)
    }

    /// Gives the listener back as a standard (non-blocking) one, to move it
    /// to another thread or loop.
    pub fn into_std(self) -> std::net::TcpListener {
        let TcpListener { accepts, fd } = self;
        drop(accepts);
        fd.into_inner().into()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A TCP connection.
///
/// The owned-buffer methods (`read`, `write`, `write_all`) work on both
/// backends with no copy; `futures-io` `AsyncRead`/`AsyncWrite` (and
/// tokio's, with the `tokio-io` feature) make it usable with the wider
/// ecosystem. For asyncio's streams use [`open_connection`](crate::open_connection)
/// or [`into_streams`](TcpStream::into_streams).
pub struct TcpStream {
    pub(crate) fd: Registered,
    pub(crate) compat: Compat,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl TcpStream {
    pub(crate) fn from_registered(fd: Registered) -> TcpStream {
        TcpStream {
            fd,
            compat: Compat::default(),
        }
    }

    /// Connects to the first of `addr`'s addresses that accepts.
    ///
    /// # Cancellation
    /// A cancelled connect closes the socket.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in lookup_host(addr).await? {
            match sock::connect_stream(&SockAddr::from(a), Some(Protocol::TCP)).await {
                Ok(fd) => return Ok(TcpStream::from_registered(fd)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")))
    }

    sock::stream_methods!();

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock::inet(sref(&self.fd).local_addr()?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock::inet(sref(&self.fd).peer_addr()?)
    }

    /// `TCP_NODELAY`: send small writes at once instead of batching them.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sref(&self.fd).set_tcp_nodelay(on)
    }

    /// `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        sref(&self.fd).tcp_nodelay()
    }

    /// `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        sref(&self.fd).set_ttl_v4(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        sref(&self.fd).ttl_v4()
    }

    /// `SO_LINGER`: `Some(ZERO)` makes close reset the connection.
    pub fn set_linger(&self, d: Option<Duration>) -> io::Result<()> {
        sref(&self.fd).set_linger(d)
    }

    /// `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        sref(&self.fd).linger()
    }

    /// asyncio's streams on this connection.
    pub fn into_streams(self) -> (crate::StreamReader, crate::StreamWriter) {
        crate::stream::pair(crate::stream::Transport::tcp(self))
    }

    /// Adopts a standard stream (made non-blocking here).
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        s.set_nonblocking(true)?;
        Ok(TcpStream::from_registered(sock::register(s, FdKind::StreamSocket)?))
    }

    /// Gives the stream back as a standard (non-blocking) one.
    pub fn into_std(self) -> std::net::TcpStream {
        self.fd.into_inner().into()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
