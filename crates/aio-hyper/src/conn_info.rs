//! What a service knows of the connection a request came on: [`ConnInfo`],
//! put in every request's extensions by [`serve`](crate::serve) and its
//! variants.

use std::net::SocketAddr;

use hyper::Request;
use hyper::service::Service;

/// The connection a request came on: the peer's and the local address,
/// and on TLS what was negotiated. [`serve`](crate::serve),
/// [`serve_tls`](crate::Builder::serve_tls) and
/// [`serve_graceful`](crate::Builder::serve_graceful) insert it in each
/// request's extensions:
///
/// ```
/// use aio_hyper::ConnInfo;
/// # fn handler(req: aio_hyper::hyper::Request<aio_hyper::hyper::body::Incoming>) {
/// let peer = req.extensions().get::<ConnInfo>().map(|c| c.remote_addr);
/// # }
/// ```
///
/// A tonic service gets it the same way (`request.extensions()`): tonic's
/// own `remote_addr()` reads what tonic's transport inserts, which does
/// not run here.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// The address the connection was accepted on.
    pub local_addr: Option<SocketAddr>,
    /// On a TLS connection, what it negotiated (ALPN, version, the
    /// client's certificates, SNI).
    #[cfg(feature = "tls")]
    pub tls: Option<aio_net::TlsInfo>,
}

impl ConnInfo {
    /// The information of a plain connection.
    pub fn new(remote_addr: SocketAddr, local_addr: Option<SocketAddr>) -> ConnInfo {
        ConnInfo {
            remote_addr,
            local_addr,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The same, with what a TLS connection negotiated.
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, tls: Option<aio_net::TlsInfo>) -> ConnInfo {
        self.tls = tls;
        self
    }
}

/// A service that inserts its connection's [`ConnInfo`] in each request
/// before `inner` sees it.
#[derive(Clone, Debug)]
pub(crate) struct WithConnInfo<S> {
    inner: S,
    info: ConnInfo,
}

impl<S> WithConnInfo<S> {
    pub(crate) fn new(inner: S, info: ConnInfo) -> WithConnInfo<S> {
        WithConnInfo { inner, info }
    }
}

impl<S, B> Service<Request<B>> for WithConnInfo<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<B>) -> S::Future {
        req.extensions_mut().insert(self.info.clone());
        self.inner.call(req)
    }
}
