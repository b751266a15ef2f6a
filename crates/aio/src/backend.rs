//! Picking the backend: `Builder`, `run`, `Runner`, `new_event_loop`.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use aio_core::driver::Driver;
use aio_core::{Loop, TaskError};

/// Which driver a loop parks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// io_uring when the `uring` feature is on and the kernel allows it,
    /// else poll (or `AIO_BACKEND` from the environment); with neither
    /// feature, `None` (no I/O).
    #[default]
    Auto,
    /// epoll/kqueue, through the `polling` crate (aio-poll).
    Poll,
    /// io_uring (aio-uring; the `uring` feature, Linux only).
    Uring,
    /// No I/O at all: timers, tasks, sync and queues only.
    None,
}

impl Backend {
    /// The backend named by `AIO_BACKEND` (`poll`, `uring` or `none`), if set.
    pub fn from_env() -> io::Result<Option<Backend>> {
        match std::env::var("AIO_BACKEND") {
            Err(_) => Ok(None),
            Ok(v) => match v.trim() {
                "" | "auto" => Ok(None),
                "poll" => Ok(Some(Backend::Poll)),
                "uring" => Ok(Some(Backend::Uring)),
                "none" => Ok(Some(Backend::None)),
                other => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("AIO_BACKEND={other:?}: expected poll, uring or none"),
                )),
            },
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Poll => "poll",
            Backend::Uring => "uring",
            Backend::None => "none",
        })
    }
}

#[cfg(feature = "poll")]
fn poll_driver() -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(aio_poll::PollDriver::new()?))
}

#[cfg(not(feature = "poll"))]
fn poll_driver() -> io::Result<Box<dyn Driver>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "aio was built without the `poll` feature",
    ))
}

#[cfg(feature = "uring")]
fn uring_driver() -> io::Result<Box<dyn Driver>> {
    Ok(Box::new(aio_uring::UringDriver::new()?))
}

#[cfg(not(feature = "uring"))]
fn uring_driver() -> io::Result<Box<dyn Driver>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "aio was built without the `uring` feature",
    ))
}

/// Creates the driver for `backend` (`Auto` resolved as documented).
pub fn driver_for(backend: Backend) -> io::Result<Box<dyn Driver>> {
    let backend = match backend {
        Backend::Auto => Backend::from_env()?.unwrap_or(Backend::Auto),
        b => b,
    };
    match backend {
        Backend::Poll => poll_driver(),
        Backend::Uring => uring_driver().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("the io_uring backend was requested but cannot run: {e}"),
            )
        }),
        Backend::None => Ok(Box::new(aio_core::driver::ParkDriver::new())),
        Backend::Auto if cfg!(feature = "uring") => match uring_driver() {
            Ok(d) => Ok(d),
            Err(e) => {
                // ENOSYS (no io_uring), EPERM (seccomp, io_uring_disabled),
                // ENOMEM (memlock), a missing opcode: fall back, never fail.
                log::debug!("aio: io_uring unavailable ({e}); using the poll backend");
                poll_driver()
            }
        },
        Backend::Auto if cfg!(feature = "poll") => poll_driver(),
        // Built with no I/O backend: a loop for tasks, timers, sync and
        // queues, as aio-core's.
        Backend::Auto => Ok(Box::new(aio_core::driver::ParkDriver::new())),
    }
}

/// Configures and creates a [`Loop`]: the backend, plus everything
/// [`aio_core::Builder`] offers (debug mode, eager tasks, thread pool,
/// shutdown timeout).
///
/// # Examples
/// ```
/// let lp = aio::Builder::new().debug(false).build().unwrap(); // the default backend
/// assert!(["uring", "poll", "park"].contains(&lp.backend()));
/// lp.close();
/// let lp = aio::Builder::new().backend(aio::Backend::None).build().unwrap();
/// assert_eq!(lp.backend(), "park"); // a loop without I/O
/// lp.close();
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    core: aio_core::Builder,
    backend: Backend,
}

impl Clone for Builder {
    fn clone(&self) -> Builder {
        Builder {
            core: aio_core::Builder::from_settings(self.core.settings()),
            backend: self.backend,
        }
    }
}

