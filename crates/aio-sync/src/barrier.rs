//! `Barrier`: asyncio's `Barrier` (Python 3.11).

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use aio_core::Cancelled;
use aio_core::cancel;
use parking_lot::Mutex;

use crate::list::{List, Outcome, wake_all};

/// Why [`Barrier::wait`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarrierError {
    /// The barrier was broken by [`Barrier::abort`], or reset by
    /// [`Barrier::reset`] while this task waited: asyncio's
    /// `BrokenBarrierError`.
    Broken,
    /// The waiting task was cancelled.
    Cancelled(Cancelled),
}

impl BarrierError {
    /// Whether this is [`BarrierError::Broken`].
    pub fn is_broken(&self) -> bool {
        matches!(self, BarrierError::Broken)
    }
}

impl From<Cancelled> for BarrierError {
    fn from(c: Cancelled) -> BarrierError {
        BarrierError::Cancelled(c)
    }
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken => f.write_str("the barrier is broken"),
            BarrierError::Cancelled(c) => fmt::Display::fmt(c, f),
        }
    }
}

impl std::error::Error for BarrierError {}

/// The error of [`Barrier::new`] with zero parties: asyncio's
/// `ValueError('parties must be > 0')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZeroPartiesError;

impl fmt::Display for ZeroPartiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("parties must be > 0")
    }
}

impl std::error::Error for ZeroPartiesError {}

/// asyncio's `_BarrierState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Tasks arrive and wait for the last one.
    Filling,
    /// The round is released; its tasks are leaving. Arrivals wait until
    /// the last has left.
    Draining,
    /// `reset` came while tasks were inside: they leave broken; arrivals
    /// wait until the last has left.
    Resetting,
    /// `abort`: every wait fails until `reset`.
    Broken,
}

struct State {
    phase: Phase,
    /// Tasks inside the barrier: arrived in this round and not yet left
    /// (asyncio's `_count`).
    count: usize,
    /// Tasks of this round waiting for its release.
    waiters: List,
    /// Arrivals waiting for a drain or a reset to end.
    blocked: List,
}

impl State {
    /// Wakes every task of the round and every blocked arrival: they look
    /// at the phase when they run (asyncio's `notify_all`).
    fn notify_all(&mut self, wakers: &mut Vec<Waker>) {
        self.waiters.pop_all(Outcome::Granted, wakers);
        self.blocked.pop_all(Outcome::Granted, wakers);
    }

    /// A task leaves the barrier (asyncio's `_exit`): the last one out
    /// ends a drain or a reset, and lets the blocked arrivals in.
    fn exit(&mut self, wakers: &mut Vec<Waker>) {
        self.count -= 1;
        if self.count == 0 {
            if matches!(self.phase, Phase::Draining | Phase::Resetting) {
                self.phase = Phase::Filling;
            }
            self.notify_all(wakers);
        }
    }
}

/// A rendezvous for a fixed number of tasks: asyncio's `Barrier`.
///
/// Each of `parties` tasks calls [`wait`](Barrier::wait); all of them block
/// until the last one arrives, then all return together, each with its
/// arrival index (`0..parties`). As in asyncio, the barrier then drains:
/// a task that waits again before every task of the round has left waits
/// until they have, and only then starts the next round.
///
/// [`abort`](Barrier::abort) breaks it: every waiter, and every later
/// `wait`, gets [`BarrierError::Broken`] until [`reset`](Barrier::reset).
/// `reset` sends the tasks inside away with `Broken` and starts a new
/// round once they have left. In asyncio these two are coroutines; here
/// they complete at once, so they are plain methods.
///
/// # Examples
/// ```
/// let mut indexes = aio_core::run(async {
///     let barrier = aio_sync::Barrier::new(3).expect("parties > 0");
///     aio_core::gather((0..3).map(|_| barrier.wait())).await
/// })
/// .unwrap();
/// indexes.sort();
/// assert_eq!(indexes, [0, 1, 2]);
/// ```
pub struct Barrier {
    parties: usize,
    state: Mutex<State>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("state", &s.phase)
            .field("count", &s.count)
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Errors
    /// [`ZeroPartiesError`] if `parties` is 0 (asyncio raises
    /// `ValueError`).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(aio_sync::Barrier::new(2).unwrap().parties(), 2);
    /// assert_eq!(aio_sync::Barrier::new(0).unwrap_err(), aio_sync::ZeroPartiesError);
    /// ```
    pub const fn new(parties: usize) -> Result<Barrier, ZeroPartiesError> {
        match NonZeroUsize::new(parties) {
            Some(parties) => Ok(Barrier::with_parties(parties)),
            None => Err(ZeroPartiesError),
        }
    }

    /// A barrier for `parties` tasks, which cannot be zero by type: the
    /// constructor for a `static` (a `Result` cannot be unwrapped in a
    /// constant today).
    ///
    /// # Examples
    /// ```
    /// use std::num::NonZeroUsize;
    ///
    /// static START: aio_sync::Barrier =
    ///     aio_sync::Barrier::with_parties(NonZeroUsize::new(2).expect("parties > 0"));
    /// assert_eq!(START.parties(), 2);
    /// ```
    pub const fn with_parties(parties: NonZeroUsize) -> Barrier {
        Barrier {
            parties: parties.get(),
            state: Mutex::new(State {
                phase: Phase::Filling,
                count: 0,
                waiters: List::new(),
                blocked: List::new(),
            }),
        }
    }

