//! CPython's own tests of asyncio's queues (`Lib/test/test_asyncio/
//! test_queues.py`, as released in 3.13 with `shutdown`), ported step for
//! step: the same tasks, the same `sleep(0)` turns, the same assertions.
//! The mixins CPython runs on each kind (`_QueueJoinTestMixin`,
//! `_QueueShutdownTestMixin`) run here on each kind too: the `queue`,
//! `lifo_queue` and `priority_queue` modules. Where aio's outcome differs
//! by design the test says so and checks aio's. Tests that wait for a
//! `call_later` or a timeout run on a paused clock, where the delays only
//! order events.
//!
//! A second group ports an unreleased draft of the 3.13 shutdown tests
//! (the one whose queues had `_shutdown_state` "alive" / "shutdown" /
//! "shutdown-immediate"), rewritten before 3.13 shipped: those of its
//! tests whose assertions hold for the released `shutdown`, which is the
//! one aio implements.
//!
//! Not ported, because what they check cannot be said of aio's queues:
//! - `test_repr`, `test_str`, and both mixins' `test_format`: they match
//!   asyncio's `repr`/`_format` strings (`_getters[1]`, `tasks=2`,
//!   `shutdown`); aio's queues have a `Debug` of their own.
//! - `test_generic_alias`: `asyncio.Queue[int]` is Python typing.
//! - `test_get_with_putters`: it appends a bare future to `q._putters`;
//!   its point (a `get` wakes a waiting putter) is
//!   `test_get_with_waiting_putters`'s, ported.
//! - `test_float_maxsize`: `maxsize=1.3`; aio's `maxsize` is a `usize`.
//! - From the draft: `test_shutdown_repr` (a `repr` string);
//!   `test_shutdown_empty`, `test_shutdown_nonempty` and
//!   `test_shutdown_immediate` (replaced by the released tests of the same
//!   names, ported); and three whose assertions contradict the released
//!   `shutdown`: `test_shutdown_getters_deque` (it expects a getter blocked
//!   on an empty queue to stay blocked after `shutdown()`; 3.13 wakes it
//!   with `QueueShutDown`), `test_shutdown_immediate_all_methods_in_one_task`
//!   and `test_shutdown_immediate_put_and_join` (they expect `task_done` and
//!   `join` to raise `QueueShutDown` after `shutdown(immediate=True)`; in
//!   3.13 the drained items count as done, so `task_done` raises
//!   `ValueError` and `join` returns).
//!
//! What a ported test checked through internals is checked through what it
//! implies: `len(q._getters) == 0` after a getter timed out becomes "an
//! item put next is not promised to it"; `len(q._putters) == 1` becomes
//! "the put task has not finished".

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use aio_core::{Builder, Cancelled, create_task, get_running_loop, run, sleep, wait_for};
use aio_queue::{
    GetError, LifoQueue, PriorityQueue, PutError, Queue, QueueGet, QueueJoin, QueuePut, TaskDoneError, TryGetError,
    TryPutError,
};
use aio_sync::Event;

async fn turn() {
    sleep(0).await.unwrap();
}

/// Runs `f` on a loop whose clock only moves when every task waits.
fn paused<T>(f: impl Future<Output = T> + 'static) -> T {
    let lp = Builder::new().paused_clock().build();
    let out = lp.run_until_complete(f).expect("the test's main task");
    lp.close();
    out
}

/// What the mixins need of a queue kind: CPython's `self.q_class`.
trait Kind<T>: Sized + 'static {
    fn new() -> Self;
    fn with_maxsize(maxsize: usize) -> Self;
    fn put(&self, item: T) -> QueuePut<'_, T>;
    fn get(&self) -> QueueGet<'_, T>;
    fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>>;
    fn get_nowait(&self) -> Result<T, TryGetError>;
    fn task_done(&self) -> Result<(), TaskDoneError>;
    fn join(&self) -> QueueJoin<'_>;
    fn shutdown(&self, immediate: bool);
    fn is_shut_down(&self) -> bool;
    fn qsize(&self) -> usize;
    fn unfinished_tasks(&self) -> usize;
}

macro_rules! impl_kind {
    ($($Q:ident),*) => {$(
        impl<T: Ord + 'static> Kind<T> for $Q<T> {
            fn new() -> Self { $Q::new() }
            fn with_maxsize(maxsize: usize) -> Self { $Q::with_maxsize(maxsize) }
            fn put(&self, item: T) -> QueuePut<'_, T> { $Q::put(self, item) }
            fn get(&self) -> QueueGet<'_, T> { $Q::get(self) }
            fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> { $Q::put_nowait(self, item) }
            fn get_nowait(&self) -> Result<T, TryGetError> { $Q::get_nowait(self) }
            fn task_done(&self) -> Result<(), TaskDoneError> { $Q::task_done(self) }
            fn join(&self) -> QueueJoin<'_> { $Q::join(self) }
            fn shutdown(&self, immediate: bool) { $Q::shutdown(self, immediate) }
            fn is_shut_down(&self) -> bool { $Q::is_shut_down(self) }
            fn qsize(&self) -> usize { $Q::qsize(self) }
            fn unfinished_tasks(&self) -> usize { $Q::unfinished_tasks(self) }
        }
    )*};
}

