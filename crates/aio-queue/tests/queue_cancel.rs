//! Cancellation of getters and putters at every point: while queued,
//! after an item or slot was handed to them but before they ran, and by
//! dropping the future. No item and no slot is ever lost.

use std::sync::Arc;
use std::task::Poll;

use aio_core::{TimeoutError, run};
use aio_queue::{GetError, PutError, Queue, TryGetError, TryPutError};
use aio_test::{assert_cancelled, poll_once, settle, spawn_on};

fn getter(q: &Arc<Queue<i32>>) -> aio_core::Task<Result<i32, GetError>> {
    spawn_on(q, |q| async move { q.get().await })
}

fn putter(q: &Arc<Queue<i32>>, v: i32) -> aio_core::Task<Result<(), PutError<i32>>> {
    spawn_on(q, |q| async move { q.put(v).await })
}

#[test]
fn get_cancelled_while_waiting() {
    run(async {
        let q = Arc::new(Queue::new());
        let (a, b) = (getter(&q), getter(&q));
        settle(1).await;
        a.cancel();
        settle(1).await;
        q.put_nowait(1).unwrap();
        assert_cancelled(a).await;
        assert_eq!(b.await.unwrap(), Ok(1));
        assert!(q.empty());
    });
}

#[test]
fn get_cancelled_after_the_item_was_promised_passes_it_on() {
    run(async {
        let q = Arc::new(Queue::new());
        let (a, b) = (getter(&q), getter(&q));
        settle(1).await;
        q.put_nowait(1).unwrap(); // promised to `a`, which has not run
        a.cancel();
        assert_cancelled(a).await;
        assert_eq!(b.await.unwrap(), Ok(1));
    });
}

#[test]
fn get_cancelled_after_the_promise_with_nobody_behind_leaves_the_item() {
    run(async {
        let q = Arc::new(Queue::new());
        let a = getter(&q);
        settle(1).await;
        q.put_nowait(7).unwrap();
        a.cancel();
        assert_cancelled(a).await;
        assert_eq!(q.get_nowait(), Ok(7));
    });
}

#[test]
fn dropped_getter_after_the_promise_passes_it_on() {
    let q = Queue::new();
    let mut a = Box::pin(q.get());
    let mut b = Box::pin(q.get());
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    q.put_nowait(1).unwrap();
    assert_eq!(q.get_nowait(), Err(TryGetError::Empty), "promised to a waiter");
    drop(a);
    assert!(matches!(poll_once(b.as_mut()), Poll::Ready(Ok(1))));
}

#[test]
fn get_timeout_loses_nothing() {
    run(async {
        let q = Arc::new(Queue::new());
        let r = aio_core::wait_for(q.get(), 0.01).await;
        assert_eq!(r, Err(TimeoutError::new()));
        q.put_nowait(3).unwrap();
        assert_eq!(aio_core::wait_for(q.get(), 1).await, Ok(Ok(3)));
    });
}

#[test]
fn put_cancelled_while_waiting_does_not_put() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(0).unwrap();
        let (a, b) = (putter(&q, 1), putter(&q, 2));
        settle(1).await;
        a.cancel();
        settle(1).await;
        assert_eq!(q.get_nowait(), Ok(0));
        assert_cancelled(a).await;
        b.await.unwrap().unwrap();
        assert_eq!(q.get_nowait(), Ok(2));
        assert!(q.empty());
    });
}

/// A put cancelled while it waits gives its item back in the error: a
/// task that handles the cancellation keeps what it tried to put.
#[test]
fn a_cancelled_put_hands_its_item_back() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(String::from("first")).unwrap();
        let a = spawn_on(&q, |q| async move {
            match q.put(String::from("kept")).await {
                Err(PutError::Cancelled(_, item)) => item,
                other => panic!("the put was not cancelled: {other:?}"),
            }
        });
        settle(1).await;
        a.cancel();
        assert_eq!(a.await.unwrap(), "kept");
        assert_eq!(q.get_nowait().as_deref(), Ok("first"));
        assert!(q.empty());
    });
}

#[test]
fn put_cancelled_after_the_slot_was_handed_passes_it_on() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(0).unwrap();
        let (a, b) = (putter(&q, 1), putter(&q, 2));
        settle(1).await;
        assert_eq!(q.get_nowait(), Ok(0)); // the free slot goes to `a`
        match q.put_nowait(9) {
            Err(TryPutError::Full(9)) => {}
            other => panic!("the slot was promised to a waiting putter: {other:?}"),
        }
        a.cancel();
        assert_cancelled(a).await;
        b.await.unwrap().unwrap();
        assert_eq!(q.get_nowait(), Ok(2));
        assert_eq!(q.qsize(), 0);
    });
}

#[test]
fn put_cancelled_after_the_hand_off_with_nobody_behind_frees_the_slot() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(0).unwrap();
        let a = putter(&q, 1);
        settle(1).await;
        assert_eq!(q.get_nowait(), Ok(0));
        a.cancel();
        assert_cancelled(a).await;
        q.put_nowait(5).unwrap();
        assert_eq!(q.get_nowait(), Ok(5));
    });
}

#[test]
fn dropped_putter_after_the_hand_off_passes_the_slot_on() {
    let q = Queue::with_maxsize(1);
    q.put_nowait(0).unwrap();
    let mut a = Box::pin(q.put(1));
    let mut b = Box::pin(q.put(2));
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    assert_eq!(q.get_nowait(), Ok(0));
    drop(a);
    assert!(matches!(poll_once(b.as_mut()), Poll::Ready(Ok(()))));
    assert_eq!(q.get_nowait(), Ok(2));
}

#[test]
fn put_cancelled_reports_cancelled() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(0).unwrap();
        let r = aio_core::wait_for(q.put(1), 0.01).await;
        assert_eq!(r, Err(TimeoutError::new()));
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.unfinished_tasks(), 1, "the cancelled put was not counted");
    });
}
