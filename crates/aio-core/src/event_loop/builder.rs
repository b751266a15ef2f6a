//! [`Builder`]: a loop's driver, clock, debug mode, eager tasks, thread
//! pool and shutdown timeout.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::Loop;
use super::core::Core;
use super::queue::RunQueue;
use super::registry::Registry;
use super::shared::Shared;
use crate::clock::Clock;
use crate::delay::delay_ns;
use crate::driver::{Driver, ParkDriver};
use crate::loom::sync::atomic::Ordering;
use crate::task::cells::CellCache;
use crate::timer::heap::{Fired, Timers};

/// A [`Builder`]'s settings without its driver ([`Builder::settings`]):
/// `Send` and `Clone`, to build loops alike on several threads.
#[derive(Debug, Clone)]
pub struct Settings {
    paused_clock: bool,
    debug: Option<bool>,
    eager_tasks: bool,
    slow_callback: Duration,
    max_threads: Option<usize>,
    thread_keep_alive: Duration,
    shutdown_timeout: Duration,
    spin_before_park: Duration,
}

/// Configures a [`Loop`]: its driver, debug mode, eager tasks, thread pool
/// and shutdown timeout.
///
/// aio-core's builder uses [`ParkDriver`] (no I/O) unless given a driver;
/// the `aio` facade's `Builder` picks the I/O backend.
pub struct Builder {
    pub(super) driver: Option<Box<dyn Driver>>,
    settings: Settings,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("driver", &self.driver.as_ref().map(|d| d.name()))
            .field("debug", &self.settings.debug)
            .field("eager_tasks", &self.settings.eager_tasks)
            .field("paused_clock", &self.settings.paused_clock)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder with asyncio's defaults.
    pub fn new() -> Builder {
        Builder {
            driver: None,
            settings: Settings {
                paused_clock: false,
                debug: None,
                eager_tasks: false,
                slow_callback: Duration::from_millis(100),
                max_threads: None,
                thread_keep_alive: Duration::from_secs(10),
                shutdown_timeout: Duration::from_secs(30),
                spin_before_park: Duration::ZERO,
            },
        }
    }

    /// The driver the loop parks in (default: [`ParkDriver`], no I/O).
    pub fn driver(mut self, driver: impl Driver) -> Builder {
        self.driver = Some(Box::new(driver));
        self
    }

    /// Like [`driver`](Builder::driver), for a boxed driver.
    pub fn boxed_driver(mut self, driver: Box<dyn Driver>) -> Builder {
        self.driver = Some(driver);
        self
    }

    /// Debug mode (default: on when the environment has `AIO_DEBUG=1`):
    /// warns when one step holds the loop longer than the slow-callback
    /// duration, and lists tasks still pending when the loop closes (as
    /// `log` records at `warn`, or on stderr when no logger takes them),
    /// and logs each task's creation and cancellation at `debug`.
    pub fn debug(mut self, on: bool) -> Builder {
        self.settings.debug = Some(on);
        self
    }

    /// The threshold of the slow-step warning (default 100 ms).
    pub fn slow_callback_duration(mut self, d: Duration) -> Builder {
        self.settings.slow_callback = d;
        self
    }

    /// asyncio 3.12's eager task factory: `create_task` runs the new task's
    /// first step at once, so a task that finishes without waiting never
    /// touches the ready queue.
    pub fn eager_tasks(mut self, on: bool) -> Builder {
        self.settings.eager_tasks = on;
        self
    }

    /// Starts the loop with a paused clock, for tests (tokio's
    /// `start_paused`): time stands still while tasks run and jumps to the
    /// next timer when every task waits and the driver has nothing ready,
    /// so a 30 s timeout resolves in microseconds, deterministically.
    /// [`time::advance`](crate::time::advance) moves it explicitly. See
    /// [`time`](crate::time#the-paused-test-clock).
    ///
    /// # Examples
    /// ```
    /// let lp = aio_core::Builder::new().paused_clock().build();
    /// let t0 = std::time::Instant::now();
    /// lp.run_until_complete(aio_core::sleep(3600)).unwrap().unwrap();
    /// assert!(t0.elapsed().as_secs() < 60); // an hour of loop time, at once
    /// ```
    pub fn paused_clock(mut self) -> Builder {
        self.settings.paused_clock = true;
        self
    }