/// A [`Builder`] as a `Send` value, to build loops alike on other threads.
#[derive(Debug, Clone)]
pub(crate) struct SendBuilder {
    core: aio_core::Settings,
    backend: Backend,
}

impl SendBuilder {
    pub(crate) fn new(b: &Builder) -> SendBuilder {
        SendBuilder {
            core: b.core.settings(),
            backend: b.backend,
        }
    }

    pub(crate) fn builder(self) -> Builder {
        Builder {
            core: aio_core::Builder::from_settings(self.core),
            backend: self.backend,
        }
    }
}

impl Builder {
    /// asyncio's defaults, the backend from `Auto`.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Forces a backend; forcing one that cannot run is an error from `build`.
    pub fn backend(mut self, b: Backend) -> Builder {
        self.backend = b;
        self
    }

    /// Debug mode (see [`aio_core::Builder::debug`]).
    pub fn debug(mut self, on: bool) -> Builder {
        self.core = self.core.debug(on);
        self
    }

    /// The slow-step warning threshold in debug mode.
    pub fn slow_callback_duration(mut self, d: Duration) -> Builder {
        self.core = self.core.slow_callback_duration(d);
        self
    }

    /// Starts the loop with a paused clock, for tests (see
    /// [`aio_core::Builder::paused_clock`] and [`aio_core::time`]): time
    /// jumps to the next timer whenever every task waits and the driver
    /// has no I/O ready.
    ///
    /// # Examples
    /// ```
    /// let lp = aio::Builder::new().paused_clock().build().unwrap();
    /// let t0 = lp.time();
    /// let r = lp.run_until_complete(aio::wait_for(aio::sleep(3600), 30)).unwrap();
    /// assert_eq!(r, Err(aio::TimeoutError));
    /// assert!((lp.time() - t0 - 30.0).abs() < 1e-6);
    /// ```
    pub fn paused_clock(mut self) -> Builder {
        self.core = self.core.paused_clock();
        self
    }

    /// asyncio 3.12's eager task factory.
    pub fn eager_tasks(mut self, on: bool) -> Builder {
        self.core = self.core.eager_tasks(on);
        self
    }

    /// How long the loop busy-polls its driver before it sleeps (see
    /// [`aio_core::Builder::spin_before_park`]; default zero).
    pub fn spin_before_park(mut self, d: Duration) -> Builder {
        self.core = self.core.spin_before_park(d);
        self
    }

    /// The `to_thread` pool's bound.
    pub fn max_threads(mut self, n: usize) -> Builder {
        self.core = self.core.max_threads(n);
        self
    }

    /// How long idle pool threads wait before exiting.
    pub fn thread_keep_alive(mut self, d: Duration) -> Builder {
        self.core = self.core.thread_keep_alive(d);
        self
    }

    /// How long closing lets cancelled tasks finish.
    pub fn shutdown_timeout(mut self, d: Duration) -> Builder {
        self.core = self.core.shutdown_timeout(d);
        self
    }

    /// Starts a [`LoopPool`](crate::LoopPool) of `n` loops, each built
    /// from a copy of this builder (see
    /// [`LoopPool::builder`](crate::LoopPool::builder) for the pool's own
    /// settings).
    ///
    /// # Errors
    /// As [`PoolBuilder::build`](crate::PoolBuilder::build).
    pub fn build_pool(self, n: usize) -> io::Result<crate::LoopPool> {
        crate::LoopPool::builder(n).loop_builder(self).build()
    }

    /// Creates the loop.
    pub fn build(self) -> io::Result<Loop> {
        let driver = driver_for(self.backend)?;
        Ok(self.core.boxed_driver(driver).build())
    }
}

/// A new loop with the default backend: asyncio's `new_event_loop()`.
pub fn new_event_loop() -> io::Result<Loop> {
    Builder::new().build()
}

