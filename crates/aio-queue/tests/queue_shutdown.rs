//! shutdown(immediate) as in Python 3.13: every blocked putter and getter
//! is woken, later puts fail, and items are drained or dropped.

use std::sync::Arc;

use aio_core::run;
use aio_queue::{GetError, PutError, Queue, TryGetError, TryPutError};
use aio_test::{settle, spawn_on, waiting_on};

#[test]
fn shutdown_wakes_every_blocked_getter() {
    run(async {
        let q: Arc<Queue<i32>> = Arc::new(Queue::new());
        let getters: Vec<_> = (0..5).map(|_| spawn_on(&q, |q| async move { q.get().await })).collect();
        settle(1).await;
        q.shutdown(false);
        assert!(q.is_shut_down());
        for g in getters {
            assert_eq!(g.await.unwrap(), Err(GetError::ShutDown));
        }
        assert_eq!(q.get_nowait(), Err(TryGetError::ShutDown));
        assert_eq!(q.get().await, Err(GetError::ShutDown));
    });
}

#[test]
fn shutdown_wakes_every_blocked_putter_and_gives_the_items_back() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(0).unwrap();
        let putters: Vec<_> = (1..=5)
            .map(|i| spawn_on(&q, |q| async move { q.put(i).await }))
            .collect();
        settle(1).await;
        q.shutdown(false);
        for (i, p) in (1..=5).zip(putters) {
            match p.await.unwrap() {
                Err(PutError::ShutDown(v)) => assert_eq!(v, i),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(q.put_nowait(9), Err(TryPutError::ShutDown(9))));
        assert!(matches!(q.put(9).await, Err(PutError::ShutDown(9))));
        // The item already in the queue can still be taken, then ShutDown.
        assert_eq!(q.get().await, Ok(0));
        assert_eq!(q.get().await, Err(GetError::ShutDown));
    });
}

#[test]
fn graceful_shutdown_lets_getters_drain() {
    run(async {
        let q = Queue::new();
        for i in 0..3 {
            q.put_nowait(i).unwrap();
        }
        q.shutdown(false);
        assert_eq!(q.get_nowait(), Ok(0));
        assert_eq!(q.get().await, Ok(1));
        assert_eq!(q.get().await, Ok(2));
        assert_eq!(q.get_nowait(), Err(TryGetError::ShutDown));
        assert_eq!(q.unfinished_tasks(), 3);
    });
}

#[test]
fn immediate_shutdown_drops_the_items_and_releases_join() {
    run(async {
        let q = Arc::new(Queue::new());
        for i in 0..3 {
            q.put_nowait(i).unwrap();
        }
        let taken = q.get_nowait().unwrap();
        assert_eq!(taken, 0);
        let joiner = waiting_on(&q, |q2| async move { q2.join().await }).await;
        q.shutdown(true);
        assert_eq!(q.qsize(), 0);
        assert_eq!(q.get().await, Err(GetError::ShutDown));
        // Two items were dropped and counted done; the one taken is not.
        assert_eq!(q.unfinished_tasks(), 1);
        settle(2).await;
        assert!(!joiner.done());
        q.task_done().unwrap();
        joiner.await.unwrap().unwrap();
    });
}

#[test]
fn immediate_shutdown_after_an_item_was_promised() {
    run(async {
        let q = Arc::new(Queue::new());
        let g = waiting_on(&q, |q2| async move { q2.get().await }).await;
        q.put_nowait(1).unwrap(); // promised, not yet taken
        q.shutdown(true); // drops it before the getter runs
        assert_eq!(g.await.unwrap(), Err(GetError::ShutDown));
        q.join().await.unwrap();
    });
}

#[test]
fn shutdown_after_a_slot_was_handed_to_a_putter() {
    run(async {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(0).unwrap();
        let p = waiting_on(&q, |q2| async move { q2.put(1).await }).await;
        assert_eq!(q.get_nowait(), Ok(0)); // slot handed to the putter
        q.shutdown(false);
        assert!(matches!(p.await.unwrap(), Err(PutError::ShutDown(1))));
        assert!(q.empty());
    });
}
