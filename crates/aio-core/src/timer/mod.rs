//! Timers: the heap every loop arms them in ([`heap`]), the armed-timer
//! entry that `sleep`, `timeout` and `call_later` share ([`entry`]), and the
//! simplest timer futures ([`sleep`](crate::sleep), `yield_now`).

pub(crate) mod entry;
pub(crate) mod heap;
mod raw;
mod sleep;

pub use raw::RawSleep;
pub use sleep::{Sleep, YieldNow, sleep, sleep_until, yield_now};
