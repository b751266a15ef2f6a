//! The event loop: one per thread, as in asyncio. [`Loop`] is the
//! program's handle; the files below hold its parts, from the bottom up:
//! `exception` (what the loop reports), `queue` (the ready queue),
//! `shared` (the thread-safe half: injection and the park handshake),
//! `core` (the loop-thread state), `busy` (the borrow of the driver, and
//! the work that waits while it is busy), `turn` (one turn), `close`,
//! `builder`.
//!
//!
//! A turn of the loop: park in the driver (only when nothing is ready, or
//! every [`IO_INTERVAL`] polls so I/O is not starved), fire due timers,
//! take in what other threads sent, then run the ready queue as it stood at
//! the start of the turn — asyncio's `_run_once`, so callbacks and task
//! steps interleave exactly as they do in CPython.

pub(crate) mod builder;
pub(crate) mod busy;
mod close;
pub(crate) mod core;
pub(crate) mod exception;
pub(crate) mod metrics;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod shared;
mod turn;
mod wake;

use builder::Builder;

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use crate::callback::{CallbackCell, CallbackIn, Handle, TimerHandle};
use crate::clock::ns_to_secs;
use crate::context::CONTEXT;
use crate::contextvars::Context;
use crate::delay::{IntoDeadline, IntoDelay, InvalidDelay};
use crate::driver::Driver;
use crate::handle::{HeldConnection, LoopHandle};
use crate::task::{self, Task, TaskError};
use crate::timer::entry::Armed;
use core::Core;
use exception::{ExceptionContext, ExceptionHandler};
use metrics::LoopMetrics;
use queue::Callback;

/// An event loop: asyncio's `AbstractEventLoop`.
///
/// A `Loop` is a cheap, clonable handle (`!Send`: a loop belongs to its
/// thread); [`LoopHandle`] is the `Send + Sync` way in from other threads.
/// Most programs never touch it: [`run`](crate::run) and
/// [`Runner`](crate::Runner) create, run and close one.
///
/// The loop a [`Builder`] creates, and its clones, own it: when the last
/// of them is dropped, the loop is closed as [`close`](Loop::close) closes
/// it (its tasks cancelled and dropped, so the sockets they hold close).
/// Handles the loop gives out ([`get_running_loop`], a socket's owner) do
/// not keep it open: a task holding one would otherwise keep its own loop
/// alive forever.
///
/// # Examples
/// ```
/// let lp = aio_core::Loop::new();
/// let task = lp.create_task(async { 6 * 7 });
/// assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), 42);
/// lp.close();
/// ```
pub struct Loop {
    pub(crate) core: Rc<Core>,
    /// Whether this handle counts in `Core::owners`.
    pub(super) owner: bool,
}

impl Clone for Loop {
    fn clone(&self) -> Loop {
        if self.owner {
            self.core.owners.set(self.core.owners.get() + 1);
        }
        Loop {
            core: self.core.clone(),
            owner: self.owner,
        }
    }
}

impl fmt::Debug for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loop")
            .field("backend", &self.core.backend)
            .field("running", &self.is_running())
            .field("closed", &self.is_closed())
            .field("debug", &self.get_debug())
            .finish()
    }
}

impl Default for Loop {
    fn default() -> Self {
        Loop::new()
    }
}

impl Loop {
    /// A loop with aio-core's defaults (no I/O driver). Use the `aio`
    /// facade's `new_event_loop()` for a loop that can do I/O.
    pub fn new() -> Loop {
        Builder::new().build()
    }

    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_core_ptr(p: *const Core) -> Loop {
        // SAFETY: `p` comes from `Rc::as_ptr` of the loop's `Rc<Core>` (it
        // is what `Restore::core` installs), and the loop is alive while it is
        // installed; we add the strong count we are about to own.
        unsafe {
            Rc::increment_strong_count(p);
            Loop {
                core: Rc::from_raw(p),
                owner: false,
            }
        }
    }

    /// The loop's clock: monotonic seconds (asyncio's `loop.time()`); the
    /// virtual time when the clock is [paused](Builder::paused_clock).
    pub fn time(&self) -> f64 {
        ns_to_secs(self.core.clock.now())
    }

