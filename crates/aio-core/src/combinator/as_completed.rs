//! `as_completed`: outputs in completion order, as a stream.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::ready::ReadySet;
use super::timeout::TimeoutError;
use crate::cancel::{self, Scope};
use crate::delay::IntoDelay;
use crate::timer::{Sleep, sleep};

/// Runs the futures concurrently and yields their outputs in the order they
/// complete: asyncio's `as_completed`. It is a `futures_core::Stream`; the
/// inherent [`next`](AsCompleted::next) needs no extension trait.
///
/// The futures run inside the calling task (they may borrow), in its
/// cancellation chain: a cancellation of the caller is delivered to the
/// first child that reaches an await point, whose output (typically
/// `Err(Cancelled)`) is then yielded. Dropping the stream drops the
/// children that have not completed.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// async fn work(name: &str, d: f64) -> aio_core::Result<&str> {
///     aio_core::sleep(d).await?;
///     Ok(name)
/// }
/// let mut s = aio_core::as_completed([work("a", 0.03), work("b", 0.01), work("c", 0.02)]);
/// let mut order = vec![];
/// while let Some(r) = s.next().await {
///     order.push(r?);
/// }
/// assert_eq!(order, ["b", "c", "a"]);
/// # Ok::<(), aio_core::Cancelled>(())
/// # }).unwrap();
/// ```
pub fn as_completed<I>(futs: I) -> AsCompleted<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let futs: Box<[Option<_>]> = futs.into_iter().map(|f| Some(f.into_future())).collect();
    let mut ready = ReadySet::with_capacity(futs.len());
    for _ in 0..futs.len() {
        ready.add();
    }
    AsCompleted {
        remaining: futs.len(),
        futs,
        ready,
        pending_batch: Vec::new(),
    }
}

/// Stream of [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<F> {
    futs: Box<[Option<F>]>,
    ready: ReadySet,
    remaining: usize,
    /// Woken children not polled yet (one output is yielded per poll).
    pending_batch: Vec<usize>,
}

impl<F> fmt::Debug for AsCompleted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.remaining)
            .finish()
    }
}

// The children live in a boxed slice that never moves.
impl<F> Unpin for AsCompleted<F> {}

impl<F: Future> AsCompleted<F> {
    /// The next output in completion order; `None` when all are done.
    #[allow(clippy::should_implement_trait)] // an async `next`, as tokio's StreamExt
    pub fn next(&mut self) -> Next<'_, F> {
        Next { s: self }
    }

    /// How many futures have not completed yet.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// asyncio's `as_completed(aws, timeout=...)`: outputs in completion
    /// order until `delay` (counted from this call) passes; then each
    /// future still running is dropped and yields `Err(TimeoutError)`.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run(async {
    /// let mut s = aio_core::as_completed([aio_core::sleep(0.001), aio_core::sleep(10)]).timeout(0.05);
    /// assert!(s.next().await.unwrap().is_ok());
    /// assert_eq!(s.next().await.unwrap(), Err(aio_core::TimeoutError));
    /// assert!(s.next().await.is_none());
    /// # });
    /// ```
    pub fn timeout(self, delay: impl IntoDelay) -> AsCompletedTimeout<F> {
        AsCompletedTimeout {
            inner: self,
            timer: sleep(delay),
            timer_scope: Scope::boundary(),
            timed_out: false,
            invalid: false,
        }
    }
}

/// Stream of [`AsCompleted::timeout`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompletedTimeout<F> {
    inner: AsCompleted<F>,
    timer: Sleep,
    /// The timer is polled behind a boundary: the caller's cancellation is
    /// for the futures, not for the timer.
    timer_scope: Scope,
    timed_out: bool,
    /// The delay was NaN: every future yields an invalid-delay error.
    invalid: bool,
}

impl<F> fmt::Debug for AsCompletedTimeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompletedTimeout")
            .field("remaining", &self.inner.remaining)
            .field("timed_out", &self.timed_out)
            .finish()
    }
}

impl<F: Future> AsCompletedTimeout<F> {
    /// The next output in completion order, `Err(TimeoutError)` for each
    /// future still running at the deadline; `None` when all are done.
    #[allow(clippy::should_implement_trait)] // an async `next`, as tokio's StreamExt
    pub async fn next(&mut self) -> Option<Result<F::Output, TimeoutError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<F: Future> Stream for AsCompletedTimeout<F> {
    type Item = Result<F::Output, TimeoutError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.timed_out {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(v) => return Poll::Ready(v.map(Ok)),
                Poll::Pending => {}
            }
            let fired = {
                let _g = this.timer_scope.enter();
                Pin::new(&mut this.timer).poll(cx)
            };
            match fired {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) if e.is_invalid_delay() => this.invalid = true,
                Poll::Ready(_) => {}
            }
            this.timed_out = true;
        }
        // Past the deadline: drop the futures still running, one per item.
        match this.inner.futs.iter().position(Option::is_some) {
            Some(i) => {
                this.inner.futs[i] = None;
                this.inner.remaining -= 1;
                Poll::Ready(Some(Err(if this.invalid {
                    TimeoutError::from(crate::delay::InvalidDelay)
                } else {
                    TimeoutError
                })))
            }
            None => Poll::Ready(None),
        }
    }
}

impl<F: Future> Stream for AsCompleted<F> {
    type Item = F::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        this.ready.set_parent(cx.waker());
        if cancel::is_pending() {
            // Reach the children's await points so one takes the delivery.
            for (i, f) in this.futs.iter().enumerate() {
                if f.is_some() {
                    this.ready.wake(i);
                }
            }
        }
        loop {
            if this.pending_batch.is_empty() {
                this.pending_batch = this.ready.take();
                this.pending_batch.reverse();
                if this.pending_batch.is_empty() {
                    return Poll::Pending;
                }
            }
            while let Some(i) = this.pending_batch.pop() {
                let Some(f) = this.futs[i].as_mut() else { continue };
                let mut kcx = Context::from_waker(this.ready.begin_poll(i));
                // SAFETY: the boxed slice never reallocates; the future is
                // dropped in place (set to `None`), never moved.
                let f = unsafe { Pin::new_unchecked(f) };
                if let Poll::Ready(v) = f.poll(&mut kcx) {
                    this.futs[i] = None;
                    this.remaining -= 1;
                    return Poll::Ready(Some(v));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// Future of [`AsCompleted::next`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Next<'a, F> {
    s: &'a mut AsCompleted<F>,
}

impl<F: Future> Future for Next<'_, F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.s).poll_next(cx)
    }
}
