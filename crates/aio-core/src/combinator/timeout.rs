//! `timeout`, `timeout_at`, `wait_for`: asyncio's `asyncio.timeout` and
//! `asyncio.wait_for`.
//!
//! At the deadline the inner future is cancelled the cooperative way: the
//! timeout's own scope gets a delivery, so the next aio await point inside
//! returns `Err(Cancelled)` and the inner future can clean up. When it then
//! finishes, the timeout reports `Err(TimeoutError)` only if that
//! cancellation propagated out of it (its output carries the `Cancelled`,
//! as `Err(c)` or inside an error such as `io::Error`), as asyncio turns
//! only an escaping `CancelledError` into `TimeoutError`. A future that
//! handled the cancellation (dropped the `Cancelled`) gives its output —
//! a value, or the error it raised while cleaning up; one that finished
//! without ever seeing it (it never reached an await point, or an io_uring
//! read completed first, returned its data and put the cancellation back)
//! gives its output too, and the timeout does not count as expired. When
//! an enclosing timeout or the task was cancelled too, the cancellation
//! belongs to them: it keeps propagating and only the outermost expired
//! timeout reports `TimeoutError`. An inner future that does not react (it
//! waits only on foreign futures) is dropped.
//!
//! A relative deadline counts from the call (`timeout(d, f)`), read from the
//! clock then: nothing times out before `d` has passed since.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use pin_project_lite::pin_project;

use crate::cancel::{self, Cancelled, Scope};
use crate::clock::ns_to_secs;
use crate::context::expect_core;
use crate::delay::{IntoDeadline, IntoDelay, InvalidDelay, SignedDelay};
use crate::time::now::{now_ns, timer_base};
use crate::timer::entry::TimerWait;

/// The error of an operation that did not finish before its deadline:
/// asyncio's `TimeoutError`.
///
/// Compare it with the `TimeoutError` constant (`assert_eq!(r,
/// Err(TimeoutError))`) or match it as `Err(TimeoutError { .. })`, as
/// asyncio's `except TimeoutError`. As asyncio chains the
/// `CancelledError` the inner future was given as the cause,
/// [`source`](std::error::Error::source) is the [`Cancelled`] the
/// timed-out future propagated (a copy that is not itself a delivery:
/// keeping the error keeps no cancellation going); equality does not look
/// at it.
///
/// A timeout given a delay or deadline that is not a number (NaN) is bad
/// input, not an expired timeout: it gives a `TimeoutError` whose
/// [`is_invalid_delay`](TimeoutError::is_invalid_delay) is true, which does
/// not equal the `TimeoutError` constant, displays as `invalid delay: NaN
/// (not a number)`, and converts to an `InvalidInput` `io::Error` instead
/// of `TimedOut`.
///
/// # Examples
/// ```
/// let r = aio_core::run(async {
///     match aio_core::timeout(0.01, aio_core::sleep(10)).await {
///         Ok(slept) => slept.map(|_| "slept"),
///         Err(aio_core::TimeoutError { .. }) => Ok("gave up"),
///     }
/// });
/// assert_eq!(r.unwrap(), "gave up");
/// ```
#[derive(Clone, Default)]
pub struct TimeoutError {
    invalid_delay: bool,
    /// What the inner future was cancelled with.
    cause: Cancelled,
}

/// A deadline that passed: the value of an expired timeout, to compare
/// with.
#[allow(non_upper_case_globals)]
pub const TimeoutError: TimeoutError = TimeoutError::new();

impl TimeoutError {
    /// A deadline that passed: what an expired timeout returns (equal to
    /// the [`TimeoutError`](const@TimeoutError) constant), its cause a
    /// cancellation with no message.
    pub const fn new() -> TimeoutError {
        TimeoutError {
            invalid_delay: false,
            cause: Cancelled::new(),
        }
    }

    /// An expired timeout whose inner future was cancelled with `cause`.
    pub(crate) fn caused_by(cause: Cancelled) -> TimeoutError {
        TimeoutError {
            invalid_delay: false,
            cause,
        }
    }

