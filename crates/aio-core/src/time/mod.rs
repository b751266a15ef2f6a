//! The loop clock, the test clock, and the ways to say "how long" and
//! "until when".
//!
//! Internally every time is a `u64` of nanoseconds since a process-wide
//! epoch, so deadlines from different loops compare. Publicly, asyncio's
//! convention holds: durations are `f64` seconds or a `Duration`, and
//! [`Loop::time`](crate::Loop::time) is monotonic `f64` seconds.
//!
//! # The paused (test) clock
//!
//! A loop built with [`Builder::paused_clock`](crate::Builder::paused_clock)
//! (or `#[aio::test(start_paused = true)]`, or after [`pause`]) runs on a
//! virtual clock of its own, as tokio's `time::pause`: time stands still
//! while tasks run, and when every task waits — nothing is ready, and a
//! look at the I/O driver (a park with a zero timeout) found nothing
//! either — the clock jumps to the next timer. A test of a 30 s timeout
//! then runs in microseconds, and timers fire in deadline order, each at
//! exactly its deadline. [`advance`] moves the clock forward explicitly.
//!
//! The clock is per loop: everything that reads "now" on the loop's thread
//! while it runs follows it — [`sleep`], the [`timeout`] family, [`Loop::call_later`](crate::Loop::call_later),
//! [`Loop::time`](crate::Loop::time) and [`monotonic`] — while other
//! threads (and loops) keep the real clock. The virtual clock starts at
//! the real time it was paused at, so seconds computed from
//! [`Loop::time`](crate::Loop::time) work as deadlines; an `Instant`
//! stays a point on the real clock and means little on a paused loop.
//!
//! The clock does not jump while the loop waits for blocking work it sent
//! to [`to_thread`](crate::to_thread) (that work takes real time); it does
//! not know about other threads that might still send work through a
//! [`LoopHandle`](crate::LoopHandle).
//!
//! ```
//! let lp = aio_core::Builder::new().paused_clock().build();
//! let t0 = lp.time();
//! let r = lp.run_until_complete(async {
//!     // Ten virtual minutes, at once.
//!     aio_core::wait_for(aio_core::sleep(600), 30).await
//! });
//! assert_eq!(r.unwrap(), Err(aio_core::TimeoutError));
//! assert!((lp.time() - t0 - 30.0).abs() < 1e-6);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::cancel::{self, Cancelled};
use crate::clock::ns_to_secs;
use crate::context::{expect_core, with_core};
use crate::delay::delay_ns;
use now::now_ns;

pub(crate) mod now;

pub use crate::combinator::{timeout, timeout_at};
pub use crate::delay::{IntoDeadline, IntoDelay, InvalidDelay, SignedDelay};
pub use crate::timer::{RawSleep, sleep, sleep_until};

/// Monotonic time in seconds, on the clock of [`Loop::time`](crate::Loop::time):
/// the running loop's clock (virtual when it is [paused](self#the-paused-test-clock)),
/// the real monotonic clock when no loop runs on this thread.
pub fn monotonic() -> f64 {
    ns_to_secs(now_ns())
}

/// Pauses the running loop's clock (tokio's `time::pause`): from now on it
/// moves only when every task waits (to the next timer) or on
/// [`advance`]. Pausing a paused clock does nothing; there is no resume
/// (a loop keeps a paused clock until it closes). See the [module
/// docs](self).
///
/// # Panics
/// When no aio loop runs on this thread.
#[track_caller]
pub fn pause() {
    expect_core(|core| core.clock.pause());
}

/// Whether the running loop's clock is paused (false when no loop runs).
pub fn is_paused() -> bool {
    with_core(|c| c.is_some_and(|c| c.clock.is_paused()))
}

/// Moves the running loop's paused clock forward by `d` and fires the
/// timers that are due, then lets the tasks they woke run before the
/// caller goes on (tokio's `time::advance`).
///
/// # Errors
/// As [`sleep`]: a NaN delay gives an `Err(Cancelled)` whose
/// [`is_invalid_delay`](Cancelled::is_invalid_delay) is true, and moves
/// nothing.
///
/// # Panics
/// When polled outside a running aio loop, or on a loop whose clock is
/// not paused.
///
/// # Cancellation
/// A cancellation pending when it is first polled is returned at once and
/// the clock does not move; once the clock has moved, a cancellation
/// arriving during the yield is returned instead of `Ok(())` (the clock
/// stays moved).
///
/// # Examples
/// ```
/// let lp = aio_core::Builder::new().paused_clock().build();
/// lp.run_until_complete(async {
///     let t0 = aio_core::monotonic();
///     let timer = aio_core::create_task(aio_core::sleep(5));
///     aio_core::yield_now().await?; // the task starts and arms its timer
///     aio_core::time::advance(5.0).await?;
///     assert!(timer.done());
///     assert!((aio_core::monotonic() - t0 - 5.0).abs() < 1e-6);
///     Ok::<(), aio_core::Cancelled>(())
/// }).unwrap().unwrap();
/// ```
pub fn advance(d: impl IntoDelay) -> Advance {
    Advance {
        by: Some(d.into_delay().map(delay_ns)),
    }
}

/// Future of [`advance`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Advance {
    /// What is left to do: move the clock by this, or (`None`) resume.
    by: Option<Result<u64, InvalidDelay>>,
}

impl Future for Advance {
    type Output = Result<(), Cancelled>;

    #[track_caller]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        cancel::check()?;
        match self.by.take() {
            None => Poll::Ready(Ok(())),
            Some(Err(e)) => Poll::Ready(Err(e.into())),
            Some(Ok(by)) => {
                expect_core(|core| core.advance_clock(by));
                // Let the tasks the timers woke run before the caller: they
                // were queued first.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn loop_clock_is_monotonic() {
        let a = monotonic();
        let b = monotonic();
        assert!(b >= a);
        let t = Instant::now();
        let ns = t.into_deadline_ns().unwrap();
        assert!((ns_to_secs(ns) - monotonic()).abs() < 1.0);
    }
}
