//! Condition: notify(n) wakes exactly n and only under the lock, wait_for
//! re-checks and returns the predicate's value, the lock is held again
//! after every outcome, and a notification is never lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use aio_core::{create_task, run};
use aio_sync::{Condition, Lock, NotifyError};
use aio_test::{assert_cancelled, poll_once, settle};

/// `async with cond: cond.notify(n)`, asyncio's way to notify; returns how
/// many were woken. The lock is free at once, so this does not yield.
async fn notify(cond: &Condition, n: usize) -> usize {
    let _g = cond.acquire().await.unwrap();
    cond.notify(n).unwrap()
}

fn waiters(cond: &Arc<Condition>, n: usize, woken: &Rc<RefCell<Vec<usize>>>) -> Waiters {
    (0..n)
        .map(|i| {
            let (cond, woken) = (cond.clone(), woken.clone());
            create_task(async move {
                let mut g = cond.acquire().await?;
                cond.wait(&mut g).await?;
                assert!(cond.locked(), "wait returns with the lock held");
                woken.borrow_mut().push(i);
                Ok(())
            })
        })
        .collect()
}

#[test]
fn notify_n_wakes_exactly_n_in_order() {
    run(async {
        let cond = Arc::new(Condition::new());
        let woken = Rc::new(RefCell::new(Vec::new()));
        let tasks = waiters(&cond, 5, &woken);
        settle(2).await;
        assert!(!cond.locked());
        assert_eq!(notify(&cond, 2).await, 2);
        settle(5).await;
        assert_eq!(*woken.borrow(), [0, 1]);
        assert_eq!(notify(&cond, 1).await, 1);
        settle(5).await;
        assert_eq!(*woken.borrow(), [0, 1, 2]);
        let g = cond.acquire().await.unwrap();
        assert_eq!(cond.notify_all(), Ok(2));
        drop(g);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(*woken.borrow(), [0, 1, 2, 3, 4]);
        assert_eq!(notify(&cond, 3).await, 0);
        assert!(!cond.locked());
    });
}

#[test]
fn wait_for_rechecks_the_predicate_after_each_notification() {
    run(async {
        let cond = Arc::new(Condition::new());
        let state = Rc::new(Cell::new(0));
        let calls = Rc::new(Cell::new(0));
        let (c2, s2, k2) = (cond.clone(), state.clone(), calls.clone());
        let t = create_task(async move {
            let mut g = c2.acquire().await?;
            let v = c2
                .wait_for(&mut g, || {
                    k2.set(k2.get() + 1);
                    s2.get() >= 2
                })
                .await?;
            assert!(v, "a bool predicate's final value is true");
            Ok::<_, aio_core::Cancelled>(s2.get())
        });
        settle(2).await;
        assert_eq!(calls.get(), 1);
        for v in 1..=2 {
            let _g = cond.acquire().await.unwrap();
            state.set(v);
            cond.notify_all().unwrap();
            drop(_g);
            settle(3).await;
            assert_eq!(calls.get(), 1 + v);
        }
        assert_eq!(t.await.unwrap().unwrap(), 2);
    });
}

#[test]
fn wait_for_with_a_true_predicate_does_not_wait() {
    run(async {
        let cond = Condition::new();
        let mut g = cond.acquire().await.unwrap();
        assert_eq!(cond.wait_for(&mut g, || true).await, Ok(true));
        assert_eq!(cond.wait_for(&mut g, || Some(7)).await, Ok(7));
        assert!(cond.locked());
    });
}

