//! The event loop: one per thread, as in asyncio.
//!
//! A turn of the loop: park in the driver (only when nothing is ready, or
//! every [`IO_INTERVAL`] polls so I/O is not starved), fire due timers,
//! take in what other threads sent, then run the ready queue as it stood at
//! the start of the turn — asyncio's `_run_once`, so callbacks and task
//! steps interleave exactly as they do in CPython.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use concurrent_queue::ConcurrentQueue;

use crate::callback::{Callback, CallbackCell, CallbackIn, Handle, TimerHandle};
use crate::context::{CONTEXT, CoreGuard};
use crate::contextvars::Context;
use crate::driver::{Driver, ParkDriver, Unpark};
use crate::handle::LoopHandle;
use crate::loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence};
use crate::task::raw::{self, TaskPtr, release};
use crate::task::{self, Panic, Task, TaskError, TaskRef};
use crate::thread::ThreadPool;
use crate::time::{Clock, IntoDeadline, IntoDelay, InvalidDelay, delay_ns, ns_to_secs, real_now_ns};
use crate::timer::{Fired, Timers};

/// How many task polls may run between two looks at the driver while tasks
/// keep the ready queue busy (tokio uses 61 too).
pub(crate) const IO_INTERVAL: u32 = 61;

const RUNNING: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// Something another thread sent to the loop.
pub(crate) enum Remote {
    /// A task woken from another thread (covered by its alive reference).
    Wake(TaskPtr),
    /// `call_soon_threadsafe`.
    Call(Box<dyn FnOnce() + Send>),
    /// A cancel request for a task, with a reference to release.
    Cancel(TaskPtr, Option<Arc<String>>),
}

/// The thread-safe half of a loop, shared with wakers and `LoopHandle`s.
pub(crate) struct Shared {
    injector: ConcurrentQueue<Remote>,
    park_state: AtomicU8,
    unparker: Arc<dyn Unpark>,
    /// Address of the `Core`, compared (never dereferenced) to tell a wake
    /// on the loop's own thread from a remote one.
    core_addr: AtomicUsize,
    closed: AtomicBool,
}

/// `Shared::core_addr` before the loop's core exists: neither a core's
/// address nor null (no loop running on a thread).
const NO_CORE: usize = usize::MAX;

