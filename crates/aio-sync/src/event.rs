//! `Event`: asyncio's one-bit broadcast.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use aio_core::Cancelled;
use aio_core::cancel;

use crate::const_unless_loom;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::raw::{Notify, NotifyWait};

/// A flag tasks can wait on: asyncio's `Event`.
///
/// [`set`](Event::set) wakes every task waiting in [`wait`](Event::wait)
/// and lets later waits through at once, until [`clear`](Event::clear).
/// A waiter woken by `set` returns even if the event was cleared again
/// before it ran, as in asyncio. Setting an event nobody waits on takes no
/// lock.
///
/// # Examples
/// ```
/// let got = aio_core::run(async {
///     let event = aio_sync::Event::new();
///     let waiter = async {
///         event.wait().await?;
///         Ok::<_, aio_core::Cancelled>("event received")
///     };
///     let setter = async {
///         aio_core::sleep(0.01).await?;
///         event.set();
///         Ok(())
///     };
///     aio_core::gather!(waiter, setter).await
/// });
/// assert_eq!(got.unwrap().0, "event received");
/// ```
pub struct Event {
    set: AtomicBool,
    waiters: Notify,
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.is_set()).finish()
    }
}

impl Event {
    const_unless_loom! {
        /// An event that is not set. `const`, so it can be a `static`.
        pub const fn new() -> Event {
            Event {
                set: AtomicBool::new(false),
                waiters: Notify::new(),
            }
        }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            self.waiters.notify_all();
        }
    }

    /// Resets the flag; later waits block until the next `set`.
    pub fn clear(&self) {
        self.set.store(false, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Waits until the flag is set; at once if it is.
    ///
    /// # Cancellation
    /// If the task is cancelled while waiting, the future returns
    /// `Err(Cancelled)` and unregisters; nothing else changes (a `set` wakes
    /// every waiter, so there is nothing to pass on). Dropping it is the
    /// same.
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            waiter: self.waiters.waiter(),
        }
    }
}

/// Future of [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    waiter: NotifyWait<'a>,
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait").field("event", self.event).finish()
    }
}

impl Future for EventWait<'_> {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.waiter.cancel();
            return Poll::Ready(Err(c));
        }
        let event = this.event;
        if !this.waiter.is_queued() && event.is_set() {
            return Poll::Ready(Ok(()));
        }
        this.waiter.poll_until(cx, || event.is_set()).map(Ok)
    }
}
