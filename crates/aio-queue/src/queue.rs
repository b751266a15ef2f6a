//! The three public queue kinds: one API, three stores.

use std::fmt;

use crate::base::{Base, QueueGet, QueueJoin, QueuePut};
use crate::error::{TaskDoneError, TryGetError, TryPutError};
use crate::loom::const_unless_loom;
use crate::store::Store;

/// The methods every queue kind has, written once.
macro_rules! queue_api {
    ($Q:ident) => {
        impl<T> $Q<T> {
            /// The queue's capacity; 0 means unbounded.
            pub fn maxsize(&self) -> usize {
                self.base.maxsize()
            }

            /// The number of items in the queue (including those promised
            /// to getters that have not run yet, as in asyncio).
            pub fn qsize(&self) -> usize {
                self.base.len()
            }

            /// Whether the queue holds no items.
            pub fn empty(&self) -> bool {
                self.qsize() == 0
            }

            /// Whether the queue holds `maxsize` items (never, if
            /// unbounded).
            pub fn full(&self) -> bool {
                self.base.maxsize() > 0 && self.qsize() >= self.base.maxsize()
            }

            /// Puts `item`, waiting for a free slot if the queue is full.
            /// Waiting putters are served in arrival order.
            ///
            /// # Cancellation
            /// If the task is cancelled while it waits for room, the future
            /// returns `Err(PutError::Cancelled(c, item))`: the item comes
            /// back, not put. A free slot that had already been handed to
            /// it passes to the next waiting putter (or back to the
            /// queue): no capacity is lost. Dropping the future does the
            /// same, and drops the item with it.
            pub fn put(&self, item: T) -> QueuePut<'_, T> {
                self.base.put(item)
            }

            /// Removes and returns the next item, waiting for one if the
            /// queue is empty. Waiting getters are served in arrival order.
            /// After [`shutdown`](Self::shutdown) the remaining items can
            /// still be taken; then it returns `Err(GetError::ShutDown)`.
            ///
            /// # Cancellation
            /// If the task is cancelled while it waits, the future returns
            /// `Err(GetError::Cancelled)`. An item that had already been
            /// promised to it (put while this task had not run yet) stays
            /// in the queue and is promised to the next waiting getter: no
            /// item is lost. Dropping the future does the same. (Once the
            /// future has returned an item, the item is the caller's.)
            pub fn get(&self) -> QueueGet<'_, T> {
                self.base.get()
            }

            /// Puts `item` if there is room now; otherwise gives it back in
            /// [`TryPutError::Full`] (or [`TryPutError::ShutDown`]).
            pub fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> {
                self.base.put_nowait(item)
            }

            /// Takes an item if one is available now: [`TryGetError::Empty`]
            /// otherwise (items promised to waiting getters are not
            /// available), [`TryGetError::ShutDown`] once shut down and
            /// drained.
            pub fn get_nowait(&self) -> Result<T, TryGetError> {
                self.base.get_nowait()
            }

            /// Marks one item taken with `get` as processed. When every
            /// item put has been marked, [`join`](Self::join) returns.
            /// Calling it more often than items were put is an error, not a
            /// panic.
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.base.task_done()
            }

            /// Waits until every item put has been marked with
            /// [`task_done`](Self::task_done); at once if none is pending.
            ///
            /// # Cancellation
            /// If the task is cancelled while it waits, the future returns
            /// `Err(Cancelled)` and unregisters; the queue is unaffected.
            pub fn join(&self) -> QueueJoin<'_> {
                self.base.join()
            }

            /// The number of items put and not yet marked with
            /// [`task_done`](Self::task_done).
            pub fn unfinished_tasks(&self) -> usize {
                self.base.unfinished()
            }

            /// Shuts the queue down (Python 3.13): `put` and `put_nowait`
            /// fail with `ShutDown` from now on, and every blocked putter is
            /// woken with it. Blocked getters are woken too: `get` returns
            /// the remaining items, then `ShutDown`. With `immediate`, the
            /// remaining items are dropped first (each counted as done for
            /// `join`), so getters get `ShutDown` at once.
            pub fn shutdown(&self, immediate: bool) {
                self.base.shutdown(immediate);
            }

            /// Whether [`shutdown`](Self::shutdown) was called.
            pub fn is_shut_down(&self) -> bool {
                self.base.is_shut_down()
            }
        }

        impl<T> fmt::Debug for $Q<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Q))
                    .field("maxsize", &self.maxsize())
                    .field("qsize", &self.qsize())
                    .field("unfinished_tasks", &self.unfinished_tasks())
                    .field("shut_down", &self.is_shut_down())
                    .finish()
            }
        }
    };
}

