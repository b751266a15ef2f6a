//! `wait`: wait for tasks until a condition, asyncio's `asyncio.wait`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ready::ReadySet;
use crate::cancel::{self, Cancelled};
use crate::delay::{IntoDelay, InvalidDelay};
use crate::task::Task;
use crate::timer::{Sleep, sleep};

/// When [`wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any task is done.
    FirstCompleted,
    /// As soon as any task fails — panics, or returns an output that is a
    /// failure ([`TaskOutput`]: an `Err`) — or when all are done. A
    /// cancelled task is not a failure, as in asyncio.
    FirstException,
    /// When every task is done.
    AllCompleted,
}

pub use ReturnWhen::{
    AllCompleted as ALL_COMPLETED, FirstCompleted as FIRST_COMPLETED, FirstException as FIRST_EXCEPTION,
};

pub use crate::task::TaskOutput;

/// The error of [`wait`]: cancelled, or nothing to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    /// The waiting task was cancelled.
    Cancelled(Cancelled),
    /// No tasks were given (asyncio's `ValueError: Set of Tasks/Futures is
    /// empty.`).
    Empty,
    /// The [`timeout`](Wait::timeout) was not a number (NaN).
    InvalidDelay(InvalidDelay),
}

impl From<Cancelled> for WaitError {
    fn from(c: Cancelled) -> WaitError {
        WaitError::Cancelled(c)
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Cancelled(c) => fmt::Display::fmt(c, f),
            WaitError::Empty => f.write_str("the set of tasks to wait for is empty"),
            WaitError::InvalidDelay(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<WaitError> for std::io::Error {
    fn from(e: WaitError) -> std::io::Error {
        match e {
            WaitError::Cancelled(c) => c.into(),
            WaitError::Empty | WaitError::InvalidDelay(_) => std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        }
    }
}

/// Waits for the tasks until `return_when` holds (or the optional
/// [`timeout`](Wait::timeout) passes) and returns `(done, pending)`, each
/// in the order given: asyncio's `wait`. The tasks are not cancelled; the
/// done ones hold their results (`Task::result`, or await them). No tasks
/// at all is an error ([`WaitError::Empty`]), as in asyncio.
///
/// # Cancellation
/// A cancelled wait returns `Err(WaitError::Cancelled)`; the tasks are
/// dropped with the future, so they keep running detached.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// use aio_core::ReturnWhen;
/// let fast = aio_core::create_task(async { aio_core::sleep(0.01).await.map(|_| "fast") });
/// let slow = aio_core::create_task(async { aio_core::sleep(10).await.map(|_| "slow") });
/// let (done, pending) = aio_core::wait(vec![fast, slow], ReturnWhen::FirstCompleted).await?;
/// assert_eq!(done.len(), 1);
/// for t in pending { t.cancel(); }
/// # Ok::<(), aio_core::WaitError>(())
/// # }).unwrap();
/// ```
pub fn wait<T: TaskOutput>(tasks: impl IntoIterator<Item = Task<T>>, return_when: ReturnWhen) -> Wait<T> {
    let tasks: Vec<Option<Task<T>>> = tasks.into_iter().map(Some).collect();
    let mut ready = ReadySet::with_capacity(tasks.len());
    for _ in 0..tasks.len() {
        ready.add();
    }
    Wait {
        done: vec![false; tasks.len()],
        tasks,
        ready,
        return_when,
        timer: None,
        n_done: 0,
        failed: false,
        settling: false,
    }
}

/// Future of [`wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<T> {
    tasks: Vec<Option<Task<T>>>,
    done: Vec<bool>,
    ready: ReadySet,
    return_when: ReturnWhen,
    timer: Option<Pin<Box<Sleep>>>,
    n_done: usize,
    failed: bool,
    /// The wait is over and returns at its next poll, one loop turn
    /// later, with every task done by then (see `poll`).
    settling: bool,
}

impl<T> fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("tasks", &self.tasks.len())
            .field("done", &self.n_done)
            .field("return_when", &self.return_when)
            .finish()
    }
}

impl<T> Wait<T> {
    /// Returns after `delay` at the latest, with what is done by then. A
    /// NaN delay makes the wait return an invalid-delay `Err(Cancelled)`
    /// (see [`sleep`]) instead of acting as zero.
    pub fn timeout(mut self, delay: impl IntoDelay) -> Wait<T> {
        self.timer = Some(Box::pin(sleep(delay)));
        self
    }

    fn finished(&self) -> bool {
        match self.return_when {
            _ if self.n_done == self.tasks.len() => true,
            ReturnWhen::FirstCompleted => self.n_done > 0,
            ReturnWhen::FirstException => self.failed,
            ReturnWhen::AllCompleted => false,
        }
    }
}

impl<T> Unpin for Wait<T> {}

impl<T: TaskOutput> Future for Wait<T> {
    type Output = Result<(Vec<Task<T>>, Vec<Task<T>>), WaitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.tasks.is_empty() {
            return Poll::Ready(Err(WaitError::Empty));
        }
        cancel::check()?;
        this.ready.set_parent(cx.waker());
        loop {
            let batch = this.ready.take();
            if batch.is_empty() {
                this.ready.recycle(batch);
                break;
            }
            for &i in &batch {
                if this.done[i] {
                    continue;
                }
                let t = this.tasks[i].as_ref().expect("tasks are kept until the wait returns");
                let mut kcx = Context::from_waker(this.ready.begin_poll(i));
                if t.poll_done(&mut kcx).is_ready() {
                    this.done[i] = true;
                    this.n_done += 1;
                    this.failed |= t.panicked() || t.output_is_failure();
                }
            }
            this.ready.recycle(batch);
        }
        let timed_out = match &mut this.timer {
            Some(s) => match s.as_mut().poll(cx) {
                // A NaN timeout: bad input, reported rather than taken for zero.
                Poll::Ready(Err(e)) if e.is_invalid_delay() => {
                    return Poll::Ready(Err(WaitError::InvalidDelay(InvalidDelay)));
                }
                p => p.is_ready(),
            },
            None => false,
        };
        if !this.settling {
            if !this.finished() && !timed_out {
                return Poll::Pending;
            }
            // asyncio learns the wait is over in a done callback (or the
            // timeout's), which releases the waiting task: it runs one
            // turn later and takes every task done by then, those that
            // finished in that turn included (CPython's
            // `test_wait_really_done`). The same turn here.
            this.settling = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut done = Vec::with_capacity(this.tasks.len());
        let mut pending = Vec::with_capacity(this.tasks.len());
        for t in this.tasks.drain(..) {
            let t = t.expect("tasks are kept until the wait returns");
            if t.done() { done.push(t) } else { pending.push(t) }
        }
        Poll::Ready(Ok((done, pending)))
    }
}
