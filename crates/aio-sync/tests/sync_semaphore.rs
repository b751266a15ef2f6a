//! Semaphore and BoundedSemaphore: counting, FIFO hand-off, cancellation.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use aio_core::{create_task, run};
use aio_sync::{BoundedSemaphore, ReleaseError, Semaphore};
use aio_test::{assert_cancelled, poll_once, settle, spawn_on, waiting_on};

#[test]
fn counts_permits() {
    run(async {
        let sem = Semaphore::new(2);
        assert_eq!(sem.value(), 2);
        let a = sem.acquire().await.unwrap();
        let b = sem.try_acquire().unwrap();
        assert!(sem.locked());
        assert!(sem.try_acquire().is_none());
        drop(a);
        assert_eq!(sem.value(), 1);
        drop(b);
        assert_eq!(sem.value(), 2);
        // asyncio's plain Semaphore may be released above its start value.
        sem.release();
        assert_eq!(sem.value(), 3);
    });
}

#[test]
fn forget_and_release_pair_up() {
    let sem = Semaphore::new(1);
    sem.try_acquire().unwrap().forget();
    assert!(sem.locked());
    sem.release();
    assert!(!sem.locked());
}

#[test]
fn bounded_release_above_the_start_value_is_an_error() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(), Err(ReleaseError));
    assert_eq!(ReleaseError.to_string(), "BoundedSemaphore released too many times");
    let p = sem.try_acquire().unwrap();
    p.forget();
    assert_eq!(sem.value(), 1);
    assert_eq!(sem.release(), Ok(()));
    assert_eq!(sem.release(), Err(ReleaseError));
    assert_eq!(sem.value(), 2);
    // A guard dropped after a stray manual release stays within the bound.
    let g = sem.try_acquire().unwrap();
    sem.release().unwrap();
    drop(g);
    assert_eq!(sem.value(), 2);
}

#[test]
fn bounded_release_to_a_waiter_always_fits() {
    run(async {
        let sem = Arc::new(BoundedSemaphore::new(1));
        let p = sem.acquire().await.unwrap();
        p.forget();
        let w = waiting_on(&sem, |s2| async move { s2.acquire().await.map(|g| g.forget()) }).await;
        assert_eq!(sem.release(), Ok(()));
        w.await.unwrap().unwrap();
        assert_eq!(sem.value(), 0);
        assert_eq!(sem.release(), Ok(()));
        assert_eq!(sem.release(), Err(ReleaseError));
    });
}

#[test]
fn never_more_holders_than_permits_and_fifo() {
    let (order, peak) = run(async {
        let sem = Arc::new(Semaphore::new(3));
        let order = Rc::new(RefCell::new(Vec::new()));
        let (busy, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (sem, order, busy, peak) = (sem.clone(), order.clone(), busy.clone(), peak.clone());
                create_task(async move {
                    let _p = sem.acquire().await?;
                    order.borrow_mut().push(i);
                    busy.set(busy.get() + 1);
                    peak.set(peak.get().max(busy.get()));
                    settle(3).await;
                    busy.set(busy.get() - 1);
                    Ok::<_, aio_core::Cancelled>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(sem.value(), 3);
        (order.take(), peak.get())
    });
    assert_eq!(peak, 3);
    assert_eq!(order, (0..8).collect::<Vec<_>>());
}

#[test]
fn cancelled_while_waiting_leaves_the_queue() {
    run(async {
        let sem = Arc::new(Semaphore::new(1));
        let p = sem.acquire().await.unwrap();
        let spawn = || spawn_on(&sem, |sem| async move { sem.acquire().await.map(drop) });
        let (a, b) = (spawn(), spawn());
        settle(1).await;
        a.cancel();
        settle(1).await;
        drop(p);
        assert_cancelled(a).await;
        b.await.unwrap().unwrap();
        assert_eq!(sem.value(), 1);
    });
}

#[test]
fn cancelled_after_the_hand_off_passes_the_permit_on() {
    run(async {
        let sem = Arc::new(Semaphore::new(1));
        let got = Rc::new(RefCell::new(Vec::new()));
        let p = sem.acquire().await.unwrap();
        let spawn = |name: &'static str| {
            let (sem, got) = (sem.clone(), got.clone());
            create_task(async move {
                let _p = sem.acquire().await?;
                got.borrow_mut().push(name);
                Ok::<_, aio_core::Cancelled>(())
            })
        };
        let (a, b) = (spawn("a"), spawn("b"));
        settle(1).await;
        drop(p); // handed to `a`, not yet run
        assert_eq!(sem.value(), 0);
        a.cancel();
        assert_cancelled(a).await;
        b.await.unwrap().unwrap();
        assert_eq!(*got.borrow(), ["b"]);
        assert_eq!(sem.value(), 1);
    });
}

#[test]
fn dropped_after_the_hand_off_returns_the_permit() {
    let sem = Semaphore::new(1);
    let p = sem.try_acquire().unwrap();
    let mut w = Box::pin(sem.acquire());
    assert!(poll_once(w.as_mut()).is_pending());
    drop(p);
    assert_eq!(sem.value(), 0);
    drop(w);
    assert_eq!(sem.value(), 1);
    // And the semaphore still works for a new waiter.
    let mut w = Box::pin(sem.acquire());
    assert!(matches!(poll_once(w.as_mut()), Poll::Ready(Ok(_))));
}

#[test]
fn many_releases_hand_off_in_order() {
    let sem = Semaphore::new(0);
    let mut ws: Vec<_> = (0..5).map(|_| Box::pin(sem.acquire())).collect();
    for w in &mut ws {
        assert!(poll_once(w.as_mut()).is_pending());
    }
    sem.release();
    sem.release();
    let polled: Vec<_> = ws.iter_mut().map(|w| poll_once(w.as_mut())).collect();
    let ready: Vec<bool> = polled.iter().map(Poll::is_ready).collect();
    assert_eq!(ready, [true, true, false, false, false]);
    drop(polled); // the two permits go to the next two waiters
    let polled: Vec<_> = ws[2..].iter_mut().map(|w| poll_once(w.as_mut())).collect();
    let ready: Vec<bool> = polled.iter().map(Poll::is_ready).collect();
    assert_eq!(ready, [true, true, false]);
}

/// CPython's `test_acquire_fifo_order_2`: a waiter handed a permit counts
/// as waiting until it runs, so a task that releases and acquires again
/// meanwhile queues behind it, even though a permit is free.
#[test]
fn a_served_waiter_that_has_not_run_keeps_later_acquires_waiting() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        let result = Rc::new(RefCell::new(Vec::new()));
        let (s, r) = (sem.clone(), result.clone());
        let c1 = create_task(async move {
            s.acquire().await.unwrap().forget();
            r.borrow_mut().push(1);
        });
        let (s, r) = (sem.clone(), result.clone());
        let c2 = create_task(async move {
            s.acquire().await.unwrap().forget();
            r.borrow_mut().push(2);
            s.release();
            s.acquire().await.unwrap().forget();
            r.borrow_mut().push(4);
        });
        let (s, r) = (sem.clone(), result.clone());
        let c3 = create_task(async move {
            s.acquire().await.unwrap().forget();
            r.borrow_mut().push(3);
        });
        settle(1).await;
        sem.release();
        sem.release();
        for t in [c1, c2, c3] {
            t.await.unwrap();
        }
        assert_eq!(*result.borrow(), [1, 2, 3, 4]);
    });
}
