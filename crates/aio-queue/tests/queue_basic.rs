//! Ordering of the three kinds, the nowait API, capacity, and
//! task_done/join counting.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use aio_core::{create_task, run};
use aio_queue::{LifoQueue, PriorityQueue, Queue, TaskDoneError, TryGetError, TryPutError};
use aio_test::{assert_cancelled, poll_once, settle, spawn_on, waiting_on};

/// A queue in a `static`, as a module-level `asyncio.Queue()`: the
/// constructors are `const`, and a static queue serves tasks on a loop
/// and plain threads alike.
#[test]
fn queues_can_be_statics() {
    static JOBS: Queue<u32> = Queue::new();
    static URGENT: PriorityQueue<u32> = PriorityQueue::new();
    static RECENT: LifoQueue<u32> = LifoQueue::new();
    let got = run(async {
        let consumer = create_task(async {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(JOBS.get().await.unwrap());
                JOBS.task_done().unwrap();
            }
            got
        });
        let producer = std::thread::spawn(|| {
            for i in 1..=3 {
                JOBS.put_nowait(i).unwrap();
            }
        });
        producer.join().unwrap();
        JOBS.join().await.unwrap();
        consumer.await.unwrap()
    });
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(JOBS.maxsize(), 0);
    for x in [2, 3, 1] {
        URGENT.put_nowait(x).unwrap();
        RECENT.put_nowait(x).unwrap();
    }
    assert_eq!((URGENT.get_nowait(), RECENT.get_nowait()), (Ok(1), Ok(1)));
    assert_eq!((URGENT.get_nowait(), RECENT.get_nowait()), (Ok(2), Ok(3)));
}

#[test]
fn fifo_priority_and_lifo_orders() {
    let q = Queue::new();
    let p = PriorityQueue::new();
    let l = LifoQueue::new();
    for x in [3, 1, 4, 1, 5, 9, 2, 6] {
        q.put_nowait(x).unwrap();
        p.put_nowait(x).unwrap();
        l.put_nowait(x).unwrap();
    }
    let drain = |f: &dyn Fn() -> Result<i32, TryGetError>| std::iter::from_fn(|| f().ok()).collect::<Vec<_>>();
    assert_eq!(drain(&|| q.get_nowait()), [3, 1, 4, 1, 5, 9, 2, 6]);
    assert_eq!(drain(&|| p.get_nowait()), [1, 1, 2, 3, 4, 5, 6, 9]);
    assert_eq!(drain(&|| l.get_nowait()), [6, 2, 9, 5, 1, 4, 1, 3]);
}

#[test]
fn priority_tuples_smallest_first() {
    run(async {
        let q = PriorityQueue::new();
        q.put((20, "normal")).await.unwrap();
        q.put((10, "urgent")).await.unwrap();
        q.put((30, "later")).await.unwrap();
        assert_eq!(q.get().await.unwrap(), (10, "urgent"));
        assert_eq!(q.get().await.unwrap(), (20, "normal"));
        assert_eq!(q.get().await.unwrap(), (30, "later"));
    });
}

#[test]
fn a_waiting_priority_getter_takes_the_smallest_item_present_when_it_runs() {
    run(async {
        let q = Arc::new(PriorityQueue::new());
        let getter = waiting_on(&q, |q2| async move { q2.get().await }).await;
        q.put_nowait(5).unwrap(); // promised to the getter...
        q.put_nowait(1).unwrap(); // ...which then takes the smallest
        assert_eq!(getter.await.unwrap().unwrap(), 1);
        assert_eq!(q.get_nowait(), Ok(5));
    });
}

#[test]
fn nowait_errors_give_values_back() {
    let q = Queue::with_maxsize(2);
    assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
    q.put_nowait("a".to_string()).unwrap();
    q.put_nowait("b".to_string()).unwrap();
    assert!(q.full());
    match q.put_nowait("c".to_string()) {
        Err(TryPutError::Full(s)) => assert_eq!(s, "c"),
        other => panic!("{other:?}"),
    }
    let e = q.put_nowait("d".to_string()).unwrap_err();
    assert!(e.is_full());
    assert_eq!(e.to_string(), "the queue is full");
    assert_eq!(e.into_inner(), "d");
    assert_eq!(TryGetError::Empty.to_string(), "the queue is empty");
}

