//! "Now" on the running loop's clock (its virtual one when paused), for
//! timers and `monotonic`.

use std::sync::atomic::Ordering;

use crate::clock::{PAUSED_LOOPS, real_now_ns};
use crate::context::with_core;

/// Nanoseconds since the process epoch on the running loop's clock: the
/// real monotonic clock, or the loop's virtual one when it is paused.
#[inline]
pub(crate) fn now_ns() -> u64 {
    if PAUSED_LOOPS.load(Ordering::Relaxed) != 0 {
        if let Some(t) = paused_now() {
            return t;
        }
    }
    real_now_ns()
}

#[cold]
fn paused_now() -> Option<u64> {
    with_core(|c| c.and_then(|c| c.clock.paused_now()))
}

/// What a new timer's delay counts from: the clock now, or `None` to read
/// it at the first poll instead — when no loop runs on this thread while
/// some loop's clock is paused (`lp.run_until_complete(sleep(5))` on a
/// paused loop: the sleep will run on the virtual clock, not the real one
/// it was created on).
#[inline]
pub(crate) fn timer_base() -> Option<u64> {
    if PAUSED_LOOPS.load(Ordering::Relaxed) != 0 {
        return paused_base();
    }
    Some(real_now_ns())
}

#[cold]
fn paused_base() -> Option<u64> {
    with_core(|c| c.map(|c| c.clock.now()))
}