#[test]
fn wait_for_returns_the_predicates_value() {
    run(async {
        let cond = Arc::new(Condition::new());
        let items = Rc::new(RefCell::new(VecDeque::new()));
        let calls = Rc::new(Cell::new(0));
        let (c2, i2, k2) = (cond.clone(), items.clone(), calls.clone());
        let t = create_task(async move {
            let mut g = c2.acquire().await?;
            // asyncio: `item = await cond.wait_for(lambda: q and q.popleft())`
            let item = c2
                .wait_for(&mut g, || {
                    k2.set(k2.get() + 1);
                    i2.borrow_mut().pop_front()
                })
                .await?;
            assert!(c2.locked());
            Ok::<_, aio_core::Cancelled>(item)
        });
        settle(2).await;
        assert_eq!(calls.get(), 1);
        // A notification with nothing to take: it checks and waits again.
        assert_eq!(notify(&cond, 1).await, 1);
        settle(3).await;
        assert_eq!(calls.get(), 2);
        assert!(!t.done());
        {
            let _g = cond.acquire().await.unwrap();
            items.borrow_mut().push_back("job");
            cond.notify(1).unwrap();
        }
        assert_eq!(t.await.unwrap().unwrap(), "job");
        assert_eq!(calls.get(), 3);
        assert!(items.borrow().is_empty(), "taken under the lock");
        assert!(!cond.locked());
    });
}

#[test]
fn wait_for_cancelled_after_notify_passes_it_on_and_stops_checking() {
    run(async {
        let cond = Arc::new(Condition::new());
        let items = Rc::new(RefCell::new(VecDeque::new()));
        let spawn = |calls: Rc<Cell<u32>>| {
            let (cond, items) = (cond.clone(), items.clone());
            create_task(async move {
                let mut g = cond.acquire().await?;
                let r = cond
                    .wait_for(&mut g, || {
                        calls.set(calls.get() + 1);
                        items.borrow_mut().pop_front()
                    })
                    .await;
                assert!(cond.locked(), "held again, cancelled or not");
                r
            })
        };
        let (calls_a, calls_b) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let a = spawn(calls_a.clone());
        let b = spawn(calls_b.clone());
        settle(2).await;
        {
            let _g = cond.acquire().await.unwrap();
            items.borrow_mut().push_back(42);
            assert_eq!(cond.notify(1), Ok(1)); // to `a`, which has not run yet
        }
        a.cancel();
        assert_cancelled(a).await;
        assert_eq!(calls_a.get(), 1, "no check after the cancellation");
        assert_eq!(b.await.unwrap(), Ok(42), "`b` got the notification and the item");
        assert_eq!(calls_b.get(), 2);
        assert!(!cond.locked());
    });
}

#[test]
fn notify_without_the_lock_is_an_error_and_wakes_nobody() {
    run(async {
        let cond = Arc::new(Condition::new());
        let woken = Rc::new(RefCell::new(Vec::new()));
        let tasks = waiters(&cond, 2, &woken);
        settle(2).await;
        assert!(!cond.locked());
        // asyncio: RuntimeError('cannot notify on un-acquired lock'),
        // checked before anything else, even for n = 0.
        assert_eq!(cond.notify(1), Err(NotifyError));
        assert_eq!(cond.notify(0), Err(NotifyError));
        assert_eq!(cond.notify_all(), Err(NotifyError));
        assert_eq!(NotifyError.to_string(), "cannot notify on un-acquired lock");
        settle(5).await;
        assert!(woken.borrow().is_empty());
        assert_eq!(notify(&cond, usize::MAX).await, 2, "both still wait");
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(*woken.borrow(), [0, 1]);
    });
}

#[test]
fn notify_checks_that_the_lock_is_held_not_by_whom() {
    run(async {
        let cond = Arc::new(Condition::new());
        let c2 = cond.clone();
        // Another task takes the lock and keeps it (asyncio:
        // `await cond.acquire()` with no release).
        create_task(async move { c2.acquire().await.map(|g| g.forget()) })
            .await
            .unwrap()
            .unwrap();
        assert!(cond.locked());
        assert_eq!(cond.notify(1), Ok(0));
        cond.lock().release().unwrap();
        assert_eq!(cond.notify(1), Err(NotifyError));
    });
}

