//! [`Duplex`]: asyncio's reader and writer joined back into one byte
//! stream, and tokio's I/O traits on the reader and the writer (with the
//! `tokio-io` feature), so that any aio stream — plain, Unix, TLS — can be
//! handed to a crate that takes a stream (tokio-postgres, tungstenite,
//! hyper, tonic, ...).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use crate::{StreamReader, StreamWriter, TcpStream, UnixSocketAddr, UnixStream};

/// A [`StreamReader`] and a [`StreamWriter`] as one duplex stream:
/// `AsyncRead`, `AsyncBufRead` and `AsyncWrite`, futures-io's and (with
/// the `tokio-io` feature) tokio's.
///
/// This is the door for a crate that wants one stream value: a TLS
/// connection from [`open_connection_tls`](crate::open_connection_tls),
/// [`start_tls`](crate::start_tls) or a TLS server's handler is a reader
/// and a writer, and `Duplex::new(reader, writer)` is what the crate
/// takes. (A plain [`TcpStream`] or [`UnixStream`] implements the traits
/// itself, with no buffer in between; use it directly when there is no
/// TLS.)
///
/// Reads copy out of the reader's buffer (`AsyncBufRead` reads in place).
/// Writes go through the writer with asyncio's flow control: `poll_write`
/// queues the data (the writer's background flush sends it) and waits
/// only while the buffer is above the high-water mark; `poll_flush` waits
/// for the same room. Shutting down (`poll_close`, `poll_shutdown`) is
/// asyncio's `write_eof`: once everything written is sent, the sending side
/// is shut (on TLS, after close_notify) and the peer reads EOF, while
/// reading goes on — the half-close tokio's `TcpStream` does. Errors of the
/// connection reach both sides, as between the reader and the writer.
///
/// # Cancellation
/// Like the socket types' trait impls, these do not observe aio's
/// cancellation (the traits cannot report it): a task waiting only on them
/// is dropped when cancelled. Nothing received is lost when a read is
/// dropped (it stays in the reader's buffer), and data a write accepted is
/// sent even if the caller goes away.
///
/// # Examples
/// ```
/// use futures_io::{AsyncRead, AsyncWrite};
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let server = aio_net::start_server(
///     |r: aio_net::StreamReader, w: aio_net::StreamWriter| async move {
///         let mut s = aio_net::Duplex::new(r, w);
///         let mut buf = [0u8; 5];
///         std::future::poll_fn(|cx| std::pin::Pin::new(&mut s).poll_read(cx, &mut buf)).await?;
///         std::future::poll_fn(|cx| std::pin::Pin::new(&mut s).poll_write(cx, b"world")).await?;
///         std::future::poll_fn(|cx| std::pin::Pin::new(&mut s).poll_close(cx)).await
///     },
///     "127.0.0.1",
///     0,
/// )
/// .await?;
/// let (r, w) = aio_net::open_connection("127.0.0.1", server.sockets()[0].port()).await?;
/// let mut client = aio_net::Duplex::new(r, w);
/// std::future::poll_fn(|cx| std::pin::Pin::new(&mut client).poll_write(cx, b"hello")).await?;
/// let mut buf = [0u8; 5];
/// std::future::poll_fn(|cx| std::pin::Pin::new(&mut client).poll_read(cx, &mut buf)).await?;
/// assert_eq!(&buf, b"world");
/// # server.close();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Duplex {
    reader: StreamReader,
    writer: StreamWriter,
}

impl fmt::Debug for Duplex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Duplex")
            .field("reader", &self.reader)
            .field("writer", &self.writer)
            .finish()
    }
}

impl Duplex {
    /// One stream of a reader and a writer (from `open_connection`,
    /// `open_connection_tls`, `start_tls`, a server's handler, ...).
    pub fn new(reader: StreamReader, writer: StreamWriter) -> Duplex {
        Duplex { reader, writer }
    }

    /// The reader.
    pub fn reader(&self) -> &StreamReader {
        &self.reader
    }

    /// The reader, to use asyncio's methods (`readline`, ...) in between.
    pub fn reader_mut(&mut self) -> &mut StreamReader {
        &mut self.reader
    }

    /// The writer (flow-control marks, `close`, `abort`, ...).
    pub fn writer(&self) -> &StreamWriter {
        &self.writer
    }

    /// The reader and the writer back.
    pub fn into_inner(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    /// The peer's address (TCP).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.writer.peer_addr()
    }

    /// The local address (TCP).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.writer.local_addr()
    }

    /// The peer's address (Unix sockets).
    pub fn unix_peer_addr(&self) -> io::Result<UnixSocketAddr> {
        self.writer.unix_peer_addr()
    }

    /// What was negotiated on a TLS connection (`None` on a plain one).
    #[cfg(feature = "tls")]
    pub fn tls_info(&self) -> Option<crate::TlsInfo> {
        self.writer.tls_info()
    }
}

impl From<(StreamReader, StreamWriter)> for Duplex {
    fn from((reader, writer): (StreamReader, StreamWriter)) -> Duplex {
        Duplex::new(reader, writer)
    }
}

impl From<TcpStream> for Duplex {
    /// asyncio's streams on the connection (with `TCP_NODELAY`).
    fn from(s: TcpStream) -> Duplex {
        s.into_streams().into()
    }
}

impl From<UnixStream> for Duplex {
    /// asyncio's streams on the connection.
    fn from(s: UnixStream) -> Duplex {
        s.into_streams().into()
    }
}

impl AsyncRead for Duplex {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncBufRead for Duplex {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().reader).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.get_mut().reader).consume(amt)
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.poll_write_eof(cx)
    }
}

/// tokio's `AsyncRead`: one copy from the reader's buffer into the
/// caller's, which is not zeroed first.
#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncRead for StreamReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let data = std::task::ready!(AsyncBufRead::poll_fill_buf(self.as_mut(), cx))?;
        let n = data.len().min(buf.remaining());
        buf.put_slice(&data[..n]);
        AsyncBufRead::consume(self, n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncBufRead for StreamReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        AsyncBufRead::poll_fill_buf(self, cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        AsyncBufRead::consume(self, amt)
    }
}

/// tokio's `AsyncWrite`, as futures-io's (see the impl there): shutting
/// down is `close` then waiting for it. A [`Duplex`] half-closes instead.
#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncWrite for StreamWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(self, cx)
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncRead for Duplex {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncRead::poll_read(Pin::new(&mut self.get_mut().reader), cx, buf)
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncBufRead for Duplex {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        AsyncBufRead::poll_fill_buf(self, cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        AsyncBufRead::consume(self, amt)
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncWrite for Duplex {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(self, cx)
    }
}