/// Runs `fut` on a new loop (default backend) until it completes, closes
/// the loop, and returns the output: asyncio's `asyncio.run`.
///
/// # Panics
/// If the backend cannot start (`AIO_BACKEND` names one that cannot run),
/// if `fut` panics (the panic continues here) or is cancelled, or if a loop
/// already runs on this thread.
///
/// # Examples
/// ```
/// let v = aio::run(async {
///     aio::sleep(0.001).await?;
///     Ok::<_, aio::Cancelled>(42)
/// });
/// assert_eq!(v.unwrap(), 42);
/// ```
#[track_caller]
pub fn run<F>(fut: F) -> F::Output
where
    F: Future + 'static,
{
    Runner::new().run(fut)
}

/// What `#[aio::main]` and `#[aio::test]` expand to.
#[doc(hidden)]
#[track_caller]
pub fn macro_run<F>(start_paused: bool, fut: F) -> F::Output
where
    F: Future + 'static,
{
    if !start_paused {
        return run(fut);
    }
    match Builder::new().paused_clock().build() {
        Ok(lp) => Runner::with_loop(lp).run(fut),
        Err(e) => panic!("aio: cannot start the event loop: {e}"),
    }
}

/// Runs several top-level futures on one loop, then closes it: asyncio's
/// `asyncio.Runner`, on the default backend.
#[derive(Debug)]
pub struct Runner {
    inner: aio_core::Runner,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Runner {
    /// A runner on a new loop with the default backend.
    ///
    /// # Panics
    /// If the backend cannot start; use [`Runner::with_loop`] with a
    /// [`Builder`] to handle that error.
    #[track_caller]
    pub fn new() -> Runner {
        match new_event_loop() {
            Ok(lp) => Runner::with_loop(lp),
            Err(e) => panic!("aio: cannot start the event loop: {e}"),
        }
    }

    /// A runner on `lp` (closed when the runner is).
    pub fn with_loop(lp: Loop) -> Runner {
        Runner {
            inner: aio_core::Runner::with_loop(lp),
        }
    }

    /// Runs `fut` to completion as a task and returns its output.
    ///
    /// # Panics
    /// As [`run`].
    #[track_caller]
    pub fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + 'static,
    {
        self.inner.run(fut)
    }

    /// Like [`run`](Runner::run), with cancellation and panics as errors.
    pub fn try_run<F>(&self, fut: F) -> Result<F::Output, TaskError>
    where
        F: Future + 'static,
    {
        self.inner.try_run(fut)
    }

    /// The runner's loop.
    pub fn get_loop(&self) -> &Loop {
        self.inner.get_loop()
    }

    /// Closes the loop.
    pub fn close(self) {
        self.inner.close();
    }
}

/// Runs one loop per thread, thread-per-core: `n` threads, each running
/// `make(i)` on its own loop (default backend) until it completes, and
/// returns their outputs in order: a [`LoopPool`](crate::LoopPool) of `n`
/// loops, [`run`](crate::LoopPool::run), then shut down (tasks still
/// running are cancelled). Tasks stay on the loop that created them.
/// Listeners bound with `SO_REUSEPORT` (see `TcpSocket::set_reuseport`)
/// let each loop accept its own connections; a pool's
/// [`start_server`](crate::LoopPool::start_server) also spreads them by
/// load.
///
/// # Panics
/// If the loops cannot start, or if a loop's future panics (the panic
/// continues here once every loop has finished).
///
/// # Examples
/// ```
/// let ids = aio::run_per_core(2, |i| async move {
///     aio::sleep(0.001).await?;
///     Ok::<_, aio::Cancelled>(i * 10)
/// });
/// assert_eq!(ids.into_iter().collect::<Result<Vec<_>, _>>().unwrap(), [0, 10]);
/// ```
#[track_caller]
pub fn run_per_core<M, F>(n: usize, make: M) -> Vec<F::Output>
where
    M: Fn(usize) -> F + Send + Sync + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let pool = match crate::LoopPool::new(n) {
        Ok(p) => p,
        Err(e) => panic!("aio: cannot start the loops: {e}"),
    };
    let out = pool.try_run(make);
    pool.shutdown(Duration::ZERO);
    let mut values = Vec::with_capacity(out.len());
    for r in out {
        match r {
            Ok(v) => values.push(v),
            Err(TaskError::Panicked(p)) => p.resume(),
            Err(e) => panic!("aio: a loop's future did not complete: {e}"),
        }
    }
    values
}
