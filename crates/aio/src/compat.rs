//! Crates that need tokio's reactor, inside aio tasks (the `compat`
//! feature).
//!
//! Most crates that "need tokio" only need tokio's I/O traits: give them an
//! aio stream (the `tokio-io` feature; see the
//! ecosystem guide (`docs/ecosystem.md` in the repository)).
//! Some start tokio themselves: they call `tokio::net::TcpStream::connect`,
//! `tokio::spawn` or `tokio::time::sleep`, which panic outside a tokio
//! runtime (`there is no reactor running, must be called from the context
//! of a Tokio 1.x runtime`). reqwest, sqlx's pool, redis's connections and
//! anything built on `tokio::time` are of this kind. [`tokio()`] runs such a
//! future from an aio task:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! // Inside an aio task: tokio::time works, on the side runtime's timer.
//! aio::compat::tokio(async { tokio::time::sleep(std::time::Duration::from_millis(10)).await }).await;
//! # Ok(()) }
//! ```
//!
//! Make the future *inside* the wrapper, in an `async` block: only what
//! runs while the wrapper is polled sees the side runtime, and some calls
//! look for tokio as soon as they are made (`tokio::time::sleep(d)` itself
//! panics outside a runtime, before anything awaits it;
//! `compat::tokio(tokio::time::sleep(d))` is that mistake). An `async fn`'s
//! future (`pool.close()`, `client.get(url).send()`) does nothing until
//! polled and may be passed directly.
//!
//! How it works: one tokio runtime, current-thread, runs on a thread of
//! its own, started at the first use and shared by every loop of the
//! process ([async-compat]'s). The wrapped future itself is still polled
//! by the aio task, on the loop's thread (so it need not be `Send`); only
//! the reactor and the timers it registers with are tokio's, on the side
//! thread, which wakes the aio task when they fire. Tasks the crate spawns
//! (`tokio::spawn`: a connection's driver, a pool's reaper) run on the side
//! thread and must be `Send`, as tokio requires anyway.
//!
//! What it costs: each wake-up crosses threads (the side thread's reactor
//! wakes the loop), where an aio socket's readiness is seen by the loop
//! itself. aio-ecosystem's `compat_cost` example measures a TCP echo
//! round trip on tokio's socket this way beside aio's own socket and tokio
//! alone; the ecosystem guide gives the numbers. Use it for what has no other door, not for
//! bytes an aio stream could carry.
//!
//! If the thread already runs a tokio runtime (a loop started inside
//! `Runtime::block_on`, which aio does not do by itself), that one is used.
//!
//! [async-compat]: https://docs.rs/async-compat

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

pub use async_compat::{Compat, CompatExt};

/// Runs `fut` in the context of the shared tokio side runtime: its calls to
/// tokio's reactor, timers and `tokio::spawn` work from an aio task.
/// Equivalent to [`Compat::new`]`(fut)` (and `fut.compat()` with
/// [`CompatExt`]). Make `fut` inside the call (`tokio(async { ... })`):
/// see [the module docs](self) for why.
///
/// # Cancellation
/// Not an aio await point: a cancelled aio task waiting here is dropped,
/// and dropping the returned future drops `fut` (inside the tokio context,
/// so its sockets and timers deregister cleanly). Tasks it gave to
/// `tokio::spawn` go on, as they would under tokio.
///
/// # Examples
/// ```
/// # aio::run(async {
/// let t = std::time::Instant::now();
/// aio::compat::tokio(async { tokio::time::sleep(std::time::Duration::from_millis(5)).await }).await;
/// assert!(t.elapsed() >= std::time::Duration::from_millis(5));
/// # });
/// ```
pub fn tokio<F: Future>(fut: F) -> Compat<F> {
    Compat::new(fut)
}

/// The handle of the runtime [`tokio()`] runs futures on (the shared side
/// runtime, started if it was not): to `spawn` a `Send` future there, or
/// to give a crate that asks for a handle.
///
/// # Examples
/// ```
/// let h = aio::compat::handle();
/// let answer = std::thread::spawn(move || h.block_on(async { 42 })).join().unwrap();
/// assert_eq!(answer, 42);
/// ```
pub fn handle() -> ::tokio::runtime::Handle {
    let fut = pin!(Compat::new(async { ::tokio::runtime::Handle::current() }));
    // The inner future never waits: one poll, with a waker nobody needs.
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(h) => h,
        Poll::Pending => unreachable!("Handle::current does not wait"),
    }
}
