//! The armed-timer entry every timer of aio is built from: [`Armed`] (a
//! timer in a loop's heap, and which loop), used as is by `call_later` and
//! `call_at`, and [`TimerWait`] (a deadline a future waits for, armed with
//! the waker of the task that polls it), which [`Sleep`](crate::Sleep)
//! and [`Timeout`](crate::Timeout) are built from — as tokio builds its
//! `Timeout` from `Sleep`.

use std::rc::Rc;
use std::task::{Context, Poll};

use super::heap::{TimerKey, WakerId};
use crate::context::with_core;
use crate::event_loop::core::{Core, core_id};
use crate::event_loop::queue::Callback;

/// A timer armed in a loop's heap. Plain numbers (the key, the loop's
/// address), so a future holding one stays `Send`.
#[derive(Debug)]
pub(crate) struct Armed {
    key: TimerKey,
    core: usize,
}

impl Armed {
    /// Arms a timer on `core` that queues `cb` at `deadline` (a deadline
    /// already past fires at the next turn, ordered by deadline).
    #[inline]
    pub(crate) fn call(core: &Core, deadline: u64, cb: Rc<dyn Callback>) -> Armed {
        Armed {
            key: core.timers.borrow_mut().insert_call(deadline, cb),
            core: core_id(core),
        }
    }

    #[inline]
    fn wake(core: &Core, deadline: u64, cx: &Context<'_>) -> Armed {
        Armed {
            key: core.timers.borrow_mut().insert_waker(deadline, cx.waker().clone()),
            core: core_id(core),
        }
    }

    /// Whether it is armed on `core`.
    #[inline]
    fn is_on(&self, core: &Core) -> bool {
        core_id(core) == self.core
    }

    /// Disarms it on `core`, its loop, whether or not that loop runs.
    #[inline]
    pub(crate) fn disarm_on(&self, core: &Core) {
        if self.is_on(core) {
            remove(core, self.key);
        }
    }

    /// Disarms it when its loop runs on this thread (a loop that is not
    /// running here cannot be reached; one that closed dropped its timers).
    #[inline]
    pub(crate) fn disarm(&self) {
        with_core(|c| {
            if let Some(c) = c.filter(|c| self.is_on(c)) {
                remove(c, self.key);
            }
        });
    }
}

/// Disarms `key` on `core`. What the heap hands back (a sweep's wakers
/// and callbacks) is dropped once its borrow has ended: a drop may
/// disarm another timer.
#[inline]
fn remove(core: &Core, key: TimerKey) {
    let discarded = core.timers.borrow_mut().remove(key);
    drop(discarded);
}

/// A deadline a future waits for: armed at its first poll with the waker
/// of the task polling it, re-armed when another task (or combinator
/// child) polls it, disarmed when dropped.
#[derive(Debug, Default)]
pub(crate) struct TimerWait {
    armed: Option<(Armed, WakerId)>,
}

impl TimerWait {
    /// Nothing armed yet.
    #[inline]
    pub(crate) const fn new() -> TimerWait {
        TimerWait { armed: None }
    }

    /// Waits for `deadline` on `core`: `Ready` once a turn of the loop
    /// reached it, else `Pending` with `cx`'s waker armed. `None` when it
    /// is armed on another loop than `core`.
    #[inline(always)]
    pub(crate) fn poll(&mut self, core: &Core, deadline: u64, cx: &Context<'_>) -> Option<Poll<()>> {
        let id = WakerId::of(cx.waker());
        match &self.armed {
            Some((armed, _)) if !armed.is_on(core) => return None,
            Some((armed, _)) if core.timers.borrow().has_fired(armed.key) => {
                self.armed = None;
                return Some(Poll::Ready(()));
            }
            Some((_, waker)) if *waker == id => {}
            Some((armed, _)) => {
                // Polled by another task or child: re-arm with its waker.
                remove(core, armed.key);
                self.armed = Some((Armed::wake(core, deadline, cx), id));
            }
            None => self.armed = Some((Armed::wake(core, deadline, cx), id)),
        }
        Some(Poll::Pending)
    }

    /// Disarms the timer, if armed.
    #[inline]
    pub(crate) fn disarm(&mut self) {
        if let Some((armed, _)) = self.armed.take() {
            armed.disarm();
        }
    }
}

impl Drop for TimerWait {
    #[inline]
    fn drop(&mut self) {
        self.disarm();
    }
}
