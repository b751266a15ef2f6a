//! Serving HTTP/1 and HTTP/2 with hyper on aio: [`serve`], and
//! [`Builder`] for the settings.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use std::net::SocketAddr;

use aio_core::LoopHandle;
use aio_net::{PoolServer, Spread, TcpListener, TcpStream};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::server::conn::auto;

use crate::conn_info::{ConnInfo, WithConnInfo};
use crate::rt::{AioTimer, Io, LocalExecutor};

/// hyper's boxed error, as its services return.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// How connections are served: HTTP/1.1 and HTTP/2 (told apart by the
/// HTTP/2 preface, so h2c with prior knowledge works, and over TLS
/// whatever ALPN chose), on [`LocalExecutor`] and [`AioTimer`].
///
/// By default the header read timeout is 30 s (hyper's, which needs a
/// timer: here it has one).
#[derive(Clone)]
pub struct Builder {
    pub(crate) inner: auto::Builder<LocalExecutor>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder").finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// HTTP/1.1 and HTTP/2, hyper's defaults, aio's executor and timer.
    pub fn new() -> Builder {
        let mut inner = auto::Builder::new(LocalExecutor);
        inner.http1().timer(AioTimer);
        inner.http2().timer(AioTimer);
        Builder { inner }
    }

    /// Only HTTP/1.x.
    pub fn http1_only(mut self) -> Builder {
        self.inner = self.inner.http1_only();
        self
    }

    /// Only HTTP/2.
    pub fn http2_only(mut self) -> Builder {
        self.inner = self.inner.http2_only();
        self
    }

    /// How long a client may take to send a request's headers (HTTP/1;
    /// `None`: no limit). 30 s by default.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.inner.http1().header_read_timeout(timeout);
        self
    }

    /// HTTP/1 keep-alive (on by default).
    pub fn keep_alive(mut self, on: bool) -> Builder {
        self.inner.http1().keep_alive(on);
        self
    }

    /// HTTP/2 keep-alive pings every `interval` (`None`: off, the default).
    pub fn http2_keep_alive_interval(mut self, interval: Option<Duration>) -> Builder {
        self.inner.http2().keep_alive_interval(interval);
        self
    }

    /// hyper-util's builder, for every other setting.
    pub fn inner_mut(&mut self) -> &mut auto::Builder<LocalExecutor> {
        &mut self.inner
    }

    /// Serves one connection until it closes.
    ///
    /// # Cancellation
    /// Dropping the future closes the connection (requests in progress
    /// are abandoned); a cancelled task is dropped here, since hyper's
    /// futures do not observe aio's cancellation, unless the read in
    /// progress observes it first (then the connection ends with an
    /// error).
    pub async fn serve_connection<S, B>(&self, io: Io, service: S) -> Result<(), BoxError>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + 'static,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        self.inner.serve_connection(io, service).await
    }

    /// Accepts connections on `listener` and serves each in its own task,
    /// with a clone of `service`; each request carries its connection's
    /// [`ConnInfo`] in its extensions. Runs until cancelled; connections in
    /// progress then go on (as asyncio's `Server.close`); see
    /// [`serve_graceful`](Builder::serve_graceful) to end them too.
    ///
    /// # Errors
    /// An accept error other than a resource limit (which is retried
    /// after a pause, as `start_server` does).
    ///
    /// # Cancellation
    /// Returns `Err(Interrupted)` (from `Cancelled`); no connection is
    /// accepted and lost.
    pub async fn serve<S, B>(&self, listener: &TcpListener, service: S) -> io::Result<()>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let builder = Rc::new(self.clone());
        let mut backoff = Backoff::default();
        loop {
            let (stream, peer) = backoff.accept(listener).await?;
            let builder = builder.clone();
            let service = WithConnInfo::new(service.clone(), ConnInfo::new(peer, stream.local_addr().ok()));
            let held = aio_core::get_running_loop().hold_connection();
            drop(aio_core::create_task(async move {
                let r = builder.serve_connection(Io::tcp(stream), service).await;
                drop(held);
                report(r);
            }));
        }
    }

    /// [`serve`](Builder::serve) over TLS: each connection's handshake
    /// (bounded by the acceptor's handshake timeout) runs in its own task,
    /// then hyper serves it. Offer `h2` with
    /// [`TlsAcceptor::alpn_protocols`](aio_net::TlsAcceptor::alpn_protocols)
    /// for HTTP/2.
    ///
    /// # Cancellation
    /// As [`serve`](Builder::serve).
    #[cfg(feature = "tls")]
    pub async fn serve_tls<S, B>(&self, listener: &TcpListener, tls: aio_net::TlsAcceptor, service: S) -> io::Result<()>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let builder = Rc::new(self.clone());
        let mut backoff = Backoff::default();
        loop {
            let (stream, peer) = backoff.accept(listener).await?;
            let (builder, service, tls) = (builder.clone(), service.clone(), tls.clone());
            // Counted in the loop's metrics (`connections`) while it lives.
            let held = aio_core::get_running_loop().hold_connection();
            drop(aio_core::create_task(async move {
                let (r, w) = stream.into_streams();
                match aio_net::start_tls_server(r, w, &tls).await {
                    Ok((r, w)) => {
                        let info = ConnInfo::new(peer, w.local_addr().ok()).with_tls(w.tls_info());
                        let service = WithConnInfo::new(service, info);
                        report(builder.serve_connection(Io::new(r, w), service).await)
                    }
                    Err(e) => report(Err(e.into())),
                }
                drop(held);
            }));
        }
    }
}