#[test]
fn sizes() {
    let q = Queue::with_maxsize(3);
    assert_eq!(q.maxsize(), 3);
    assert!(q.empty() && !q.full());
    q.put_nowait(1).unwrap();
    assert_eq!(q.qsize(), 1);
    assert!(!q.empty() && !q.full());
    q.put_nowait(2).unwrap();
    q.put_nowait(3).unwrap();
    assert!(q.full());
    let u: Queue<u8> = Queue::new();
    assert_eq!(u.maxsize(), 0);
    for i in 0..1000 {
        u.put_nowait(i as u8).unwrap();
    }
    assert!(!u.full());
    assert_eq!(u.qsize(), 1000);
}

#[test]
fn a_full_queue_blocks_put_until_a_get_in_fifo_order() {
    let order = run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put(0).await.unwrap();
        let putters: Vec<_> = (1..=3)
            .map(|i| spawn_on(&q, |q| async move { q.put(i).await }))
            .collect();
        settle(2).await;
        assert_eq!(q.qsize(), 1);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(q.get().await.unwrap());
            settle(1).await;
        }
        for p in putters {
            p.await.unwrap().unwrap();
        }
        got
    });
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn getters_are_served_in_arrival_order() {
    let got = run(async {
        let q = Arc::new(Queue::new());
        let got = Rc::new(RefCell::new(Vec::new()));
        let getters: Vec<_> = (0..5)
            .map(|i| {
                let (q, got) = (q.clone(), got.clone());
                create_task(async move {
                    let v = q.get().await?;
                    got.borrow_mut().push((i, v));
                    Ok::<_, aio_queue::GetError>(())
                })
            })
            .collect();
        settle(1).await;
        for v in 10..15 {
            q.put_nowait(v).unwrap();
        }
        // Items put while getters wait are promised to them: not here.
        assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
        for g in getters {
            g.await.unwrap().unwrap();
        }
        got.take()
    });
    assert_eq!(got, [(0, 10), (1, 11), (2, 12), (3, 13), (4, 14)]);
}

#[test]
fn task_done_and_join_count_every_item() {
    run(async {
        let q = Arc::new(Queue::new());
        q.join().await.unwrap(); // nothing pending
        for i in 0..3 {
            q.put(i).await.unwrap();
        }
        assert_eq!(q.unfinished_tasks(), 3);
        let joiner = spawn_on(&q, |q2| async move { q2.join().await });
        settle(2).await;
        for left in (0..3).rev() {
            q.get().await.unwrap();
            q.task_done().unwrap();
            settle(2).await;
            assert_eq!(joiner.done(), left == 0, "join returns only when every item is done");
        }
        joiner.await.unwrap().unwrap();
        assert_eq!(q.task_done(), Err(TaskDoneError));
        assert_eq!(TaskDoneError.to_string(), "task_done() called too many times");
    });
}

#[test]
fn a_joiner_woken_by_zero_returns_even_if_more_is_put_before_it_runs() {
    run(async {
        let q = Arc::new(Queue::new());
        q.put_nowait(1).unwrap();
        let joiner = waiting_on(&q, |q2| async move { q2.join().await }).await;
        q.get_nowait().unwrap();
        q.task_done().unwrap();
        q.put_nowait(2).unwrap(); // as in asyncio, the woken joiner still returns
        joiner.await.unwrap().unwrap();
        assert_eq!(q.unfinished_tasks(), 1);
    });
}

#[test]
fn join_cancelled_and_dropped() {
    run(async {
        let q = Arc::new(Queue::new());
        q.put_nowait(1).unwrap();
        let joiner = waiting_on(&q, |q2| async move { q2.join().await }).await;
        joiner.cancel();
        assert_cancelled(joiner).await;
        let mut j = Box::pin(q.join());
        assert!(poll_once(j.as_mut()).is_pending());
        drop(j);
        q.get_nowait().unwrap();
        q.task_done().unwrap();
        q.join().await.unwrap();
    });
}

#[test]
fn default_and_debug() {
    let q: Queue<u32> = Queue::default();
    q.put_nowait(7).unwrap();
    let s = format!("{q:?}");
    assert!(s.contains("qsize: 1"), "{s}");
}

#[test]
fn items_need_not_be_send_within_one_loop() {
    run(async {
        let q = Rc::new(Queue::new());
        let q2 = q.clone();
        let t = create_task(async move { q2.get().await.map(|rc: Rc<u32>| *rc) });
        settle(1).await;
        q.put(Rc::new(5)).await.unwrap();
        assert_eq!(t.await.unwrap(), Ok(5));
        let tasks = LifoQueue::new();
        tasks.put_nowait(create_task(async { 1 })).unwrap();
        assert_eq!(tasks.get().await.unwrap().await.unwrap(), 1);
    });
}