    /// Whether the timeout never applied because its delay or deadline
    /// was NaN (see [`InvalidDelay`]).
    pub fn is_invalid_delay(&self) -> bool {
        self.invalid_delay
    }
}

/// Two expired timeouts are equal (and so are two invalid delays),
/// whatever their causes.
impl PartialEq for TimeoutError {
    fn eq(&self, other: &TimeoutError) -> bool {
        self.invalid_delay == other.invalid_delay
    }
}

impl Eq for TimeoutError {}

impl From<InvalidDelay> for TimeoutError {
    fn from(_: InvalidDelay) -> TimeoutError {
        TimeoutError {
            invalid_delay: true,
            cause: Cancelled::new(),
        }
    }
}

impl fmt::Debug for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.invalid_delay {
            f.debug_tuple("TimeoutError").field(&InvalidDelay).finish()
        } else {
            f.write_str("TimeoutError")
        }
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.invalid_delay {
            fmt::Display::fmt(&InvalidDelay, f)
        } else {
            f.write_str("the operation timed out")
        }
    }
}

impl std::error::Error for TimeoutError {
    /// The [`Cancelled`] the timed-out future propagated (none for an
    /// invalid delay).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        (!self.invalid_delay).then_some(&self.cause as &(dyn std::error::Error + 'static))
    }
}

impl From<TimeoutError> for std::io::Error {
    fn from(e: TimeoutError) -> std::io::Error {
        if e.invalid_delay {
            return InvalidDelay.into();
        }
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

#[derive(Clone, Copy, Debug)]
enum When {
    /// A deadline in nanoseconds, and the seconds it was given as (if it
    /// was), which `when()` returns exactly.
    At(u64, Option<f64>),
    /// A delay whose clock is read at the first poll (see `timer_base`).
    Delay(u64),
    Never,
    /// A NaN delay or deadline: reported, never taken for zero.
    Invalid,
}

impl When {
    fn at(deadline: impl IntoDeadline) -> When {
        let secs = deadline.exact_secs();
        deadline
            .into_deadline_ns()
            .map_or(When::Invalid, |ns| When::At(ns, secs))
    }

    /// `delay` from now (the clock read now, not the loop's cached one). A
    /// negative delay is a deadline in the past, as asyncio's
    /// `loop.time() + delay` (it expires at once, and `when()` says when).
    fn after(delay: impl IntoDelay) -> When {
        delay.into_signed_delay().map_or(When::Invalid, |d| match timer_base() {
            Some(now) => When::At(d.from(now), None),
            None => When::Delay(match d {
                SignedDelay::Ahead(ns) => ns,
                SignedDelay::Back(_) => 0,
            }),
        })
    }

    fn secs(self) -> Option<f64> {
        match self {
            When::At(_, Some(s)) => Some(s),
            When::At(ns, None) => Some(ns_to_secs(ns)),
            When::Delay(d) => Some(ns_to_secs(now_ns().saturating_add(d))),
            When::Never => None,
            When::Invalid => Some(f64::NAN),
        }
    }
}

/// Why a timeout's deadline could not be moved: asyncio's
/// `RuntimeError("Cannot change state of expiring Timeout")`, raised by
/// `reschedule` once the timeout is no longer active.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let mut kept = None;
/// let r = aio_core::timeout_with(Some(0.0), |cm| {
///     kept = Some(cm.clone());
///     aio_core::sleep(10)
/// })
/// .await;
/// assert_eq!(r, Err(aio_core::TimeoutError));
/// let cm = kept.unwrap();
/// assert_eq!(cm.reschedule(None::<f64>), Err(aio_core::RescheduleError::Expired));
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RescheduleError {
    /// The deadline passed: the body was cancelled and has not finished
    /// yet (asyncio's "expiring" state).
    Expiring,
    /// The timeout expired and is over.
    Expired,
    /// The timeout is over without expiring (asyncio's "finished").
    Finished,
}

impl fmt::Display for RescheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self {
            RescheduleError::Expiring => "expiring",
            RescheduleError::Expired => "expired",
            RescheduleError::Finished => "finished",
        };
        write!(f, "Cannot change state of {state} Timeout")
    }
}

