//! Event: set, clear, wait, and cancellation of a waiter.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use aio_core::{create_task, run};
use aio_sync::Event;
use aio_test::{assert_cancelled, poll_once, settle, spawn_on, waiting_on};

#[test]
fn set_clear_is_set() {
    let ev = Event::new();
    assert!(!ev.is_set());
    ev.set();
    assert!(ev.is_set());
    ev.set();
    assert!(ev.is_set());
    ev.clear();
    assert!(!ev.is_set());
}

#[test]
fn wait_returns_at_once_when_set() {
    run(async {
        let ev = Event::new();
        ev.set();
        ev.wait().await.unwrap();
        ev.wait().await.unwrap();
    });
}

#[test]
fn set_wakes_every_waiter() {
    let woken = run(async {
        let ev = Arc::new(Event::new());
        let woken = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (ev, woken) = (ev.clone(), woken.clone());
                create_task(async move {
                    ev.wait().await?;
                    woken.set(woken.get() + 1);
                    Ok::<_, aio_core::Cancelled>(())
                })
            })
            .collect();
        settle(2).await;
        assert_eq!(woken.get(), 0);
        ev.set();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        woken.get()
    });
    assert_eq!(woken, 100);
}

#[test]
fn a_waiter_woken_by_set_returns_even_if_cleared_before_it_runs() {
    run(async {
        let ev = Arc::new(Event::new());
        let t = waiting_on(&ev, |e2| async move { e2.wait().await }).await;
        ev.set();
        ev.clear();
        t.await.unwrap().unwrap();
        // A new waiter blocks again.
        let mut w = Box::pin(ev.wait());
        assert!(poll_once(w.as_mut()).is_pending());
    });
}

/// Waiters `a` and `b`; `a` is cancelled while it waits (`early`) or
/// after `set` woke it, before it ran. Either way `b` returns and `a`
/// ends cancelled; the event stays set.
async fn a_cancelled_waiter(early: bool) {
    let ev = Arc::new(Event::new());
    let spawn = || spawn_on(&ev, |ev| async move { ev.wait().await });
    let (a, b) = (spawn(), spawn());
    settle(1).await;
    if early {
        a.cancel();
        settle(1).await;
        ev.set();
    } else {
        ev.set();
        a.cancel();
    }
    assert_cancelled(a).await;
    b.await.unwrap().unwrap();
    assert!(ev.is_set());
}

#[test]
fn cancelled_waiter_leaves_and_others_still_wake() {
    run(a_cancelled_waiter(true));
}

#[test]
fn cancelled_after_set_before_it_ran() {
    run(a_cancelled_waiter(false));
}

#[test]
fn dropped_waiters_unregister() {
    let ev = Event::new();
    for _ in 0..3 {
        let mut w = Box::pin(ev.wait());
        assert!(poll_once(w.as_mut()).is_pending());
    }
    let mut w = Box::pin(ev.wait());
    assert!(poll_once(w.as_mut()).is_pending());
    ev.set();
    assert!(poll_once(w.as_mut()).is_ready());
}