impl_kind!(Queue, LifoQueue, PriorityQueue);

/// Pastes one `#[test]` per kind for each generic test below, as CPython's
/// `QueueJoinTests`, `LifoQueueJoinTests`, `PriorityQueueJoinTests` (and
/// the `*ShutdownTests`) run one mixin on each class.
macro_rules! for_each_kind {
    ($($test:ident),* $(,)?) => {
        mod queue {
            $(#[test] fn $test() { super::$test::<aio_queue::Queue<_>>(); })*
        }
        mod lifo_queue {
            $(#[test] fn $test() { super::$test::<aio_queue::LifoQueue<_>>(); })*
        }
        mod priority_queue {
            $(#[test] fn $test() { super::$test::<aio_queue::PriorityQueue<_>>(); })*
        }
    };
}

for_each_kind!(
    test_task_done_underflow,
    test_task_done,
    test_join_empty_queue,
    test_shutdown_empty,
    test_shutdown_nonempty,
    test_shutdown_immediate,
    test_shutdown_immediate_with_unfinished,
    test_shutdown_allowed_transitions,
    test_shutdown_putters_deque,
    test_shutdown_immediate_putters_deque,
    test_shutdown_immediate_getters_deque,
    test_shutdown_get,
    test_shutdown_immediate_get,
    test_shutdown_get_task_done_join,
    test_shutdown_put,
    test_shutdown_immediate_put,
    test_shutdown_put_join,
);

// --- QueueBasicTests --------------------------------------------------------

#[test]
fn test_empty() {
    run(async {
        let q = Queue::new();
        assert!(q.empty());
        q.put(1).await.unwrap();
        assert!(!q.empty());
        assert_eq!(q.get().await.unwrap(), 1);
        assert!(q.empty());
    });
}

#[test]
fn test_full() {
    run(async {
        let q: Queue<i32> = Queue::new();
        assert!(!q.full());

        let q = Queue::with_maxsize(1);
        q.put(1).await.unwrap();
        assert!(q.full());
    });
}

/// QueueBasicTests.test_order, LifoQueueTests.test_order and
/// PriorityQueueTests.test_order in one.
#[test]
fn test_order_of_each_kind() {
    run(async {
        let q = Queue::new();
        let (l, p) = (LifoQueue::new(), PriorityQueue::new());
        for i in [1, 3, 2] {
            q.put(i).await.unwrap();
            l.put(i).await.unwrap();
            p.put(i).await.unwrap();
        }
        let mut items = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            items.0.push(q.get().await.unwrap());
            items.1.push(l.get().await.unwrap());
            items.2.push(p.get().await.unwrap());
        }
        assert_eq!(items, (vec![1, 3, 2], vec![2, 3, 1], vec![1, 2, 3]));
    });
}

#[test]
fn test_maxsize() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(2));
        assert_eq!(q.maxsize(), 2);
        let have_been_put = Rc::new(RefCell::new(Vec::new()));
        let (q2, put) = (q.clone(), have_been_put.clone());
        let t = create_task(async move {
            for i in 0..3 {
                q2.put(i).await.map_err(|e| e.into_inner())?;
                put.borrow_mut().push(i);
            }
            Ok::<_, i32>(true)
        });
        for _ in 0..2 {
            turn().await;
        }
        // The putter is blocked after putting two items.
        assert_eq!(*have_been_put.borrow(), [0, 1]);
        assert_eq!(q.get().await.unwrap(), 0);
        // Let the putter resume and put the last item.
        turn().await;
        assert_eq!(*have_been_put.borrow(), [0, 1, 2]);
        assert_eq!(q.get().await.unwrap(), 1);
        assert_eq!(q.get().await.unwrap(), 2);
        assert!(t.done());
        assert_eq!(t.await.unwrap(), Ok(true));
    });
}

// --- QueueGetTests ----------------------------------------------------------

#[test]
fn test_blocking_get() {
    run(async {
        let q = Queue::new();
        q.put_nowait(1).unwrap();
        assert_eq!(q.get().await.unwrap(), 1);
    });
}

