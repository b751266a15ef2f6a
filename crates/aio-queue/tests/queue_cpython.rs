//! CPython's own tests of asyncio's queues (`Lib/test/test_asyncio/
//! test_queues.py`), ported step for step: the same tasks, the same
//! `sleep(0)` turns, the same assertions. What a port cannot say
//! (`len(q._getters)`) is left out; where aio's outcome differs by design
//! the test says so and checks aio's.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use aio_core::{Cancelled, create_task, run, sleep};
use aio_queue::{GetError, LifoQueue, PriorityQueue, Queue, TaskDoneError};

async fn turn() {
    sleep(0).await.unwrap();
}

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

#[test]
fn test_task_done_underflow_and_join() {
    run(async {
        let q = Arc::new(Queue::new());
        assert_eq!(q.task_done(), Err(TaskDoneError));
        for i in 0..100 {
            q.put_nowait(i).unwrap();
        }
        let sum = Rc::new(RefCell::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (q, sum) = (q.clone(), sum.clone());
                create_task(async move {
                    loop {
                        let item = q.get().await?;
                        *sum.borrow_mut() += item;
                        q.task_done().unwrap();
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), GetError>(())
                })
            })
            .collect();
        q.join().await.unwrap();
        assert_eq!(*sum.borrow(), (0..100).sum::<i32>());
        for w in workers {
            w.cancel();
            let _ = w.await;
        }
        // A queue with nothing unfinished joins at once, twice.
        let empty: Queue<i32> = Queue::new();
        empty.join().await.unwrap();
        empty.join().await.unwrap();
    });
}
