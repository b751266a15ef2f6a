//! loom models of the waiter lists across threads: `RawSemaphore`'s
//! permit word and FIFO hand-off (what `Lock` and `Semaphore` are), a
//! waiter that gives up after it was handed a permit, a close after a
//! release, a strict semaphore's queue behind a served waiter, `Notify`
//! (what `Event` is) and `Condition`'s own list. Each
//! thread drives its futures with loom's `block_on`, whose waker parks the
//! thread: a lost wake-up leaves it parked for good, which loom reports as
//! a deadlock.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p aio-sync --test loom_waiters --release`.
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use aio_sync::raw::{Notify, RawSemaphore};
use aio_sync::{Condition, Event};

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Two threads take turns with one permit: never both inside, nobody
/// left waiting, the permit back in the pool at the end.
#[test]
fn one_permit_is_handed_between_threads() {
    loom::model(|| {
        let sem = Arc::new(RawSemaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let worker = |sem: Arc<RawSemaphore>, inside: Arc<AtomicUsize>| {
            move || {
                block_on(sem.acquire()).unwrap();
                assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two holders");
                inside.fetch_sub(1, Ordering::Relaxed);
                sem.release();
            }
        };
        let other = thread::spawn(worker(sem.clone(), inside.clone()));
        worker(sem.clone(), inside)();
        other.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
        assert!(!sem.has_waiters());
    });
}

/// One permit released while a waiter queues and gives up: whether the
/// release came before its poll (it got the permit, and gives it back),
/// while it waited (handed to it; dropping it passes the permit on) or
/// after it left (to the pool), the third thread gets the permit.
#[test]
fn a_permit_handed_to_a_waiter_that_gives_up_passes_on() {
    loom::model(|| {
        let sem = Arc::new(RawSemaphore::new(0));
        let quitter = {
            let sem = sem.clone();
            thread::spawn(move || {
                let mut acquire = pin!(sem.acquire());
                if poll_once(acquire.as_mut()).is_ready() {
                    sem.release();
                }
            })
        };
        let releaser = {
            let sem = sem.clone();
            thread::spawn(move || sem.release())
        };
        block_on(sem.acquire()).unwrap();
        sem.release();
        quitter.join().unwrap();
        releaser.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
        assert!(!sem.has_waiters());
    });
}

/// A release and then a close on one thread, a waiter on another: the
/// permit released before the close reaches the waiter whenever it
/// queued (a waiter learns its outcome from the served-ticket word, and
/// the close marks where hand-offs end), and nothing is left over.
#[test]
fn a_permit_released_before_close_still_reaches_its_waiter() {
    loom::model(|| {
        let sem = Arc::new(RawSemaphore::new(0));
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || block_on(sem.acquire()))
        };
        sem.release();
        sem.close();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(sem.available_permits(), 0);
        assert!(!sem.has_waiters());
        assert!(sem.try_acquire().is_err());
    });
}

/// A strict semaphore (asyncio's `Semaphore`): a waiter served but not
/// yet run holds the queue, so a second waiter may queue while a permit
/// is free; the served one must serve it when it runs (nobody releases
/// again here to rescue it). Two waiters on two threads, two releases on
/// a third, in every order: both get a permit and nothing is left waiting.
#[test]
fn a_strict_semaphore_serves_a_waiter_queued_behind_a_served_one() {
    loom::model(|| {
        let sem = Arc::new(RawSemaphore::new_strict(0));
        let waiter = |sem: Arc<RawSemaphore>| move || block_on(sem.acquire()).unwrap();
        let a = thread::spawn(waiter(sem.clone()));
        let b = thread::spawn(waiter(sem.clone()));
        sem.release();
        sem.release();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
        assert!(!sem.has_waiters());
        // Both permits taken, nobody waiting: the next release frees one
        // for a lock-free acquire.
        sem.release();
        assert!(!sem.would_wait());
        assert!(sem.try_acquire().is_ok());
    });
}

/// `Event::set` on one thread, `Event::wait` on another: the waiter
/// registers and then checks the flag, the setter sets the flag and then
/// checks for waiters; one of them sees the other.
#[test]
fn an_event_set_on_another_thread_wakes_its_waiter() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let waiter = {
            let event = event.clone();
            thread::spawn(move || block_on(event.wait()).unwrap())
        };
        event.set();
        waiter.join().unwrap();
    });
}

/// A `Notify` waiter that registers and gives up while another thread
/// notifies: the `waiting` flag ends clear (a notifier does not take the
/// lock for nobody), and the list empty.
#[test]
fn a_notify_waiter_that_gives_up_leaves_no_trace() {
    loom::model(|| {
        let notify = Arc::new(Notify::new());
        let waiter = {
            let notify = notify.clone();
            thread::spawn(move || {
                let mut w = notify.waiter();
                let _ = w.poll_until(&mut Context::from_waker(Waker::noop()), || false);
            })
        };
        notify.notify_all();
        waiter.join().unwrap();
        assert!(!notify.has_waiters());
        assert_eq!(notify.notify_all(), 0);
    });
}

/// `Condition::wait_for` on one thread, a notify under the lock on another:
/// the condition's list, its `waiting` flag and the lock hand-off together
/// never lose the notification.
#[test]
fn a_condition_notified_from_another_thread_wakes_its_waiter() {
    loom::model(|| {
        let cond = Arc::new(Condition::new());
        let ready = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (cond, ready) = (cond.clone(), ready.clone());
            thread::spawn(move || {
                block_on(async {
                    let mut guard = cond.acquire().await?;
                    cond.wait_for(&mut guard, || ready.load(Ordering::Relaxed)).await
                })
                .unwrap();
            })
        };
        block_on(async {
            let _guard = cond.acquire().await?;
            ready.store(true, Ordering::Relaxed);
            cond.notify_all().expect("the lock is held");
            Ok::<(), aio_core::Cancelled>(())
        })
        .unwrap();
        waiter.join().unwrap();
        assert!(!cond.locked());
    });
}
