//! A loop's load, for other threads to read ([`LoopMetrics`], through
//! [`LoopHandle::metrics`](crate::LoopHandle::metrics)): the loop thread
//! keeps plain counters ([`Stats`], in its `Core`) and publishes them to
//! atomics ([`Gauges`], in its `Shared`) with relaxed stores once per turn
//! and around each sleep — never a read-modify-write per task. The one
//! counter other code changes directly is the connections count, once per
//! connection ([`HeldConnection`]).
//!
//! Busy time is the time the loop did not sleep in its driver: the loop
//! reads the clock just before it sleeps and just after it wakes (a
//! system call is made there anyway), and keeps a one-second window; a
//! reader extrapolates the window to its own reading time, so a loop that
//! has not slept for a second reads as fully busy.
//!
//! Plain data: nothing here reads the thread-local context.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::clock::real_now_ns;

/// The window of [`LoopMetrics::busy`].
const WINDOW_NS: u64 = 1_000_000_000;

/// A loop's load at one moment, readable from any thread with
/// [`LoopHandle::metrics`](crate::LoopHandle::metrics) (tokio's
/// `RuntimeMetrics`, per loop). Figures are published by the loop once
/// per turn, so they may lag its current state by one turn; `connections`
/// is exact.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct LoopMetrics {
    /// Tasks created on the loop and not yet finished.
    pub tasks: usize,
    /// Task steps and callbacks ready to run: the loop's ready queue at
    /// the end of its last turn, plus what other threads sent since.
    pub ready: usize,
    /// The fraction of the last second the loop spent running rather than
    /// sleeping in its driver (0 to 1).
    pub busy: f64,
    /// Connections the loop holds: those a server on it accepted (or was
    /// handed) whose handler still runs, and any other code counts with
    /// [`Loop::hold_connection`](crate::Loop::hold_connection).
    pub connections: usize,
    /// I/O operations submitted to the loop's driver and not yet complete
    /// (reads, writes, accepts, waits for readiness).
    pub ops_in_flight: usize,
    /// Turns of the loop so far.
    pub turns: u64,
    /// Whether the loop sleeps in its driver right now.
    pub parked: bool,
    /// Times the loop went to sleep in its driver so far (tokio's
    /// `worker_park_count`). A look at the driver that cannot block is not
    /// one, nor is a [spin](crate::Builder::spin_before_park) that found
    /// work before the loop slept.
    pub parks: u64,
}

/// The loop-thread counters behind [`LoopMetrics`] (in `Core`).
#[derive(Default)]
pub(crate) struct Stats {
    /// I/O operations in flight (changed by `OpFuture`).
    pub(crate) ops: Cell<usize>,
    turns: Cell<u64>,
    parks: Cell<u64>,
    /// Busy nanoseconds up to the last sleep.
    busy_ns: Cell<u64>,
    /// When the loop last woke (0: never slept yet; the first turn counts
    /// from the loop's first sleep).
    woke_at: Cell<u64>,
    window_start: Cell<u64>,
    window_busy_start: Cell<u64>,
}

/// What other threads read (in `Shared`): relaxed atomics, each written by
/// the loop thread alone except `connections`.
#[derive(Default)]
pub(crate) struct Gauges {
    tasks: AtomicUsize,
    ready: AtomicUsize,
    ops: AtomicUsize,
    turns: AtomicU64,
    parks: AtomicU64,
    pub(crate) connections: AtomicUsize,
    busy_ns: AtomicU64,
    /// When the loop woke from its last sleep; 0 while it sleeps.
    running_since: AtomicU64,
    window_start: AtomicU64,
    window_busy_start: AtomicU64,
    /// The busy fraction of the last full window, as `f32` bits.
    last_window: AtomicU32,
}

impl Stats {
    /// The end of a turn: publishes the counts (plain stores).
    #[inline]
    pub(crate) fn publish_turn(&self, g: &Gauges, tasks: usize, ready: usize) {
        let turns = self.turns.get() + 1;
        self.turns.set(turns);
        g.turns.store(turns, Ordering::Relaxed);
        g.tasks.store(tasks, Ordering::Relaxed);
        g.ready.store(ready, Ordering::Relaxed);
        g.ops.store(self.ops.get(), Ordering::Relaxed);
    }

    /// The loop is about to sleep in its driver: the time since it woke
    /// was busy. Returns the clock reading for [`woke`](Stats::woke).
    pub(crate) fn sleeping(&self, g: &Gauges) -> u64 {
        let now = real_now_ns();
        let woke = self.woke_at.get();
        if woke == 0 {
            // The first sleep starts the first window.
            self.window_start.set(now);
            g.window_start.store(now, Ordering::Relaxed);
        } else {
            let busy = self.busy_ns.get() + now.saturating_sub(woke);
            self.busy_ns.set(busy);
            g.busy_ns.store(busy, Ordering::Relaxed);
            let start = self.window_start.get();
            if now.saturating_sub(start) >= WINDOW_NS {
                let frac = (busy - self.window_busy_start.get()) as f64 / (now - start) as f64;
                g.last_window
                    .store((frac.clamp(0.0, 1.0) as f32).to_bits(), Ordering::Relaxed);
                self.window_start.set(now);
                self.window_busy_start.set(busy);
                g.window_busy_start.store(busy, Ordering::Relaxed);
                g.window_start.store(now, Ordering::Relaxed);
            }
        }
        g.running_since.store(0, Ordering::Release);
        now
    }

    /// The loop goes to sleep in its driver now (after
    /// [`sleeping`](Stats::sleeping) and any spin).
    pub(crate) fn parks(&self, g: &Gauges) {
        let parks = self.parks.get() + 1;
        self.parks.set(parks);
        g.parks.store(parks, Ordering::Relaxed);
    }

    /// The loop woke from its driver.
    pub(crate) fn woke(&self, g: &Gauges) {
        let now = real_now_ns().max(1);
        self.woke_at.set(now);
        g.running_since.store(now, Ordering::Release);
    }
}

impl Gauges {
    /// A reading, from any thread; `parked` comes from the park handshake.
    pub(crate) fn read(&self, parked: bool, injected: usize) -> LoopMetrics {
        let now = real_now_ns();
        let since = self.running_since.load(Ordering::Acquire);
        let mut busy = self.busy_ns.load(Ordering::Relaxed);
        if since != 0 {
            busy += now.saturating_sub(since);
        }
        let start = self.window_start.load(Ordering::Relaxed);
        let in_window = busy.saturating_sub(self.window_busy_start.load(Ordering::Relaxed)) as f64;
        let busy = if start == 0 {
            // Never slept: busy since it started, if it runs at all.
            if since == 0 && self.turns.load(Ordering::Relaxed) == 0 {
                0.0
            } else {
                1.0
            }
        } else {
            let len = now.saturating_sub(start);
            if len >= WINDOW_NS {
                in_window / len as f64
            } else {
                let last = f64::from(f32::from_bits(self.last_window.load(Ordering::Relaxed)));
                (last * (WINDOW_NS - len) as f64 + in_window) / WINDOW_NS as f64
            }
        };
        LoopMetrics {
            tasks: self.tasks.load(Ordering::Relaxed),
            ready: self.ready.load(Ordering::Relaxed) + injected,
            busy: busy.clamp(0.0, 1.0),
            connections: self.connections.load(Ordering::Relaxed),
            ops_in_flight: self.ops.load(Ordering::Relaxed),
            turns: self.turns.load(Ordering::Relaxed),
            parked,
            parks: self.parks.load(Ordering::Relaxed),
        }
    }
}
