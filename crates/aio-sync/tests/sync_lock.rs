//! Lock: mutual exclusion, FIFO hand-off, cancellation at every point.

mod common;

use std::cell::Cell;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use aio_core::{create_task, run};
use aio_sync::Lock;
use common::{poll_once, settle};

#[test]
fn acquire_release_and_locked() {
    run(async {
        let lock = Lock::new();
        assert!(!lock.locked());
        let g = lock.acquire().await.unwrap();
        assert!(lock.locked());
        assert!(lock.try_acquire().is_none());
        drop(g);
        assert!(!lock.locked());
        let g = lock.try_acquire().unwrap();
        assert!(std::ptr::eq(g.lock(), &lock));
    });
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let order = run(async {
        let lock = Arc::new(Lock::new());
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (lock, order) = (lock.clone(), order.clone());
            tasks.push(create_task(async move {
                for _ in 0..5 {
                    let _g = lock.acquire().await?;
                    order.borrow_mut().push(i);
                    aio_core::yield_now().await?;
                }
                Ok::<_, aio_core::Cancelled>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(!lock.locked());
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    // Everyone queues behind the holder, and each re-queues at the tail
    // after its turn: strict round robin.
    let expected: Vec<i32> = (0..5).flat_map(|_| 0..10).collect();
    assert_eq!(order, expected);
}

#[test]
fn a_release_cannot_be_stolen_by_a_newcomer() {
    run(async {
        let lock = Arc::new(Lock::new());
        let g = lock.acquire().await.unwrap();
        let l2 = lock.clone();
        let waiter = create_task(async move { l2.acquire().await.map(drop) });
        settle(1).await;
        drop(g);
        // Handed to the waiter, which has not run yet: still locked.
        assert!(lock.locked());
        assert!(lock.try_acquire().is_none());
        waiter.await.unwrap().unwrap();
        assert!(!lock.locked());
    });
}

#[test]
fn cancelled_while_waiting_leaves_the_queue() {
    run(async {
        let lock = Arc::new(Lock::new());
        let log = Rc::new(RefCell::new(Vec::new()));
        let g = lock.acquire().await.unwrap();
        let spawn = |name: &'static str| {
            let (lock, log) = (lock.clone(), log.clone());
            create_task(async move {
                let _g = lock.acquire().await?;
                log.borrow_mut().push(name);
                Ok::<_, aio_core::Cancelled>(())
            })
        };
        let a = spawn("a");
        let b = spawn("b");
        settle(1).await;
        a.cancel(); // before any wake-up
        settle(1).await;
        drop(g);
        assert!(a.await.unwrap_err().is_cancelled());
        b.await.unwrap().unwrap();
        assert_eq!(*log.borrow(), ["b"]);
        assert!(!lock.locked());
    });
}

#[test]
fn cancelled_after_the_hand_off_passes_the_lock_on() {
    run(async {
        let lock = Arc::new(Lock::new());
        let log = Rc::new(RefCell::new(Vec::new()));
        let g = lock.acquire().await.unwrap();
        let spawn = |name: &'static str| {
            let (lock, log) = (lock.clone(), log.clone());
            create_task(async move {
                let _g = lock.acquire().await?;
                log.borrow_mut().push(name);
                Ok::<_, aio_core::Cancelled>(())
            })
        };
        let a = spawn("a");
        let b = spawn("b");
        settle(1).await;
        drop(g); // handed to `a`, which is woken but has not run
        a.cancel();
        assert!(a.await.unwrap_err().is_cancelled());
        b.await.unwrap().unwrap();
        assert_eq!(*log.borrow(), ["b"]);
        assert!(!lock.locked());
    });
}

#[test]
fn cancelled_after_the_hand_off_with_nobody_behind_unlocks() {
    run(async {
        let lock = Arc::new(Lock::new());
        let g = lock.acquire().await.unwrap();
        let l2 = lock.clone();
        let a = create_task(async move { l2.acquire().await.map(drop) });
        settle(1).await;
        drop(g);
        a.cancel();
        assert!(a.await.unwrap_err().is_cancelled());
        assert!(!lock.locked());
    });
}

#[test]
fn dropped_waiter_before_and_after_the_hand_off() {
    let lock = Lock::new();
    let g = lock.try_acquire().unwrap();
    let mut first = Box::pin(lock.acquire());
    let mut second = Box::pin(lock.acquire());
    let mut third = Box::pin(lock.acquire());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    assert!(poll_once(third.as_mut()).is_pending());
    // Dropped before the hand-off: simply leaves.
    drop(first);
    drop(g);
    // Handed to `second`; dropping it passes the lock to `third`.
    assert!(lock.locked());
    drop(second);
    let g3 = match poll_once(third.as_mut()) {
        Poll::Ready(g) => g.unwrap(),
        Poll::Pending => panic!("the lock was lost"),
    };
    drop(g3);
    assert!(!lock.locked());
}

#[test]
fn a_cancelled_task_does_not_take_a_free_lock() {
    run(async {
        let lock = Arc::new(Lock::new());
        let ready = Rc::new(Cell::new(false));
        let (l2, r2) = (lock.clone(), ready.clone());
        let t = create_task(async move {
            // Wait on a foreign future, so the lock is the first aio await
            // point polled with the cancellation pending.
            std::future::poll_fn(|cx| {
                if r2.get() {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
            l2.acquire().await.map(drop)
        });
        settle(1).await;
        ready.set(true);
        t.cancel();
        assert!(t.await.unwrap_err().is_cancelled());
        assert!(!lock.locked());
    });
}

#[test]
fn lock_in_a_static() {
    static LOCK: Lock = Lock::new();
    run(async {
        let _g = LOCK.acquire().await.unwrap();
        assert!(LOCK.locked());
    });
    assert!(!LOCK.locked());
}
