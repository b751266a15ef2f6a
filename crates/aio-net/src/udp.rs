//! UDP: `UdpSocket`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use aio_core::driver::FdKind;
use aio_core::io::{self as aio_io, BufResult, IoBuf, IoBufMut, Registered};
use socket2::{Domain, Protocol, SockAddr, Type};

use crate::addr::{ToSocketAddrs, lookup_host};
use crate::sock::{self, sref};

/// A UDP socket: asyncio's datagram endpoint, with owned buffers.
///
/// # Examples
/// ```
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let a = aio_net::UdpSocket::bind("127.0.0.1:0").await?;
/// let b = aio_net::UdpSocket::bind("127.0.0.1:0").await?;
/// a.send_to(b"ping".to_vec(), b.local_addr()?).await.0?;
/// let (res, buf) = b.recv_from(Vec::with_capacity(16)).await;
/// let (n, from) = res?;
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct UdpSocket {
    fd: Registered,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl UdpSocket {
    /// Binds to the first of `addr`'s addresses that works.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in lookup_host(addr).await? {
            match UdpSocket::bind_addr(a) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Binds to one address.
    pub fn bind_addr(addr: SocketAddr) -> io::Result<UdpSocket> {
        let s = sock::socket(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.bind(&addr.into())?;
        Ok(UdpSocket {
            fd: sock::register(s, FdKind::Other)?,
        })
    }

    /// Sets the default destination (and the only source accepted).
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let a = lookup_host(addr).await?[0];
        sref(&self.fd).connect(&a.into())
    }

    /// Sends one datagram to the connected address.
    ///
    /// # Cancellation
    /// Nothing is sent when cancelled before the kernel took it.
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        sock::send(&self.fd, buf).await
    }

    /// Receives one datagram into `buf` (its spare capacity, or the whole
    /// buffer when it has none, as [`TcpStream::read`](crate::TcpStream::read)).
    ///
    /// # Cancellation
    /// Nothing is lost when cancelled or dropped: a datagram the kernel
    /// delivered for this call (io_uring) is kept and returned by the next
    /// receive on the socket.
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        sock::recv(&self.fd, buf).await
    }

    /// Sends one datagram to `addr`.
    ///
    /// # Cancellation
    /// As [`send`](UdpSocket::send).
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: SocketAddr) -> BufResult<usize, B> {
        aio_io::submit(aio_io::SendTo::new(self.fd.as_raw_fd(), buf, &SockAddr::from(addr), 0)).await
    }

    /// Receives one datagram and its source address.
    ///
    /// # Cancellation
    /// As [`recv`](UdpSocket::recv).
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = aio_io::submit(aio_io::RecvFrom::new(self.fd.as_raw_fd(), buf, 0)).await;
        (res.and_then(|(n, a)| Ok((n, sock::inet(a)?))), buf)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock::inet(sref(&self.fd).local_addr()?)
    }

    /// The connected address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock::inet(sref(&self.fd).peer_addr()?)
    }

    /// `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        sref(&self.fd).set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        sref(&self.fd).broadcast()
    }

    /// `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        sref(&self.fd).set_ttl_v4(ttl)
    }

    /// `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        sref(&self.fd).ttl_v4()
    }

    /// Adopts a standard socket (made non-blocking here).
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        Ok(UdpSocket {
            fd: sock::register(s, FdKind::Other)?,
        })
    }

    /// Gives the socket back as a standard (non-blocking) one.
    pub fn into_std(self) -> std::net::UdpSocket {
        self.fd.into_inner().into()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