impl Shared {
    /// The thread-safe half of a loop parking in a driver unparked by
    /// `unparker`; [`Builder::build`] then records its core's address.
    pub(crate) fn new(unparker: Arc<dyn Unpark>) -> Shared {
        Shared {
            injector: ConcurrentQueue::unbounded(),
            park_state: AtomicU8::new(RUNNING),
            unparker,
            core_addr: AtomicUsize::new(NO_CORE),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues a woken task: locally when on the loop thread while it runs,
    /// through the injection queue otherwise.
    #[inline]
    pub(crate) fn schedule(&self, task: TaskPtr) {
        let core = CONTEXT.with(|c| c.core.get());
        if core as usize == self.core_addr.load(Ordering::Relaxed) {
            // SAFETY: `core` is the running loop of this thread (set by a
            // live `CoreGuard`), and it is the loop owning this task.
            unsafe { (*core).queue.push(Runnable::Task(task)) };
        } else {
            self.inject(Remote::Wake(task));
        }
    }

    /// Sends `r` to the loop and wakes it if it is parked. A loop that
    /// closed meanwhile never takes it: it is discarded here (dropping a
    /// submitted call resolves its `ConcurrentFuture` as cancelled).
    pub(crate) fn inject(&self, r: Remote) {
        if self.injector.push(r).is_err() {
            unreachable!("the injection queue is unbounded and never closed");
        }
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            // `close` set the flag and then drained; one of the two drains
            // sees what was pushed (both sides fence between their steps).
            self.discard_injected();
            return;
        }
        if self
            .park_state
            .compare_exchange(PARKED, NOTIFIED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.unparker.unpark();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Parks the loop thread in `driver` (at most `timeout`) unless
    /// something was sent meanwhile. The other half of [`inject`]: the
    /// loop announces `PARKED` and then looks at the queue, a sender
    /// pushes and then looks at the state, each side fencing between its
    /// two steps, so at least one of them sees the other — the loop does
    /// not sleep, or the sender unparks it.
    ///
    /// [`inject`]: Shared::inject
    pub(crate) fn park(&self, driver: &mut dyn Driver, mut timeout: Option<Duration>) -> io::Result<()> {
        if timeout != Some(Duration::ZERO) {
            self.park_state.store(PARKED, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.has_remote() {
                timeout = Some(Duration::ZERO);
            }
        }
        let res = driver.park(timeout);
        self.park_state.store(RUNNING, Ordering::SeqCst);
        res
    }

    /// The next thing another thread sent (loop thread).
    pub(crate) fn take_remote(&self) -> Option<Remote> {
        self.injector.pop().ok()
    }

    /// Whether another thread sent something not taken yet.
    pub(crate) fn has_remote(&self) -> bool {
        !self.injector.is_empty()
    }

    /// Marks the loop closed and drops what other threads sent since its
    /// last turn; what they send from now on they drop themselves (see
    /// [`inject`](Shared::inject)).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.discard_injected();
    }

    /// Drops everything in the injection queue, on any thread, once the
    /// loop is closed (every task is complete by then).
    fn discard_injected(&self) {
        while let Ok(r) = self.injector.pop() {
            match r {
                Remote::Wake(t) => unqueue(t),
                // SAFETY: a cancel request carries one reference of its own.
                Remote::Cancel(t, _) => unsafe { release(t.0) },
                Remote::Call(f) => drop(f),
            }
        }
    }

    pub(crate) fn wake(&self) {
        self.unparker.unpark();
    }

    /// The address of the owning `Core`, for identity comparisons.
    pub(crate) fn core_addr(&self) -> *const () {
        self.core_addr.load(Ordering::Relaxed) as *const ()
    }

    /// The owning loop's core.
    ///
    /// # Safety
    /// Loop thread only, and only while the loop is alive — which holds for
    /// any task that is not complete, since closing a loop completes them all.
    pub(crate) unsafe fn core(&self) -> &Core {
        // SAFETY: guaranteed by the caller.
        unsafe { &*(self.core_addr() as *const Core) }
    }
}

/// A queue entry of a task dropped without running it (the loop closed):
/// the entry covered the task's alive reference (see `schedule`), which
/// goes once the task is complete — and by then only its header is
/// freed, so any thread may do it.
fn unqueue(t: TaskPtr) {
    // SAFETY: the queue entry holds the alive reference.
    unsafe { raw::dequeue(t.0) };
}

pub(crate) enum Runnable {
    Task(TaskPtr),
    Call(Rc<dyn Callback>),
}

/// The ready queue. Accessed only in short, non-reentrant calls (no user
/// code runs while it is borrowed), so an `UnsafeCell` is enough.
pub(crate) struct RunQueue {
    q: UnsafeCell<VecDeque<Runnable>>,
}

impl RunQueue {
    #[inline]
    pub(crate) fn push(&self, r: Runnable) {
        // SAFETY: no reference into the queue outlives these methods, and
        // the loop thread is the only one calling them.
        unsafe { (*self.q.get()).push_back(r) }
    }
    #[inline]
    fn pop(&self) -> Option<Runnable> {
        // SAFETY: as `push`.
        unsafe { (*self.q.get()).pop_front() }
    }
    #[inline]
    fn len(&self) -> usize {
        // SAFETY: as `push`.
        unsafe { (*self.q.get()).len() }
    }
}

/// What a loop reports to its exception handler: asyncio's context dict.
#[derive(Debug, Default)]
pub struct ExceptionContext {
    /// What happened.
    pub message: String,
    /// The name of the task concerned, if any.
    pub task: Option<String>,
    /// The panic, when one caused the report.
    pub panic: Option<Panic>,
    /// The error, when a task's output that nobody read was one (its
    /// `Debug`, see [`TaskOutput`](crate::TaskOutput)).
    pub error: Option<String>,
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(t) = &self.task {
            write!(f, " (task {t:?})")?;
        }
        if let Some(p) = &self.panic {
            write!(f, ": {p}")?;
        }
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

type ExceptionHandler = Rc<dyn Fn(&ExceptionContext)>;

/// A loop's identity as a plain number (its core's address), for futures
/// that must stay `Send` while remembering which loop armed their timer.
pub(crate) fn core_id(core: &Core) -> usize {
    core as *const Core as usize
}

/// The loop-thread state.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) queue: RunQueue,
    pub(crate) timers: RefCell<Timers>,
    /// Every task not yet swept out, each with a reference.
    pub(crate) tasks: RefCell<Vec<TaskPtr>>,
    live_tasks: Cell<usize>,
    driver: RefCell<Box<dyn Driver>>,
    backend: &'static str,
    /// The real clock, or the paused (virtual) one of a test.
    pub(crate) clock: Clock,
    now: Cell<u64>,
    /// `now` was read during this turn.
    now_fresh: Cell<bool>,
    next_task_id: Cell<u64>,
    polls_since_io: Cell<u32>,
    fired: RefCell<Fired>,
    stopping: Cell<bool>,
    running: Cell<bool>,
    closed: Cell<bool>,
    pub(crate) debug: Cell<bool>,
    slow_callback: Cell<Duration>,
    pub(crate) eager_tasks: Cell<bool>,
    handler: RefCell<Option<ExceptionHandler>>,
    /// Live owning `Loop` handles (see [`Loop`]): the last one closes the loop.
    owners: Cell<usize>,
    pool: RefCell<Option<Arc<ThreadPool>>>,
    max_threads: usize,
    thread_keep_alive: Duration,
    shutdown_timeout: Duration,
}

impl Core {
    /// The loop clock of the current turn, in nanoseconds: read at most
    /// once per turn, when a timer first needs it. Timers started during a
    /// turn count from it, as libuv does, so timers set together fire
    /// together.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        if !self.now_fresh.get() {
            self.now.set(self.clock.now());
            self.now_fresh.set(true);
        }
        self.now.get()
    }

    /// Moves the paused clock forward by `by` nanoseconds and fires what is
    /// due ([`crate::time::advance`]).
    #[track_caller]
    pub(crate) fn advance_clock(&self, by: u64) {
        let Some(now) = self.clock.paused_now() else {
            panic!("aio::time::advance needs a paused clock (Builder::paused_clock or aio::time::pause)");
        };
        self.clock.jump_to(now.saturating_add(by));
        self.now_fresh.set(false);
        if !self.timers.borrow().is_empty() {
            self.fire_timers();
        }
    }

    pub(crate) fn next_task_id(&self) -> u64 {
        let id = self.next_task_id.get() + 1;
        self.next_task_id.set(id);
        id
    }

    /// Adds a new task to the registry (which holds a reference to it).
    ///
    /// The registry only appends: completing a task does not touch it (a
    /// write at a random slot per task was a tenth of a 100k-timer profile);
    /// finished tasks are swept out, in allocation order, once they
    /// outnumber the live ones.
    pub(crate) fn register_task(&self, t: TaskPtr) {
        crate::task::raw::add_ref(t.header());
        self.live_tasks.set(self.live_tasks.get() + 1);
        let mut tasks = self.tasks.borrow_mut();
        tasks.push(t);
        if tasks.len() > 2 * self.live_tasks.get() + 1024 {
            let mut done = Vec::new();
            tasks.retain(|t| {
                if t.header().is_complete() {
                    done.push(t.0);
                    false
                } else {
                    true
                }
            });
            drop(tasks);
            for p in done {
                // SAFETY: the registry's reference, given up here.
                unsafe { crate::task::raw::release(p) };
            }
        }
    }

    /// A task finished (its registry entry goes at the next sweep).
    pub(crate) fn unregister_task(&self) {
        self.live_tasks.set(self.live_tasks.get() - 1);
    }

    /// Snapshot of the live tasks (asyncio's `all_tasks`).
    pub(crate) fn all_tasks(&self) -> Vec<TaskRef> {
        self.tasks
            .borrow()
            .iter()
            .filter(|t| !t.header().is_complete())
            .map(|t| TaskRef::from_ptr(t.0))
            .collect()
    }

    /// Gives up the registry's references (loop close).
    fn clear_registry(&self) {
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for t in tasks {
            // SAFETY: the registry's reference, given up here.
            unsafe { crate::task::raw::release(t.0) };
        }
    }

    pub(crate) fn call_soon_rc(&self, cb: Rc<dyn Callback>) {
        self.queue.push(Runnable::Call(cb));
    }

    pub(crate) fn report(&self, ctx: ExceptionContext) {
        let handler = self.handler.borrow().clone();
        match handler {
            Some(h) => {
                if catch_unwind(AssertUnwindSafe(|| h(&ctx))).is_err() {
                    eprintln!("aio: the exception handler panicked while reporting: {ctx}");
                }
            }
            None => default_exception_handler(&ctx),
        }
    }

    pub(crate) fn thread_pool(&self) -> Arc<ThreadPool> {
        self.pool
            .borrow_mut()
            .get_or_insert_with(|| Arc::new(ThreadPool::new(self.max_threads, self.thread_keep_alive)))
            .clone()
    }

    pub(crate) fn driver_mut(&self) -> std::cell::RefMut<'_, Box<dyn Driver>> {
        self.driver.borrow_mut()
    }

