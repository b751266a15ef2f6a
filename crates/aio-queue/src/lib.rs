//! aio-queue: asyncio's queues — `Queue`, `PriorityQueue`, `LifoQueue` —
//! fair, cancellation-safe and thread-safe.
//!
//! | asyncio | aio |
//! |---|---|
//! | `asyncio.Queue(maxsize)` | [`Queue::with_maxsize`] (or [`Queue::new`], unbounded) |
//! | `await q.put(x)` / `await q.get()` | `q.put(x).await?` / `q.get().await?` |
//! | `q.put_nowait(x)` / `q.get_nowait()` | [`Queue::put_nowait`] / [`Queue::get_nowait`] |
//! | `QueueFull` / `QueueEmpty` | [`TryPutError::Full`] (with the item) / [`TryGetError::Empty`] |
//! | `q.task_done()` / `await q.join()` | [`Queue::task_done`] / [`Queue::join`] |
//! | `q.shutdown(immediate)`, `QueueShutDown` (3.13) | [`Queue::shutdown`], the `ShutDown` variants |
//! | `await asyncio.wait_for(q.get(), 1)` | `aio::wait_for(q.get(), 1).await` |
//!
//! # The model
//!
//! The semantics are asyncio's (Python 3.13, with `shutdown`), plus:
//!
//! - **Fair.** Waiting getters and putters are served in arrival order. An
//!   item put while getters wait is promised to the first of them, so a
//!   later `get_nowait` cannot take it first; the same goes for a slot
//!   freed while putters wait.
//! - **Cancellation-safe.** `get`, `put` and `join` check aio's cooperative
//!   cancellation first and return an error that converts from
//!   [`Cancelled`](aio_core::Cancelled). A getter cancelled — or dropped —
//!   after an item was promised to it passes the promise to the next
//!   getter; the item never leaves the queue. A cancelled `put` drops its
//!   item, never half-puts it.
//! - **Thread-safe.** The queues are `Send + Sync` when `T: Send` (items
//!   that are not, such as `Rc`s or task handles, work within one loop): tasks
//!   on different loops can share one, plain threads can use the
//!   `*_nowait` methods, and the futures run under any executor. One short
//!   spin lock guards a queue's items, its waiting getters and putters
//!   (aio-sync's [`WaitList`](aio_sync::raw::WaitList)s) and the promises
//!   made to them: an uncontended `put` or `get` is one atomic step to take
//!   it and a plain store to release it.
//!
//! Errors give values back: a failed `put_nowait` returns the item, and
//! `task_done` called too often is a [`TaskDoneError`], not a panic.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//!
//! // A worker pool: three tasks drain a bounded queue; `join` waits for all.
//! let total = aio_core::run(async {
//!     let queue = Arc::new(aio_queue::Queue::with_maxsize(4));
//!     let sum = Arc::new(std::sync::atomic::AtomicU64::new(0));
//!     let workers: Vec<_> = (0..3)
//!         .map(|_| {
//!             let (queue, sum) = (queue.clone(), sum.clone());
//!             aio_core::create_task(async move {
//!                 loop {
//!                     let n: u64 = queue.get().await?;
//!                     sum.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
//!                     queue.task_done().unwrap();
//!                 }
//!                 #[allow(unreachable_code)]
//!                 Ok::<(), aio_queue::GetError>(())
//!             })
//!         })
//!         .collect();
//!     for n in 1..=100 {
//!         queue.put(n).await?;
//!     }
//!     queue.join().await?;
//!     for w in &workers {
//!         w.cancel();
//!     }
//!     Ok::<_, Box<dyn std::error::Error>>(sum.load(std::sync::atomic::Ordering::Relaxed))
//! });
//! assert_eq!(total.unwrap(), 5050);
//! ```
#![forbid(unsafe_code)]

mod base;
mod error;
mod loom;
mod queue;
mod store;

pub use crate::base::{QueueGet, QueueJoin, QueuePut};
pub use error::{GetError, PutError, TaskDoneError, TryGetError, TryPutError};
pub use queue::{LifoQueue, PriorityQueue, Queue};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn every_type_is_send_and_sync() {
        assert_send_sync::<Queue<String>>();
        assert_send_sync::<PriorityQueue<String>>();
        assert_send_sync::<LifoQueue<String>>();
        assert_send_sync::<QueueGet<'static, String>>();
        assert_send_sync::<QueuePut<'static, String>>();
        assert_send_sync::<QueueJoin<'static>>();
    }
}
