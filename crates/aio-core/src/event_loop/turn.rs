//! One turn of the loop, asyncio's `_run_once`: park in the driver (only
//! when nothing is ready, or every [`IO_INTERVAL`] polls so I/O is not
//! starved), fire due timers, take in what other threads sent, then run
//! the ready queue as it stood at the start of the turn, so callbacks and
//! task steps interleave exactly as they do in CPython.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use super::core::Core;
use super::exception::{ExceptionContext, debug_warning};
use super::queue::{Callback, Runnable};
use super::shared::Remote;
use crate::callback::CallbackCell;
use crate::clock::real_now_ns;
use crate::context::{CONTEXT, Restore};
use crate::delay::delay_ns;
use crate::task::cells::IDLE_KEEP;
use crate::task::header::{self, TaskPtr};
use crate::task::{self, Panic, TaskRef};
use std::rc::Rc;

/// How many task polls may run between two looks at the driver while tasks
/// keep the ready queue busy (tokio uses 61 too).
pub(crate) const IO_INTERVAL: u32 = 61;

/// How much later than the first due timer a sleeping loop wakes: the
/// timers due within this window fire in the same turn, as asyncio's do
/// (its `epoll` wait rounds up to whole milliseconds; tokio's timer ticks
/// in milliseconds). Three tasks that sleep for the same time one after
/// the other in one turn wake together, whatever the machine's wake-up
/// latency; without it a fast wake-up could split them over two turns.
/// Linux's default timer slack, which the kernel may add to a timed wait
/// anyway. A timer never fires early, and a lone timer (nothing else
/// armed to fire with it) gets no slack.
const TIMER_SLACK_NS: u64 = 50_000;

/// The wait of a loop that sleeps until `deadline` (nothing before it
/// to do): none if it is due already, else until it plus `slack`.
fn sleep_until(deadline: u64, slack: u64) -> Duration {
    let now = real_now_ns();
    if deadline <= now {
        return Duration::ZERO;
    }
    Duration::from_nanos((deadline - now).saturating_add(slack))
}

impl Core {
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

    pub(super) fn park(&self, mut timeout: Option<Duration>) {
        // A sleep (not a look at the driver) ends the loop's busy time.
        let sleeps = timeout != Some(Duration::ZERO);
        if !sleeps {
            let res = self.shared.park(&mut **self.driver_mut(), timeout);
            return self.parked(res);
        }
        let idle_since = self.stats.sleeping(&self.shared.gauges);
        if self.spin_ns != 0 && !self.clock.is_paused() {
            match self.spin(idle_since, timeout) {
                Some(rest) => timeout = rest,
                None => return self.stats.woke(&self.shared.gauges),
            }
        }
        // Going idle: the free task cells of the last burst go back.
        self.cells.trim(IDLE_KEEP);
        self.stats.parks(&self.shared.gauges);
        let res = self.shared.park(&mut **self.driver_mut(), timeout);
        self.stats.woke(&self.shared.gauges);
        self.parked(res);
    }

    /// Busy-polls the driver before the loop sleeps
    /// ([`Builder::spin_before_park`](super::Builder::spin_before_park)),
    /// from `start` (the clock reading as the loop went idle) for the spin
    /// window or until `timeout`, whichever ends first. `None` when the
    /// spin ends the wait (work came: I/O or something from another
    /// thread; or `timeout` passed), else what is left of `timeout` for
    /// the sleep.
    fn spin(&self, start: u64, timeout: Option<Duration>) -> Option<Option<Duration>> {
        let timeout_ns = timeout.map(delay_ns);
        let window = timeout_ns.map_or(self.spin_ns, |t| t.min(self.spin_ns));
        loop {
            let res = self.shared.park(&mut **self.driver_mut(), Some(Duration::ZERO));
            if res.is_err() || self.queue.len() != 0 || self.shared.has_remote() {
                self.parked(res);
                return None;
            }
            let spent = real_now_ns().saturating_sub(start);
            if spent >= window {
                return match timeout_ns {
                    Some(t) if t <= spent => None,
                    Some(t) => Some(Some(Duration::from_nanos(t - spent))),
                    None => Some(None),
                };
            }
            // Between looks, any other thread ready to run on this CPU
            // goes first (`sched_yield`; it returns at once if none is):
            // the spin takes time only from idleness.
            std::thread::yield_now();
        }
    }