    pub(crate) fn driver_try_mut(&self) -> Result<std::cell::RefMut<'_, Box<dyn Driver>>, std::cell::BorrowMutError> {
        self.driver.try_borrow_mut()
    }

    fn park(&self, timeout: Option<Duration>) {
        let res = self.shared.park(&mut **self.driver.borrow_mut(), timeout);
        if let Err(e) = res {
            self.report(ExceptionContext {
                message: format!("the {} driver failed to park: {e}", self.backend),
                task: None,
                panic: None,
                error: None,
            });
        }
    }

    /// Parks a loop whose clock is paused, with nothing ready: looks at the
    /// driver without blocking, and only if that brought nothing (no I/O,
    /// nothing from other threads, no blocking work in flight) moves the
    /// clock to `until`, the next deadline. tokio's rule: time jumps only
    /// when the runtime is idle. Work that completes by itself (blocking
    /// calls on the pool, a driver's [`Driver::is_busy`]) holds the clock.
    fn park_paused(&self, until: Option<u64>) {
        let Some(until) = until else {
            // No timer to jump to: wait for I/O or another thread.
            return self.park(None);
        };
        self.park(Some(Duration::ZERO));
        if until <= self.clock.now() || self.queue.len() != 0 || self.shared.has_remote() {
            // Due already (no need to move), or something to run first.
            return;
        }
        let busy = self.driver.borrow().is_busy() || self.pool.borrow().as_ref().is_some_and(|p| p.is_busy());
        if busy {
            // Blocking work (`to_thread`, file I/O, an io_uring shutdown)
            // takes real time: wait for it (its completion wakes the loop),
            // a little at a time, without moving the clock.
            return self.park(Some(Duration::from_millis(1)));
        }
        self.clock.jump_to(until);
    }

    fn fire_timers(&self) {
        let now = self.now();
        let mut fired = self.fired.borrow_mut();
        self.timers.borrow_mut().fire(now, &mut fired);
        for cb in fired.calls.drain(..) {
            self.queue.push(Runnable::Call(cb));
        }
        let wakers = std::mem::take(&mut fired.wakers);
        drop(fired);
        let mut wakers = wakers;
        for w in wakers.drain(..) {
            w.wake();
        }
        let mut fired = self.fired.borrow_mut();
        if fired.wakers.capacity() < wakers.capacity() {
            fired.wakers = wakers;
        }
    }

    fn drain_injector(&self) {
        while let Some(r) = self.shared.take_remote() {
            match r {
                Remote::Wake(t) => self.queue.push(Runnable::Task(t)),
                Remote::Call(f) => self.call_soon_rc(CallbackCell::rc(f)),
                Remote::Cancel(t, msg) => {
                    TaskRef::from_owned(t.0).cancel_opt(msg);
                }
            }
        }
    }

    /// One turn of the loop. `limit` caps how long it may park.
    fn run_once(&self, limit: Option<u64>) {
        let ready = self.queue.len() != 0;
        if !ready || self.polls_since_io.get() >= IO_INTERVAL {
            if ready || self.stopping.get() {
                self.park(Some(Duration::ZERO));
            } else {
                let next = self.timers.borrow().next_deadline();
                let until = match (next, limit) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if self.clock.is_paused() {
                    self.park_paused(until);
                } else {
                    self.park(until.map(|t| Duration::from_nanos(t.saturating_sub(real_now_ns()))));
                }
            }
            self.polls_since_io.set(0);
        }
        // Read the clock only if a timer may be due (a timer-free workload
        // runs its turns without a clock read); `now()` reads it lazily.
        self.now_fresh.set(false);
        if !self.timers.borrow().is_empty() {
            self.fire_timers();
        }
        self.drain_injector();

        let n = self.queue.len();
        let debug = self.debug.get();
        for _ in 0..n {
            let Some(r) = self.queue.pop() else { break };
            let started = if debug { Some(Instant::now()) } else { None };
            let name = match r {
                Runnable::Task(t) => self.run_task(t, debug),
                Runnable::Call(cb) => {
                    if catch_unwind(AssertUnwindSafe(|| cb.run())).is_err() {
                        self.report(ExceptionContext {
                            message: "a callback panicked".into(),
                            task: None,
                            panic: None,
                            error: None,
                        });
                    }
                    None
                }
            };
            if let Some(t0) = started {
                let took = t0.elapsed();
                if took >= self.slow_callback.get() {
                    let what = name.map_or_else(|| "a callback".to_string(), |n| format!("task {n:?}"));
                    debug_warning(format_args!(
                        "{what} held the loop for {:.3} s in one step (slow_callback_duration is {:.3} s)",
                        took.as_secs_f64(),
                        self.slow_callback.get().as_secs_f64()
                    ));
                }
            }
        }
        self.polls_since_io
            .set(self.polls_since_io.get().saturating_add(n as u32));
    }

    /// Runs a dequeued task. Returns its name in debug mode (for the
    /// slow-step warning).
    #[inline]
    fn run_task(&self, t: TaskPtr, debug: bool) -> Option<String> {
        let ptr = t.0;
        // SAFETY: a queue entry, holding the alive reference (released by
        // `dequeue` if the task finished while queued).
        if !unsafe { raw::dequeue(ptr) } {
            return None;
        }
        let name = if debug {
            Some(TaskRef::from_ptr(ptr).name())
        } else {
            None
        };
        task::poll_task(self, ptr);
        name
    }

    /// Runs turns until `done()` or `stop()`.
    fn run_until(&self, done: impl Fn() -> bool) {
        while !done() && !self.stopping.get() {
            self.run_once(None);
        }
    }

    #[track_caller]
    fn enter_run(&self) -> RunGuard<'_> {
        assert!(!self.closed.get(), "the event loop is closed");
        assert!(!self.running.get(), "this event loop is already running");
        let other = CONTEXT.with(|c| c.core.get());
        assert!(
            other.is_null(),
            "cannot run an event loop while another loop is running on this thread"
        );
        self.running.set(true);
        self.stopping.set(false);
        self.now_fresh.set(false);
        RunGuard {
            core: self,
            _ctx: CoreGuard::enter(self),
        }
    }

    /// asyncio's close sequence: cancel what is pending, let it clean up
    /// (bounded by the shutdown timeout), shut the thread pool down, then
    /// drop everything that is left.
    #[track_caller]
    fn close(&self) {
        if self.closed.get() {
            return;
        }
        assert!(!self.running.get(), "cannot close a running event loop");
        {
            let _run = self.enter_run();
            let pending = self.all_tasks();
            if self.debug.get() && !pending.is_empty() {
                let names: Vec<String> = pending.iter().map(TaskRef::name).collect();
                debug_warning(format_args!(
                    "{} task(s) still pending when the loop closed, cancelling: {}",
                    names.len(),
                    names.join(", ")
                ));
            }
            for t in &pending {
                t.cancel();
            }
            drop(pending);
            let deadline = self.clock.now().saturating_add(delay_ns(self.shutdown_timeout));
            while self.live_tasks.get() > 0 && self.clock.now() < deadline {
                self.run_once(Some(deadline));
            }
            for t in self.all_tasks() {
                if self.debug.get() {
                    debug_warning(format_args!(
                        "task {:?} did not finish within the shutdown timeout; dropping it",
                        t.name()
                    ));
                }
                t.abort();
            }
            // Whatever is still queued: drop callbacks, release tasks.
            self.drain_injector();
            while let Some(r) = self.queue.pop() {
                match r {
                    Runnable::Task(t) => unqueue(t),
                    Runnable::Call(cb) => cb.cancel(),
                }
            }
            let calls = self.timers.borrow_mut().clear();
            drop(calls);
            self.clear_registry();
        }
        if let Some(pool) = self.pool.borrow_mut().take() {
            pool.shutdown(self.shutdown_timeout);
        }
        self.closed.set(true);
        self.shared.close();
    }
}

