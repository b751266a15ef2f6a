//! `sleep`, `sleep_until` and `yield_now`: the simplest aio await points.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::TimerKey;
use crate::cancel::{self, Cancelled};
use crate::context::{expect_core, with_core};
use crate::event_loop::core_id;
use crate::time::{IntoDeadline, IntoDelay, delay_ns};

/// Waits for `delay` (a `Duration` or seconds): asyncio's `sleep`.
///
/// `sleep(0)` yields to the other ready tasks once and resumes, as in
/// asyncio. The deadline is taken from the loop clock when the sleep is
/// first polled.
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
    Sleep {
        target: Target::After(delay_ns(delay.into_delay())),
        state: State::Init,
    }
}

/// Waits until `deadline` (an `Instant`, or seconds on the loop clock).
///
/// # Cancellation
/// As [`sleep`].
pub fn sleep_until(deadline: impl IntoDeadline) -> Sleep {
    Sleep {
        target: Target::At(deadline.into_deadline_ns()),
        state: State::Init,
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
enum Target {
    After(u64),
    At(u64),
}

#[derive(Debug)]
enum State {
    Init,
    Yielded,
    Armed { key: TimerKey, core: usize },
    Done,
}

/// Future of [`sleep`] and [`sleep_until`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    target: Target,
    state: State,
}

impl Sleep {
    fn disarm(&mut self) {
        if let State::Armed { key, core } = std::mem::replace(&mut self.state, State::Done) {
            with_core(|c| {
                if let Some(c) = c.filter(|c| core_id(c) == core) {
                    c.timers.borrow_mut().remove(key);
                }
            });
        }
    }
}

impl Future for Sleep {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.disarm();
            return Poll::Ready(Err(c));
        }
        match this.state {
            State::Init => expect_core(|core| {
                let deadline = match this.target {
                    Target::After(0) => {
                        cx.waker().wake_by_ref();
                        this.state = State::Yielded;
                        return Poll::Pending;
                    }
                    Target::After(d) => core.now().saturating_add(d),
                    Target::At(t) => t,
                };
                if deadline <= core.now() {
                    // Already due: still yield once, as asyncio's call_at would.
                    cx.waker().wake_by_ref();
                    this.state = State::Yielded;
                    return Poll::Pending;
                }
                let key = core.timers.borrow_mut().insert_waker(deadline, cx.waker().clone());
                this.state = State::Armed {
                    key,
                    core: core_id(core),
                };
                Poll::Pending
            }),
            State::Yielded => {
                this.state = State::Done;
                Poll::Ready(Ok(()))
            }
            State::Armed { key, core } => with_core(|c| {
                let c = c
                    .filter(|c| core_id(c) == core)
                    .expect("a sleep must be polled on the loop it started on");
                let mut timers = c.timers.borrow_mut();
                if timers.is_fired(key) {
                    timers.remove(key);
                    this.state = State::Done;
                    Poll::Ready(Ok(()))
                } else {
                    timers.update_waker(key, cx.waker());
                    Poll::Pending
                }
            }),
            State::Done => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
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