    /// Reports a driver that failed to park.
    fn parked(&self, res: std::io::Result<()>) {
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
    pub(super) fn park_paused(&self, until: Option<u64>) {
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

    pub(super) fn fire_timers(&self) {
        let now = self.now();
        let mut fired = self.fired.borrow_mut();
        self.timers.borrow_mut().fire(now, &mut fired);
        for cb in fired.calls.drain(..) {
            self.queue.push(Runnable::Call(cb));
        }
        let wakers = std::mem::take(&mut fired.wakers);
        let discarded = fired.take_discarded();
        drop(fired);
        drop(discarded);
        let mut wakers = wakers;
        for w in wakers.drain(..) {
            w.wake();
        }
        let mut fired = self.fired.borrow_mut();
        if fired.wakers.capacity() < wakers.capacity() {
            fired.wakers = wakers;
        }
    }

    #[inline]
    pub(crate) fn drain_injector(&self) {
        // Most turns find nothing sent: two loads, rather than a pop that
        // fences even on an empty queue. Something sent meanwhile is taken
        // next turn (a park looks again before it sleeps).
        if self.shared.has_remote() {
            self.take_injected();
        }
    }

    #[inline(never)]
    fn take_injected(&self) {
        while let Some(r) = self.shared.take_remote() {
            match r {
                Remote::Wake(t) => self.queue.push(Runnable::Woken(t)),
                Remote::Call(f) => self.queue.push(Runnable::Call(CallbackCell::rc(f))),
                Remote::Cancel(t, msg) => {
                    TaskRef::from_owned(t.0).cancel_opt(msg);
                }
            }
        }
    }

    /// One turn of the loop. `limit` caps how long it may park.
    pub(super) fn run_once(&self, limit: Option<u64>) {
        let mut ready = self.queue.len() != 0;
        if !ready && !self.stopping.get() && self.run_idle_hook() {
            ready = self.queue.len() != 0;
        }
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
                    // Slack only gathers timers: one armed timer has
                    // nothing to wait for.
                    let slack = if self.timers.borrow().len() > 1 {
                        TIMER_SLACK_NS
                    } else {
                        0
                    };
                    self.park(until.map(|d| sleep_until(d, slack)));
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
        if self.debug.get() {
            self.run_ready_debug(n);
        } else {
            self.run_ready(n);
        }
        self.polls_since_io
            .set(self.polls_since_io.get().saturating_add(n as u32));
        self.stats
            .publish_turn(&self.shared.gauges, self.live_tasks(), self.queue.len());
    }

    /// Runs the first `n` entries of the ready queue: those queued before
    /// this turn began (what they queue runs next turn). The hot loop of
    /// every workload, kept to a pop, a flag and a poll per entry; debug
    /// mode's timing and callbacks' panic handling live out of line.
    #[inline]
    fn run_ready(&self, n: usize) {
        for _ in 0..n {
            match self.queue.pop() {
                Some(Runnable::Task(t)) => self.run_task(t, false),
                Some(Runnable::Woken(t)) => self.run_task(t, true),
                Some(Runnable::Call(cb)) => self.run_callback(cb),
                None => break,
            }
        }
    }

    /// [`run_ready`](Core::run_ready) in debug mode: each step is timed,
    /// and one that held the loop for `slow_callback_duration` or more is
    /// reported, as asyncio's debug mode does.
    #[cold]
    #[inline(never)]
    fn run_ready_debug(&self, n: usize) {
        for _ in 0..n {
            let Some(r) = self.queue.pop() else { break };
            let started = Instant::now();
            let woken = matches!(r, Runnable::Woken(_));
            let name = match r {
                Runnable::Task(t) | Runnable::Woken(t) => {
                    let name = TaskRef::from_ptr(t.0).name();
                    self.run_task(t, woken);
                    Some(name)
                }
                Runnable::Call(cb) => {
                    self.run_callback(cb);
                    None
                }
            };
            let took = started.elapsed();
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

    /// Runs a ready callback; a panic in it is reported, not propagated.
    #[inline(never)]
    fn run_callback(&self, cb: Rc<dyn Callback>) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| cb.run())) {
            // The panic goes with the report, as asyncio's handler gets
            // the callback's exception.
            self.report(ExceptionContext {
                message: "a callback panicked".into(),
                task: None,
                panic: Some(Panic::from(p)),
                error: None,
            });
        }
    }

    /// Runs the idle hook ([`Loop::on_idle`](crate::Loop::on_idle)), if
    /// any: the loop has nothing ready and would sleep. Returns whether
    /// there was one.
    fn run_idle_hook(&self) -> bool {
        let Some(hook) = self.idle.borrow().clone() else {
            return false;
        };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| hook())) {
            self.report(ExceptionContext {
                message: "the idle hook panicked".into(),
                task: None,
                panic: Some(Panic::from(p)),
                error: None,
            });
        }
        true
    }

    /// Runs a dequeued task (`woken`: its entry came from another
    /// thread), unless it completed while queued.
    #[inline]
    fn run_task(&self, t: TaskPtr, woken: bool) {
        let ptr = t.0;
        // SAFETY: a queue entry of its kind on the loop thread, holding the
        // alive reference (released by the dequeue if the task finished
        // while queued).
        let run = unsafe {
            if woken {
                header::dequeue_remote(ptr, true)
            } else {
                header::dequeue_local(ptr)
            }
        };
        if run {
            task::poll_task(self, ptr);
        }
    }

    /// Runs turns until `done()` or `stop()`: at least one, as asyncio's
    /// `run_forever` does, so a loop stopped before it ran runs one turn
    /// (looking at the driver without waiting) and returns.
    pub(super) fn run_until(&self, done: impl Fn() -> bool) {
        loop {
            self.run_once(None);
            if done() || self.stopping.get() {
                return;
            }
        }
    }

    #[track_caller]
    pub(super) fn enter_run(&self) -> RunGuard<'_> {
        assert!(!self.closed.get(), "the event loop is closed");
        assert!(!self.running.get(), "this event loop is already running");
        let other = CONTEXT.with(|c| c.core.get());
        assert!(
            other.is_null(),
            "cannot run an event loop while another loop is running on this thread"
        );
        self.running.set(true);
        // A `stop()` made before the run stands (the run makes one turn);
        // the run's end clears it.
        self.now_fresh.set(false);
        RunGuard {
            core: self,
            _ctx: Restore::core(self),
        }
    }
}

pub(super) struct RunGuard<'a> {
    core: &'a Core,
    _ctx: Restore<'a>,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.core.running.set(false);
        self.core.stopping.set(false);
        // What the last turn queued (a file's close) goes to the kernel now.
        if let Some(mut d) = self.core.driver_try_mut() {
            d.flush();
        }
    }
}
