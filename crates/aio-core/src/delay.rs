//! The ways to say "how long" and "until when": [`IntoDelay`] (a
//! `Duration` or seconds), [`IntoDeadline`] (an `Instant` or seconds on
//! the loop clock), and the error of a delay that is not a number. Plain
//! data: nothing here reads the thread-local context.

use std::fmt;
use std::time::{Duration, Instant};

use crate::clock::instant_to_ns;

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
/// [`sleep`](crate::sleep) reports it as a [`Cancelled`](crate::Cancelled) whose
/// [`is_invalid_delay`](crate::Cancelled::is_invalid_delay) is true,
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
}