    /// Waits until `parties` tasks are waiting, then returns this task's
    /// arrival index.
    ///
    /// # Cancellation
    /// A task cancelled while it waits returns `Err(Cancelled)` and no
    /// longer counts as arrived, as in asyncio: the others keep waiting for
    /// a full set. A task cancelled after the barrier let it through (but
    /// before it ran) also returns `Err(Cancelled)`; the others pass
    /// regardless. Dropping the future behaves the same.
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            index: 0,
            at: At::Outside,
        }
    }

    /// Breaks the barrier: current and later waiters get
    /// [`BarrierError::Broken`] until [`reset`](Barrier::reset).
    pub fn abort(&self) {
        let mut wakers = Vec::new();
        {
            let mut s = self.state.lock();
            s.phase = Phase::Broken;
            s.notify_all(&mut wakers);
        }
        wake_all(&mut wakers);
    }

    /// Returns the barrier to its empty state: the tasks inside (waiting,
    /// or released and not yet gone) get [`BarrierError::Broken`], and
    /// arrivals wait until they have left; a broken barrier works again.
    pub fn reset(&self) {
        let mut wakers = Vec::new();
        {
            let mut s = self.state.lock();
            s.phase = if s.count > 0 { Phase::Resetting } else { Phase::Filling };
            s.notify_all(&mut wakers);
        }
        wake_all(&mut wakers);
    }

    /// The number of tasks needed to pass.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of tasks waiting for the round to fill (0 while it
    /// drains or resets, as asyncio's `n_waiting`).
    pub fn n_waiting(&self) -> usize {
        let s = self.state.lock();
        if s.phase == Phase::Filling { s.count } else { 0 }
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.state.lock().phase == Phase::Broken
    }
}

/// Where a [`BarrierWait`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Not arrived: not polled yet, or done.
    Outside,
    /// Waiting in `blocked` (slot key) for a drain or reset to end.
    Blocked(usize),
    /// Counted in the round, waiting in `waiters` (slot key) for its
    /// release.
    Inside(usize),
}

/// Future of [`Barrier::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    index: usize,
    at: At,
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("index", &self.index)
            .field("at", &self.at)
            .finish()
    }
}

impl BarrierWait<'_> {
    /// Gives up (cancelled or dropped): a blocked arrival just leaves its
    /// queue; a task inside the round no longer counts, as asyncio's
    /// `finally: self._count -= 1; self._exit()`.
    fn leave(&mut self) {
        let mut wakers = Vec::new();
        {
            let mut s = self.barrier.state.lock();
            match std::mem::replace(&mut self.at, At::Outside) {
                At::Outside => return,
                At::Blocked(key) => {
                    s.blocked.remove(key);
                }
                At::Inside(key) => {
                    s.waiters.remove(key);
                    s.exit(&mut wakers);
                }
            }
        }
        wake_all(&mut wakers);
    }
}

impl Future for BarrierWait<'_> {
    type Output = Result<usize, BarrierError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.leave();
            return Poll::Ready(Err(BarrierError::Cancelled(c)));
        }
        let b = this.barrier;
        let mut wakers = Vec::new();
        let mut s = b.state.lock();
        let out = 'poll: {
            if let At::Inside(key) = this.at {
                if s.waiters.poll(key, cx.waker()).is_none() {
                    // Not woken: the round still fills (a release, a
                    // reset and an abort wake every task inside).
                    break 'poll None;
                }
                // Woken: the phase says how it ended (it cannot fill again
                // before this task has left).
                this.at = At::Outside;
                let out = match s.phase {
                    Phase::Draining => Ok(this.index),
                    Phase::Resetting | Phase::Broken | Phase::Filling => Err(BarrierError::Broken),
                };
                s.exit(&mut wakers);
                break 'poll Some(out);
            }
            if let At::Blocked(key) = this.at {
                if s.blocked.poll(key, cx.waker()).is_none() {
                    break 'poll None;
                }
                // Woken: look at the phase anew.
                this.at = At::Outside;
            }
            match s.phase {
                // Block while the barrier drains or resets.
                Phase::Draining | Phase::Resetting => {
                    this.at = At::Blocked(s.blocked.push(cx.waker().clone()));
                    break 'poll None;
                }
                Phase::Broken => break 'poll Some(Err(BarrierError::Broken)),
                Phase::Filling => {}
            }
            let index = s.count;
            s.count += 1;
            if index + 1 == b.parties {
                // The last one: release the round, and leave it.
                s.phase = Phase::Draining;
                s.notify_all(&mut wakers);
                s.exit(&mut wakers);
                break 'poll Some(Ok(index));
            }
            this.index = index;
            this.at = At::Inside(s.waiters.push(cx.waker().clone()));
            None
        };
        drop(s);
        wake_all(&mut wakers);
        match out {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}
