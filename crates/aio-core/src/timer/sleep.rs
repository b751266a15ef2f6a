//! `sleep`, `sleep_until` and `yield_now`: the simplest aio await points.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::entry::TimerWait;
use crate::cancel::{self, Cancelled};
use crate::context::{expect_core, with_core};
use crate::delay::{IntoDeadline, IntoDelay, InvalidDelay, delay_ns};
use crate::time::now::timer_base;

/// Waits for `delay` (a `Duration` or seconds): asyncio's `sleep`.
///
/// `sleep(0)` yields to the other ready tasks once and resumes, as in
/// asyncio. The deadline counts from this call, on a clock read now (as
/// asyncio's `call_later` and tokio's `sleep` read it): a sleep never ends
/// before `delay` has passed since it was called, however late in a busy
/// loop turn that was. A negative delay means zero, as in asyncio. (On a
/// [paused clock](crate::time#the-paused-test-clock) the delay is virtual
/// time; a sleep created where no loop runs, while some loop's clock is
/// paused, counts from its first poll, on the clock of the loop it runs on.)
///
/// # Errors
/// A delay that is not a number (`f64::NAN`) is bad input, not zero: the
/// first poll returns an `Err(Cancelled)` whose
/// [`is_invalid_delay`](Cancelled::is_invalid_delay) is true (asyncio's
/// `ValueError: Invalid delay: NaN`). It travels through `?` like a
/// cancellation, so `aio::Result` code keeps compiling, and becomes an
/// `InvalidInput` `io::Error`; it does not mark the task cancelled.
///
/// # Cancellation
/// Returns `Err(Cancelled)` at once when the task is cancelled while it
/// sleeps; the timer is disarmed. Dropping the future disarms it too.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// aio_core::sleep(0.01).await?;
/// aio_core::sleep(std::time::Duration::from_millis(1)).await?;
/// # Ok::<(), aio_core::Cancelled>(())
/// # }).unwrap();
/// ```
pub fn sleep(delay: impl IntoDelay) -> Sleep {
    let state = match delay.into_delay().map(delay_ns) {
        Ok(0) => State::After0,
        Ok(d) => match timer_base() {
            Some(now) => State::At(now.saturating_add(d)),
            None => State::Delay(d),
        },
        Err(InvalidDelay) => State::Invalid,
    };
    Sleep {
        state,
        timer: TimerWait::new(),
    }
}

/// Waits until `deadline` (an `Instant`, or seconds on the loop clock).
///
/// # Errors
/// As [`sleep`]: a NaN deadline is an invalid-delay `Err(Cancelled)`.
///
/// # Cancellation
/// As [`sleep`].
pub fn sleep_until(deadline: impl IntoDeadline) -> Sleep {
    Sleep {
        state: match deadline.into_deadline_ns() {
            Ok(t) => State::At(t),
            Err(InvalidDelay) => State::Invalid,
        },
        timer: TimerWait::new(),
    }
}

/// Lets every other ready task run once, then resumes: the same as
/// `sleep(0)`.
///
/// # Cancellation
/// Returns `Err(Cancelled)` if a cancellation is pending; nothing is lost.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

#[derive(Debug)]
enum State {
    /// Not polled yet: `sleep(0)`, or a deadline.
    After0,
    At(u64),
    /// A delay whose clock is read at the first poll (see `timer_base`).
    Delay(u64),
    Yielded,
    /// A NaN delay or deadline: the first poll reports it.
    Invalid,
    /// Waiting for the deadline (armed at the first poll).
    Waiting(u64),
    Done,
}

/// Future of [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    state: State,
    timer: TimerWait,
}

impl Future for Sleep {
    type Output = Result<(), Cancelled>;

    /// # Panics
    /// Outside a running loop, or on another loop than the one it
    /// started on. Tracked: the panic points at the `.await`.
    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.timer.disarm();
            this.state = State::Done;
            return Poll::Ready(Err(c));
        }
        match this.state {
            State::Delay(d) => this.state = State::Waiting(expect_core(|core| core.now()).saturating_add(d)),
            // A deadline already past is armed too: it fires at the next
            // turn, ordered by deadline with the other timers, as asyncio's
            // call_at would.
            State::At(deadline) => this.state = State::Waiting(deadline),
            _ => {}
        }
        match this.state {
            State::After0 => {
                cx.waker().wake_by_ref();
                this.state = State::Yielded;
                Poll::Pending
            }
            State::Yielded => {
                this.state = State::Done;
                Poll::Ready(Ok(()))
            }
            State::Invalid => {
                this.state = State::Done;
                Poll::Ready(Err(Cancelled::from(InvalidDelay)))
            }
            State::Waiting(deadline) => {
                let polled = with_core(|c| c.map(|c| this.timer.poll(c, deadline, cx)));
                // Outside the closure, so the panic carries the caller's location.
                match polled {
                    Some(Some(Poll::Ready(()))) => {
                        this.state = State::Done;
                        Poll::Ready(Ok(()))
                    }
                    Some(Some(Poll::Pending)) => Poll::Pending,
                    Some(None) => panic!("a sleep must be polled on the loop it started on"),
                    None => crate::context::no_running_loop(),
                }
            }
            State::Done => Poll::Ready(Ok(())),
            State::Delay(_) | State::At(_) => unreachable!("resolved above"),
        }
    }
}

/// Future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        cancel::check()?;
        if self.yielded {
            return Poll::Ready(Ok(()));
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