impl Builder {
    /// Serves HTTP on `addr` over a pool of loops, with this builder's
    /// settings: a [`PoolServer`] (see [`Spread`] for how connections
    /// find a loop) whose connections are served by hyper on the loop
    /// that got them, with a service `make_service()` made on that loop
    /// for each connection (it need not be `Send`: `Rc` state is fine).
    /// Returns at once; the server runs until closed
    /// ([`PoolServer::close`]) or its loops close. The `aio` facade's
    /// `LoopPool::serve_http` calls this on its loops.
    ///
    /// # Errors
    /// Binding fails, or a loop is closed.
    pub fn serve_pool<M, S, B>(
        &self,
        loops: &[LoopHandle],
        addr: SocketAddr,
        spread: Spread,
        make_service: M,
    ) -> io::Result<PoolServer>
    where
        M: Fn() -> S + Send + Sync + 'static,
        S: Service<Request<Incoming>, Response = Response<B>> + 'static,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let builder = self.clone();
        aio_net::start_pool_server(loops, addr, spread, move |stream| {
            // As `serve`, each request carries its connection's addresses;
            // a peer already gone by now has nothing left to serve.
            let info = stream
                .peer_addr()
                .ok()
                .map(|peer| ConnInfo::new(peer, stream.local_addr().ok()));
            let service = make_service();
            let builder = builder.clone();
            async move {
                let Some(info) = info else { return };
                let service = WithConnInfo::new(service, info);
                report(builder.serve_connection(Io::tcp(stream), service).await)
            }
        })
    }
}

/// [`Builder::serve_pool`] with [`Builder::new`]'s settings: HTTP/1.1
/// and HTTP/2 on `addr`, spread over `loops`.
///
/// # Errors
/// As [`Builder::serve_pool`].
pub fn serve_pool<M, S, B>(
    loops: &[LoopHandle],
    addr: SocketAddr,
    spread: Spread,
    make_service: M,
) -> io::Result<PoolServer>
where
    M: Fn() -> S + Send + Sync + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    Builder::new().serve_pool(loops, addr, spread, make_service)
}

/// Accepts with a pause after a resource-limit error (out of descriptors
/// or memory), doubling up to 1 s while it lasts, as `start_server` does.
pub(crate) struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(10))
    }
}

impl Backoff {
    /// The next connection; `Err` for an accept error that is not a
    /// resource limit, or `Interrupted` when cancelled.
    pub(crate) async fn accept(&mut self, listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match listener.accept().await {
                Ok(s) => {
                    self.0 = Duration::from_millis(10);
                    return Ok(s);
                }
                Err(e) if e.kind() != io::ErrorKind::Interrupted && is_transient(&e) => {
                    aio_core::sleep(self.0).await?;
                    self.0 = (self.0 * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    // Out of descriptors or memory: back off; the peer gave up: go on.
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED)
    )
}

/// A connection's failure is the client's business (a reset, a bad
/// request); as asyncio does for a failed handshake, only debug mode
/// reports it.
pub(crate) fn report(r: Result<(), BoxError>) {
    if let Err(e) = r {
        if let Some(lp) = aio_core::try_get_running_loop().filter(|lp| lp.get_debug()) {
            lp.call_exception_handler(aio_core::ExceptionContext {
                message: format!("HTTP connection failed: {e}"),
                ..Default::default()
            });
        }
    }
}

/// Serves HTTP/1.1 and HTTP/2 on `listener` with `service` (cloned for
/// each connection), with [`Builder::new`]'s settings, until cancelled.
///
/// # Cancellation
/// As [`Builder::serve`].
///
/// # Examples
/// ```no_run
/// use std::convert::Infallible;
/// use aio_hyper::hyper::{Request, Response, body::Incoming, service::service_fn};
/// use aio_hyper::{Full, Bytes};
///
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let listener = aio_net::TcpListener::bind("127.0.0.1:8080").await?;
/// let hello = service_fn(|req: Request<Incoming>| async move {
///     let body = format!("hello, {}", req.uri().path());
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
/// });
/// aio_hyper::serve(&listener, hello).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub async fn serve<S, B>(listener: &TcpListener, service: S) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    Builder::new().serve(listener, service).await
}
