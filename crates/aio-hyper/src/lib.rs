//! aio-hyper: hyper, first-class on aio.
//!
//! hyper is runtime-agnostic: it needs an executor for its background
//! futures, a timer for its timeouts, and I/O types. This crate gives it
//! aio's, for futures that need not be `Send` (aio's tasks and sockets
//! belong to their loop, as in asyncio):
//!
//! - [`LocalExecutor`]: `hyper::rt::Executor` spawning aio tasks (HTTP/2
//!   on `!Send` services works);
//! - [`AioTimer`]: `hyper::rt::Timer` on the loop's timers, so
//!   `header_read_timeout` and HTTP/2 keep-alive work;
//! - [`Io`]: asyncio's `StreamReader`/`StreamWriter` (plain or TLS) as
//!   hyper's `Read`/`Write`, with the writer's flow control;
//! - [`serve`] / [`Builder`]: HTTP/1.1 and HTTP/2 on a `TcpListener`, one
//!   task per connection (and `serve_tls` with the `tls` feature); each
//!   request carries its connection's [`ConnInfo`] (the peer's address,
//!   TLS details); [`GracefulShutdown`] with
//!   [`Builder::serve_graceful`] stops a server without cutting requests
//!   off; tower services (tonic's servers) are served through
//!   [`TowerToHyperService`];
//! - [`serve_pool`]: the same over a pool of loops, each connection on
//!   the loop that holds fewest (aio-net's `PoolServer`);
//! - [`Client`]: a pooled HTTP/1.1 and HTTP/2 client, one pool per loop,
//!   with a connection limit per host (requests wait in line), request,
//!   connect and idle timeouts, and idempotent requests resent once when
//!   a reused connection dies under them. hyper-util's pooled client
//!   cannot run here: it requires `Send` connections, executors and
//!   connectors, to share one pool across threads. See
//!   [`Client`] for the pool's rules. It is a `tower::Service`
//!   ([`TowerService`]), so tonic's clients and tower middleware run on it.
//!
//! # Examples
//!
//! A server and a client on one loop:
//!
//! ```
//! use std::convert::Infallible;
//! use aio_hyper::hyper::{Request, Response, body::Incoming, service::service_fn};
//! use aio_hyper::{BodyExt, Bytes, Client, Full};
//!
//! # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
//! let listener = aio_net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = aio_core::create_task(async move {
//!     let hello = service_fn(|req: Request<Incoming>| async move {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!("hello, {}", req.uri().path())))))
//!     });
//!     aio_hyper::serve(&listener, hello).await
//! });
//!
//! let client: Client<Full<Bytes>> = Client::new();
//! let res = client.get(format!("http://{addr}/world").parse()?).await?;
//! assert_eq!(res.status(), 200);
//! let body = res.into_body().collect().await?.to_bytes();
//! assert_eq!(&body[..], b"hello, /world");
//! server.cancel();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod client;
mod conn_info;
mod graceful;
mod rt;
mod server;
mod tower;

pub use client::{Client, ClientError};
pub use conn_info::ConnInfo;
pub use graceful::GracefulShutdown;
pub use rt::{AioTimer, Io, LocalExecutor};
pub use server::{BoxError, Builder, serve, serve_pool};
pub use tower::ResponseFuture;

/// The hyper this crate is built on.
pub use hyper;

/// The `http` types (`Request`, `Response`, `Uri`, `HeaderMap`, ...) hyper
/// uses, as `aio::hyper::http`.
pub use hyper::http;

/// tower's `Service` trait, which [`Client`] implements (tonic, tower
/// middleware and other HTTP crates take a `tower::Service`).
pub use tower_service::Service as TowerService;

/// Serves a tower service (tonic's generated servers, axum routers, tower
/// stacks) with [`serve`]: `serve(&listener, TowerToHyperService::new(svc))`
/// (hyper-util's adapter).
pub use hyper_util::service::TowerToHyperService;

/// Bodies and their helpers, from http-body-util and bytes.
pub use bytes::Bytes;
pub use http_body_util::{BodyExt, Empty, Full};