#[test]
fn test_blocking_get_wait() {
    paused(async {
        let q = Arc::new(Queue::new());
        let started = Arc::new(Event::new());
        let finished = Rc::new(Cell::new(false));
        let (q2, s2, f2) = (q.clone(), started.clone(), finished.clone());
        let queue_get_task = create_task(async move {
            s2.set();
            let res = q2.get().await;
            f2.set(true);
            res
        });
        started.wait().await.unwrap();
        assert!(!finished.get());
        let q3 = q.clone();
        get_running_loop()
            .call_later(0.01, move || q3.put_nowait(1).unwrap())
            .unwrap();
        let res = queue_get_task.await.unwrap();
        assert!(finished.get());
        assert_eq!(res, Ok(1));
    });
}

#[test]
fn test_nonblocking_get() {
    let q = Queue::new();
    q.put_nowait(1).unwrap();
    assert_eq!(q.get_nowait(), Ok(1));
}

#[test]
fn test_nonblocking_get_exception() {
    let q: Queue<i32> = Queue::new();
    assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
}

#[test]
fn test_get_cancelled_race() {
    run(async {
        let q = Arc::new(Queue::new());
        let (a, b) = (q.clone(), q.clone());
        let t1 = create_task(async move { a.get().await });
        let t2 = create_task(async move { b.get().await });
        turn().await;
        t1.cancel();
        turn().await;
        assert!(t1.done());
        q.put("a").await.unwrap();
        turn().await;
        assert_eq!(t2.await.unwrap(), Ok("a"));
    });
}

#[test]
fn test_get_with_waiting_putters() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        let (a, b) = (q.clone(), q.clone());
        let _pa = create_task(async move { a.put("a").await });
        let _pb = create_task(async move { b.put("b").await });
        assert_eq!(q.get().await.unwrap(), "a");
        assert_eq!(q.get().await.unwrap(), "b");
    });
}

#[test]
fn test_why_are_getters_waiting() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        let producer_num_items = 5;
        let p = q.clone();
        let producer = create_task(async move {
            for i in 0..producer_num_items {
                p.put(i).await?;
            }
            Ok::<_, PutError<i32>>(())
        });
        let c = q.clone();
        let consumer = create_task(async move {
            for _ in 0..producer_num_items {
                c.get().await?;
            }
            Ok::<_, GetError>(())
        });
        producer.await.unwrap().unwrap();
        consumer.await.unwrap().unwrap();
    });
}

#[test]
fn test_cancelled_getters_not_being_held_in_self_getters() {
    paused(async {
        let queue = Queue::with_maxsize(5);
        let timed_out = wait_for(queue.get(), 0.1).await;
        assert!(timed_out.is_err(), "the get times out: {timed_out:?}");
        // len(queue._getters) == 0: an item put now is not promised to the
        // getter that timed out, so it can be taken at once.
        queue.put_nowait(1).unwrap();
        assert_eq!(queue.get_nowait(), Ok(1));
    });
}

// --- QueuePutTests ----------------------------------------------------------

#[test]
fn test_blocking_put() {
    run(async {
        let q = Queue::new();
        // No maxsize, won't block.
        q.put(1).await.unwrap();
        assert_eq!(q.get().await.unwrap(), 1);
    });
}

#[test]
fn test_blocking_put_wait() {
    paused(async {
        let q = Arc::new(Queue::with_maxsize(1));
        let started = Arc::new(Event::new());
        let finished = Rc::new(Cell::new(false));
        let q1 = q.clone();
        get_running_loop()
            .call_later(0.01, move || {
                let _ = q1.get_nowait();
            })
            .unwrap();
        let (q2, s2, f2) = (q.clone(), started.clone(), finished.clone());
        let queue_put_task = create_task(async move {
            s2.set();
            q2.put(1).await?;
            q2.put(2).await?;
            f2.set(true);
            Ok::<_, PutError<i32>>(())
        });
        started.wait().await.unwrap();
        assert!(!finished.get());
        queue_put_task.await.unwrap().unwrap();
        assert!(finished.get());
    });
}

#[test]
fn test_nonblocking_put() {
    let q = Queue::new();
    q.put_nowait(1).unwrap();
    assert_eq!(q.get_nowait(), Ok(1));
}

/// If the reader gets 2, item 1 was dropped.
#[test]
fn test_get_cancel_drop_one_pending_reader() {
    run(async {
        let q = Arc::new(Queue::new());
        let r = q.clone();
        let reader = create_task(async move { r.get().await });
        turn().await;
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        reader.cancel();
        let result = match reader.await {
            Ok(got) => got.unwrap(),
            // Cancelled: try again.
            Err(_) => {
                let r = q.clone();
                create_task(async move { r.get().await }).await.unwrap().unwrap()
            }
        };
        assert_eq!(result, 1);
    });
}