struct RunGuard<'a> {
    core: &'a Core,
    _ctx: CoreGuard,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.core.running.set(false);
        self.core.stopping.set(false);
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let core = &self.core;
        core.owners.set(core.owners.get() - 1);
        // The last owner closes the loop, while the core is still intact
        // (tasks being dropped may still call `get_running_loop`). Sockets
        // and tasks hold their own references to the core, so waiting for
        // the last reference would wait forever.
        if core.owners.get() == 0 && !core.closed.get() && !core.running.get() {
            // Dropped inside another loop's task: close this one as if
            // nothing ran here, then give the outer one its context back.
            let _outer = crate::context::Suspended::enter();
            core.close();
        }
    }
}

/// A debug-mode warning: a `log` record at `warn` when a logger takes
/// it, else a line on stderr (a program without a logger still sees it).
fn debug_warning(args: fmt::Arguments<'_>) {
    if log::log_enabled!(log::Level::Warn) {
        log::warn!("aio: {args}");
    } else {
        eprintln!("aio: {args}");
    }
}

/// The default exception handler: one line on stderr.
pub fn default_exception_handler(ctx: &ExceptionContext) {
    eprintln!("aio: {ctx}");
}

/// Configures a [`Loop`]: its driver, debug mode, eager tasks, thread pool
/// and shutdown timeout.
///
/// aio-core's builder uses [`ParkDriver`] (no I/O) unless given a driver;
/// the `aio` facade's `Builder` picks the I/O backend.
pub struct Builder {
    driver: Option<Box<dyn Driver>>,
    paused_clock: bool,
    debug: Option<bool>,
    eager_tasks: bool,
    slow_callback: Duration,
    max_threads: Option<usize>,
    thread_keep_alive: Duration,
    shutdown_timeout: Duration,
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
            .field("debug", &self.debug)
            .field("eager_tasks", &self.eager_tasks)
            .field("paused_clock", &self.paused_clock)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder with asyncio's defaults.
    pub fn new() -> Builder {
        Builder {
            driver: None,
            paused_clock: false,
            debug: None,
            eager_tasks: false,
            slow_callback: Duration::from_millis(100),
            max_threads: None,
            thread_keep_alive: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
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
        self.debug = Some(on);
        self
    }

    /// The threshold of the slow-step warning (default 100 ms).
    pub fn slow_callback_duration(mut self, d: Duration) -> Builder {
        self.slow_callback = d;
        self
    }

    /// asyncio 3.12's eager task factory: `create_task` runs the new task's
    /// first step at once, so a task that finishes without waiting never
    /// touches the ready queue.
    pub fn eager_tasks(mut self, on: bool) -> Builder {
        self.eager_tasks = on;
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
        self.paused_clock = true;
        self
    }

    /// Upper bound of `to_thread`'s pool (default: asyncio's
    /// `min(32, cpus + 4)`).
    pub fn max_threads(mut self, n: usize) -> Builder {
        self.max_threads = Some(n.max(1));
        self
    }

    /// How long an idle pool thread waits for work before exiting
    /// (default 10 s).
    pub fn thread_keep_alive(mut self, d: Duration) -> Builder {
        self.thread_keep_alive = d;
        self
    }

    /// How long closing the loop lets cancelled tasks (and pool threads)
    /// finish before it drops them (default 30 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Builder {
        self.shutdown_timeout = d;
        self
    }

