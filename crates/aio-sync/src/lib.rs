//! aio-sync: asyncio's synchronization primitives, fair, cancellation-safe
//! and thread-safe.
//!
//! | asyncio | aio |
//! |---|---|
//! | `async with lock:` | `let _g = lock.acquire().await?;` ([`Lock`]) |
//! | `await lock.acquire()` ... `lock.release()` | `lock.acquire().await?.forget();` ... `lock.release()?;` |
//! | `await event.wait()`, `event.set()` | [`Event::wait`], [`Event::set`] |
//! | `async with cond: await cond.wait()` | `let mut g = cond.acquire().await?; cond.wait(&mut g).await?;` ([`Condition`]) |
//! | `x = await cond.wait_for(pred)` | `let x = cond.wait_for(&mut g, pred).await?;` ([`Truthy`]) |
//! | `cond.notify()` (lock held) | `cond.notify(1)?;` ([`NotifyError`] if not) |
//! | `async with sem:` | `let _p = sem.acquire().await?;` ([`Semaphore`], [`BoundedSemaphore`]) |
//! | `Barrier(n)`, `await barrier.wait()` | `Barrier::new(n)?` ([`ZeroPartiesError`] for 0), [`Barrier::wait`] |
//!
//! # The model
//!
//! Each primitive behaves as its asyncio namesake, with three guarantees
//! asyncio does not give:
//!
//! - **Fair.** Waiters are served strictly in arrival order. A release
//!   hands the lock or permit straight to the first waiter (whose task then
//!   runs after the tasks already ready, as in asyncio), so a task that
//!   arrives later cannot take it first.
//! - **Cancellation-safe.** Every await point checks aio's cooperative
//!   cancellation first ([`aio_core::cancel`]) and returns
//!   `Err(Cancelled)`; a waiter cancelled — or simply dropped — after it
//!   was handed a lock, permit or notification passes it on to the next
//!   waiter. Nothing is lost, nothing leaks. Each awaitable documents this
//!   under *Cancellation*.
//! - **Thread-safe.** Every type is `Send + Sync`. Tasks on different
//!   loops (threads) can share a primitive, and the futures work under any
//!   executor, since they rely only on wakers (outside an aio task the
//!   cancellation check is a no-op). Uncontended paths are a single atomic
//!   operation; the waiter lists sit behind a short spin lock taken
//!   only when someone waits.
//!
//! Guards borrow their primitive; share a primitive between tasks with a
//! `static` (the constructors are `const`), an `Rc`/`Arc`, or by borrowing
//! it inside one task's `gather`. A lock guard that must move into another
//! task comes from [`Lock::acquire_owned`] on an `Arc<Lock>`.
//!
//! [`raw`] holds the building blocks ([`raw::RawSemaphore`],
//! [`raw::Notify`]) for other fair primitives, such as aio-queue's queues.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//!
//! // Three workers at a time, eight jobs, and an event to say all are done.
//! let done = aio_core::run(async {
//!     let sem = Arc::new(aio_sync::Semaphore::new(3));
//!     let all_done = Arc::new(aio_sync::Event::new());
//!     let mut tasks = Vec::new();
//!     for i in 0..8 {
//!         let sem = sem.clone();
//!         tasks.push(aio_core::create_task(async move {
//!             let _permit = sem.acquire().await?;
//!             aio_core::sleep(0.001).await?;
//!             Ok::<_, aio_core::Cancelled>(i)
//!         }));
//!     }
//!     let notifier = {
//!         let all_done = all_done.clone();
//!         aio_core::create_task(async move {
//!             for t in tasks {
//!                 t.await.unwrap()?;
//!             }
//!             all_done.set();
//!             Ok::<_, aio_core::Cancelled>(())
//!         })
//!     };
//!     all_done.wait().await?;
//!     notifier.await.unwrap()?;
//!     Ok::<_, aio_core::Cancelled>(sem.value())
//! });
//! assert_eq!(done.unwrap(), 3);
//! ```
#![forbid(unsafe_code)]

mod barrier;
mod condition;
mod event;
mod list;
mod lock;
mod loom;
pub mod raw;
mod semaphore;
#[cfg(not(loom))]
mod spin;

pub use barrier::{Barrier, BarrierError, BarrierWait, ZeroPartiesError};
pub use condition::{Condition, ConditionWait, NotifyError, Truthy};
pub use event::{Event, EventWait};
pub use lock::{Lock, LockAcquire, LockAcquireOwned, LockGuard, LockReleaseError, OwnedLockGuard};
pub use semaphore::{BoundedSemaphore, ReleaseError, Semaphore, SemaphoreAcquire, SemaphoreGuard};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn every_type_is_send_and_sync() {
        assert_send_sync::<Lock>();
        assert_send_sync::<LockGuard<'static>>();
        assert_send_sync::<OwnedLockGuard>();
        assert_send_sync::<LockAcquireOwned>();
        assert_send_sync::<Event>();
        assert_send_sync::<Condition>();
        assert_send_sync::<Semaphore>();
        assert_send_sync::<BoundedSemaphore>();
        assert_send_sync::<SemaphoreGuard<'static>>();
        assert_send_sync::<Barrier>();
        assert_send_sync::<LockAcquire<'static>>();
        assert_send_sync::<SemaphoreAcquire<'static>>();
        assert_send_sync::<EventWait<'static>>();
        assert_send_sync::<ConditionWait<'static, 'static>>();
        assert_send_sync::<BarrierWait<'static>>();
    }
}
