//! The loop-thread state of a loop ([`Core`]): its ready queue, timers,
//! task registry, driver, clock and settings, with the accessors the rest
//! of aio-core uses. The turn of the loop (`turn.rs`) and its close
//! (`close.rs`) are further `impl Core` blocks.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::busy::Deferred;
use super::exception::{ExceptionContext, ExceptionHandler, default_exception_handler};
use super::metrics::Stats;
use super::queue::{Callback, RunQueue, Runnable};
use super::registry::Registry;
use super::shared::Shared;
use crate::clock::Clock;
use crate::driver::Driver;
use crate::task::cells::CellCache;
use crate::task::header::Header;
use crate::thread::pool::ThreadPool;
use crate::timer::heap::{Fired, Timers};

/// A loop's identity as a plain number (its core's address), for futures
/// that must stay `Send` while remembering which loop armed their timer.
pub(crate) fn core_id(core: &Core) -> usize {
    core as *const Core as usize
}

/// The loop-thread state.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) queue: RunQueue,
    pub(crate) timers: RefCell<Timers<Rc<dyn Callback>>>,
    /// The tasks not complete yet.
    pub(crate) tasks: RefCell<Registry>,
    /// Free task cells, for the next tasks.
    pub(crate) cells: CellCache,
    /// References to `shared` that tasks freed on this thread gave back,
    /// for the next tasks (see [`shared_ref`](Core::shared_ref)).
    pub(super) banked_refs: Cell<usize>,
    pub(super) driver: RefCell<Box<dyn Driver>>,
    /// Driver work that came up while the driver was busy (see `busy.rs`).
    pub(super) deferred: RefCell<Vec<Deferred>>,
    /// `deferred` is not empty: what every end of a driver borrow reads
    /// (one load, where looking at the vector takes a `RefCell` borrow on
    /// the path of every I/O poll).
    pub(super) has_deferred: Cell<bool>,
    pub(super) backend: &'static str,
    /// The real clock, or the paused (virtual) one of a test.
    pub(crate) clock: Clock,
    pub(super) now: Cell<u64>,
    /// `now` was read during this turn.
    pub(super) now_fresh: Cell<bool>,
    pub(super) next_task_id: Cell<u64>,
    /// While the loop closes, the last task id given out before: the tasks
    /// it cancelled are those numbered up to it (0 otherwise).
    pub(super) shutdown_ids: Cell<u64>,
    pub(super) polls_since_io: Cell<u32>,
    pub(super) fired: RefCell<Fired<Rc<dyn Callback>>>,
    pub(super) stopping: Cell<bool>,
    pub(super) running: Cell<bool>,
    pub(super) closed: Cell<bool>,
    pub(crate) debug: Cell<bool>,
    pub(super) slow_callback: Cell<Duration>,
    pub(crate) eager_tasks: Cell<bool>,
    pub(super) handler: RefCell<Option<ExceptionHandler>>,
    /// Live owning `Loop` handles (see [`Loop`]): the last one closes the loop.
    pub(super) owners: Cell<usize>,
    pub(super) pool: RefCell<Option<Arc<ThreadPool>>>,
    pub(super) max_threads: usize,
    pub(super) thread_keep_alive: Duration,
    pub(super) shutdown_timeout: Duration,
    /// How long the loop busy-polls its driver before it sleeps, in
    /// nanoseconds ([`Builder::spin_before_park`](super::Builder::spin_before_park)).
    pub(super) spin_ns: u64,
    /// The load counters published to `shared.gauges`.
    pub(crate) stats: Stats,
    /// Called when the loop has nothing to run and is about to sleep
    /// ([`Loop::on_idle`](crate::Loop::on_idle)).
    pub(super) idle: RefCell<Option<Rc<dyn Fn()>>>,
}

impl Drop for Core {
    fn drop(&mut self) {
        self.run_deferred();
        // The banked references are strong counts without an `Arc`.
        for _ in 0..self.banked_refs.get() {
            // SAFETY: each is a count `bank_shared_ref` kept; `self.shared`
            // still holds one more, so the count stays above zero.
            unsafe { Arc::decrement_strong_count(Arc::as_ptr(&self.shared)) };
        }
    }
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

    /// A reference to the loop's `Shared` for a new task (its wakers reach
    /// the loop through it from any thread). It comes from the bank that
    /// tasks freed on the loop's thread fill, so a task made and freed on
    /// its loop costs no atomic increment or decrement of the count (~7 ns
    /// of a ~100 ns spawn and join); the bank is empty only when more
    /// tasks are alive than ever before.
    #[inline]
    pub(crate) fn shared_ref(&self) -> Arc<Shared> {
        let n = self.banked_refs.get();
        if n == 0 {
            return self.shared.clone();
        }
        self.banked_refs.set(n - 1);
        // SAFETY: a banked reference is a strong count that
        // `bank_shared_ref` kept without an `Arc`; this takes it back out.
        unsafe { Arc::from_raw(Arc::as_ptr(&self.shared)) }
    }

    /// Takes back the reference of a task freed on the loop's thread.
    #[inline]
    pub(crate) fn bank_shared_ref(&self, r: Arc<Shared>) {
        debug_assert!(Arc::ptr_eq(&r, &self.shared));
        std::mem::forget(r);
        self.banked_refs.set(self.banked_refs.get() + 1);
    }

    /// Whether the loop is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Whether task `id` was pending when the loop began to close, and was
    /// cancelled by it (asyncio's `_cancel_all_tasks`).
    pub(crate) fn cancelled_at_shutdown(&self, id: u64) -> bool {
        id <= self.shutdown_ids.get()
    }

    pub(crate) fn next_task_id(&self) -> u64 {
        let id = self.next_task_id.get() + 1;
        self.next_task_id.set(id);
        id
    }

    /// Adds a new task to the registry of live tasks.
    #[inline]
    pub(crate) fn register_task(&self, h: &Header, ptr: NonNull<Header>) {
        self.tasks.borrow_mut().insert(h, ptr);
    }

    /// A task completed: it leaves the registry.
    #[inline]
    pub(crate) fn unregister_task(&self, h: &Header) {
        self.tasks.borrow_mut().remove(h);
    }

    /// How many tasks are not complete.
    pub(crate) fn live_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Queues `cb` for the next turn, behind what other threads sent
    /// before (`call_soon_threadsafe`): asyncio has one ready queue for
    /// both, so a callback sent from a thread, then one scheduled here,
    /// run in that order.
    pub(crate) fn call_soon_rc(&self, cb: Rc<dyn Callback>) {
        self.drain_injector();
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
}