impl std::error::Error for RescheduleError {}

/// Where a timeout is, for [`RescheduleError`]: `Ok` while its deadline
/// may still move.
fn reschedulable(expired: bool, ended: bool) -> Result<(), RescheduleError> {
    match (expired, ended) {
        (false, false) => Ok(()),
        (true, false) => Err(RescheduleError::Expiring),
        (true, true) => Err(RescheduleError::Expired),
        (false, true) => Err(RescheduleError::Finished),
    }
}

/// State shared with a [`TimeoutHandle`].
struct SharedState {
    when: When,
    changed: bool,
    expired: bool,
    /// The timeout returned its result or was dropped.
    ended: bool,
    waker: Option<Waker>,
}

type Shared = Mutex<SharedState>;

/// Moves the deadline of a running [`timeout_with`] from inside it: the
/// `cm` of asyncio's `async with asyncio.timeout(d) as cm`.
#[derive(Clone)]
pub struct TimeoutHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for TimeoutHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutHandle")
            .field("when", &self.when())
            .field("expired", &self.expired())
            .finish()
    }
}

impl TimeoutHandle {
    /// Moves the deadline to `when` (seconds on the loop clock or an
    /// `Instant`), or removes it with `None`.
    ///
    /// # Errors
    /// Once the deadline passed (the body is being cancelled, or the
    /// timeout is over) or the timeout ended, as asyncio's `reschedule`
    /// raises `RuntimeError`: the deadline stays as it was.
    pub fn reschedule(&self, when: Option<impl IntoDeadline>) -> Result<(), RescheduleError> {
        let mut sh = self.shared.lock();
        reschedulable(sh.expired, sh.ended)?;
        sh.when = when.map_or(When::Never, When::at);
        sh.changed = true;
        if let Some(w) = &sh.waker {
            w.wake_by_ref();
        }
        Ok(())
    }

    /// The current deadline in seconds on the loop clock, if any: exactly
    /// the value given to [`reschedule`](TimeoutHandle::reschedule) or
    /// `timeout_at`.
    pub fn when(&self) -> Option<f64> {
        self.shared.lock().when.secs()
    }

    /// Whether the deadline passed and the inner future was cancelled (a
    /// future that finished before it could see the cancellation did not
    /// expire).
    pub fn expired(&self) -> bool {
        self.shared.lock().expired
    }
}

pin_project! {
    /// Future of [`timeout`], [`timeout_at`], [`timeout_with`] and [`wait_for`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        // Dropped in place (set to `None`) when it finishes or is given up.
        #[pin]
        fut: Option<F>,
        limit: Limit,
    }
}

/// The deadline side of a [`Timeout`]: its scope, deadline and timer.
struct Limit {
    scope: Scope,
    when: When,
    timer: TimerWait,
    expired: bool,
    /// Expired because its delay or deadline was NaN.
    invalid: bool,
    /// `fut` was polled at least once.
    started: bool,
    shared: Option<Arc<Shared>>,
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("when", &self.limit.when)
            .field("expired", &self.limit.expired)
            .finish()
    }
}

fn new<F: IntoFuture>(when: When, fut: F, shared: Option<Arc<Shared>>) -> Timeout<F::IntoFuture> {
    Timeout {
        fut: Some(fut.into_future()),
        limit: Limit {
            scope: Scope::new(),
            when,
            timer: TimerWait::new(),
            expired: false,
            invalid: false,
            started: false,
            shared,
        },
    }
}

/// Runs `fut` with a time limit of `delay`: asyncio's `asyncio.timeout`.
///
/// # Cancellation
/// A cancellation of the caller passes through to `fut` (it is not a
/// timeout: the result is then whatever `fut` returns, typically its
/// `Err(Cancelled)`). Dropping the future drops `fut` and disarms the timer.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let r = aio_core::timeout(0.01, aio_core::sleep(10)).await;
/// assert_eq!(r, Err(aio_core::TimeoutError));
/// # });
/// ```
pub fn timeout<F: IntoFuture>(delay: impl IntoDelay, fut: F) -> Timeout<F::IntoFuture> {
    new(When::after(delay), fut, None)
}

