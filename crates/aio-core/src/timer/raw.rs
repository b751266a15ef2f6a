//! [`RawSleep`]: a deadline on the running loop's timers for futures that
//! are not aio's own (another library's timer trait), without aio's
//! cancellation.

use std::task::{Context, Poll};
use std::time::Instant;

use super::entry::TimerWait;
use crate::clock::instant_to_ns;
use crate::context::with_core;

/// A deadline on the running loop's timers for a timer that is not aio's
/// own: the building block of another library's sleep on aio (hyper's
/// `Timer`, say). It is `Send + Sync`, armed in the loop's timer heap at
/// its first poll with the polling task's waker (re-armed if another task
/// polls it), and disarmed when dropped; unlike [`sleep`](crate::sleep)
/// it does not observe aio's cancellation and never panics: polled where
/// no aio loop runs, it says so and the caller chooses what to do.
///
/// # Examples
/// ```
/// use std::future::poll_fn;
/// use std::time::{Duration, Instant};
///
/// aio_core::run(async {
///     let t0 = Instant::now();
///     let mut s = aio_core::time::RawSleep::until(t0 + Duration::from_millis(5));
///     poll_fn(|cx| s.poll_sleep(cx).expect("polled on the loop")).await;
///     assert!(t0.elapsed() >= Duration::from_millis(5));
/// });
/// ```
#[derive(Debug)]
#[must_use = "a RawSleep does nothing unless polled"]
pub struct RawSleep {
    deadline: u64,
    timer: TimerWait,
}

impl RawSleep {
    /// A sleep until `deadline` (a point on the real clock; see the
    /// [paused clock](crate::time#the-paused-test-clock)).
    pub fn until(deadline: Instant) -> RawSleep {
        RawSleep {
            deadline: instant_to_ns(deadline),
            timer: TimerWait::new(),
        }
    }

    /// `Some(Ready)` once a turn of the running loop reached the deadline
    /// (a deadline already past fires at the next turn); `Some(Pending)`
    /// with `cx`'s waker armed until then. `None`, arming nothing, when no
    /// aio loop runs on this thread, or when it runs another loop than the
    /// one this sleep was armed on.
    pub fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        with_core(|c| c.and_then(|c| self.timer.poll(c, self.deadline, cx)))
    }
}