    /// Creates the loop.
    pub fn build(self) -> Loop {
        let driver = self.driver.unwrap_or_else(|| Box::new(ParkDriver::new()));
        let debug = self
            .debug
            .unwrap_or_else(|| std::env::var("AIO_DEBUG").is_ok_and(|v| !v.is_empty() && v != "0"));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shared = Arc::new(Shared::new(driver.unparker()));
        let core = Rc::new(Core {
            shared,
            queue: RunQueue {
                q: UnsafeCell::new(VecDeque::with_capacity(256)),
            },
            timers: RefCell::new(Timers::new()),
            tasks: RefCell::new(Vec::new()),
            live_tasks: Cell::new(0),
            backend: driver.name(),
            driver: RefCell::new(driver),
            clock: Clock::new(self.paused_clock),
            now: Cell::new(0),
            now_fresh: Cell::new(false),
            next_task_id: Cell::new(0),
            polls_since_io: Cell::new(0),
            fired: RefCell::new(Fired::default()),
            stopping: Cell::new(false),
            running: Cell::new(false),
            closed: Cell::new(false),
            debug: Cell::new(debug),
            slow_callback: Cell::new(self.slow_callback),
            eager_tasks: Cell::new(self.eager_tasks),
            handler: RefCell::new(None),
            owners: Cell::new(1),
            pool: RefCell::new(None),
            max_threads: self.max_threads.unwrap_or_else(|| (cpus + 4).min(32)),
            thread_keep_alive: self.thread_keep_alive,
            shutdown_timeout: self.shutdown_timeout,
        });
        core.shared
            .core_addr
            .store(Rc::as_ptr(&core) as usize, Ordering::Relaxed);
        Loop { core, owner: true }
    }
}

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
    owner: bool,
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
        // is what `CoreGuard` installs), and the loop is alive while it is
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
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Handle {
        let cb = CallbackCell::rc(f);
        self.core.call_soon_rc(cb.clone());
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
        let cb = CallbackIn::rc(ctx, f);
        self.core.call_soon_rc(cb.clone());
        Handle { cb }
    }

    /// Schedules `f` to run after `delay`, in a copy of the current
    /// context. A negative delay is a deadline in the past, as in asyncio:
    /// `f` runs at the next turn, ordered by that deadline among the
    /// timers due then (`call_later(0, a)` then `call_later(-1, b)` runs
    /// `b` first), after the callbacks already scheduled with `call_soon`.
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
        let key = self.core.timers.borrow_mut().insert_call(when, cb.clone());
        TimerHandle {
            cb,
            key,
            when,
            core: Rc::as_ptr(&self.core),
        }
    }

    /// Wraps `fut` in a task on this loop (asyncio's `loop.create_task`);
    /// see [`create_task`](crate::create_task).
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
        drop(run);
        match task.result() {
            Some(r) => r,
            None => {
                task.cancel();
                Err(TaskError::Cancelled(crate::Cancelled::with_message(
                    "the event loop was stopped before the future completed",
                )))
            }
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
    /// `run_until_complete`) after the current turn.
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

    /// Sets what happens to panics of tasks nobody awaits and of callbacks
    /// (default: [`default_exception_handler`], one line on stderr).
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
        let mut d = self.core.driver.borrow_mut();
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
