//! The boundary between the loop and the operating system.
//!
//! The loop calls its driver in one place: [`Driver::park`], when no task is
//! ready, with the time until the next timer. Other threads wake a parked
//! loop through the driver's [`Unpark`]. aio-core ships [`ParkDriver`], a
//! plain thread parker with no I/O, so tasks, timers, sync primitives and
//! queues run with no reactor at all; aio-poll and aio-uring provide the I/O
//! drivers.

mod park;

pub use park::ParkDriver;

use std::any::Any;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Wakes a loop parked in [`Driver::park`], from any thread.
///
/// A wake that arrives before the loop parks must make the next `park`
/// return at once (it is "sticky").
pub trait Unpark: Send + Sync + 'static {
    /// Makes the current or next `park` return.
    fn unpark(&self);
}

/// What a loop needs from the OS: a way to block until something happens.
///
/// Implemented by [`ParkDriver`] here and by the I/O drivers of aio-poll
/// (`PollDriver`) and aio-uring (`UringDriver`).
pub trait Driver: 'static {
    /// Blocks until I/O is ready, [`Unpark::unpark`] is called, or `timeout`
    /// passes (`None`: no limit; `Some(ZERO)`: just collect what is ready).
    /// Wakes the wakers of completed I/O before returning.
    fn park(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// A handle that wakes this driver from other threads.
    fn unparker(&self) -> Arc<dyn Unpark>;

    /// The backend's name: `"park"`, `"poll"` or `"uring"`.
    fn name(&self) -> &'static str;

    /// Access to the concrete driver, for the I/O layer (aio-net) to reach
    /// the operations the driver offers.
    fn as_any(&mut self) -> &mut dyn Any;
}
