//! tokio-postgres over aio's TLS: a [`TlsConnect`] that upgrades the
//! connection with [`aio::start_tls`] once the server agreed to TLS.
//!
//! tokio-postgres negotiates TLS inside the protocol (it sends an
//! `SSLRequest` on the plain connection and the server answers `S`), then
//! hands the stream to the connector: so the stream given to
//! `Config::connect_raw` is a plain [`Duplex`] (from
//! [`aio::open_connection`]), and [`AioTls`] turns it into a TLS one.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use aio::{Duplex, TlsConnector};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// tokio-postgres's TLS connector on aio's TLS (rustls underneath): give
/// it to `Config::connect_raw` with a [`Duplex`] of a plain connection.
///
/// # Examples
/// ```no_run
/// # async fn f(pem: &[u8], port: u16) -> Result<(), Box<dyn std::error::Error>> {
/// use aio_ecosystem::AioTls;
/// let (r, w) = aio::open_connection("127.0.0.1", port).await?;
/// let tls = AioTls::new(aio::TlsConnector::from_pem(pem)?, "localhost");
/// let mut config = tokio_postgres::Config::new();
/// config.user("postgres").ssl_mode(tokio_postgres::config::SslMode::Require);
/// let (client, connection) = config.connect_raw(aio::Duplex::new(r, w), tls).await?;
/// aio::create_task(connection);
/// let row = client.query_one("SELECT 1::int", &[]).await?;
/// assert_eq!(row.get::<_, i32>(0), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AioTls {
    connector: TlsConnector,
    server_name: String,
}

impl AioTls {
    /// A connector that verifies the server's certificate for
    /// `server_name` (also sent as SNI).
    pub fn new(connector: TlsConnector, server_name: &str) -> AioTls {
        AioTls {
            connector,
            server_name: server_name.to_owned(),
        }
    }
}

/// The future of [`AioTls`]'s handshake.
pub type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<PgTlsStream>>>>;

impl TlsConnect<Duplex> for AioTls {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn connect(self, stream: Duplex) -> ConnectFuture {
        Box::pin(async move {
            let (r, w) = stream.into_inner();
            let (r, w) = aio::start_tls(r, w, &self.connector, &self.server_name).await?;
            Ok(PgTlsStream(Duplex::new(r, w)))
        })
    }
}

/// The TLS stream tokio-postgres runs on: aio's TLS [`Duplex`] with
/// tokio-postgres's [`TlsStream`] marker (no channel binding).
#[derive(Debug)]
pub struct PgTlsStream(pub Duplex);

impl TlsStream for PgTlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for PgTlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