/// Runs `fut` until `deadline` (seconds on the loop clock, or an `Instant`):
/// asyncio's `asyncio.timeout_at`.
pub fn timeout_at<F: IntoFuture>(deadline: impl IntoDeadline, fut: F) -> Timeout<F::IntoFuture> {
    new(When::at(deadline), fut, None)
}

/// asyncio's `wait_for(fut, timeout)`: the same as [`timeout`], with the
/// arguments in asyncio's order.
pub fn wait_for<F: IntoFuture>(fut: F, delay: impl IntoDelay) -> Timeout<F::IntoFuture> {
    timeout(delay, fut)
}

/// A timeout whose deadline the inner future can move: `body` receives a
/// [`TimeoutHandle`] (asyncio's `async with timeout(d) as cm`). `None`
/// starts with no deadline.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let r = aio_core::timeout_with(None::<f64>, |cm| async move {
///     cm.reschedule(Some(aio_core::get_running_loop().time() + 0.01));
///     aio_core::sleep(10).await
/// })
/// .await;
/// assert_eq!(r, Err(aio_core::TimeoutError));
/// # });
/// ```
pub fn timeout_with<D, B, F>(delay: Option<D>, body: B) -> Timeout<F::IntoFuture>
where
    D: IntoDelay,
    B: FnOnce(TimeoutHandle) -> F,
    F: IntoFuture,
{
    let when = delay.map_or(When::Never, When::after);
    let shared = Arc::new(Mutex::new(SharedState {
        when,
        changed: false,
        expired: false,
        ended: false,
        waker: None,
    }));
    let fut = body(TimeoutHandle { shared: shared.clone() });
    new(when, fut, Some(shared))
}

impl<F> Timeout<F> {
    /// Moves the deadline (or removes it with `None`) before or between
    /// polls.
    ///
    /// # Errors
    /// Once the deadline passed or the timeout returned its result (see
    /// [`TimeoutHandle::reschedule`]); the deadline stays as it was.
    pub fn reschedule(self: Pin<&mut Self>, when: Option<impl IntoDeadline>) -> Result<(), RescheduleError> {
        let this = self.project();
        let lim = this.limit;
        reschedulable(lim.expired, this.fut.is_none())?;
        lim.when = when.map_or(When::Never, When::at);
        lim.disarm();
        Ok(())
    }

    /// Whether the deadline passed and the inner future was cancelled.
    pub fn expired(&self) -> bool {
        self.limit.expired
    }

    /// The deadline in seconds on the loop clock, if any.
    pub fn when(&self) -> Option<f64> {
        self.limit.when.secs()
    }
}

/// A timeout dropped before it finished is over too: its handles can no
/// longer move a deadline nobody waits for.
impl Drop for Limit {
    fn drop(&mut self) {
        self.mark_ended();
    }
}

impl Limit {
    /// What an expiry returns: a timeout caused by `cause`, or an invalid
    /// delay.
    fn error(&self, cause: Cancelled) -> TimeoutError {
        if self.invalid {
            InvalidDelay.into()
        } else {
            TimeoutError::caused_by(cause)
        }
    }

    fn set_expired(&mut self, on: bool) {
        self.expired = on;
        if let Some(sh) = &self.shared {
            sh.lock().expired = on;
        }
    }

    fn disarm(&mut self) {
        self.timer.disarm();
    }

    /// The timeout returned its result: its deadline can no longer move.
    fn end(&mut self) {
        self.disarm();
        self.mark_ended();
    }

    /// Tells the handles the timeout is over (returned, or dropped).
    fn mark_ended(&self) {
        if let Some(sh) = &self.shared {
            sh.lock().ended = true;
        }
    }

