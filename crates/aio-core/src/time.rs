//! The loop clock and the ways to say "how long" and "until when".
//!
//! Internally every time is a `u64` of nanoseconds since a process-wide
//! epoch, so deadlines from different loops compare. Publicly, asyncio's
//! convention holds: durations are `f64` seconds or a `Duration`, and
//! `Loop::time()` is monotonic `f64` seconds.

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

pub(crate) fn secs_to_ns(secs: f64) -> u64 {
    if secs.is_nan() || secs <= 0.0 {
        0
    } else if secs >= (u64::MAX / 1_000_000_000) as f64 {
        u64::MAX
    } else {
        (secs * 1e9).round() as u64
    }
}

/// Monotonic time in seconds, on the clock of [`Loop::time`](crate::Loop::time).
pub fn monotonic() -> f64 {
    ns_to_secs(now_ns())
}

/// A length of time: a `Duration`, or seconds as a number, as asyncio takes
/// them (`aio::sleep(0.5)`, `aio::sleep(2)`, `aio::sleep(Duration::from_millis(5))`).
///
/// Negative and NaN seconds mean zero.
pub trait IntoDelay {
    /// The delay as a `Duration`.
    fn into_delay(self) -> Duration;
}

impl IntoDelay for Duration {
    fn into_delay(self) -> Duration {
        self
    }
}

impl IntoDelay for f64 {
    fn into_delay(self) -> Duration {
        Duration::from_nanos(secs_to_ns(self))
    }
}

impl IntoDelay for f32 {
    fn into_delay(self) -> Duration {
        f64::from(self).into_delay()
    }
}

macro_rules! int_delay {
    ($($t:ty),*) => {$(
        impl IntoDelay for $t {
            #[allow(unused_comparisons)]
            fn into_delay(self) -> Duration {
                if self <= 0 { Duration::ZERO } else { Duration::from_secs(self as u64) }
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
/// and `timeout_at` take).
pub trait IntoDeadline {
    /// The deadline in nanoseconds since the process epoch.
    #[doc(hidden)]
    fn into_deadline_ns(self) -> u64;

    /// The deadline as seconds on the loop clock, when it was given that
    /// way (reported back exactly, with no nanosecond round trip).
    #[doc(hidden)]
    fn exact_secs(&self) -> Option<f64> {
        None
    }
}

impl IntoDeadline for Instant {
    fn into_deadline_ns(self) -> u64 {
        instant_to_ns(self)
    }
}

impl IntoDeadline for f64 {
    fn into_deadline_ns(self) -> u64 {
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
        assert_eq!(0.5.into_delay(), Duration::from_millis(500));
        assert_eq!(2.into_delay(), Duration::from_secs(2));
        assert_eq!((-1).into_delay(), Duration::ZERO);
        assert_eq!(f64::NAN.into_delay(), Duration::ZERO);
        assert_eq!(f64::INFINITY.into_delay().as_secs(), u64::MAX / 1_000_000_000);
    }

    #[test]
    fn loop_clock_is_monotonic() {
        let a = monotonic();
        let b = monotonic();
        assert!(b >= a);
        let t = Instant::now();
        let ns = t.into_deadline_ns();
        assert!((ns_to_secs(ns) - monotonic()).abs() < 1.0);
    }
}
