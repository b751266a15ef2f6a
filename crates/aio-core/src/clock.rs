//! The clock every loop reads: nanoseconds since a process-wide epoch on
//! the monotonic clock, and a loop's own clock, which a test may pause
//! (see [`crate::time`]). Plain data: nothing here reads the thread-local
//! context.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How far before the process's first clock read the epoch lies: a
/// deadline in the past (`call_later(-1, f)` right after start-up) stays
/// after the epoch, so past deadlines keep their order (asyncio's clock,
/// `time.monotonic()`, counts from boot for the same effect).
const EPOCH_BACK: Duration = Duration::from_secs(24 * 3600);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = Instant::now();
        // Where an `Instant` cannot go that far back (it counts from boot
        // on some systems), as far back as it can.
        let mut back = EPOCH_BACK;
        loop {
            match now.checked_sub(back) {
                Some(t) => return t,
                None if back.as_secs() > 1 => back /= 2,
                None => return now,
            }
        }
    })
}

/// Loops with a paused clock, process-wide. While it is zero (every
/// program but a paused test), reading the clock costs one relaxed load
/// and a predictable branch more than reading `Instant::now()`.
pub(crate) static PAUSED_LOOPS: AtomicUsize = AtomicUsize::new(0);

/// Nanoseconds since the process epoch, read from the monotonic clock.
#[inline]
pub(crate) fn real_now_ns() -> u64 {
    instant_to_ns(Instant::now())
}

/// A loop's clock: the real one, or a virtual one that only moves when the
/// loop is idle or told to ([`advance`](crate::time::advance)).
pub(crate) struct Clock {
    paused: Cell<bool>,
    /// The virtual time, while paused.
    virtual_now: Cell<u64>,
}

impl Clock {
    pub(crate) fn new(paused: bool) -> Clock {
        let clock = Clock {
            paused: Cell::new(false),
            virtual_now: Cell::new(0),
        };
        if paused {
            clock.pause();
        }
        clock
    }

    /// Freezes the clock at the real time now (never going back).
    pub(crate) fn pause(&self) {
        if !self.paused.get() {
            self.virtual_now.set(real_now_ns());
            self.paused.set(true);
            PAUSED_LOOPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.get()
    }

    /// The virtual time, when paused.
    #[inline]
    pub(crate) fn paused_now(&self) -> Option<u64> {
        self.paused.get().then(|| self.virtual_now.get())
    }

    /// The clock's time now.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        if self.paused.get() {
            self.virtual_now.get()
        } else {
            real_now_ns()
        }
    }

    /// Moves a paused clock forward to `t` (never back).
    pub(crate) fn jump_to(&self, t: u64) {
        debug_assert!(self.paused.get());
        if t > self.virtual_now.get() {
            self.virtual_now.set(t);
        }
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        if self.paused.get() {
            PAUSED_LOOPS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

pub(crate) fn instant_to_ns(t: Instant) -> u64 {
    let d = t.saturating_duration_since(epoch());
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn ns_to_secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}
