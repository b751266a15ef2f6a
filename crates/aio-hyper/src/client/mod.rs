//! An HTTP client with a connection pool per loop: [`Client`].
//!
//! Why not hyper-util's pooled `Client`: it shares its pool across
//! threads (`Arc<Mutex<..>>`) and so requires `Send` connectors,
//! connections and executors, while aio's sockets belong to their loop
//! (as asyncio's do) and are not `Send`. Wrapping them in a wrapper that
//! claims `Send` would trade a compile-time rule for a run-time panic.
//! This pool is per loop instead: `Rc`, no locks, on hyper's
//! `client::conn` state machines — HTTP/1.1 connections reused one
//! request at a time, one multiplexed HTTP/2 connection per host (see
//! `pool.rs` for how a host's connections are kept).

mod body;
mod pool;

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use aio_core::Cancelled;
use hyper::body::{Body, Incoming};
use hyper::header::{HOST, HeaderValue};
use hyper::{Method, Request, Response, Uri};

use crate::rt::Io;
use body::ReqBody;
use pool::{Checkout, Grant, H2Connecting, Host, Key, Lease, Limits, Slot};

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// The URI has no host, or a scheme other than http (and https with
    /// the `tls` feature).
    InvalidUri(String),
    /// Connecting failed (DNS, TCP, or the TLS handshake).
    Connect(io::Error),
    /// Connecting took longer than the
    /// [`connect_timeout`](Client::connect_timeout) (given here).
    ConnectTimeout(Duration),
    /// The response head did not arrive within the request
    /// [`timeout`](Client::timeout) (given here).
    Timeout(Duration),
    /// The task was cancelled while the request waited for a connection
    /// or was connecting; returning it (with `?`) lets the cancellation
    /// propagate.
    Cancelled(Cancelled),
    /// hyper's error: the connection failed or the response was bad.
    Http(hyper::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUri(m) => write!(f, "invalid request URI: {m}"),
            ClientError::Connect(e) => write!(f, "connect failed: {e}"),
            ClientError::ConnectTimeout(d) => write!(f, "connect timed out after {d:?}"),
            ClientError::Timeout(d) => write!(f, "no response within {d:?}"),
            ClientError::Cancelled(c) => write!(f, "request {c}"),
            ClientError::Http(e) => write!(f, "HTTP error: {e}"),
        }
    }
}

impl StdError for ClientError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ClientError::InvalidUri(_) | ClientError::ConnectTimeout(_) | ClientError::Timeout(_) => None,
            ClientError::Connect(e) => Some(e),
            ClientError::Cancelled(c) => Some(c),
            ClientError::Http(e) => Some(e),
        }
    }
}

impl From<Cancelled> for ClientError {
    fn from(c: Cancelled) -> ClientError {
        ClientError::Cancelled(c)
    }
}

impl From<ClientError> for io::Error {
    fn from(e: ClientError) -> io::Error {
        match e {
            ClientError::Connect(e) => e,
            ClientError::Cancelled(c) => c.into(),
            ClientError::InvalidUri(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            ClientError::ConnectTimeout(_) | ClientError::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            ClientError::Http(ref h) => {
                // hyper's message alone ("connection error") hides the
                // cause: spell out the whole chain, and keep the kind of
                // the first I/O error in it (a reset stays
                // `ConnectionReset`).
                let mut kind = None;
                let mut msg = e.to_string();
                let mut cause = h.source();
                while let Some(c) = cause {
                    kind = kind.or_else(|| c.downcast_ref::<io::Error>().map(io::Error::kind));
                    msg.push_str(": ");
                    msg.push_str(&c.to_string());
                    cause = c.source();
                }
                io::Error::new(kind.unwrap_or(io::ErrorKind::Other), msg)
            }
        }
    }
}

impl ClientError {
    /// The same failure for another request that waited on the same
    /// connection attempt (an `io::Error` cannot be cloned: its kind and
    /// message are).
    fn share(&self) -> ClientError {
        match self {
            ClientError::ConnectTimeout(d) => ClientError::ConnectTimeout(*d),
            ClientError::Connect(e) => ClientError::Connect(io::Error::new(e.kind(), e.to_string())),
            other => ClientError::Connect(io::Error::other(other.to_string())),
        }
    }

    /// An `io::Error` that carries a cancellation becomes `Cancelled`.
    fn from_connect(e: io::Error) -> ClientError {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<Cancelled>()) {
            Some(c) => ClientError::Cancelled(c.clone()),
            None => ClientError::Connect(e),
        }
    }
}

