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

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::cancel::{self, Cancelled};
use crate::context::{expect_core, with_core};

pub use crate::combinator::{timeout, timeout_at};
pub use crate::timer::{sleep, sleep_until};

/// How far before the process's first clock read the epoch lies: a
/// deadline in the past (`call_later(-1, f)` right after start-up) stays
/// after the epoch, so past deadlines keep their order (asyncio's clock,
/// `time.monotonic()`, counts from boot for the same effect).
const EPOCH_BACK: Duration = Duration::from_secs(24 * 3600);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = Instant::now();
        // Where an `Instant` cannot go that far back (it counts from boot
        // on some systems), as far back as it can.
        let mut back = EPOCH_BACK;
        loop {
            match now.checked_sub(back) {
                Some(t) => return t,
                None if back.as_secs() > 1 => back /= 2,
                None => return now,
            }
        }
    })
}

/// Loops with a paused clock, process-wide. While it is zero (every
/// program but a paused test), reading the clock costs one relaxed load
/// and a predictable branch more than reading `Instant::now()`.
static PAUSED_LOOPS: AtomicUsize = AtomicUsize::new(0);

/// Nanoseconds since the process epoch on the running loop's clock: the
/// real monotonic clock, or the loop's virtual one when it is paused.
#[inline]
pub(crate) fn now_ns() -> u64 {
    if PAUSED_LOOPS.load(Ordering::Relaxed) != 0 {
        if let Some(t) = paused_now() {
            return t;
        }
    }
    real_now_ns()
}

#[cold]
fn paused_now() -> Option<u64> {
    with_core(|c| c.and_then(|c| c.clock.paused_now()))
}

/// What a new timer's delay counts from: the clock now, or `None` to read
/// it at the first poll instead — when no loop runs on this thread while
/// some loop's clock is paused (`lp.run_until_complete(sleep(5))` on a
/// paused loop: the sleep will run on the virtual clock, not the real one
/// it was created on).
#[inline]
pub(crate) fn timer_base() -> Option<u64> {
    if PAUSED_LOOPS.load(Ordering::Relaxed) != 0 {
        return paused_base();
    }
    Some(real_now_ns())
}

#[cold]
fn paused_base() -> Option<u64> {
    with_core(|c| c.map(|c| c.clock.now()))
}

/// Nanoseconds since the process epoch, read from the monotonic clock.
#[inline]
pub(crate) fn real_now_ns() -> u64 {
    instant_to_ns(Instant::now())
}

/// A loop's clock: the real one, or a virtual one that only moves when the
/// loop is idle or told to ([`advance`]).
pub(crate) struct Clock {
    paused: std::cell::Cell<bool>,
    /// The virtual time, while paused.
    virtual_now: std::cell::Cell<u64>,
}

impl Clock {
    pub(crate) fn new(paused: bool) -> Clock {
        let clock = Clock {
            paused: std::cell::Cell::new(false),
            virtual_now: std::cell::Cell::new(0),
        };
        if paused {
            clock.pause();
        }
        clock
    }

    /// Freezes the clock at the real time now (never going back).
    pub(crate) fn pause(&self) {
        if !self.paused.get() {
            self.virtual_now.set(real_now_ns());
            self.paused.set(true);
            PAUSED_LOOPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.get()
    }

    /// The virtual time, when paused.
    #[inline]
    pub(crate) fn paused_now(&self) -> Option<u64> {
        self.paused.get().then(|| self.virtual_now.get())
    }

    /// The clock's time now.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        if self.paused.get() {
            self.virtual_now.get()
        } else {
            real_now_ns()
        }
    }

    /// Moves a paused clock forward to `t` (never back).
    pub(crate) fn jump_to(&self, t: u64) {
        debug_assert!(self.paused.get());
        if t > self.virtual_now.get() {
            self.virtual_now.set(t);
        }
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        if self.paused.get() {
            PAUSED_LOOPS.fetch_sub(1, Ordering::Relaxed);
        }
    }
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