#[test]
fn test_get_cancel_drop_many_pending_readers() {
    run(async {
        let q = Arc::new(Queue::new());
        let reader = || {
            let q = q.clone();
            create_task(async move { q.get().await })
        };
        let (r1, r2, r3) = (reader(), reader(), reader());
        turn().await;
        q.put_nowait(1).unwrap();
        q.put_nowait(2).unwrap();
        r1.cancel();
        assert!(r1.await.is_err(), "the reader ends cancelled");
        let v3 = r3.await.unwrap().unwrap();
        let v2 = r2.await.unwrap().unwrap();
        // Which concurrent reader gets which is undefined.
        let mut got = [v2, v3];
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn test_put_cancel_drop() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(1).unwrap();
        // Putting a second item has to block.
        let w = q.clone();
        let writer = create_task(async move { w.put(2).await });
        turn().await;
        assert_eq!(q.get_nowait(), Ok(1));
        writer.cancel();
        if writer.await.is_err() {
            // Cancelled: try again.
            let w = q.clone();
            create_task(async move { w.put(2).await }).await.unwrap().unwrap();
        }
        assert_eq!(q.get_nowait(), Ok(2));
        assert_eq!(q.qsize(), 0);
    });
}

#[test]
fn test_nonblocking_put_exception() {
    let q = Queue::with_maxsize(1);
    q.put_nowait(1).unwrap();
    assert_eq!(q.put_nowait(2), Err(TryPutError::Full(2)));
}

#[test]
fn test_put_cancelled() {
    run(async {
        let q = Arc::new(Queue::new());
        let p = q.clone();
        let t = create_task(async move {
            p.put(1).await?;
            Ok::<_, PutError<i32>>(true)
        });
        assert_eq!(q.get().await.unwrap(), 1);
        assert!(t.done());
        assert_eq!(t.await.unwrap(), Ok(true));
    });
}

#[test]
fn test_put_cancelled_race() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        let put = |v| {
            let q = q.clone();
            create_task(async move { q.put(v).await })
        };
        let (put_a, put_b, put_c) = (put("a"), put("b"), put("X"));
        turn().await;
        assert!(put_a.done());
        assert!(!put_b.done());
        put_c.cancel();
        turn().await;
        assert!(put_c.done());
        assert_eq!(q.get_nowait(), Ok("a"));
        turn().await;
        assert_eq!(q.get_nowait(), Ok("b"));
        put_b.await.unwrap().unwrap();
    });
}

#[test]
fn test_put_with_waiting_getters() {
    run(async {
        let q = Arc::new(Queue::new());
        let g = q.clone();
        let t = create_task(async move { g.get().await });
        turn().await;
        q.put("a").await.unwrap();
        assert_eq!(t.await.unwrap(), Ok("a"));
    });
}

#[test]
fn test_why_are_putters_waiting() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(2));
        let g = q.clone();
        let getter = create_task(async move {
            sleep(0).await?;
            for _ in 0..g.qsize() {
                g.get_nowait().unwrap();
            }
            Ok::<_, Cancelled>(())
        });
        let putters: Vec<_> = (0..4)
            .map(|i| {
                let q = q.clone();
                create_task(async move { q.put(i).await })
            })
            .collect();
        getter.await.unwrap().unwrap();
        for p in putters {
            p.await.unwrap().unwrap();
        }
    });
}

#[test]
fn test_cancelled_puts_not_being_held_in_self_putters() {
    run(async {
        // Full queue.
        let queue = Arc::new(Queue::with_maxsize(1));
        queue.put_nowait(1).unwrap();
        // A task waiting for room to put an item.
        let p = queue.clone();
        let put_task = create_task(async move { p.put(1).await });
        turn().await;
        // len(queue._putters) == 1: the put waits.
        assert!(!put_task.done());
        put_task.cancel();
        assert!(
            put_task.await.is_err_and(|e| e.is_cancelled()),
            "the put ends cancelled"
        );
        // len(queue._putters) == 0: the slot freed next is not handed to
        // the cancelled putter, so a put can take it at once.
        assert_eq!(queue.get_nowait(), Ok(1));
        assert_eq!(queue.put_nowait(2), Ok(()));
    });
}

#[test]
fn test_cancelled_put_after_its_slot_was_freed() {
    // CPython's test_cancelled_put_silence_value_error_exception: the put
    // was woken by get_nowait, then cancelled before it ran: it raises
    // CancelledError (aio's gives the item back with it, and the task that
    // lets it propagate ends cancelled).
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(1).unwrap();
        let p = q.clone();
        let put_task = create_task(async move { p.put(1).await });
        turn().await;
        q.get_nowait().unwrap();
        put_task.cancel();
        assert!(put_task.await.is_err(), "the put ends cancelled");
        // The slot it was handed is free again.
        assert_eq!(q.put_nowait(2), Ok(()));
    });
}