/// The pool's settings (see the setters on [`Client`]).
#[derive(Clone, Copy, Debug)]
struct Config {
    http2_only: bool,
    max_idle_per_host: usize,
    max_connections_per_host: usize,
    idle_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            http2_only: false,
            max_idle_per_host: 64,
            max_connections_per_host: usize::MAX,
            idle_timeout: Some(Duration::from_secs(90)),
            connect_timeout: None,
            timeout: None,
        }
    }
}

struct Inner<B> {
    hosts: RefCell<HashMap<Key, Rc<Host<B>>>>,
    config: Config,
    #[cfg(feature = "tls")]
    tls: aio_net::TlsConnector,
}

/// An HTTP/1.1 and HTTP/2 client with a connection pool, for one loop.
///
/// Cheap to clone (clones share the pool); not `Send`: each loop (each
/// thread of a thread-per-core program) makes its own. `http://` URIs
/// speak HTTP/1.1 (HTTP/2 with prior knowledge after
/// [`http2_only`](Client::http2_only)); `https://` ones (the `tls`
/// feature) offer both with ALPN and use what the server picks.
///
/// # The pool
///
/// - **HTTP/1.1**: a connection carries one request at a time. It goes
///   back to the pool when the response body has been read to its end
///   (or the response dropped and hyper could drain it), not when the
///   head arrives: until then it is busy. A request takes the most
///   recently used idle connection, or opens one. At most
///   [`max_idle_per_host`](Client::max_idle_per_host) idle connections
///   are kept; the others are closed on the next turn of the loop (so
///   that a burst of bodies ending together does not close connections
///   their readers are about to reuse). With `n` concurrent users the
///   pool never needs more than `n` connections.
/// - **A limit**: with
///   [`max_connections_per_host`](Client::max_connections_per_host),
///   requests beyond it wait, first come first served, for a connection
///   to come back or to close.
/// - **HTTP/2**: one connection per host, shared; requests that start
///   while it is being opened wait for it (and share its failure).
/// - **Idle connections close** after
///   [`idle_timeout`](Client::idle_timeout) (90 s by default).
/// - **Retries**: a request on a reused HTTP/1.1 connection that dies
///   before any byte of the response arrived (the server closed it as
///   the request went out) is sent again, once, on a new connection, when
///   it is idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) and its
///   body can be sent again: an empty body, `Full<Bytes>` or `String`
///   (other body types are streamed once and never resent). A request the
///   connection never took (it was found closed) goes on a new connection
///   whatever its method.
///
/// # Examples
/// ```no_run
/// use std::time::Duration;
/// use aio_hyper::{Client, Full, Bytes};
/// use http_body_util::BodyExt;
///
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let client: Client<Full<Bytes>> = Client::new()
///     .timeout(Duration::from_secs(10))
///     .connect_timeout(Duration::from_secs(2))
///     .max_connections_per_host(8);
/// let res = client.get("http://127.0.0.1:8080/hello".parse()?).await?;
/// let body = res.into_body().collect().await?.to_bytes();
/// println!("{}", String::from_utf8_lossy(&body));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Client<B> {
    inner: Rc<Inner<B>>,
}

impl<B> Clone for Client<B> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<B> fmt::Debug for Client<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("hosts", &self.inner.hosts.borrow().len())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<B> Default for Client<B>
where
    B: Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    fn default() -> Self {
        Client::new()
    }
}

/// What a request is sent on.
enum Conn<B> {
    H1(Lease<B>),
    H2(pool::H2Lease<B>),
}

/// How a new connection may be opened.
enum Ticket<B> {
    /// Under the HTTP/1.1 limit.
    Slot(Slot<B>),
    /// As the host's shared HTTP/2 connection.
    H2(H2Connecting<B>),
}