pub(crate) fn instant_to_ns(t: Instant) -> u64 {
    let d = t.saturating_duration_since(epoch());
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn ns_to_secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A delay as nanoseconds forward or back from now (`call_later` with a
/// negative delay schedules in the past, as asyncio's does: the callback
/// runs at the next turn, ordered by its deadline).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedDelay {
    /// This many nanoseconds from now.
    Ahead(u64),
    /// This many nanoseconds before now.
    Back(u64),
}

impl SignedDelay {
    /// The deadline this delay gives from `now`.
    pub(crate) fn from(self, now: u64) -> u64 {
        match self {
            SignedDelay::Ahead(d) => now.saturating_add(d),
            SignedDelay::Back(d) => now.saturating_sub(d),
        }
    }
}

/// Seconds to a signed delay: negative goes back, too large saturates,
/// NaN is an error.
fn secs_to_signed(secs: f64) -> Result<SignedDelay, InvalidDelay> {
    if secs < 0.0 {
        secs_to_ns(-secs).map(SignedDelay::Back)
    } else {
        secs_to_ns(secs).map(SignedDelay::Ahead)
    }
}

/// Seconds to nanoseconds: negative means zero (as in asyncio), too large
/// saturates, NaN is an error.
pub(crate) fn secs_to_ns(secs: f64) -> Result<u64, InvalidDelay> {
    if secs.is_nan() {
        Err(InvalidDelay)
    } else if secs <= 0.0 {
        Ok(0)
    } else if secs >= (u64::MAX / 1_000_000_000) as f64 {
        Ok(u64::MAX)
    } else {
        Ok((secs * 1e9).round() as u64)
    }
}

/// The error of a delay or deadline that is not a number (NaN): asyncio's
/// `ValueError: Invalid delay: NaN (not a number)`. A negative delay is
/// not an error: it means zero, as in asyncio.
///
/// [`sleep`] reports it as a [`Cancelled`] whose
/// [`is_invalid_delay`](crate::Cancelled::is_invalid_delay) is true,
/// the [`timeout`] family as a
/// [`TimeoutError`](struct@crate::TimeoutError) whose
/// [`is_invalid_delay`](crate::TimeoutError::is_invalid_delay) is true,
/// [`Loop::call_later`](crate::Loop::call_later) as itself. Each converts
/// to an `InvalidInput` [`io::Error`](std::io::Error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InvalidDelay;

impl fmt::Display for InvalidDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid delay: NaN (not a number)")
    }
}

impl std::error::Error for InvalidDelay {}

impl From<InvalidDelay> for std::io::Error {
    fn from(e: InvalidDelay) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Monotonic time in seconds, on the clock of [`Loop::time`](crate::Loop::time):
/// the running loop's clock (virtual when it is [paused](self#the-paused-test-clock)),
/// the real monotonic clock when no loop runs on this thread.
pub fn monotonic() -> f64 {
    ns_to_secs(now_ns())
}

/// A length of time: a `Duration`, or seconds as a number, as asyncio takes
/// them (`aio::sleep(0.5)`, `aio::sleep(2)`, `aio::sleep(Duration::from_millis(5))`).
///
/// Negative seconds mean zero, as in asyncio; NaN seconds are an error
/// ([`InvalidDelay`]), never taken for zero.
pub trait IntoDelay {
    /// The delay as a `Duration`, or [`InvalidDelay`] for NaN seconds.
    fn into_delay(self) -> Result<Duration, InvalidDelay>;

    /// The delay with its sign, for the timers that order a deadline in
    /// the past ([`Loop::call_later`](crate::Loop::call_later)). The
    /// default is [`into_delay`](IntoDelay::into_delay), never negative.
    #[doc(hidden)]
    fn into_signed_delay(self) -> Result<SignedDelay, InvalidDelay>
    where
        Self: Sized,
    {
        self.into_delay().map(|d| SignedDelay::Ahead(delay_ns(d)))
    }
}

impl IntoDelay for Duration {
    fn into_delay(self) -> Result<Duration, InvalidDelay> {
        Ok(self)
    }
}

impl IntoDelay for f64 {
    fn into_delay(self) -> Result<Duration, InvalidDelay> {
        secs_to_ns(self).map(Duration::from_nanos)
    }