    /// The name of the driver the loop runs on: `"park"` (no I/O),
    /// `"poll"` or `"uring"`.
    pub fn backend(&self) -> &'static str {
        self.core.backend
    }

    /// Schedules `f` to run on the next turn of the loop, in a copy of the
    /// current [context](crate::contextvars) (asyncio's `call_soon`).
    ///
    /// On a closed loop, where asyncio raises `RuntimeError('Event loop is
    /// closed')`, `f` is dropped and the handle comes back
    /// [cancelled](Handle::cancelled) (said in debug mode).
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Handle {
        self.schedule_soon(CallbackCell::rc(f))
    }

    /// Queues `cb` for the next turn, unless the loop is closed.
    fn schedule_soon(&self, cb: Rc<dyn Callback>) -> Handle {
        if self.core.is_closed() {
            dropped_on_closed_loop(&self.core, &*cb);
        } else {
            self.core.call_soon_rc(cb.clone());
        }
        Handle { cb }
    }

    /// [`call_soon`](Loop::call_soon) in the context `ctx` itself
    /// (asyncio's `call_soon(cb, context=ctx)`): what `f` sets stays in
    /// `ctx`, seen by [`ctx.run`](crate::contextvars::Context::run) and
    /// the next callbacks given `ctx`.
    ///
    /// # Examples
    /// ```
    /// use aio_core::ContextVar;
    ///
    /// static V: ContextVar<u32> = ContextVar::new("v", 0);
    ///
    /// aio_core::run(async {
    ///     let ctx = aio_core::copy_context();
    ///     let lp = aio_core::get_running_loop();
    ///     lp.call_soon_in(&ctx, || {
    ///         V.set(7);
    ///     });
    ///     aio_core::sleep(0).await.unwrap();
    ///     assert_eq!(ctx.run(|| V.get()), 7);
    ///     assert_eq!(V.get(), 0);
    /// });
    /// ```
    pub fn call_soon_in(&self, ctx: &Context, f: impl FnOnce() + 'static) -> Handle {
        self.schedule_soon(CallbackIn::rc(ctx, f))
    }

    /// Schedules `f` to run after `delay`, in a copy of the current
    /// context. A negative delay is a deadline in the past, as in asyncio:
    /// `f` runs at the next turn, ordered by that deadline among the
    /// timers due then (`call_later(0, a)` then `call_later(-1, b)` runs
    /// `b` first), after the callbacks already scheduled with `call_soon`.
    ///
    /// On a closed loop `f` is dropped and the handle comes back cancelled,
    /// as [`call_soon`](Loop::call_soon)'s does (and `call_at`'s).
    ///
    /// # Errors
    /// [`InvalidDelay`] for a delay that is not a number (NaN); `f` is
    /// dropped unscheduled.
    pub fn call_later(&self, delay: impl IntoDelay, f: impl FnOnce() + 'static) -> Result<TimerHandle, InvalidDelay> {
        let when = delay.into_signed_delay()?.from(self.core.clock.now());
        Ok(self.call_at_ns(when, CallbackCell::rc(f)))
    }

    /// [`call_later`](Loop::call_later) in the context `ctx` itself
    /// (asyncio's `call_later(delay, cb, context=ctx)`).
    ///
    /// # Errors
    /// As [`call_later`](Loop::call_later).
    pub fn call_later_in(
        &self,
        delay: impl IntoDelay,
        ctx: &Context,
        f: impl FnOnce() + 'static,
    ) -> Result<TimerHandle, InvalidDelay> {
        let when = delay.into_signed_delay()?.from(self.core.clock.now());
        Ok(self.call_at_ns(when, CallbackIn::rc(ctx, f)))
    }

    /// Schedules `f` to run at `when` (seconds on the loop clock, or an
    /// `Instant`), in a copy of the current context. A time already past
    /// runs `f` at the next turn, ordered by `when` among the timers due
    /// then.
    ///
    /// # Errors
    /// [`InvalidDelay`] for a NaN `when`; `f` is dropped unscheduled.
    pub fn call_at(&self, when: impl IntoDeadline, f: impl FnOnce() + 'static) -> Result<TimerHandle, InvalidDelay> {
        Ok(self.call_at_ns(when.into_deadline_ns()?, CallbackCell::rc(f)))
    }

    /// [`call_at`](Loop::call_at) in the context `ctx` itself (asyncio's
    /// `call_at(when, cb, context=ctx)`).
    ///
    /// # Errors
    /// As [`call_at`](Loop::call_at).
    pub fn call_at_in(
        &self,
        when: impl IntoDeadline,
        ctx: &Context,
        f: impl FnOnce() + 'static,
    ) -> Result<TimerHandle, InvalidDelay> {
        Ok(self.call_at_ns(when.into_deadline_ns()?, CallbackIn::rc(ctx, f)))
    }

    fn call_at_ns(&self, when: u64, cb: Rc<dyn Callback>) -> TimerHandle {
        let timer = Armed::call(&self.core, when, cb.clone());
        if self.core.is_closed() {
            // As `call_soon` on a closed loop: nothing will ever fire it,
            // so it leaves the heap now (the loop is not running, which
            // `TimerHandle::cancel` needs).
            timer.disarm_on(&self.core);
            dropped_on_closed_loop(&self.core, &*cb);
        }
        TimerHandle { timer, cb, when }
    }

    /// Wraps `fut` in a task on this loop (asyncio's `loop.create_task`);
    /// see [`create_task`](crate::create_task). On a closed loop, where
    /// asyncio raises, the task has already ended, cancelled ("the event
    /// loop is closed"), and `fut` was dropped.
    pub fn create_task<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: task::Reportable,
    {
        task::spawn_reporting(&self.core, fut, self.core.eager_tasks.get())
    }

    /// A pending [`Future`](crate::Future) bound to this loop (asyncio's
    /// `loop.create_future()`); the loop need not be running.
    pub fn create_future<T: 'static>(&self) -> crate::Future<T> {
        crate::Future::bound_to(self)
    }

    /// Runs the loop until `fut` completes and returns its result. The
    /// future runs as a task, so it can be cancelled like one.
    ///
    /// Stopped ([`stop`](Loop::stop)) before `fut` completes, it returns
    /// `Err(TaskError::Cancelled)` ("the event loop was stopped before the
    /// future completed", asyncio's `RuntimeError`) and, as in asyncio,
    /// `fut`'s task stays pending on the loop: the next run goes on with
    /// it, and closing the loop cancels it.
    ///
    /// # Panics
    /// When the loop is closed or already running, or another loop runs on
    /// this thread.
    #[track_caller]
    pub fn run_until_complete<F>(&self, fut: F) -> Result<F::Output, TaskError>
    where
        F: Future + 'static,
    {
        let core = &*self.core;
        let run = core.enter_run();
        // Its result is read here: no report of an unseen failure needed,
        // so any output type will do.
        let mut task = task::spawn(core, fut, false, crate::task::raw::vtable::<F>());
        core.run_until(|| task.done());
        if task.done() && !core.stopping.get() {
            // asyncio stops the loop from the future's done callback, which
            // runs a turn later: that turn runs too (what the future's last
            // step made ready, a task it created, takes its step), without
            // waiting for anything.
            core.stopping.set(true);
            core.run_once(None);
        }
        drop(run);
        match task.result() {
            Some(r) => r,
            // asyncio raises `RuntimeError` and leaves the future's task
            // pending: a later run of the loop goes on with it, and closing
            // the loop cancels it. Its handle drops here; the task stays.
            None => Err(TaskError::Cancelled(crate::Cancelled::with_message(
                "the event loop was stopped before the future completed",
            ))),
        }
    }

    /// Runs the loop until [`stop`](Loop::stop) is called.
    ///
    /// # Panics
    /// As [`run_until_complete`](Loop::run_until_complete).
    #[track_caller]
    pub fn run_forever(&self) {
        let core = &*self.core;
        let _run = core.enter_run();
        core.run_until(|| false);
    }

    /// Makes a running loop return from `run_forever` (or
    /// `run_until_complete`) after the current turn. Called while the loop
    /// is not running, it stops the next run after its first turn, which
    /// looks at the driver without waiting (asyncio's pre-stopped loop).
    pub fn stop(&self) {
        self.core.stopping.set(true);
    }

    /// Whether the loop is running.
    pub fn is_running(&self) -> bool {
        self.core.running.get()
    }

    /// Whether the loop was closed.
    pub fn is_closed(&self) -> bool {
        self.core.closed.get()
    }

    /// Closes the loop: cancels the tasks still pending and lets them clean
    /// up (bounded by the shutdown timeout, after which they are dropped),
    /// shuts the `to_thread` pool down, and drops what is left. Closing
    /// twice is harmless.
    ///
    /// # Panics
    /// When the loop is running.
    #[track_caller]
    pub fn close(&self) {
        self.core.close();
    }

    /// A `Send + Sync` handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.core.shared.clone(),
        }
    }

    /// The loop's load: tasks, ready queue, busy fraction, connections,
    /// operations in flight (the same reading as
    /// [`LoopHandle::metrics`] from another thread).
    pub fn metrics(&self) -> LoopMetrics {
        self.handle().metrics()
    }

    /// Counts one connection in the loop's
    /// [`metrics`](LoopMetrics::connections) until the returned guard is
    /// dropped. aio-net's servers count each connection they serve;
    /// other code that holds long-lived peers may count them too, so load
    /// balancing sees them.
    pub fn hold_connection(&self) -> HeldConnection {
        HeldConnection::new(self.core.shared.clone())
    }

    /// Sets the function the loop calls whenever it has nothing ready to
    /// run and is about to sleep in its driver (`None` removes it): work
    /// it schedules (a task it creates) runs at once instead. A pool of
    /// loops takes movable work from busier siblings there. Closing the
    /// loop removes it. A panic in it is reported through the exception
    /// handler.
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let lp = aio_core::Loop::new();
    /// let idle = Rc::new(Cell::new(0));
    /// let seen = idle.clone();
    /// lp.on_idle(Some(move || seen.set(seen.get() + 1)));
    /// lp.run_until_complete(aio_core::sleep(0.001)).unwrap().unwrap();
    /// assert!(idle.get() >= 1); // before it slept for the timer
    /// lp.on_idle(None::<fn()>);
    /// ```
    pub fn on_idle(&self, hook: Option<impl Fn() + 'static>) {
        let hook = hook.map(|h| Rc::new(h) as Rc<dyn Fn()>);
        drop(self.core.idle.replace(hook));
    }

    /// Sets what happens to panics of tasks nobody awaits and of callbacks
    /// (default: [`default_exception_handler`](crate::default_exception_handler), one line on stderr).
    pub fn set_exception_handler(&self, handler: Option<impl Fn(&ExceptionContext) + 'static>) {
        *self.core.handler.borrow_mut() = handler.map(|h| Rc::new(h) as ExceptionHandler);
    }

    /// Reports `ctx` through the exception handler.
    pub fn call_exception_handler(&self, ctx: ExceptionContext) {
        self.core.report(ctx);
    }

    /// Turns debug mode on or off.
    pub fn set_debug(&self, on: bool) {
        self.core.debug.set(on);
    }

    /// Whether debug mode is on.
    pub fn get_debug(&self) -> bool {
        self.core.debug.get()
    }

    /// Turns the eager task factory on or off (see [`Builder::eager_tasks`]).
    pub fn set_eager_tasks(&self, on: bool) {
        self.core.eager_tasks.set(on);
    }

    /// Runs `f` with mutable access to the loop's driver, downcast to `D`.
    /// Returns `None` when the loop runs on another kind of driver. This is
    /// how aio-net reaches the operations of the I/O driver.
    pub fn with_driver<D: Driver, R>(&self, f: impl FnOnce(&mut D) -> R) -> Option<R> {
        let mut d = self.core.driver_mut();
        d.as_any().downcast_mut::<D>().map(f)
    }
}

/// The loop running on this thread (asyncio's `get_running_loop()`).
///
/// # Panics
/// When no loop runs on this thread.
#[track_caller]
pub fn get_running_loop() -> Loop {
    // No closure: the panic must carry the caller's location.
    match try_get_running_loop() {
        Some(lp) => lp,
        None => crate::context::no_running_loop(),
    }
}

/// The loop running on this thread, if any.
pub fn try_get_running_loop() -> Option<Loop> {
    let p = CONTEXT.with(|c| c.core.get());
    (!p.is_null()).then(|| Loop::from_core_ptr(p))
}

/// A callback given to a closed loop: dropped (asyncio raises
/// `RuntimeError('Event loop is closed')`), which debug mode says.
fn dropped_on_closed_loop(core: &Core, cb: &dyn Callback) {
    cb.cancel();
    if core.debug.get() {
        exception::debug_warning(format_args!(
            "a callback was scheduled on a closed event loop; it is dropped"
        ));
    }
}
