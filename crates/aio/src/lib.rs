//! aio: asyncio's programming model in Rust.
//!
//! Someone who knows asyncio writes the same program with the same names
//! and gets the same behaviour — one event loop per thread, tasks that
//! need not be `Send`, catchable cooperative cancellation, `gather`,
//! `TaskGroup`, `timeout`, `shield`, locks and queues, streams and
//! subprocesses — on an epoll/kqueue or io_uring reactor.
//!
//! This is the facade: it re-exports [aio-core](aio_core) (loop, tasks,
//! cancellation, combinators, threads), and, by cargo feature, aio-sync
//! (`sync`), aio-queue (`queue`), aio-net (`net`, with TLS under `tls`),
//! aio-hyper (`hyper`, as `aio::hyper`) and the drivers (`poll`, the
//! default, and `uring`). Pick crates à la carte instead if you need
//! less.
//!
//! | asyncio | aio |
//! |---|---|
//! | `asyncio.run(main())` | `aio::run(main())` or `#[aio::main]` |
//! | `await asyncio.sleep(1)` | `aio::sleep(1).await?` |
//! | `asyncio.create_task(c)` / `task.cancel()` | `aio::create_task(f)` / `task.cancel()` |
//! | `except asyncio.CancelledError:` | `Err(aio::Cancelled)` at any await point |
//! | `await asyncio.gather(a, b)` | `aio::gather!(a, b).await?` |
//! | `async with asyncio.TaskGroup() as tg:` | `aio::TaskGroup::run(\|tg\| async move { .. })` |
//! | `async with asyncio.timeout(1):` | `aio::timeout(1, fut).await` |
//! | `await asyncio.wait_for(f, 1)` | `aio::wait_for(f, 1).await` |
//! | `await asyncio.to_thread(f)` | `aio::to_thread(f).await` |
//! | `asyncio.Lock()`, `Queue()` | `aio::Lock::new()`, `aio::Queue::new()` |
//! | `await asyncio.open_connection(h, p)` | `aio::open_connection(h, p).await?` |
//! | `await asyncio.open_connection(h, p, ssl=ctx)` | `aio::open_connection_tls(h, p, &tls).await?` (`tls` feature) |
//! | `await writer.start_tls(ctx, server_hostname=h)` | `aio::start_tls(reader, writer, &tls, h).await?` (`tls` feature) |
//! | `contextvars.ContextVar("v", default=0)` | `aio::ContextVar::new("v", 0)` |
//! | (one process per core, or one loop per thread by hand) | `aio::LoopPool::new(n)`: `pool.start_server(addr, handler)`, `pool.spawn(f)`, `pool.shutdown(grace)` |
//!
//! # Features: which item comes from which
//!
//! Stable rustdoc cannot label items with the feature they need, so here
//! is the map. Everything not listed is aio-core's and always there.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | (none) | — | [`run`], [`Runner`], [`Builder`], [`Backend`], [`Loop`], [`LoopPool`] and [`PoolBuilder`] (loops on every core; their servers need `net`), [`run_per_core`], [`LoopMetrics`], tasks ([`create_task`], [`Task`], [`TaskGroup`], [`gather`](fn@gather), [`wait`], [`as_completed`], [`shield`]), timers and timeouts ([`sleep`], [`timeout`], [`wait_for`]), [`Cancelled`], [`Future`], [`to_thread`], [`LoopHandle`], [`ContextVar`] and [`contextvars`], the test clock ([`time`]), [`#[aio::main]`](main) and [`#[aio::test]`](test) |
//! | `sync` | yes | `Lock`, `Event`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Barrier` and their futures and errors (aio-sync) |
//! | `queue` | yes | `Queue`, `PriorityQueue`, `LifoQueue` and their errors (aio-queue) |
//! | `net` | yes | `TcpListener`, `TcpStream`, `TcpSocket`, `UdpSocket`, `UnixListener`, `UnixStream`, `UnixDatagram`; streams: `open_connection`, `start_server`, `StreamReader`, `StreamWriter`, `Server` (and the Unix variants); servers over a pool of loops: `PoolServer`, `Spread`, `start_pool_server`, `start_server_pool`; subprocesses: `create_subprocess_exec`, `create_subprocess_shell`, `Command`, `Process`, `PIPE`, `DEVNULL`, `STDOUT`; signals: `add_signal_handler`, `remove_signal_handler`, `ctrl_c`, the [`signal`](https://docs.rs/aio-net) module; `lookup_host` (aio-net). Needs `poll` or `uring` |
//! | `poll` | yes | the epoll/kqueue driver: [`Backend::Poll`], the default backend |
//! | `uring` | no | the io_uring driver: [`Backend::Uring`], the default backend when the kernel allows it (poll otherwise) |
//! | `tokio-io` | no | tokio's `AsyncRead`/`AsyncWrite` on aio's stream types (implies `net`), and on files with `fs` |
//! | `fs` | no | files: [`fs`] (`File`, `OpenOptions`, `read_dir`, `read`, `write`, `copy`, `metadata`, ...; aio-fs) |
//! | `tls` | no | TLS on the streams: `open_connection_tls`, `start_server_tls`, `start_tls`, `start_tls_server`, `TlsConnector`, `TlsAcceptor` (aio-net, rustls) |
//! | `hyper` | no | hyper on aio: [`hyper`] (`serve`, `serve_pool`, `Client` as a `tower::Service`, `http`, `TowerToHyperService`, `ConnInfo`, `GracefulShutdown`, the executor and timer; aio-hyper), [`LoopPool::serve`] |
//! | `compat` | no | `compat`: crates that need tokio's reactor or timers (reqwest, sqlx, redis, `tokio::time`) inside aio tasks, on a tokio runtime started on a side thread at first use (async-compat) |
//! | `tracing` | no | a task carries the `tracing` span current when it was created, as it carries context variables |
//!
//! How popular crates (tokio-postgres, tonic, tungstenite, redis, reqwest,
//! sqlx, tracing) run on aio, and why aio's sockets are not `Send`: the
//! ecosystem guide (`docs/ecosystem.md` in the repository).
//!
//! Built with neither `poll` nor `uring`, the default loop runs with no I/O
//! driver ([`Backend::None`]): tasks, timers, sync and queues still work.
//!
//! # Examples
//!
//! ```
//! #[derive(Debug)]
//! struct Shutdown;
//!
//! async fn worker(name: &str, delay: f64) -> aio::Result<String> {
//!     aio::sleep(delay).await?;
//!     Ok(format!("{name} done"))
//! }
//!
//! let results = aio::run(async {
//!     let slow = aio::create_task(worker("slow", 10.0));
//!     let both = aio::gather!(worker("a", 0.01), worker("b", 0.02)).await?;
//!     slow.cancel(); // slow sees Err(Cancelled) at its sleep
//!     assert!(slow.await.unwrap_err().is_cancelled());
//!     Ok::<_, aio::Cancelled>(both)
//! });
//! assert_eq!(results.unwrap(), ("a done".to_string(), "b done".to_string()));
//! ```
#![forbid(unsafe_code)]

