//! An HTTP client with a connection pool per loop: [`Client`].
//!
//! Why not hyper-util's pooled `Client`: it shares its pool across
//! threads (`Arc<Mutex<..>>`) and so requires `Send` connectors,
//! connections and executors, while aio's sockets belong to their loop
//! (as asyncio's do) and are not `Send`. Wrapping them in a wrapper that
//! claims `Send` would trade a compile-time rule for a run-time panic.
//! This pool is per loop instead: `Rc`, no locks, on hyper's
//! `client::conn` state machines — HTTP/1.1 connections reused one
//! request at a time, one multiplexed HTTP/2 connection per host.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::rc::Rc;

use hyper::body::{Body, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, Uri};

use crate::rt::{AioTimer, Io, LocalExecutor};

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// The URI has no host, or a scheme other than http (and https with
    /// the `tls` feature).
    InvalidUri(String),
    /// Connecting failed (DNS, TCP, or the TLS handshake).
    Connect(io::Error),
    /// hyper's error: the connection failed or the response was bad.
    Http(hyper::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUri(m) => write!(f, "invalid request URI: {m}"),
            ClientError::Connect(e) => write!(f, "connect failed: {e}"),
            ClientError::Http(e) => write!(f, "HTTP error: {e}"),
        }
    }
}

impl StdError for ClientError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ClientError::InvalidUri(_) => None,
            ClientError::Connect(e) => Some(e),
            ClientError::Http(e) => Some(e),
        }
    }
}