/// A first-in, first-out queue for tasks: asyncio's `Queue`.
///
/// `maxsize` 0 (the default of [`new`](Queue::new)) is unbounded;
/// otherwise `put` waits while the queue is full. Items are stored in a
/// ring buffer under the queue's short spin lock (one atomic step per
/// push or pop, waiting included in the same turn of the lock; fewer than
/// a lock-free queue takes).
///
/// Beyond asyncio: the queue is `Send + Sync` when `T: Send`, and then
/// works between loops on different threads and from plain threads (items
/// that are not `Send`, such as `Rc`s or task handles, work within one
/// loop); waiting getters and putters are served in arrival order, and an item
/// put while getters wait is promised to the first of them; a getter or
/// putter cancelled (or dropped) after it was promised an item or a slot
/// passes it on.
///
/// # Examples
/// ```
/// async fn producer(queue: &aio_queue::Queue<Option<u32>>) -> Result<(), Box<dyn std::error::Error>> {
///     for item in [1, 2, 3] {
///         queue.put(Some(item)).await?;
///     }
///     queue.put(None).await?;
///     Ok(())
/// }
///
/// async fn consumer(queue: &aio_queue::Queue<Option<u32>>) -> Result<Vec<u32>, Box<dyn std::error::Error>> {
///     let mut got = Vec::new();
///     while let Some(item) = queue.get().await? {
///         got.push(item);
///         queue.task_done()?;
///     }
///     queue.task_done()?;
///     Ok(got)
/// }
///
/// let got = aio_core::run(async {
///     let queue = aio_queue::Queue::new();
///     let (_, got) = aio_core::gather!(producer(&queue), consumer(&queue)).await?;
///     queue.join().await?;
///     Ok::<_, Box<dyn std::error::Error>>(got)
/// });
/// assert_eq!(got.unwrap(), [1, 2, 3]);
/// ```
pub struct Queue<T> {
    base: Base<T>,
}

impl<T> Queue<T> {
    const_unless_loom! {
        /// An unbounded queue. `const`, so a queue can be a `static` (it is
        /// `Sync` when `T: Send`).
        ///
        /// # Examples
        /// ```
        /// static JOBS: aio_queue::Queue<u32> = aio_queue::Queue::new();
        ///
        /// JOBS.put_nowait(7).unwrap();
        /// assert_eq!(JOBS.get_nowait(), Ok(7));
        /// ```
        pub const fn new() -> Queue<T> {
            Queue {
                base: Base::new(0, Store::fifo_unbounded()),
            }
        }
    }

    /// A queue holding at most `maxsize` items; 0 means unbounded.
    ///
    /// At most 64 KiB is allocated for `maxsize` up front (a small queue
    /// keeps its slots in a ring, the fastest layout); beyond that, memory
    /// follows the items queued, so any `maxsize` up to `usize::MAX` is
    /// fine.
    pub fn with_maxsize(maxsize: usize) -> Queue<T> {
        Queue {
            base: Base::new(maxsize, Store::fifo(maxsize)),
        }
    }
}

queue_api!(Queue);

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue::new()
    }
}

/// A queue that gives the smallest item first: asyncio's `PriorityQueue`.
///
/// Items are compared with `Ord`; use a tuple `(priority, data)` as in
/// Python. A getter takes the smallest item present when it runs (an item
/// put meanwhile with a smaller key goes first, as in asyncio). Otherwise
/// it behaves as [`Queue`]; the items sit in a binary heap under a lock.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let queue = aio_queue::PriorityQueue::new();
/// queue.put((20, "normal")).await?;
/// queue.put((10, "urgent")).await?;
/// assert_eq!(queue.get().await?, (10, "urgent"));
/// assert_eq!(queue.get().await?, (20, "normal"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct PriorityQueue<T> {
    base: Base<T>,
}

impl<T: Ord> PriorityQueue<T> {
    const_unless_loom! {
        /// An unbounded priority queue (`const`, as [`Queue::new`]).
        pub const fn new() -> PriorityQueue<T> {
            PriorityQueue {
                base: Base::new(0, Store::heap()),
            }
        }
    }

    /// A priority queue holding at most `maxsize` items; 0 means unbounded.
    pub fn with_maxsize(maxsize: usize) -> PriorityQueue<T> {
        PriorityQueue {
            base: Base::new(maxsize, Store::heap()),
        }
    }
}

queue_api!(PriorityQueue);

impl<T: Ord> Default for PriorityQueue<T> {
    fn default() -> PriorityQueue<T> {
        PriorityQueue::new()
    }
}

/// A last-in, first-out queue: asyncio's `LifoQueue`.
///
/// A getter takes the most recent item present when it runs. Otherwise it
/// behaves as [`Queue`]; the items sit in a vector under a lock.
///
/// # Examples
/// ```
/// let queue = aio_queue::LifoQueue::new();
/// for i in 0..3 {
///     queue.put_nowait(i).unwrap();
/// }
/// assert_eq!(queue.get_nowait(), Ok(2));
/// assert_eq!(queue.get_nowait(), Ok(1));
/// ```
pub struct LifoQueue<T> {
    base: Base<T>,
}

impl<T> LifoQueue<T> {
    const_unless_loom! {
        /// An unbounded LIFO queue (`const`, as [`Queue::new`]).
        pub const fn new() -> LifoQueue<T> {
            LifoQueue {
                base: Base::new(0, Store::stack()),
            }
        }
    }

    /// A LIFO queue holding at most `maxsize` items; 0 means unbounded.
    pub fn with_maxsize(maxsize: usize) -> LifoQueue<T> {
        LifoQueue {
            base: Base::new(maxsize, Store::stack()),
        }
    }
}

queue_api!(LifoQueue);

impl<T> Default for LifoQueue<T> {
    fn default() -> LifoQueue<T> {
        LifoQueue::new()
    }
}
