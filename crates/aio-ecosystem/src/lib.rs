//! aio with the crates people already use, and the pieces their tests,
//! examples and benches share.
//!
//! Each popular crate reaches aio through one of four doors (the
//! ecosystem guide, `docs/ecosystem.md`, has the table):
//!
//! - **native**: crates with no I/O of their own (`tokio::sync`,
//!   `futures`, `async-channel`, `tracing`) run in aio tasks as they are;
//! - **a stream**: crates that take a byte stream (tokio-postgres's
//!   `connect_raw`, tokio-tungstenite's `client_async`/`accept_async`) take
//!   an aio `TcpStream`, or a [`Duplex`](aio::Duplex) of a TLS
//!   connection ([`AioTls`] for tokio-postgres);
//! - **aio-hyper**: HTTP crates (tonic: [`grpc`]) are served by
//!   `aio::hyper::serve` and call through `aio::hyper::Client`;
//! - **compat**: crates that start tokio themselves (redis, reqwest,
//!   sqlx) run inside `aio::compat::tokio(...)`.
//!
//! [`servers`] starts throwaway PostgreSQL and redis servers for the tests.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! // tokio-postgres on an aio socket.
//! let pg = aio_ecosystem::servers::Postgres::start().expect("postgres installed");
//! let tcp = aio::TcpStream::connect(pg.addr()).await?;
//! let (client, connection) = pg.config().connect_raw(tcp, tokio_postgres::NoTls).await?;
//! aio::create_task(connection);
//! let row = client.query_one("SELECT $1::text", &[&"hi"]).await?;
//! assert_eq!(row.get::<_, &str>(0), "hi");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod grpc;
mod postgres_tls;
pub mod servers;

pub use postgres_tls::{AioTls, ConnectFuture, PgTlsStream};
