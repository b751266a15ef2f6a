//! TLS on asyncio's streams (the `tls` feature): rustls, with ring as the
//! crypto provider, between the socket and the `StreamReader` /
//! `StreamWriter` buffers.
//!
//! | asyncio | aio |
//! |---|---|
//! | `open_connection(h, p, ssl=ctx)` | [`open_connection_tls`]`(h, p, &TlsConnector)` |
//! | `start_server(cb, h, p, ssl=ctx)` | [`start_server_tls`]`(cb, h, p, TlsAcceptor)` |
//! | `writer.start_tls(ctx, server_hostname=h)` | [`start_tls`]`(reader, writer, &TlsConnector, h)` |
//! | `ssl_handshake_timeout=60.0` | [`TlsConnector::handshake_timeout`] (60 s by default) |
//! | `writer.get_extra_info('ssl_object')` | [`StreamWriter::tls_info`] |
//!
//! Certificates are verified by default, against Mozilla's roots
//! (`webpki-roots`, compiled in) and the host name the connection was
//! opened with, which is also sent as SNI. A failed handshake is an
//! `io::Error` whose inner error is a [`TlsError`] (a wrong host name, an
//! expired or unknown certificate, a peer that does not speak TLS), or
//! `TimedOut` when the handshake timeout passes first.
//!
//! Above the session the streams behave as on a plain connection: a
//! cancelled read loses no decrypted byte, `drain` bounds the buffered
//! (encrypted) data, and `close` sends TLS's close_notify before closing.

mod session;

pub(crate) use session::{ReadSide, Session};

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::TcpStream;
use crate::stream::{self, HandlerOutput, Server, StreamReader, StreamWriter, Transport};

/// asyncio's default `ssl_handshake_timeout`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The crypto provider every config here is built with: ring, explicitly,
/// so no process-wide default has to be installed (and none can be
/// ambiguous when another crate enables aws-lc-rs).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client-side TLS settings: asyncio's client `ssl.SSLContext`. Cheap to
/// clone (the rustls config is shared).
///
/// # Examples
/// ```no_run
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let tls = aio_net::TlsConnector::new().alpn_protocols(["http/1.1"]);
/// let (mut reader, writer) = aio_net::open_connection_tls("example.com", 443, &tls).await?;
/// writer.write(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
/// let status = reader.readline().await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for TlsConnector {
    fn default() -> TlsConnector {
        TlsConnector::new()
    }
}

impl TlsConnector {
    /// Verifies servers against Mozilla's root certificates
    /// (`webpki-roots`): `ssl.create_default_context()`.
    pub fn new() -> TlsConnector {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        TlsConnector::with_roots(roots)
    }

    /// Verifies servers against `roots` only (a private CA, or a test's
    /// self-signed certificate).
    pub fn with_roots(roots: RootCertStore) -> TlsConnector {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from_config(Arc::new(config))
    }

    /// Trusts the certificates in a PEM file's text (and nothing else):
    /// `ssl_context.load_verify_locations(cadata=...)`.
    pub fn from_pem(ca_pem: &[u8]) -> io::Result<TlsConnector> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no certificate in the PEM data",
            ));
        }
        Ok(TlsConnector::with_roots(roots))
    }

    /// Any rustls client config (client certificates, a custom verifier,
    /// session resumption settings). Build it with a crypto provider of
    /// your choice, e.g. `rustls::crypto::ring::default_provider()`.
    pub fn from_config(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }

    /// The protocols offered with ALPN, most preferred first
    /// (`set_alpn_protocols`); see [`TlsInfo::alpn_protocol`] for the
    /// outcome.
    pub fn alpn_protocols<I, P>(mut self, protocols: I) -> TlsConnector
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        Arc::make_mut(&mut self.config).alpn_protocols = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// How long a handshake may take (asyncio's `ssl_handshake_timeout`,
    /// 60 s by default); past it the connection is closed and the call
    /// returns `TimedOut`.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsConnector {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls config.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    async fn connect(
        &self,
        t: std::rc::Rc<Transport>,
        recv: aio_core::io::RecvStream,
        received: Vec<u8>,
        server_name: &str,
        peer: String,
    ) -> io::Result<(StreamReader, StreamWriter)> {
        let conn = session::client(&self.config, server_name)?;
        session::establish(t, recv, received, conn, self.handshake_timeout, peer).await
    }
}