    /// Upper bound of `to_thread`'s pool (default: asyncio's
    /// `min(32, cpus + 4)`).
    pub fn max_threads(mut self, n: usize) -> Builder {
        self.settings.max_threads = Some(n.max(1));
        self
    }

    /// How long an idle pool thread waits for work before exiting
    /// (default 10 s).
    pub fn thread_keep_alive(mut self, d: Duration) -> Builder {
        self.settings.thread_keep_alive = d;
        self
    }

    /// How long closing the loop lets cancelled tasks (and pool threads)
    /// finish before it drops them (default 30 s). Pool threads still busy
    /// then are left to end on their own, with a warning (asyncio's
    /// `shutdown_default_executor` timeout).
    pub fn shutdown_timeout(mut self, d: Duration) -> Builder {
        self.settings.shutdown_timeout = d;
        self
    }

    /// How long the loop busy-polls its driver, once it runs out of work,
    /// before it goes to sleep in it (default zero: it sleeps at once, as
    /// asyncio's and tokio's loops do; glommio's `spin_before_park`).
    ///
    /// Work that arrives within the window (I/O, a wake-up from another
    /// thread) is taken without the thread sleeping and being woken, which
    /// costs a round trip through the scheduler: tens of microseconds on a
    /// virtual machine, more than a small request's whole handling. The
    /// price is CPU: a loop whose work comes in sparse bursts spends up to
    /// `d` spinning after each. Between its looks at the driver the loop
    /// yields its CPU (`sched_yield`), so a thread ready to run there goes
    /// first. Worth it where each loop has a core of its own and latency
    /// matters. Timers still fire on time (the spin ends at the next one),
    /// and a loop with a paused clock never spins.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let lp = aio_core::Builder::new()
    ///     .spin_before_park(Duration::from_micros(50))
    ///     .build();
    /// lp.run_until_complete(aio_core::sleep(0.001)).unwrap().unwrap();
    /// ```
    pub fn spin_before_park(mut self, d: Duration) -> Builder {
        self.settings.spin_before_park = d;
        self
    }

    /// The settings without the driver (a driver belongs to one loop), as
    /// a `Send` value: what a pool of loops sends to each of its threads,
    /// which makes its loop with [`Builder::from_settings`].
    pub fn settings(&self) -> Settings {
        self.settings.clone()
    }

    /// A builder with `settings` and no driver yet.
    pub fn from_settings(settings: Settings) -> Builder {
        Builder { driver: None, settings }
    }

    /// Creates the loop.
    pub fn build(self) -> Loop {
        let driver = self.driver.unwrap_or_else(|| Box::new(ParkDriver::new()));
        let debug = self
            .settings
            .debug
            .unwrap_or_else(|| std::env::var("AIO_DEBUG").is_ok_and(|v| !v.is_empty() && v != "0"));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shared = Arc::new(Shared::new(driver.unparker()));
        let core = Rc::new(Core {
            shared,
            queue: RunQueue::with_capacity(256),
            timers: RefCell::new(Timers::new()),
            tasks: RefCell::new(Registry::default()),
            cells: CellCache::default(),
            banked_refs: Cell::new(0),
            backend: driver.name(),
            driver: RefCell::new(driver),
            deferred: RefCell::new(Vec::new()),
            has_deferred: Cell::new(false),
            clock: Clock::new(self.settings.paused_clock),
            now: Cell::new(0),
            now_fresh: Cell::new(false),
            next_task_id: Cell::new(0),
            shutdown_ids: Cell::new(0),
            polls_since_io: Cell::new(0),
            fired: RefCell::new(Fired::default()),
            stopping: Cell::new(false),
            running: Cell::new(false),
            closed: Cell::new(false),
            debug: Cell::new(debug),
            slow_callback: Cell::new(self.settings.slow_callback),
            eager_tasks: Cell::new(self.settings.eager_tasks),
            handler: RefCell::new(None),
            owners: Cell::new(1),
            pool: RefCell::new(None),
            max_threads: self.settings.max_threads.unwrap_or_else(|| (cpus + 4).min(32)),
            thread_keep_alive: self.settings.thread_keep_alive,
            shutdown_timeout: self.settings.shutdown_timeout,
            spin_ns: delay_ns(self.settings.spin_before_park),
            stats: Default::default(),
            idle: RefCell::new(None),
        });
        core.shared
            .core_addr
            .store(Rc::as_ptr(&core) as usize, Ordering::Relaxed);
        Loop { core, owner: true }
    }
}
