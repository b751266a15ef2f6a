//! `Barrier`: asyncio's `Barrier` (Python 3.11).

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll};

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

struct State {
    waiters: List,
    /// Tasks arrived in the current round.
    count: usize,
    broken: bool,
}

/// A rendezvous for a fixed number of tasks: asyncio's `Barrier`.
///
/// Each of `parties` tasks calls [`wait`](Barrier::wait); all of them block
/// until the last one arrives, then all return together, each with its
/// arrival index (`0..parties`). The barrier then starts a new round.
///
/// [`abort`](Barrier::abort) breaks it: every waiter, and every later
/// `wait`, gets [`BarrierError::Broken`] until [`reset`](Barrier::reset).
/// `reset` empties it: its current waiters get `Broken`, and it starts a
/// new round. In asyncio these two are coroutines; here they complete at
/// once, so they are plain methods.
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
            .field("n_waiting", &s.count)
            .field("broken", &s.broken)
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
                waiters: List::new(),
                count: 0,
                broken: false,
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
            key: None,
        }
    }

    /// Breaks the barrier: current and later waiters get
    /// [`BarrierError::Broken`] until [`reset`](Barrier::reset).
    pub fn abort(&self) {
        let mut wakers = Vec::new();
        {
            let mut s = self.state.lock();
            s.broken = true;
            s.count = 0;
            s.waiters.pop_all(Outcome::Closed, &mut wakers);
        }
        wake_all(&mut wakers);
    }

    /// Returns the barrier to its empty state: current waiters get
    /// [`BarrierError::Broken`]; a broken barrier works again.
    pub fn reset(&self) {
        let mut wakers = Vec::new();
        {
            let mut s = self.state.lock();
            s.broken = false;
            s.count = 0;
            s.waiters.pop_all(Outcome::Closed, &mut wakers);
        }
        wake_all(&mut wakers);
    }

    /// The number of tasks needed to pass.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of tasks waiting now.
    pub fn n_waiting(&self) -> usize {
        self.state.lock().count
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.state.lock().broken
    }
}

/// Future of [`Barrier::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    index: usize,
    key: Option<usize>,
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("index", &self.index)
            .field("queued", &self.key.is_some())
            .finish()
    }
}

impl BarrierWait<'_> {
    fn leave(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut s = self.barrier.state.lock();
        if s.waiters.remove(key).is_none() {
            // Still waiting in this round: it no longer counts.
            s.count -= 1;
        }
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
        let mut s = b.state.lock();
        match this.key {
            None => {
                if s.broken {
                    return Poll::Ready(Err(BarrierError::Broken));
                }
                let index = s.count;
                if index + 1 == b.parties {
                    let mut wakers = Vec::new();
                    s.waiters.pop_all(Outcome::Granted, &mut wakers);
                    s.count = 0;
                    drop(s);
                    wake_all(&mut wakers);
                    return Poll::Ready(Ok(index));
                }
                s.count += 1;
                this.index = index;
                this.key = Some(s.waiters.push(cx.waker().clone()));
                Poll::Pending
            }
            Some(key) => match s.waiters.poll(key, cx.waker()) {
                None => Poll::Pending,
                Some(o) => {
                    this.key = None;
                    Poll::Ready(match o {
                        Outcome::Granted => Ok(this.index),
                        Outcome::Closed => Err(BarrierError::Broken),
                    })
                }
            },
        }
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}