    /// Resolves the deadline, fires it if due, keeps the timer armed.
    #[track_caller]
    #[inline]
    fn update(&mut self, cx: &mut Context<'_>) {
        if self.expired {
            return;
        }
        if let When::Delay(d) = self.when {
            let at = When::At(expect_core(|core| core.now()).saturating_add(d), None);
            self.when = at;
            if let Some(sh) = &self.shared {
                let mut sh = sh.lock();
                if matches!(sh.when, When::Delay(_)) {
                    sh.when = at;
                }
            }
        }
        if let Some(sh) = self.shared.clone() {
            let mut sh = sh.lock();
            if std::mem::take(&mut sh.changed) {
                self.when = sh.when;
                self.disarm();
            }
            match &sh.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => sh.waker = Some(cx.waker().clone()),
            }
        }
        expect_core(|core| {
            let deadline = match self.when {
                When::Never => return,
                When::Invalid => {
                    // Bad input, not a deadline: end the body as an expiry
                    // would (if it started), and say why.
                    self.disarm();
                    self.set_expired(true);
                    self.invalid = true;
                    if self.started {
                        self.scope.cancel(None);
                    }
                    return;
                }
                When::At(t, _) => t,
                When::Delay(_) => unreachable!("resolved above"),
            };
            let due = deadline <= core.now() || {
                let mut polled = self.timer.poll(core, deadline, cx);
                if polled.is_none() {
                    // Armed on another loop (moved between loops): arm here.
                    self.disarm();
                    polled = self.timer.poll(core, deadline, cx);
                }
                polled == Some(Poll::Ready(()))
            };
            if due {
                self.disarm();
                self.set_expired(true);
                self.scope.cancel(None);
            }
        });
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, TimeoutError>;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let lim = this.limit;
        lim.update(cx);
        if lim.invalid && !lim.started && this.fut.is_some() {
            // A NaN delay from the start: `fut` never runs.
            this.fut.set(None);
            lim.end();
            return Poll::Ready(Err(lim.error(Cancelled::new())));
        }
        lim.started = true;
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            panic!("`Timeout` polled after completion");
        };
        let scope = &lim.scope;
        let was_pending = scope.is_pending();
        let seen = scope.deliveries();
        let res = {
            let _g = scope.enter();
            fut.poll(cx)
        };
        match res {
            Poll::Ready(v) => {
                // The inner future's own state goes first: only its output
                // can still hold the cancellation.
                this.fut.set(None);
                lim.end();
                if lim.scope.is_pending() {
                    // It finished without seeing the cancellation (or an
                    // I/O operation that completed first gave its result
                    // and put the cancellation back): its output stands
                    // and the timeout did not expire. Dropping the output
                    // would lose data a read already took from the kernel.
                    lim.scope.clear_pending();
                    lim.set_expired(false);
                } else if lim.scope.propagating() && !cancel::owned_further_out(&lim.scope) {
                    // Its cancellation escaped, and it was ours alone: the
                    // error's cause (asyncio's `raise TimeoutError from
                    // exc`), read before the output holding it is dropped.
                    let cause = lim.scope.delivered_copy();
                    drop(v);
                    return Poll::Ready(Err(lim.error(cause)));
                }
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                if was_pending && scope.is_pending() && scope.deliveries() == seen {
                    // The inner future did not react to the cancellation.
                    scope.clear_pending();
                    this.fut.set(None);
                    lim.end();
                    Poll::Ready(Err(lim.error(lim.scope.error())))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;
    use std::future::poll_fn;

    /// The error's cause is the cancellation the block propagated, message
    /// and all (asyncio's `raise TimeoutError from exc`), not one shared
    /// value. A timeout's own expiry carries no message; here the scope is
    /// given one, as a cancellation that names its reason would.
    #[test]
    fn the_cause_keeps_the_message_the_block_saw() {
        let e = crate::run(async {
            let mut t = Box::pin(timeout(3600, async { crate::sleep(3600).await }));
            poll_fn(|cx| {
                assert!(t.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            let lim = t.as_mut().project().limit;
            lim.scope.cancel(Some(Arc::new("why".to_owned())));
            lim.set_expired(true);
            t.await.unwrap_err()
        });
        let cause = e
            .source()
            .and_then(|c| c.downcast_ref::<Cancelled>())
            .expect("a Cancelled");
        assert_eq!(cause.message(), Some("why"));
        assert_eq!(e, TimeoutError);
    }
}