#[test]
fn cancelled_while_waiting_reacquires_the_lock() {
    run(async {
        let cond = Arc::new(Condition::new());
        let (c2, seen) = (cond.clone(), Rc::new(Cell::new(false)));
        let s2 = seen.clone();
        let t = create_task(async move {
            let mut g = c2.acquire().await?;
            let r = c2.wait(&mut g).await;
            assert!(r.is_err());
            // The lock is held again, whoever had it meanwhile.
            s2.set(c2.locked());
            drop(g);
            r
        });
        settle(2).await;
        // Hold the lock while the cancellation arrives: the waiter must
        // wait for it before returning.
        let g = cond.acquire().await.unwrap();
        t.cancel();
        settle(3).await;
        assert!(!t.done());
        drop(g);
        assert_cancelled(t).await;
        assert!(seen.get());
        assert!(!cond.locked());
    });
}

type Waiters = Vec<aio_core::Task<aio_core::Result<()>>>;

/// Three waiters; waiter 0 is cancelled after a `notify(1)` meant for it
/// (`notified_first`), before it ran, or before any notification. Either
/// way that one notification goes to waiter 1. Returns the condition and
/// waiters 1 and 2.
async fn waiter_0_cancelled(notified_first: bool) -> (Arc<Condition>, Waiters) {
    let cond = Arc::new(Condition::new());
    let woken = Rc::new(RefCell::new(Vec::new()));
    let mut tasks = waiters(&cond, 3, &woken);
    settle(2).await;
    if notified_first {
        assert_eq!(notify(&cond, 1).await, 1); // to waiter 0, which has not run yet
        tasks[0].cancel();
        assert_cancelled(tasks.remove(0)).await;
    } else {
        tasks[0].cancel();
        assert_cancelled(tasks.remove(0)).await;
        assert_eq!(notify(&cond, 1).await, 1);
    }
    settle(5).await;
    assert_eq!(*woken.borrow(), [1], "waiter 1 got the notification");
    (cond, tasks)
}

#[test]
fn cancelled_after_notify_passes_the_notification_on() {
    run(async {
        let (cond, tasks) = waiter_0_cancelled(true).await;
        notify(&cond, usize::MAX).await;
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(!cond.locked());
    });
}

#[test]
fn cancelled_before_notify_does_not_take_a_notification() {
    run(async {
        let (cond, tasks) = waiter_0_cancelled(false).await;
        assert_eq!(notify(&cond, 5).await, 1);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
}

/// A notified wait dropped before it acted on the notification passes it
/// to the next waiter: dropped before it ran again, or while it was taking
/// the lock back (`reacquiring`). Its guard is left empty either way.
#[test]
fn dropped_wait_passes_the_notification_and_leaves_the_guard_empty() {
    for reacquiring in [false, true] {
        let cond = Condition::new();
        let mut g1 = cond.lock().try_acquire().unwrap();
        let mut w1 = Box::pin(cond.wait(&mut g1));
        assert!(poll_once(w1.as_mut()).is_pending());
        let mut g2 = cond.lock().try_acquire().unwrap();
        let mut w2 = Box::pin(cond.wait(&mut g2));
        assert!(poll_once(w2.as_mut()).is_pending());
        assert!(!cond.locked());
        let mut g3 = Some(cond.lock().try_acquire().unwrap());
        assert_eq!(cond.notify(1), Ok(1));
        if reacquiring {
            assert!(poll_once(w1.as_mut()).is_pending(), "notified, it waits for the lock");
        } else {
            g3 = None;
        }
        drop(w1); // never acted on the notification: it moves to w2
        drop(g1); // released nothing: the wait had given the lock up
        drop(g3);
        assert!(!cond.locked());
        assert!(matches!(poll_once(w2.as_mut()), Poll::Ready(Ok(()))));
        drop(w2);
        assert!(cond.locked());
        drop(g2);
        assert!(!cond.locked());
    }
}

#[test]
fn conditions_can_share_a_lock() {
    let lock = Arc::new(Lock::new());
    let a = Condition::with_lock(lock.clone());
    let b = Condition::with_lock(lock.clone());
    let g = lock.try_acquire().unwrap();
    assert!(a.locked() && b.locked());
    drop(g);
    assert!(!a.locked());
}

#[test]
#[should_panic(expected = "another lock")]
fn waiting_with_a_foreign_guard_panics() {
    let cond = Condition::new();
    let other = Lock::new();
    let mut g = other.try_acquire().unwrap();
    drop(cond.wait(&mut g));
}