impl<B> Client<B>
where
    B: Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// A client with an empty pool (and, with `tls`, Mozilla's roots).
    pub fn new() -> Client<B> {
        Client::build(
            Config::default(),
            #[cfg(feature = "tls")]
            aio_net::TlsConnector::new(),
        )
    }

    /// A client whose `https://` connections use `tls` (its ALPN list is
    /// replaced by `h2`, `http/1.1`).
    #[cfg(feature = "tls")]
    pub fn with_tls(tls: aio_net::TlsConnector) -> Client<B> {
        Client::build(Config::default(), tls)
    }

    fn build(config: Config, #[cfg(feature = "tls")] tls: aio_net::TlsConnector) -> Client<B> {
        #[cfg(feature = "tls")]
        let tls = if config.http2_only {
            tls.alpn_protocols(["h2"])
        } else {
            tls.alpn_protocols(["h2", "http/1.1"])
        };
        Client {
            inner: Rc::new(Inner {
                hosts: RefCell::new(HashMap::new()),
                config,
                #[cfg(feature = "tls")]
                tls,
            }),
        }
    }

    /// The same settings changed by `f`, with a new pool.
    fn configure(self, f: impl FnOnce(&mut Config)) -> Client<B> {
        let mut config = self.inner.config;
        f(&mut config);
        Client::build(
            config,
            #[cfg(feature = "tls")]
            self.inner.tls.clone(),
        )
    }

    /// The same client speaking only HTTP/2 (prior knowledge on
    /// `http://`), with a new pool.
    pub fn http2_only(self) -> Client<B> {
        self.configure(|c| c.http2_only = true)
    }

    /// How many idle HTTP/1.1 connections a host keeps (64 by default);
    /// busy ones do not count. Applies to a new pool: call it first.
    pub fn max_idle_per_host(self, n: usize) -> Client<B> {
        self.configure(|c| c.max_idle_per_host = n)
    }

    /// At most `n` HTTP/1.1 connections per host, open or being opened
    /// (no limit by default; 0 counts as 1). A request beyond it waits,
    /// first come first served, for a connection to be free or to close.
    /// A connection is busy until its response body has been read or the
    /// response dropped. The one HTTP/2 connection of a host is not
    /// counted. Applies to a new pool: call it first.
    pub fn max_connections_per_host(self, n: usize) -> Client<B> {
        self.configure(|c| c.max_connections_per_host = n.max(1))
    }

    /// Closes pooled connections idle for `timeout` (`None`: never;
    /// 90 s by default). An HTTP/2 connection is idle when no request
    /// started on it for that long; streams still sending bodies finish
    /// first. Applies to a new pool: call it first.
    pub fn idle_timeout(self, timeout: Option<Duration>) -> Client<B> {
        self.configure(|c| c.idle_timeout = timeout)
    }

    /// Fails a connection attempt (TCP, and the TLS handshake) that takes
    /// longer than `timeout` with [`ClientError::ConnectTimeout`]; the
    /// requests waiting for an HTTP/2 connection share that failure. No
    /// limit by default. Applies to a new pool: call it first.
    pub fn connect_timeout(self, timeout: Duration) -> Client<B> {
        self.configure(|c| c.connect_timeout = Some(timeout))
    }

    /// Fails a request whose response head has not arrived within
    /// `timeout` (waiting for a connection, connecting and sending
    /// included) with [`ClientError::Timeout`]. The body is read after
    /// [`request`](Client::request) returns: bound it with
    /// `aio::timeout` if needed. No limit by default. Applies to a new
    /// pool: call it first.
    pub fn timeout(self, timeout: Duration) -> Client<B> {
        self.configure(|c| c.timeout = Some(timeout))
    }

    /// Idle HTTP/1.1 connections and HTTP/2 connections in the pool.
    pub fn pooled(&self) -> usize {
        self.inner.hosts.borrow().values().map(|h| h.pooled()).sum()
    }

    /// `GET uri` with an empty body.
    ///
    /// # Cancellation
    /// As [`request`](Client::request).
    pub async fn get(&self, uri: Uri) -> Result<Response<Incoming>, ClientError>
    where
        B: Default,
    {
        let mut req = Request::new(B::default());
        *req.uri_mut() = uri;
        self.request(req).await
    }

    /// Sends `req` (an absolute URI: `http://host:port/path`) on a pooled
    /// connection, or a new one, and returns the response once its head
    /// arrived; read the body from it (until it is read or dropped, an
    /// HTTP/1.1 connection is not reused). A request on a reused
    /// connection that dies under it may be sent again (see
    /// [`Client`]'s retries).
    ///
    /// # Errors
    /// [`ClientError`]: a bad URI, a failed or timed-out connection, the
    /// request timeout, a cancellation, or hyper's error.
    ///
    /// # Cancellation
    /// - Cancelled (or dropped, or timed out) while **waiting** for a
    ///   connection: the request leaves the line; a connection or a place
    ///   under the limit it had just been given passes to the next request
    ///   waiting. A cancelled task gets [`ClientError::Cancelled`].
    /// - While **connecting**: the attempt is abandoned and its place under
    ///   the limit freed; if it was opening the host's HTTP/2 connection,
    ///   the first request waiting for it opens it instead. A cancelled
    ///   task gets [`ClientError::Cancelled`].
    /// - While **sent**, waiting for the response head: hyper's futures
    ///   do not observe aio's cancellation, so the request is dropped (a
    ///   cancelled task ends cancelled, a timeout gives
    ///   [`ClientError::Timeout`]). An HTTP/1.1 connection is closed (what
    ///   it would deliver next is unknown) and its place freed; an HTTP/2
    ///   stream is reset. The pool stays usable.
    pub async fn request(&self, req: Request<B>) -> Result<Response<Incoming>, ClientError> {
        let Some(limit) = self.inner.config.timeout else {
            return self.send(req).await;
        };
        match aio_core::timeout(limit, self.send(req)).await {
            Ok(res) => res,
            Err(_) => Err(ClientError::Timeout(limit)),
        }
    }

    async fn send(&self, mut req: Request<B>) -> Result<Response<Incoming>, ClientError> {
        let key = key_of(req.uri())?;
        if !req.headers().contains_key(HOST) {
            let host = match default_port(key.https) == key.port {
                true => key.host.clone(),
                false => format!("{}:{}", key.host, key.port),
            };
            let v = HeaderValue::from_str(&host).map_err(|e| ClientError::InvalidUri(e.to_string()))?;
            req.headers_mut().insert(HOST, v);
        }
        let full = req.uri().clone();
        let origin: Uri = full
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| ClientError::InvalidUri(e.to_string()))?;
        let (parts, body) = req.into_parts();
        let body = ReqBody::new(body);
        // What to send again if a reused connection dies under the request.
        let mut again = match is_idempotent(&parts.method) {
            true => body.try_clone().map(|b| (parts.clone(), b)),
            false => None,
        };
        let mut req = Request::from_parts(parts, body);
        let host = self.host(&key);
        // The place of a connection that died, for the new one.
        let mut fresh = None;
        // A request goes on two connections at most.
        let mut resent = false;
        loop {
            let conn = match fresh.take() {
                Some(slot) => self.connect(&host, Ticket::Slot(slot)).await?,
                None => self.checkout(&host).await?,
            };
            match conn {
                Conn::H2(mut lease) => {
                    *req.uri_mut() = full.clone();
                    let mut err = match lease.sender.try_send_request(req).await {
                        Ok(res) => return Ok(res),
                        Err(e) => e,
                    };
                    // A closed connection gives back what it did not send.
                    match err.take_message() {
                        Some(r) if lease.reused && !resent => {
                            host.forget_h2(&lease.conn);
                            req = r;
                            resent = true;
                        }
                        _ => return Err(ClientError::Http(err.into_error())),
                    }
                }
                Conn::H1(mut lease) => {
                    // HTTP/1.1 sends the path only.
                    *req.uri_mut() = origin.clone();
                    let read = lease.conn.bytes_read();
                    let mut err = match lease.sender.try_send_request(req).await {
                        Ok(res) => {
                            host.checkin(lease);
                            return Ok(res);
                        }
                        Err(e) => e,
                    };
                    if !lease.reused || resent {
                        return Err(ClientError::Http(err.into_error()));
                    }
                    let silent = lease.conn.bytes_read() == read;
                    req = match err.take_message() {
                        Some(r) => r,
                        None => match again.take() {
                            Some((parts, body)) if silent && died(err.error()) => Request::from_parts(parts, body),
                            _ => return Err(ClientError::Http(err.into_error())),
                        },
                    };
                    fresh = lease.retire();
                    resent = true;
                }
            }
        }
    }

    fn host(&self, key: &Key) -> Rc<Host<B>> {
        let mut hosts = self.inner.hosts.borrow_mut();
        let c = &self.inner.config;
        hosts
            .entry(key.clone())
            .or_insert_with(|| {
                Rc::new(Host::new(
                    key.clone(),
                    Limits {
                        http2_only: c.http2_only,
                        max_idle: c.max_idle_per_host,
                        max_open: c.max_connections_per_host,
                        idle_timeout: c.idle_timeout,
                    },
                ))
            })
            .clone()
    }

    /// A connection from the pool, a new one, or one a request waited for.
    async fn checkout(&self, host: &Rc<Host<B>>) -> Result<Conn<B>, ClientError> {
        let mut front = false;
        loop {
            let ticket = match host.try_checkout() {
                Checkout::H1(lease) => return Ok(Conn::H1(lease)),
                Checkout::H2(lease) => return Ok(Conn::H2(lease)),
                Checkout::Connect(slot) => Ticket::Slot(slot),
                Checkout::ConnectH2(connecting) => Ticket::H2(connecting),
                Checkout::Wait => match host.wait(front).await? {
                    Grant::Conn(lease) => return Ok(Conn::H1(lease)),
                    Grant::Connect(slot) => Ticket::Slot(slot),
                    Grant::Failed(e) => return Err(e),
                    Grant::Retry => {
                        // It waited its turn: it keeps it if it waits again.
                        front = true;
                        continue;
                    }
                },
            };
            return self.connect(host, ticket).await;
        }
    }

    /// Opens a connection (within the connect timeout) and starts it.
    async fn connect(&self, host: &Rc<Host<B>>, ticket: Ticket<B>) -> Result<Conn<B>, ClientError> {
        let opened = match self.inner.config.connect_timeout {
            None => self.open(&host.key).await,
            Some(limit) => match aio_core::timeout(limit, self.open(&host.key)).await {
                Ok(r) => r,
                Err(_) => Err(ClientError::ConnectTimeout(limit)),
            },
        };
        let (io, http2) = match opened {
            Ok(o) => o,
            Err(e) => {
                match ticket {
                    // A failure is that of every request waiting for the
                    // connection; a cancelled opener hands the job over
                    // (dropping `connecting` does).
                    Ticket::H2(connecting) if !matches!(e, ClientError::Cancelled(_)) => connecting.failed(&e),
                    _ => {}
                }
                return Err(e);
            }
        };
        if !http2 {
            let slot = match ticket {
                Ticket::Slot(slot) => slot,
                Ticket::H2(connecting) => connecting.spoke_http1(),
            };
            return Ok(Conn::H1(pool::start_http1(host, io, slot).await?));
        }
        let lease = match pool::start_http2(host, io).await {
            Ok(l) => l,
            Err(e) => {
                if let Ticket::H2(connecting) = ticket {
                    connecting.failed(&e);
                }
                return Err(e);
            }
        };
        match ticket {
            Ticket::H2(connecting) => connecting.ready(&lease.conn),
            // ALPN chose HTTP/2: this connection is no HTTP/1.1 one.
            Ticket::Slot(slot) => {
                host.adopt_h2(&lease.conn);
                drop(slot);
            }
        }
        Ok(Conn::H2(lease))
    }

    /// The connection's streams, and whether it speaks HTTP/2.
    async fn open(&self, key: &Key) -> Result<(Io, bool), ClientError> {
        if key.https {
            #[cfg(feature = "tls")]
            {
                let (r, w) = aio_net::open_connection_tls(&key.host, key.port, &self.inner.tls)
                    .await
                    .map_err(ClientError::from_connect)?;
                let h2 = w.tls_info().and_then(|i| i.alpn_protocol).is_some_and(|p| p == b"h2");
                return Ok((Io::new(r, w), h2 || self.inner.config.http2_only));
            }
            #[cfg(not(feature = "tls"))]
            return Err(ClientError::Connect(io::Error::new(
                io::ErrorKind::Unsupported,
                "https needs aio-hyper's `tls` feature",
            )));
        }
        let (r, w) = aio_net::open_connection(&key.host, key.port)
            .await
            .map_err(ClientError::from_connect)?;
        Ok((Io::new(r, w), self.inner.config.http2_only))
    }
}

/// Methods that may be sent twice (RFC 9110, 9.2.2).
fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Whether `e` says the connection died (closed or reset), rather than
/// the request or the response being bad.
fn died(e: &hyper::Error) -> bool {
    let io = std::iter::successors(e.source(), |s| (*s).source()).any(|s| s.is::<io::Error>());
    !e.is_user() && !e.is_parse() && (e.is_incomplete_message() || e.is_canceled() || e.is_closed() || io)
}

fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

fn key_of(uri: &Uri) -> Result<Key, ClientError> {
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(s) => return Err(ClientError::InvalidUri(format!("unsupported scheme {s:?} in {uri}"))),
        None => return Err(ClientError::InvalidUri(format!("no scheme in {uri}"))),
    };
    let host = uri
        .host()
        .ok_or_else(|| ClientError::InvalidUri(format!("no host in {uri}")))?;
    // An IPv6 literal comes bracketed.
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok(Key {
        https,
        port: uri.port_u16().unwrap_or(default_port(https)),
        host,
    })
}