/// Server-side TLS settings: asyncio's server `ssl.SSLContext`. Cheap to
/// clone (the rustls config is shared).
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Serves `cert_chain` (the server's certificate first) with its
    /// private key; no client certificates asked for.
    pub fn new(cert_chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> io::Result<TlsAcceptor> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(cert_chain, key)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad certificate or key: {e}")))?;
        Ok(TlsAcceptor::from_config(Arc::new(config)))
    }

    /// [`new`](TlsAcceptor::new) from PEM text: the certificate chain and
    /// the private key (`ssl_context.load_cert_chain(certfile, keyfile)`).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsAcceptor> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no certificate in the PEM data",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad private key PEM: {e}")))?;
        TlsAcceptor::new(certs, key)
    }

    /// Any rustls server config (client authentication, several
    /// certificates by SNI, ...).
    pub fn from_config(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }

    /// The protocols accepted with ALPN, most preferred first. A client
    /// that offers ALPN but none of these is refused (as RFC 7301 asks).
    pub fn alpn_protocols<I, P>(mut self, protocols: I) -> TlsAcceptor
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        Arc::make_mut(&mut self.config).alpn_protocols = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// How long a client's handshake may take (60 s by default); past it
    /// the connection is closed and the handler never runs.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// The rustls config.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    async fn accept(
        &self,
        t: std::rc::Rc<Transport>,
        recv: aio_core::io::RecvStream,
        received: Vec<u8>,
        peer: String,
    ) -> io::Result<(StreamReader, StreamWriter)> {
        let conn = session::server(&self.config, &peer)?;
        session::establish(t, recv, received, conn, self.handshake_timeout, peer).await
    }
}

/// What a TLS connection negotiated: from [`StreamWriter::tls_info`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol ALPN chose (`selected_alpn_protocol()`), if any.
    pub alpn_protocol: Option<Vec<u8>>,
    /// TLS 1.2 or 1.3.
    pub protocol_version: Option<rustls::ProtocolVersion>,
    /// The cipher suite (`cipher()`).
    pub cipher_suite: Option<rustls::CipherSuite>,
    /// The peer's certificate chain, its own first (`getpeercert()`);
    /// empty when it sent none.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// On a server, the host name the client asked for with SNI.
    pub server_name: Option<String>,
}

/// A TLS failure: the rustls error and the peer it happened with. It is
/// the inner error of the `io::Error` (kind `InvalidData`) that the
/// handshake or a read returns; get it with `e.get_ref()` and
/// `downcast_ref::<TlsError>()`.
#[derive(Debug)]
pub struct TlsError {
    peer: String,
    error: rustls::Error,
    handshake: bool,
    hint: Option<&'static str>,
}

impl TlsError {
    pub(crate) fn io(peer: &str, error: rustls::Error, handshake: bool, hint: Option<&'static str>) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            TlsError {
                peer: peer.to_owned(),
                error,
                handshake,
                hint,
            },
        )
    }

    /// rustls's error (`InvalidCertificate(NotValidForName)`,
    /// `InvalidCertificate(Expired)`, `AlertReceived(..)`, ...).
    pub fn error(&self) -> &rustls::Error {
        &self.error
    }

    /// The peer: `host:port` for a client, the address for a server.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Whether it happened during the handshake.
    pub fn is_handshake(&self) -> bool {
        self.handshake
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.handshake { "TLS handshake" } else { "TLS" };
        write!(f, "{what} with {} failed: {}", self.peer, self.error)?;
        if let Some(h) = self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Opens a TLS connection to `(host, port)`: asyncio's
/// `open_connection(host, port, ssl=ctx)`. The server's certificate is
/// verified for `host`, which is also sent as SNI (an IP address is
/// verified against the certificate's IP addresses and not sent).
///
/// # Errors
/// Those of `open_connection`; `InvalidData` with a [`TlsError`] inside
/// when the handshake fails (a certificate that is expired, self-signed,
/// or for another name; a peer that does not speak TLS); `TimedOut`
/// when the handshake outlasts [`TlsConnector::handshake_timeout`].
///
/// # Cancellation
/// A cancelled call (connect or handshake) closes the socket.
///
/// # Examples
/// ```no_run
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let tls = aio_net::TlsConnector::new();
/// let (mut reader, writer) = aio_net::open_connection_tls("example.com", 443, &tls).await?;
/// writer.write(b"HEAD / HTTP/1.0\r\nHost: example.com\r\n\r\n");
/// println!("{}", String::from_utf8_lossy(&reader.readline().await?));
/// writer.close();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn open_connection_tls(
    host: &str,
    port: u16,
    tls: &TlsConnector,
) -> io::Result<(StreamReader, StreamWriter)> {
    let s = TcpStream::connect((host, port)).await?;
    let t = std::rc::Rc::new(Transport::tcp(s));
    let recv = aio_core::io::RecvStream::new(std::os::fd::AsRawFd::as_raw_fd(&t.fd));
    tls.connect(t, recv, Vec::new(), host, format!("{host}:{port}")).await
}

