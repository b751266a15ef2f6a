//! The loop clock and the ways to say "how long" and "until when".
//!
//! Internally every time is a `u64` of nanoseconds since a process-wide
//! epoch, so deadlines from different loops compare. Publicly, asyncio's
//! convention holds: durations are `f64` seconds or a `Duration`, and
//! `Loop::time()` is monotonic `f64` seconds.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process epoch, read from the monotonic clock.
#[inline]
pub(crate) fn now_ns() -> u64 {
    instant_to_ns(Instant::now())
}

pub(crate) fn instant_to_ns(t: Instant) -> u64 {
    let d = t.saturating_duration_since(epoch());
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn ns_to_secs(ns: u64) -> f64 {
    ns as f64 / 1e9
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
/// [`sleep`](crate::sleep) reports it as a [`Cancelled`](crate::Cancelled)
/// whose [`is_invalid_delay`](crate::Cancelled::is_invalid_delay) is true,
/// the [`timeout`](crate::timeout) family as a
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

/// Monotonic time in seconds, on the clock of [`Loop::time`](crate::Loop::time).
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
}

impl IntoDelay for f32 {
    fn into_delay(self) -> Result<Duration, InvalidDelay> {
        f64::from(self).into_delay()
    }
}

macro_rules! int_delay {
    ($($t:ty),*) => {$(
        impl IntoDelay for $t {
            #[allow(unused_comparisons)]
            fn into_delay(self) -> Result<Duration, InvalidDelay> {
                Ok(if self <= 0 { Duration::ZERO } else { Duration::from_secs(self as u64) })
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
    fn loop_clock_is_monotonic() {
        let a = monotonic();
        let b = monotonic();
        assert!(b >= a);
        let t = Instant::now();
        let ns = t.into_deadline_ns().unwrap();
        assert!((ns_to_secs(ns) - monotonic()).abs() < 1.0);
    }
}