impl From<ClientError> for io::Error {
    fn from(e: ClientError) -> io::Error {
        match e {
            ClientError::Connect(e) => e,
            ClientError::InvalidUri(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            ClientError::Http(_) => io::Error::other(e),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    https: bool,
    host: String,
    port: u16,
}

/// One host's connections.
struct Host<B> {
    /// HTTP/1.1 connections not in use by a request (one may still be
    /// delivering the previous response's body: then it is not ready).
    h1: Vec<http1::SendRequest<B>>,
    /// The HTTP/2 connection, shared by every request.
    h2: Option<http2::SendRequest<B>>,
}

impl<B> Default for Host<B> {
    fn default() -> Self {
        Host {
            h1: Vec::new(),
            h2: None,
        }
    }
}

/// Which protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Http1,
    Http2,
}

/// A connection ready for one request.
enum Conn<B> {
    H1(http1::SendRequest<B>),
    H2(http2::SendRequest<B>),
}

struct Inner<B> {
    hosts: RefCell<HashMap<Key, Host<B>>>,
    http2_only: bool,
    max_idle_per_host: usize,
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
/// # Examples
/// ```no_run
/// use aio_hyper::{Client, Full, Bytes};
/// use http_body_util::BodyExt;
///
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let client: Client<Full<Bytes>> = Client::new();
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
            .field("http2_only", &self.inner.http2_only)
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

impl<B> Client<B>
where
    B: Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// A client with an empty pool (and, with `tls`, Mozilla's roots).
    pub fn new() -> Client<B> {
        Client::build(
            false,
            #[cfg(feature = "tls")]
            aio_net::TlsConnector::new(),
        )
    }

    /// A client whose `https://` connections use `tls` (its ALPN list is
    /// replaced by `h2`, `http/1.1`).
    #[cfg(feature = "tls")]
    pub fn with_tls(tls: aio_net::TlsConnector) -> Client<B> {
        Client::build(false, tls)
    }

    fn build(http2_only: bool, #[cfg(feature = "tls")] tls: aio_net::TlsConnector) -> Client<B> {
        #[cfg(feature = "tls")]
        let tls = if http2_only {
            tls.alpn_protocols(["h2"])
        } else {
            tls.alpn_protocols(["h2", "http/1.1"])
        };
        Client {
            inner: Rc::new(Inner {
                hosts: RefCell::new(HashMap::new()),
                http2_only,
                max_idle_per_host: 64,
                #[cfg(feature = "tls")]
                tls,
            }),
        }
    }

    /// The same client speaking only HTTP/2 (prior knowledge on
    /// `http://`), with a new pool.
    pub fn http2_only(self) -> Client<B> {
        Client::build(
            true,
            #[cfg(feature = "tls")]
            self.inner.tls.clone(),
        )
    }

    /// How many idle HTTP/1.1 connections a host keeps (64 by default).
    /// Applies to a new pool: call it first.
    pub fn max_idle_per_host(self, n: usize) -> Client<B> {
        let mut c = Client::build(
            self.inner.http2_only,
            #[cfg(feature = "tls")]
            self.inner.tls.clone(),
        );
        if let Some(inner) = Rc::get_mut(&mut c.inner) {
            inner.max_idle_per_host = n;
        }
        c
    }

    /// Idle HTTP/1.1 connections and HTTP/2 connections in the pool.
    pub fn pooled(&self) -> usize {
        self.inner
            .hosts
            .borrow()
            .values()
            .map(|h| h.h1.len() + usize::from(h.h2.is_some()))
            .sum()
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
    /// arrived; read the body from it. An HTTP/1.1 connection returns to
    /// the pool at once and takes the next request when this body was read.
    ///
    /// # Cancellation
    /// Dropping the future abandons the request: an HTTP/1.1 connection
    /// it was using is closed (what it would deliver next is unknown), an
    /// HTTP/2 stream is reset; the pool stays usable. hyper's futures do
    /// not observe aio's cancellation, so a cancelled task is dropped here.
    pub async fn request(&self, mut req: Request<B>) -> Result<Response<Incoming>, ClientError> {
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
        // A pooled connection may have been closed by the server while it
        // sat idle; hyper then gives the unsent request back, and it goes
        // on a new connection.
        loop {
            let (conn, pooled) = match self.checkout(&key) {
                Some(c) => (c, true),
                None => (self.connect(&key).await?, false),
            };
            let mut err = match conn {
                Conn::H1(mut sender) => {
                    // HTTP/1.1 sends the path only.
                    *req.uri_mut() = origin.clone();
                    match sender.try_send_request(req).await {
                        Ok(res) => {
                            self.checkin(&key, sender);
                            return Ok(res);
                        }
                        Err(e) => e,
                    }
                }
                Conn::H2(mut sender) => {
                    *req.uri_mut() = full.clone();
                    match sender.try_send_request(req).await {
                        Ok(res) => return Ok(res),
                        Err(e) => e,
                    }
                }
            };
            match err.take_message() {
                Some(r) if pooled => req = r,
                _ => return Err(ClientError::Http(err.into_error())),
            }
        }
    }

    /// A pooled connection that can take a request now, if any.
    fn checkout(&self, key: &Key) -> Option<Conn<B>> {
        let mut hosts = self.inner.hosts.borrow_mut();
        let host = hosts.get_mut(key)?;
        if let Some(h2) = &host.h2 {
            if !h2.is_closed() {
                return Some(Conn::H2(h2.clone()));
            }
            host.h2 = None;
        }
        host.h1.retain(|s| !s.is_closed());
        let i = host.h1.iter().position(|s| s.is_ready())?;
        Some(Conn::H1(host.h1.swap_remove(i)))
    }

    fn checkin(&self, key: &Key, sender: http1::SendRequest<B>) {
        let mut hosts = self.inner.hosts.borrow_mut();
        let host = hosts.entry(key.clone()).or_default();
        if host.h1.len() < self.inner.max_idle_per_host {
            host.h1.push(sender);
        }
    }

    async fn connect(&self, key: &Key) -> Result<Conn<B>, ClientError> {
        let (io, proto) = self.open(key).await.map_err(ClientError::Connect)?;
        match proto {
            Proto::Http1 => {
                let (sender, conn) = http1::Builder::new().handshake(io).await.map_err(ClientError::Http)?;
                drop(aio_core::create_task(async move {
                    let _ = conn.await;
                }));
                Ok(Conn::H1(sender))
            }
            Proto::Http2 => {
                let (sender, conn) = http2::Builder::new(LocalExecutor)
                    .timer(AioTimer)
                    .handshake(io)
                    .await
                    .map_err(ClientError::Http)?;
                drop(aio_core::create_task(async move {
                    let _ = conn.await;
                }));
                let mut hosts = self.inner.hosts.borrow_mut();
                hosts.entry(key.clone()).or_default().h2 = Some(sender.clone());
                Ok(Conn::H2(sender))
            }
        }
    }

    async fn open(&self, key: &Key) -> io::Result<(Io, Proto)> {
        let wanted = if self.inner.http2_only {
            Proto::Http2
        } else {
            Proto::Http1
        };
        if key.https {
            #[cfg(feature = "tls")]
            {
                let (r, w) = aio_net::open_connection_tls(&key.host, key.port, &self.inner.tls).await?;
                let h2 = w.tls_info().and_then(|i| i.alpn_protocol).is_some_and(|p| p == b"h2");
                let proto = if h2 { Proto::Http2 } else { wanted };
                return Ok((Io::new(r, w), proto));
            }
            #[cfg(not(feature = "tls"))]
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "https needs aio-hyper's `tls` feature",
            ));
        }
        let (r, w) = aio_net::open_connection(&key.host, key.port).await?;
        Ok((Io::new(r, w), wanted))
    }
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