#[cfg(all(feature = "net", not(any(feature = "poll", feature = "uring"))))]
compile_error!("aio's `net` feature needs an I/O backend: enable `poll` (the default) or `uring`");

mod backend;
mod pool;

pub use aio_core::*;
pub use aio_macros::{main, test};
pub use backend::{Backend, Builder, Runner, driver_for, new_event_loop, run, run_per_core};
pub use pool::{LoopPool, PoolBuilder, PoolHandle};

/// What `#[aio::main]` and `#[aio::test]` expand to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::backend::macro_run as run;
}

#[cfg(feature = "sync")]
pub use aio_sync::*;

#[cfg(feature = "queue")]
pub use aio_queue::*;

#[cfg(feature = "net")]
pub use aio_net::*;

/// Files (the `fs` feature): see [aio-fs](aio_fs).
#[cfg(feature = "fs")]
pub use aio_fs as fs;

/// hyper on aio (the `hyper` feature): [`serve`](aio_hyper::serve),
/// [`Client`](aio_hyper::Client) (a `tower::Service`), the executor, timer
/// and I/O adapter, the `http` types, tower's adapter
/// ([`TowerToHyperService`](aio_hyper::TowerToHyperService)), the peer's
/// [`ConnInfo`](aio_hyper::ConnInfo) and a
/// [`GracefulShutdown`](aio_hyper::GracefulShutdown).
#[cfg(feature = "hyper")]
pub use aio_hyper as hyper;

#[cfg(feature = "compat")]
pub mod compat;
