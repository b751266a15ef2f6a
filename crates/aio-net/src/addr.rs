//! Addresses: what `connect`, `bind` and `open_connection` accept, and DNS
//! resolution on the loop's thread pool.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// How an address resolves: at once, or through DNS.
#[doc(hidden)]
#[derive(Debug)]
pub enum Resolve {
    Ready(Vec<SocketAddr>),
    Lookup(String, u16),
}

/// Something that names one or more socket addresses: a `SocketAddr`, an
/// `(ip, port)` or `(host, port)` pair, or `"host:port"`. Host names are
/// resolved with `getaddrinfo` on the loop's thread pool, never on the
/// loop's thread.
pub trait ToSocketAddrs {
    #[doc(hidden)]
    fn to_resolve(&self) -> io::Result<Resolve>;
}

macro_rules! ready_addr {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {
            fn to_resolve(&self) -> io::Result<Resolve> {
                Ok(Resolve::Ready(vec![SocketAddr::from(*self)]))
            }
        }
    )*};
}
ready_addr!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl ToSocketAddrs for (&str, u16) {
    fn to_resolve(&self) -> io::Result<Resolve> {
        let (host, port) = *self;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Resolve::Ready(vec![SocketAddr::new(ip, port)]));
        }
        Ok(Resolve::Lookup(host.to_owned(), port))
    }
}

impl ToSocketAddrs for (String, u16) {
    fn to_resolve(&self) -> io::Result<Resolve> {
        (self.0.as_str(), self.1).to_resolve()
    }
}

impl ToSocketAddrs for str {
    fn to_resolve(&self) -> io::Result<Resolve> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(Resolve::Ready(vec![a]));
        }
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no port in address {self:?}")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid port in address {self:?}")))?;
        (host, port).to_resolve()
    }
}

impl ToSocketAddrs for String {
    fn to_resolve(&self) -> io::Result<Resolve> {
        self.as_str().to_resolve()
    }
}

impl ToSocketAddrs for [SocketAddr] {
    fn to_resolve(&self) -> io::Result<Resolve> {
        Ok(Resolve::Ready(self.to_vec()))
    }
}

impl ToSocketAddrs for Vec<SocketAddr> {
    fn to_resolve(&self) -> io::Result<Resolve> {
        Ok(Resolve::Ready(self.clone()))
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_resolve(&self) -> io::Result<Resolve> {
        (**self).to_resolve()
    }
}

/// Resolves `addr` to socket addresses (asyncio's `getaddrinfo`), running
/// the DNS lookup on the loop's thread pool.
///
/// # Errors
/// A failed lookup keeps the resolver's error kind and names the host:
/// `failed to resolve 'no.such.host.invalid': failed to lookup address
/// information: ...`. A name (or a list) with no address is `NotFound`.
///
/// # Cancellation
/// A cancelled lookup returns `Interrupted` at once; the lookup itself runs
/// to the end on its thread.
pub async fn lookup_host(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let (addrs, host) = match addr.to_resolve()? {
        Resolve::Ready(v) => (v, None),
        Resolve::Lookup(host, port) => {
            let name = host.clone();
            let found = aio_core::to_thread(move || std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)))
                .await?
                .map_err(|e| io::Error::new(e.kind(), format!("failed to resolve '{name}': {e}")))?;
            (found.collect(), Some(name))
        }
    };
    if addrs.is_empty() {
        let what = host.map_or_else(
            || "the address list is empty".to_owned(),
            |h| format!("'{h}' resolved to no address"),
        );
        return Err(io::Error::new(io::ErrorKind::NotFound, what));
    }
    Ok(addrs)
}