/// Starts a TLS server: for each connection the handshake runs (bounded
/// by [`TlsAcceptor::handshake_timeout`]) and then `handler(reader,
/// writer)`, in the connection's own task: asyncio's
/// `start_server(cb, host, port, ssl=ctx)`. A connection whose handshake
/// fails is closed without running the handler; as in asyncio, the
/// failure is reported (through the loop's exception handler) only in
/// debug mode.
///
/// # Examples
/// ```no_run
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let tls = aio_net::TlsAcceptor::from_pem(
///     &std::fs::read("cert.pem")?,
///     &std::fs::read("key.pem")?,
/// )?;
/// let server = aio_net::start_server_tls(
///     |mut r: aio_net::StreamReader, w: aio_net::StreamWriter| async move {
///         let line = r.readline().await?;
///         w.write(&line);
///         w.drain().await?;
///         Ok::<_, std::io::Error>(())
///     },
///     "127.0.0.1",
///     8443,
///     tls,
/// )
/// .await?;
/// server.serve_forever().await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn start_server_tls<H, Fut>(handler: H, host: &str, port: u16, tls: TlsAcceptor) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    let handler = std::rc::Rc::new(handler);
    stream::start_server_with(
        move |t: std::rc::Rc<Transport>| {
            let handler = handler.clone();
            let tls = tls.clone();
            async move {
                let peer = t.peer_string();
                let recv = aio_core::io::RecvStream::new(std::os::fd::AsRawFd::as_raw_fd(&t.fd));
                match tls.accept(t, recv, Vec::new(), peer).await {
                    Ok((r, w)) => Upgraded::Served(handler(r, w).await),
                    Err(e) => Upgraded::HandshakeFailed(e),
                }
            }
        },
        host,
        port,
    )
    .await
}

/// A TLS connection handler's outcome.
enum Upgraded<O> {
    Served(O),
    HandshakeFailed(io::Error),
}

impl<O: HandlerOutput> HandlerOutput for Upgraded<O> {
    fn is_failure(&self) -> bool {
        match self {
            Upgraded::Served(o) => o.is_failure(),
            // asyncio logs a failed handshake only in debug mode: a port
            // scanner or a plain-text client is not the server's error.
            Upgraded::HandshakeFailed(_) => aio_core::try_get_running_loop().is_some_and(|lp| lp.get_debug()),
        }
    }

    fn describe_failure(&self) -> Option<String> {
        match self {
            Upgraded::Served(o) => o.describe_failure(),
            Upgraded::HandshakeFailed(e) => Some(format!("TLS handshake failed: {e}")),
        }
    }
}

/// Upgrades a plain connection to TLS as its client: asyncio 3.11's
/// `writer.start_tls(ctx, server_hostname=...)`. Data written before is
/// sent first; the server's certificate is verified for
/// `server_hostname`. Returns the reader and writer above the session.
///
/// # Errors
/// As [`open_connection_tls`]; `InvalidInput` if the connection already
/// runs TLS, is a pipe, or the writer was closed.
///
/// # Cancellation
/// A cancelled upgrade closes the connection (as a failed one does).
pub async fn start_tls(
    reader: StreamReader,
    writer: StreamWriter,
    tls: &TlsConnector,
    server_hostname: &str,
) -> io::Result<(StreamReader, StreamWriter)> {
    let peer = writer
        .peer_addr()
        .map_or_else(|_| server_hostname.to_owned(), |a| a.to_string());
    let t = writer.into_transport().await?;
    let (_, recv, received) = reader.into_parts()?;
    tls.connect(t, recv, received, server_hostname, peer).await
}

/// Upgrades a plain connection to TLS as its server (STARTTLS on the
/// accepting side: asyncio's `loop.start_tls(..., server_side=True)`).
/// Bytes the reader already received and nobody read are taken as the
/// start of the client's handshake.
///
/// # Errors
/// As [`start_tls`].
///
/// # Cancellation
/// A cancelled upgrade closes the connection.
pub async fn start_tls_server(
    reader: StreamReader,
    writer: StreamWriter,
    tls: &TlsAcceptor,
) -> io::Result<(StreamReader, StreamWriter)> {
    let peer = writer
        .peer_addr()
        .map_or_else(|_| "the peer".to_owned(), |a| a.to_string());
    let t = writer.into_transport().await?;
    let (_, recv, received) = reader.into_parts()?;
    tls.accept(t, recv, received, peer).await
}