// --- _QueueJoinTestMixin, on each kind --------------------------------------

fn test_task_done_underflow<Q: Kind<i32>>() {
    let q = Q::new();
    assert_eq!(q.task_done(), Err(TaskDoneError));
}

fn test_task_done<Q: Kind<i32>>() {
    run(async {
        let q = Arc::new(Q::new());
        for i in 0..100 {
            q.put_nowait(i).unwrap();
        }
        let accumulator = Rc::new(Cell::new(0));
        // Two workers get items from the queue and call task_done after
        // each. Join the queue and assert all items have been processed.
        let running = Rc::new(Cell::new(true));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (q, acc, running) = (q.clone(), accumulator.clone(), running.clone());
                create_task(async move {
                    while running.get() {
                        let item = q.get().await?;
                        acc.set(acc.get() + item);
                        q.task_done().unwrap();
                    }
                    Ok::<(), GetError>(())
                })
            })
            .collect();
        q.join().await.unwrap();
        assert_eq!(accumulator.get(), (0..100).sum::<i32>());
        // Close the running workers.
        running.set(false);
        for _ in 0..tasks.len() {
            q.put_nowait(0).unwrap();
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
}

fn test_join_empty_queue<Q: Kind<i32>>() {
    run(async {
        let q = Q::new();
        // A queue joins at once, before anything else (twice for insurance).
        q.join().await.unwrap();
        q.join().await.unwrap();
    });
}

// --- _QueueShutdownTestMixin, on each kind ----------------------------------

type Item = &'static str;

/// Every way in is shut: `put`, `put_nowait`, `get`, `get_nowait` (the
/// four `assertRaisesShutdown` blocks each test repeats).
async fn assert_shut<Q: Kind<Item>>(q: &Q) {
    assert_eq!(q.put("data").await, Err(PutError::ShutDown("data")));
    assert_eq!(q.put_nowait("data"), Err(TryPutError::ShutDown("data")));
    assert_eq!(q.get().await, Err(GetError::ShutDown));
    assert_eq!(q.get_nowait(), Err(TryGetError::ShutDown));
}

fn test_shutdown_empty<Q: Kind<Item>>() {
    run(async {
        // An empty queue, and a get task.
        let q = Arc::new(Q::new());
        let g = q.clone();
        let get_task = create_task(async move { g.get().await });
        turn().await; // the get task waits before the shutdown

        q.shutdown(false); // unfinished tasks: 0 -> 0
        assert_eq!(q.qsize(), 0);

        // join() finishes.
        q.join().await.unwrap();

        // The get task has finished, with ShutDown.
        turn().await;
        assert!(get_task.done());
        assert_eq!(get_task.await.unwrap(), Err(GetError::ShutDown));

        assert_shut(&*q).await;
    });
}

fn test_shutdown_nonempty<Q: Kind<Item>>() {
    run(async {
        // A full queue of 1 item, and join and put tasks.
        let q = Arc::new(Q::with_maxsize(1));
        q.put_nowait("data").unwrap();
        let j = q.clone();
        let join_task = create_task(async move { j.join().await });
        let p = q.clone();
        let put_task = create_task(async move { p.put("data2").await });

        // The put task waits.
        turn().await;
        assert!(!put_task.done());

        q.shutdown(false); // unfinished tasks: 1 -> 1
        assert_eq!(q.qsize(), 1);

        // The put task has finished, with ShutDown.
        turn().await;
        assert!(put_task.done());
        assert_eq!(put_task.await.unwrap(), Err(PutError::ShutDown("data2")));

        // get() takes the item still queued.
        assert_eq!(q.get().await, Ok("data"));

        // The join task still waits.
        turn().await;
        assert!(!join_task.done());

        assert_shut(&*q).await;

        // One task is unfinished: marking it done lets join() return.
        q.task_done().unwrap();
        turn().await;
        assert!(join_task.done());
        join_task.await.unwrap().unwrap();

        assert_eq!(q.task_done(), Err(TaskDoneError), "all tasks were marked done");
    });
}

fn test_shutdown_immediate<Q: Kind<Item>>() {
    run(async {
        // A queue of 1 item, and a join task.
        let q = Arc::new(Q::new());
        q.put_nowait("data").unwrap();
        let j = q.clone();
        let join_task = create_task(async move { j.join().await });

        q.shutdown(true); // unfinished tasks: 1 -> 0
        assert_eq!(q.qsize(), 0);

        // The join task has finished.
        turn().await;
        assert!(join_task.done());
        join_task.await.unwrap().unwrap();

        assert_shut(&*q).await;

        assert_eq!(q.task_done(), Err(TaskDoneError), "no task is unfinished");
    });
}

fn test_shutdown_immediate_with_unfinished<Q: Kind<Item>>() {
    run(async {
        // A queue of 2 items (1 taken), and a join task.
        let q = Arc::new(Q::new());
        q.put_nowait("data").unwrap();
        q.put_nowait("data").unwrap();
        let j = q.clone();
        let join_task = create_task(async move { j.join().await });
        assert_eq!(q.get().await, Ok("data"));

        q.shutdown(true); // unfinished tasks: 2 -> 1
        assert_eq!(q.qsize(), 0);

        // The join task still waits.
        turn().await;
        assert!(!join_task.done());

        assert_shut(&*q).await;

        // One task is unfinished.
        q.task_done().unwrap();
        assert_eq!(q.task_done(), Err(TaskDoneError), "all tasks were marked done");

        // The join task has finished.
        turn().await;
        assert!(join_task.done());
        join_task.await.unwrap().unwrap();
    });
}

// --- The unreleased draft's shutdown tests that hold for 3.13 ---------------
//
// The draft's helpers wait for an event `go` set by `_shutdown` between two
// sleeps of `self.delay`, and record in `results` whether each outcome was
// the expected one.

const DELAY: f64 = 0.001;

type Results = Rc<RefCell<Vec<bool>>>;

/// `_get`: `Some(item)`, or `None` if the queue was shut down.
async fn get_after<Q: Kind<Item>>(q: Arc<Q>, go: Arc<Event>, results: Results, shutdown: bool) -> Option<Item> {
    go.wait().await.unwrap();
    match q.get().await {
        Ok(msg) => {
            results.borrow_mut().push(!shutdown);
            Some(msg)
        }
        Err(GetError::ShutDown) => {
            results.borrow_mut().push(shutdown);
            None
        }
        Err(e) => panic!("get raised {e:?}"),
    }
}

/// `_get_nowait`.
async fn get_nowait_after<Q: Kind<Item>>(q: Arc<Q>, go: Arc<Event>, results: Results, shutdown: bool) -> Option<Item> {
    go.wait().await.unwrap();
    match q.get_nowait() {
        Ok(msg) => {
            results.borrow_mut().push(!shutdown);
            Some(msg)
        }
        Err(TryGetError::ShutDown) => {
            results.borrow_mut().push(shutdown);
            None
        }
        Err(e) => panic!("get_nowait raised {e:?}"),
    }
}

/// `_get_task_done`.
async fn get_task_done_after<Q: Kind<Item>>(q: Arc<Q>, go: Arc<Event>, results: Results) -> Option<Item> {
    go.wait().await.unwrap();
    match q.get().await {
        Ok(msg) => {
            q.task_done().unwrap();
            results.borrow_mut().push(true);
            Some(msg)
        }
        Err(GetError::ShutDown) => {
            results.borrow_mut().push(false);
            None
        }
        Err(e) => panic!("get raised {e:?}"),
    }
}

/// `_put`.
async fn put_after<Q: Kind<Item>>(q: Arc<Q>, go: Arc<Event>, msg: Item, results: Results, shutdown: bool) -> bool {
    go.wait().await.unwrap();
    match q.put(msg).await {
        Ok(()) => {
            results.borrow_mut().push(!shutdown);
            !shutdown
        }
        Err(PutError::ShutDown(_)) => {
            results.borrow_mut().push(shutdown);
            shutdown
        }
        Err(e) => panic!("put raised {e:?}"),
    }
}

/// `_put_nowait` (which records `False` when the put succeeds).
async fn put_nowait_after<Q: Kind<Item>>(
    q: Arc<Q>,
    go: Arc<Event>,
    msg: Item,
    results: Results,
    shutdown: bool,
) -> bool {
    go.wait().await.unwrap();
    match q.put_nowait(msg) {
        Ok(()) => {
            results.borrow_mut().push(false);
            !shutdown
        }
        Err(TryPutError::ShutDown(_)) => {
            results.borrow_mut().push(true);
            shutdown
        }
        Err(e) => panic!("put_nowait raised {e:?}"),
    }
}

/// `_shutdown`.
async fn shutdown_then_go<Q: Kind<Item>>(q: Arc<Q>, go: Arc<Event>, immediate: bool) {
    q.shutdown(immediate);
    sleep(DELAY).await.unwrap();
    go.set();
    sleep(DELAY).await.unwrap();
}

/// `_join` (3.13's `join` never raises `QueueShutDown`: it returns, or is
/// cancelled).
async fn join_recording<Q: Kind<Item>>(q: Arc<Q>, results: Results, shutdown: bool) -> Result<bool, Cancelled> {
    match q.join().await {
        Ok(()) => {
            results.borrow_mut().push(!shutdown);
            Ok(true)
        }
        Err(c) => {
            results.borrow_mut().push(shutdown);
            Err(c)
        }
    }
}

fn results() -> Results {
    Rc::new(RefCell::new(Vec::new()))
}

/// The draft checked `q._shutdown_state` ("alive", "shutdown",
/// "shutdown-immediate"); aio shows the state through what the queue
/// does, so the queue holds two items (the draft's held none) to tell a
/// shutdown, which keeps them, from an immediate one, which drops them.
fn test_shutdown_allowed_transitions<Q: Kind<Item>>() {
    let q = Q::new();
    q.put_nowait("a").unwrap();
    q.put_nowait("b").unwrap();
    // Alive.
    assert!(!q.is_shut_down());

    q.shutdown(false);
    // Shut down: the items stay.
    assert!(q.is_shut_down());
    assert_eq!((q.qsize(), q.unfinished_tasks()), (2, 2));

    q.shutdown(true);
    // Shut down immediately: the items are dropped and count as done.
    assert!(q.is_shut_down());
    assert_eq!((q.qsize(), q.unfinished_tasks()), (0, 0));

    // And no way back.
    q.shutdown(false);
    assert!(q.is_shut_down());
    assert_eq!(q.put_nowait("c"), Err(TryPutError::ShutDown("c")));
    assert_eq!(q.get_nowait(), Err(TryGetError::ShutDown));
}

fn shutdown_putters<Q: Kind<Item>>(immediate: bool) {
    paused(async move {
        let q = Arc::new(Q::with_maxsize(2));
        q.put("E").await.unwrap();
        q.put("W").await.unwrap();
        // The queue is full.
        let p = q.clone();
        let t = create_task(async move { p.put("Y").await });
        sleep(DELAY).await.unwrap();
        // len(q._putters) == 1: the put waits.
        assert!(!t.done());
        q.shutdown(immediate);
        assert_eq!(t.await.unwrap(), Err(PutError::ShutDown("Y")));
    });
}

fn test_shutdown_putters_deque<Q: Kind<Item>>() {
    shutdown_putters::<Q>(false);
}

fn test_shutdown_immediate_putters_deque<Q: Kind<Item>>() {
    shutdown_putters::<Q>(true);
}

/// `_shutdown_getters(immediate=True)`: the draft's `immediate=False`
/// half contradicts 3.13 (see the top of the file).
fn test_shutdown_immediate_getters_deque<Q: Kind<Item>>() {
    paused(async {
        let q = Arc::new(Q::with_maxsize(1));
        q.put("Y").await.unwrap();
        let nb = q.qsize();
        // The queue is full.
        let g = q.clone();
        let _first = create_task(async move { g.get().await });
        sleep(DELAY).await.unwrap();
        let g = q.clone();
        let t = create_task(async move { g.get().await });
        sleep(DELAY).await.unwrap();
        // len(q._getters) == 1: the second get waits.
        assert!(!t.done());
        q.shutdown(true);
        assert_eq!(t.await.unwrap(), Err(GetError::ShutDown));
        assert_eq!(q.unfinished_tasks(), nb);
    });
}

fn shutdown_get<Q: Kind<Item>>(immediate: bool) {
    paused(async move {
        let q = Arc::new(Q::with_maxsize(2));
        let results = results();
        let go = Arc::new(Event::new());
        q.put("Y").await.unwrap();
        q.put("D").await.unwrap();
        // The queue is full.
        let r = || results.clone();
        let (q_, go_) = (|| q.clone(), || go.clone());
        let mut t = if immediate {
            vec![
                create_task(get_after(q_(), go_(), r(), true)),
                create_task(get_nowait_after(q_(), go_(), r(), true)),
            ]
        } else {
            // One of these tasks gets ShutDown.
            vec![
                create_task(get_after(q_(), go_(), r(), false)),
                create_task(get_nowait_after(q_(), go_(), r(), false)),
                create_task(get_nowait_after(q_(), go_(), r(), false)),
            ]
        };
        let n = t.len();
        let s = create_task(shutdown_then_go(q_(), go_(), immediate));
        for t in t.drain(..) {
            t.await.unwrap();
        }
        s.await.unwrap();
        let mut results = results.borrow().clone();
        if immediate {
            assert_eq!(results, vec![true; n]);
        } else {
            results.sort();
            assert_eq!(results, [false, true, true]);
        }
    });
}

fn test_shutdown_get<Q: Kind<Item>>() {
    shutdown_get::<Q>(false);
}

fn test_shutdown_immediate_get<Q: Kind<Item>>() {
    shutdown_get::<Q>(true);
}

fn test_shutdown_get_task_done_join<Q: Kind<Item>>() {
    paused(async {
        let q = Arc::new(Q::with_maxsize(2));
        let results = results();
        let go = Arc::new(Event::new());
        q.put("Y").await.unwrap();
        q.put("D").await.unwrap();
        assert_eq!(q.unfinished_tasks(), q.qsize());
        // The queue is full.
        let t0 = create_task(get_task_done_after(q.clone(), go.clone(), results.clone()));
        let t1 = create_task(get_task_done_after(q.clone(), go.clone(), results.clone()));
        let t2 = create_task(join_recording(q.clone(), results.clone(), false));
        let t3 = create_task(join_recording(q.clone(), results.clone(), false));
        let s = create_task(shutdown_then_go(q.clone(), go.clone(), false));
        let (r0, r1) = (t0.await.unwrap(), t1.await.unwrap());
        assert_eq!(t2.await.unwrap(), Ok(true));
        assert_eq!(t3.await.unwrap(), Ok(true));
        s.await.unwrap();

        assert_eq!(*results.borrow(), [true; 4]);
        let (r0, r1) = (r0.expect("got an item"), r1.expect("got an item"));
        assert!(["Y", "D"].contains(&r0));
        assert!(["Y", "D"].contains(&r1));
        assert_ne!(r0, r1);
        assert_eq!(q.unfinished_tasks(), 0);
    });
}

fn shutdown_put<Q: Kind<Item>>(immediate: bool) {
    paused(async move {
        let q = Arc::new(Q::new());
        let results = results();
        let go = Arc::new(Event::new());
        let t = [
            create_task(put_after(q.clone(), go.clone(), "Y", results.clone(), true)),
            create_task(put_nowait_after(q.clone(), go.clone(), "D", results.clone(), true)),
        ];
        let s = create_task(shutdown_then_go(q.clone(), go.clone(), immediate));
        for t in t {
            t.await.unwrap();
        }
        s.await.unwrap();
        assert_eq!(*results.borrow(), [true, true]);
    });
}

fn test_shutdown_put<Q: Kind<Item>>() {
    shutdown_put::<Q>(false);
}

fn test_shutdown_immediate_put<Q: Kind<Item>>() {
    shutdown_put::<Q>(true);
}

/// `_shutdown_put_join(immediate=False)`: `join` blocks on the two items
/// left, so a task cancels it after 0.01 s and the gather raises
/// `CancelledError`. (The draft's `immediate=True` half contradicts 3.13,
/// and its `q._finished.is_set()` checks an event the test set itself.)
fn test_shutdown_put_join<Q: Kind<Item>>() {
    paused(async {
        let q = Arc::new(Q::with_maxsize(2));
        let results = results();
        let go = Arc::new(Event::new());
        q.put("Y").await.unwrap();
        q.put("D").await.unwrap();
        // The queue is full.
        let t0 = create_task(put_after(q.clone(), go.clone(), "E", results.clone(), true));
        let t1 = create_task(put_nowait_after(q.clone(), go.clone(), "W", results.clone(), true));
        let t2 = create_task(join_recording(q.clone(), results.clone(), true));
        let s = create_task(shutdown_then_go(q.clone(), go.clone(), false));
        let join_task = t2.to_ref();
        let cancel_join_task = create_task(async move {
            sleep(0.01).await?;
            join_task.cancel();
            sleep(0).await
        });
        assert!(t0.await.unwrap());
        assert!(t1.await.unwrap());
        let joined = t2.await;
        assert!(joined.as_ref().is_err_and(|e| e.is_cancelled()), "{joined:?}");
        s.await.unwrap();
        cancel_join_task.await.unwrap().unwrap();

        assert_eq!(*results.borrow(), [true; 3]);
    });
}

/// The draft's `_shutdown_all_methods_in_one_task(immediate=False)`, which
/// uses `asyncio.Queue` whatever the mixin's class.
#[test]
fn test_shutdown_all_methods_in_one_task() {
    run(async {
        let q = Queue::new();
        q.put("L").await.unwrap();
        q.put_nowait("O").unwrap();
        q.shutdown(false);
        assert_eq!(q.put("E").await, Err(PutError::ShutDown("E")));
        assert_eq!(q.put_nowait("W"), Err(TryPutError::ShutDown("W")));

        assert!(["L", "O"].contains(&q.get().await.unwrap()));
        q.task_done().unwrap();
        assert!(["L", "O"].contains(&q.get_nowait().unwrap()));
        q.task_done().unwrap();
        q.join().await.unwrap();
        // Shut down and empty: get and get_nowait raise ShutDown.
        assert_eq!(q.get().await, Err(GetError::ShutDown));
        assert_eq!(q.get_nowait(), Err(TryGetError::ShutDown));
    });
}
