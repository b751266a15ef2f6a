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
//! - Servers over a pool of loops: [`start_server_pool`] and
//!   [`start_pool_server`] ([`PoolServer`]) spread connections over
//!   several loops by load ([`Spread`]); the `aio` facade's `LoopPool`
//!   starts them.
//!   [`StreamReader`], [`StreamWriter`], and the Unix variants; a reader
//!   and a writer join into one [`Duplex`] stream (futures-io's and
//!   tokio's traits) for crates that take a stream, TLS included.
//! - [`TcpStream::split`] and [`TcpStream::into_split`]: halves that read
//!   and write independently, as tokio's.
//! - TLS (the `tls` feature): `open_connection_tls`, `start_server_tls`,
//!   `start_tls` and `start_tls_server` put rustls (on ring) between the
//!   socket and the same `StreamReader`/`StreamWriter`; certificates are
//!   verified by default, with a 60 s handshake timeout, as in asyncio.
//! - DNS: [`lookup_host`], on the loop's thread pool.
//! - Subprocesses: [`create_subprocess_exec`], [`create_subprocess_shell`]
//!   ([`Command`], [`Process`] with asyncio's `communicate`, `wait`,
//!   `kill`, `returncode`), with pipes as streams and exits watched
//!   through a pidfd (SIGCHLD where there is none).
//! - Signals: [`add_signal_handler`], [`remove_signal_handler`] (also as
//!   [`LoopSignalExt`] methods on a loop), [`ctrl_c`], [`wait_signal`];
//!   the constants are in [`signal`].
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
// The few system calls std lacks (pidfd, kill, sigaction) live in `sys`,
// the one module allowed unsafe code.
#![deny(unsafe_code)]

mod addr;
mod compat;
mod duplex;
mod pool;
mod process;
pub mod signal;
mod sock;
mod split;
mod stream;
mod sys;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
mod udp;
mod unix;

pub use addr::{ToSocketAddrs, lookup_host};
pub use duplex::Duplex;
pub use pool::{PoolServer, Spread, start_pool_server, start_server_pool};
pub use process::{
    ChildWatcher, Command, CommunicateInput, DEVNULL, ExecArgs, PIPE, Process, STDOUT, Spawn, Stdio,
    create_subprocess_exec, create_subprocess_shell,
};
/// The rustls version aio's TLS is built on, to build configs for
/// [`TlsConnector::from_config`] and [`TlsAcceptor::from_config`].
#[cfg(feature = "tls")]
pub use rustls;
pub use signal::{
    LoopSignalExt, SignalError, WaitSignal, add_signal_handler, ctrl_c, remove_signal_handler, wait_signal,
};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::{
    HandlerOutput, Server, StreamError, StreamReader, StreamWriter, open_connection, open_unix_connection,
    start_server, start_unix_server,
};
pub use tcp::{TcpListener, TcpSocket, TcpStream};
#[cfg(feature = "tls")]
pub use tls::{
    TlsAcceptor, TlsConnector, TlsError, TlsInfo, open_connection_tls, start_server_tls, start_tls, start_tls_server,
};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixSocketAddr, UnixStream};

compat::impl_async_io!(TcpStream);
compat::impl_async_io!(UnixStream);
