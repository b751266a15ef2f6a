//! aio-net: sockets, asyncio streams, subprocesses and signals for aio.
//!
//! Everything here is written once against aio-core's I/O operations and
//! runs on every backend (aio-poll's readiness driver, aio-uring's
//! completion driver); no line names epoll or io_uring.
//!
//! - Sockets: [`TcpListener`], [`TcpStream`], [`TcpSocket`], [`UdpSocket`],
//!   [`UnixListener`], [`UnixStream`], [`UnixDatagram`], with owned-buffer
//!   methods (`read(buf)` gives the buffer back) and the `futures-io`
//!   traits (tokio's with the `tokio-io` feature).
//! - asyncio's streams: [`open_connection`], [`start_server`] ([`Server`]),
//!   [`StreamReader`], [`StreamWriter`], and the Unix variants.
//! - DNS: [`lookup_host`], on the loop's thread pool.
//!
//! Sockets belong to the loop that created them (as in asyncio); a
//! thread-per-core server binds one listener per loop with `SO_REUSEPORT`
//! ([`TcpSocket::set_reuseport`]).
//!
//! # Examples
//!
//! An echo server and a client, with asyncio's streams:
//!
//! ```
//! # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
//! let server = aio_net::start_server(
//!     |mut reader: aio_net::StreamReader, writer: aio_net::StreamWriter| async move {
//!         while let Ok(line) = reader.readline().await {
//!             if line.is_empty() { break; }
//!             writer.write(&line);
//!             writer.drain().await?;
//!         }
//!         Ok::<_, std::io::Error>(())
//!     },
//!     "127.0.0.1",
//!     0,
//! )
//! .await?;
//! let (mut reader, writer) = aio_net::open_connection("127.0.0.1", server.sockets()[0].port()).await?;
//! writer.write(b"hello\n");
//! assert_eq!(reader.readline().await?, b"hello\n");
//! writer.close();
//! server.close();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod addr;
mod compat;
mod sock;
mod stream;
mod tcp;
mod udp;
mod unix;

pub use addr::{ToSocketAddrs, lookup_host};
pub use stream::{
    HandlerOutput, Server, StreamError, StreamReader, StreamWriter, open_connection, open_unix_connection,
    start_server, start_unix_server,
};
pub use tcp::{TcpListener, TcpSocket, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixSocketAddr, UnixStream};

compat::impl_async_io!(TcpStream);
compat::impl_async_io!(UnixStream);
