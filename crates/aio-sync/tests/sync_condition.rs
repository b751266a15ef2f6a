//! Condition: notify(n) wakes exactly n, wait_for re-checks, the lock is
//! held again after every outcome, and a notification is never lost.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use aio_core::{create_task, run};
use aio_sync::{Condition, Lock};
use common::{poll_once, settle};

fn waiters(
    cond: &Arc<Condition>,
    n: usize,
    woken: &Rc<RefCell<Vec<usize>>>,
) -> Vec<aio_core::Task<aio_core::Result<()>>> {
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
        assert_eq!(cond.notify(2), 2);
        settle(5).await;
        assert_eq!(*woken.borrow(), [0, 1]);
        assert_eq!(cond.notify(1), 1);
        settle(5).await;
        assert_eq!(*woken.borrow(), [0, 1, 2]);
        assert_eq!(cond.notify_all(), 2);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(*woken.borrow(), [0, 1, 2, 3, 4]);
        assert_eq!(cond.notify(3), 0);
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
            c2.wait_for(&mut g, || {
                k2.set(k2.get() + 1);
                s2.get() >= 2
            })
            .await?;
            Ok::<_, aio_core::Cancelled>(s2.get())
        });
        settle(2).await;
        assert_eq!(calls.get(), 1);
        for v in 1..=2 {
            let _g = cond.acquire().await.unwrap();
            state.set(v);
            cond.notify_all();
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
        cond.wait_for(&mut g, || true).await.unwrap();
        assert!(cond.locked());
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
        assert!(t.await.unwrap_err().is_cancelled());
        assert!(seen.get());
        assert!(!cond.locked());
    });
}

#[test]
fn cancelled_after_notify_passes_the_notification_on() {
    run(async {
        let cond = Arc::new(Condition::new());
        let woken = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = waiters(&cond, 3, &woken);
        settle(2).await;
        assert_eq!(cond.notify(1), 1); // to waiter 0, which has not run yet
        tasks[0].cancel();
        let t0 = tasks.remove(0);
        assert!(t0.await.unwrap_err().is_cancelled());
        settle(5).await;
        assert_eq!(*woken.borrow(), [1], "waiter 1 got the notification");
        cond.notify_all();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(!cond.locked());
    });
}

#[test]
fn cancelled_before_notify_does_not_take_a_notification() {
    run(async {
        let cond = Arc::new(Condition::new());
        let woken = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = waiters(&cond, 3, &woken);
        settle(2).await;
        tasks[0].cancel();
        let t0 = tasks.remove(0);
        assert!(t0.await.unwrap_err().is_cancelled());
        assert_eq!(cond.notify(1), 1);
        settle(5).await;
        assert_eq!(*woken.borrow(), [1]);
        assert_eq!(cond.notify(5), 1);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
}

#[test]
fn dropped_wait_passes_the_notification_and_leaves_the_guard_empty() {
    let cond = Condition::new();
    let mut g1 = cond.lock().try_acquire().unwrap();
    let mut w1 = Box::pin(cond.wait(&mut g1));
    assert!(poll_once(w1.as_mut()).is_pending());
    let mut g2 = cond.lock().try_acquire().unwrap();
    let mut w2 = Box::pin(cond.wait(&mut g2));
    assert!(poll_once(w2.as_mut()).is_pending());
    assert!(!cond.locked());
    assert_eq!(cond.notify(1), 1);
    drop(w1); // notified, never ran: the notification moves to w2
    drop(g1); // released nothing: the wait had given the lock up
    assert!(!cond.locked());
    assert!(matches!(poll_once(w2.as_mut()), Poll::Ready(Ok(()))));
    drop(w2);
    assert!(cond.locked());
    drop(g2);
    assert!(!cond.locked());
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