    fn into_signed_delay(self) -> Result<SignedDelay, InvalidDelay> {
        secs_to_signed(self)
    }
}

impl IntoDelay for f32 {
    fn into_delay(self) -> Result<Duration, InvalidDelay> {
        f64::from(self).into_delay()
    }

    fn into_signed_delay(self) -> Result<SignedDelay, InvalidDelay> {
        secs_to_signed(f64::from(self))
    }
}

macro_rules! int_delay {
    ($($t:ty),*) => {$(
        impl IntoDelay for $t {
            #[allow(unused_comparisons)]
            fn into_delay(self) -> Result<Duration, InvalidDelay> {
                Ok(if self <= 0 { Duration::ZERO } else { Duration::from_secs(self as u64) })
            }

            #[allow(unused_comparisons)]
            fn into_signed_delay(self) -> Result<SignedDelay, InvalidDelay> {
                let secs = |n: u64| n.saturating_mul(1_000_000_000);
                Ok(if self < 0 {
                    SignedDelay::Back(secs((self as i128).unsigned_abs() as u64))
                } else {
                    SignedDelay::Ahead(secs(self as u64))
                })
            }
        }
    )*};
}
int_delay!(i32, i64, u32, u64, usize);

pub(crate) fn delay_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A point in time: an `Instant`, or seconds on the loop clock (a value
/// computed from [`Loop::time`](crate::Loop::time), as asyncio's `call_at`
/// and `timeout_at` take). NaN seconds are an error ([`InvalidDelay`]).
pub trait IntoDeadline {
    /// The deadline in nanoseconds since the process epoch.
    #[doc(hidden)]
    fn into_deadline_ns(self) -> Result<u64, InvalidDelay>;

    /// The deadline as seconds on the loop clock, when it was given that
    /// way (reported back exactly, with no nanosecond round trip).
    #[doc(hidden)]
    fn exact_secs(&self) -> Option<f64> {
        None
    }
}

impl IntoDeadline for Instant {
    fn into_deadline_ns(self) -> Result<u64, InvalidDelay> {
        Ok(instant_to_ns(self))
    }
}

impl IntoDeadline for f64 {
    fn into_deadline_ns(self) -> Result<u64, InvalidDelay> {
        secs_to_ns(self)
    }

    fn exact_secs(&self) -> Option<f64> {
        Some(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_from_numbers() {
        assert_eq!(0.5.into_delay(), Ok(Duration::from_millis(500)));
        assert_eq!(2.into_delay(), Ok(Duration::from_secs(2)));
        assert_eq!((-1).into_delay(), Ok(Duration::ZERO));
        assert_eq!((-0.5).into_delay(), Ok(Duration::ZERO));
        assert_eq!(f64::NEG_INFINITY.into_delay(), Ok(Duration::ZERO));
        assert_eq!(f64::NAN.into_delay(), Err(InvalidDelay));
        assert_eq!(f32::NAN.into_delay(), Err(InvalidDelay));
        assert_eq!(f64::NAN.into_deadline_ns(), Err(InvalidDelay));
        assert_eq!(f64::INFINITY.into_delay().unwrap().as_secs(), u64::MAX / 1_000_000_000);
    }

    #[test]
    fn signed_delays_keep_their_sign() {
        assert_eq!((-1).into_signed_delay(), Ok(SignedDelay::Back(1_000_000_000)));
        assert_eq!((-0.5).into_signed_delay(), Ok(SignedDelay::Back(500_000_000)));
        assert_eq!(0.into_signed_delay(), Ok(SignedDelay::Ahead(0)));
        assert_eq!(2u64.into_signed_delay(), Ok(SignedDelay::Ahead(2_000_000_000)));
        assert_eq!(i64::MIN.into_signed_delay(), Ok(SignedDelay::Back(u64::MAX)));
        assert_eq!(
            Duration::from_millis(3).into_signed_delay(),
            Ok(SignedDelay::Ahead(3_000_000))
        );
        assert_eq!(f64::NAN.into_signed_delay(), Err(InvalidDelay));
        assert_eq!(SignedDelay::Back(5).from(3), 0);
    }

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
