//! CPython's own tests of asyncio's locks (`Lib/test/test_asyncio/
//! test_locks.py`), ported step for step: the same tasks, the same
//! `sleep(0)` turns, the same assertions on order, `locked()` and the
//! semaphore's value. What a port cannot say (`len(lock._waiters)`) is
//! left out; the one difference of timing is said where it shows.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use aio_core::{Cancelled, Task, create_task, run, sleep};
use aio_sync::{Condition, Event, Lock, Semaphore};

type Log = Rc<RefCell<Vec<i32>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

async fn turn() {
    sleep(0).await.unwrap();
}

/// `await lock.acquire(); result.append(n)`: keeps the lock.
fn lock_and_log(lock: &Rc<Lock>, result: &Log, n: i32) -> Task<Result<(), Cancelled>> {
    let (lock, result) = (lock.clone(), result.clone());
    create_task(async move {
        lock.acquire().await?.forget();
        result.borrow_mut().push(n);
        Ok(())
    })
}

/// `await sem.acquire(); result.append(n)`: keeps the permit.
fn sem_and_log(sem: &Rc<Semaphore>, result: &Log, n: i32) -> Task<Result<(), Cancelled>> {
    let (sem, result) = (sem.clone(), result.clone());
    create_task(async move {
        sem.acquire().await?.forget();
        result.borrow_mut().push(n);
        Ok(())
    })
}

#[test]
fn lock_test_acquire() {
    run(async {
        let lock = Rc::new(Lock::new());
        let result = log();
        lock.acquire().await.unwrap().forget();
        let t1 = lock_and_log(&lock, &result, 1);
        let t2 = lock_and_log(&lock, &result, 2);
        turn().await;
        assert_eq!(*result.borrow(), []);
        lock.release().unwrap();
        turn().await;
        assert_eq!(*result.borrow(), [1]);
        turn().await;
        assert_eq!(*result.borrow(), [1]);
        let t3 = lock_and_log(&lock, &result, 3);
        lock.release().unwrap();
        turn().await;
        assert_eq!(*result.borrow(), [1, 2]);
        lock.release().unwrap();
        turn().await;
        assert_eq!(*result.borrow(), [1, 2, 3]);
        for t in [t1, t2, t3] {
            assert!(t.done());
            t.await.unwrap().unwrap();
        }
    });
}

#[test]
fn lock_test_cancel_race() {
    run(async {
        let lock = Rc::new(Lock::new());
        let lockit = |blocker: Option<Rc<Event>>| {
            let lock = lock.clone();
            create_task(async move {
                lock.acquire().await?.forget();
                let r = match blocker {
                    Some(b) => b.wait().await.map(drop),
                    None => Ok(()),
                };
                lock.release().unwrap();
                r
            })
        };
        let fa = Rc::new(Event::new());
        let ta = lockit(Some(fa.clone()));
        turn().await;
        assert!(lock.locked());
        let tb = lockit(None);
        turn().await;
        let tc = lockit(None);
        turn().await;
        fa.set();
        tb.cancel();
        turn().await;
        assert!(!lock.locked());
        assert!(ta.done());
        assert!(tb.cancelled());
        tc.await.unwrap().unwrap();
    });
}

#[test]
fn lock_test_cancel_release_race() {
    run(async {
        let lock = Rc::new(Lock::new());
        let (locks, calls) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let lockit = || {
            let (lock, locks, calls) = (lock.clone(), locks.clone(), calls.clone());
            create_task(async move {
                calls.set(calls.get() + 1);
                lock.acquire().await?.forget();
                locks.set(locks.get() + 1);
                Ok::<_, Cancelled>(())
            })
        };
        lock.acquire().await.unwrap().forget();
        let (t1, t2, t3) = (lockit(), lockit(), lockit());
        turn().await;
        let (l, t1r) = (lock.clone(), t1.to_ref());
        aio_core::get_running_loop().call_soon(move || {
            t1r.cancel();
            l.release().unwrap();
        });
        assert!(t1.await.is_err());
        assert_eq!(locks.get(), 1);
        assert_eq!(calls.get(), 3);
        assert!(t2.done());
        t3.cancel();
        turn().await;
        assert!(t3.cancelled());
    });
}

#[test]
fn lock_test_finished_waiter_cancelled() {
    run(async {
        let lock = Rc::new(Lock::new());
        lock.acquire().await.unwrap().forget();
        assert!(lock.locked());
        let result = log();
        let tb = lock_and_log(&lock, &result, 1);
        turn().await;
        let tc = lock_and_log(&lock, &result, 2);
        tb.cancel();
        lock.release().unwrap();
        turn().await;
        assert!(tb.cancelled());
        // The one place aio differs: asyncio's `cancel()` cancels the
        // waiter's future at once, so the release skips it and `tc` takes
        // the lock in this turn; aio's waiter leaves the queue when its
        // task runs (this turn), handing the lock to `tc`, which takes it
        // next turn (README, "Cancellation").
        turn().await;
        assert!(lock.locked());
        tc.await.unwrap().unwrap();
    });
}

#[test]
fn event_test_wait() {
    run(async {
        let ev = Rc::new(Event::new());
        let result = log();
        let waiter = |n| {
            let (ev, result) = (ev.clone(), result.clone());
            create_task(async move {
                ev.wait().await?;
                result.borrow_mut().push(n);
                Ok::<_, Cancelled>(())
            })
        };
        let (t1, t2) = (waiter(1), waiter(2));
        turn().await;
        assert_eq!(*result.borrow(), []);
        let t3 = waiter(3);
        ev.set();
        turn().await;
        assert_eq!(*result.borrow(), [3, 1, 2]);
        for t in [t1, t2, t3] {
            assert!(t.done());
        }
    });
}

#[test]
fn event_test_clear_with_waiters() {
    run(async {
        let ev = Rc::new(Event::new());
        let result = log();
        let (e, r) = (ev.clone(), result.clone());
        let t = create_task(async move {
            e.wait().await?;
            r.borrow_mut().push(1);
            Ok::<_, Cancelled>(())
        });
        turn().await;
        assert_eq!(*result.borrow(), []);
        ev.set();
        ev.clear();
        assert!(!ev.is_set());
        ev.set();
        ev.set();
        turn().await;
        assert_eq!(*result.borrow(), [1]);
        assert!(t.done());
    });
}

#[test]
fn condition_test_wait() {
    run(async {
        let cond = Rc::new(Condition::new());
        let result = log();
        let waiter = |n| {
            let (cond, result) = (cond.clone(), result.clone());
            create_task(async move {
                let mut g = cond.acquire().await?;
                cond.wait(&mut g).await?;
                result.borrow_mut().push(n);
                g.forget(); // returns holding the lock, as CPython's test does
                Ok::<_, Cancelled>(())
            })
        };
        let (t1, t2, t3) = (waiter(1), waiter(2), waiter(3));
        turn().await;
        assert_eq!(*result.borrow(), []);
        assert!(!cond.locked());

        cond.acquire().await.unwrap().forget();
        cond.notify(1).unwrap();
        turn().await;
        assert_eq!(*result.borrow(), []);
        assert!(cond.locked());

        cond.lock().release().unwrap();
        turn().await;
        assert_eq!(*result.borrow(), [1]);
        assert!(cond.locked());

        cond.notify(2).unwrap();
        turn().await;
        assert_eq!(*result.borrow(), [1]);
        assert!(cond.locked());

        cond.lock().release().unwrap();
        turn().await;
        assert_eq!(*result.borrow(), [1, 2]);
        assert!(cond.locked());

        cond.lock().release().unwrap();
        turn().await;
        assert_eq!(*result.borrow(), [1, 2, 3]);
        assert!(cond.locked());
        for t in [t1, t2, t3] {
            t.await.unwrap().unwrap();
        }
    });
}

/// `await cond.acquire(); <notify>; cond.release(); await asyncio.sleep(0)`.
async fn notify_and_release(cond: &Condition, notify: impl FnOnce(&Condition)) {
    let g = cond.acquire().await.unwrap();
    notify(cond);
    drop(g);
    turn().await;
}

/// Every task is done, and returned `Ok`.
async fn all_done<T: aio_core::TaskOutput>(tasks: impl IntoIterator<Item = Task<Result<T, Cancelled>>>) {
    for t in tasks {
        assert!(t.done());
        t.await.unwrap().unwrap();
    }
}

/// `c1`, `c2`, `c3` of the notify tests: acquire, wait, log `n`, release.
fn wait_and_log(cond: &Rc<Condition>, result: &Log, n: i32) -> Task<Result<(), Cancelled>> {
    let (cond, result) = (cond.clone(), result.clone());
    create_task(async move {
        let mut g = cond.acquire().await?;
        cond.wait(&mut g).await?;
        result.borrow_mut().push(n);
        Ok(())
    })
}

#[test]
fn condition_test_notify() {
    run(async {
        let cond = Rc::new(Condition::new());
        let result = log();
        let tasks = [1, 2, 3].map(|n| wait_and_log(&cond, &result, n));
        turn().await;
        assert_eq!(*result.borrow(), []);

        notify_and_release(&cond, |c| assert_eq!(c.notify(1), Ok(1))).await;
        assert_eq!(*result.borrow(), [1]);

        notify_and_release(&cond, |c| {
            c.notify(1).unwrap();
            c.notify(2048).unwrap();
        })
        .await;
        assert_eq!(*result.borrow(), [1, 2, 3]);
        all_done(tasks).await;
    });
}

#[test]
fn condition_test_notify_all() {
    run(async {
        let cond = Rc::new(Condition::new());
        let result = log();
        let tasks = [1, 2].map(|n| wait_and_log(&cond, &result, n));
        turn().await;
        assert_eq!(*result.borrow(), []);

        notify_and_release(&cond, |c| assert_eq!(c.notify_all(), Ok(2))).await;
        assert_eq!(*result.borrow(), [1, 2]);
        all_done(tasks).await;
    });
}

#[test]
fn condition_test_notify_unacquired() {
    let cond = Condition::new();
    assert!(cond.notify(1).is_err());
    assert!(cond.notify_all().is_err());
}

#[test]
fn condition_test_wait_for() {
    run(async {
        let cond = Rc::new(Condition::new());
        let presult = Rc::new(Cell::new(false));
        let result = log();
        let t = {
            let (cond, presult, result) = (cond.clone(), presult.clone(), result.clone());
            create_task(async move {
                let mut g = cond.acquire().await?;
                if cond.wait_for(&mut g, || presult.get()).await? {
                    result.borrow_mut().push(1);
                }
                Ok::<_, Cancelled>(())
            })
        };
        turn().await;
        assert_eq!(*result.borrow(), []);

        notify_and_release(&cond, |c| c.notify(1).map(drop).unwrap()).await;
        assert_eq!(*result.borrow(), []);

        presult.set(true);
        notify_and_release(&cond, |c| c.notify(1).map(drop).unwrap()).await;
        assert_eq!(*result.borrow(), [1]);
        all_done([t]).await;
    });
}

/// bpo-32841: a waiter notified, then cancelled while it takes the lock
/// back, ends cancelled, after it reached its wait.
#[test]
fn condition_test_wait_cancel_after_notify() {
    run(async {
        let waited = Rc::new(Cell::new(false));
        let cond = Rc::new(Condition::new());
        let waiter = {
            let (cond, waited) = (cond.clone(), waited.clone());
            create_task(async move {
                let mut g = cond.acquire().await?;
                waited.set(true); // Make sure this area was reached.
                cond.wait(&mut g).await
            })
        };
        turn().await; // Start waiting.

        let g = cond.acquire().await.unwrap();
        cond.notify(1).unwrap();
        turn().await; // Get to acquire().
        waiter.cancel();
        turn().await; // Activate the cancellation.
        drop(g);
        turn().await; // The cancellation should occur.

        assert!(waiter.cancelled());
        assert!(waited.get());
        assert!(!cond.locked(), "the cancelled waiter's lock went with it");
    });
}

/// `test_wait_cancel_contested`: notified, then cancelled while another
/// holds the lock; it takes the lock back before it ends, whichever way.
#[test]
fn condition_test_wait_cancel_contested() {
    run(async {
        let cond = Rc::new(Condition::new());
        let wait_task = {
            let cond = cond.clone();
            create_task(async move {
                let mut g = cond.acquire().await?;
                let r = cond.wait(&mut g).await;
                // It returns holding the lock, as CPython's waiter does.
                g.forget();
                r
            })
        };
        turn().await;
        assert!(!cond.locked());

        // Notify, but contest the lock before cancelling.
        cond.acquire().await.unwrap().forget();
        assert!(cond.locked());
        cond.notify(1).unwrap();
        let w = wait_task.to_ref();
        aio_core::get_running_loop().call_soon(move || {
            w.cancel();
        });
        let c = cond.clone();
        aio_core::get_running_loop().call_soon(move || c.lock().release().unwrap());
        // A cancellation, if it arrives, is the task's own affair.
        let _ = wait_task.await;
        assert!(cond.locked());
    });
}

#[test]
fn condition_test_timeout_in_block() {
    run(async {
        let cond = Condition::new();
        let mut g = cond.acquire().await.unwrap();
        let r = aio_core::wait_for(cond.wait(&mut g), 0.05).await;
        assert_eq!(r, Err(aio_core::TimeoutError));
        assert!(cond.locked(), "the wait took the lock back");
        drop(g);
        assert!(!cond.locked());
    });
}

#[test]
fn semaphore_test_acquire_cancel_before_awoken() {
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let result = log();
        let ts: Vec<_> = (1..=4).map(|n| sem_and_log(&sem, &result, n)).collect();
        turn().await;
        ts[0].cancel();
        ts[1].cancel();
        sem.release();
        turn().await;
        turn().await;
        assert!(ts[2].done());
        assert!(!ts[3].done());
        ts[2].cancel();
        ts[3].cancel();
        turn().await;
    });
}

#[test]
fn semaphore_test_acquire_hang() {
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let result = log();
        let t1 = sem_and_log(&sem, &result, 1);
        let t2 = sem_and_log(&sem, &result, 2);
        turn().await;
        t1.cancel();
        sem.release();
        turn().await;
        turn().await;
        assert!(sem.locked());
        assert!(t2.done());
    });
}

#[test]
fn semaphore_test_acquire_no_hang() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        let t2_slot: Rc<RefCell<Option<aio_core::TaskRef>>> = Rc::default();
        let (s, slot) = (sem.clone(), t2_slot.clone());
        let t1 = create_task(async move {
            {
                let _g = s.acquire().await?;
                sleep(0).await?;
            }
            slot.borrow().as_ref().expect("t2 exists").cancel();
            Ok::<_, Cancelled>(())
        });
        let s = sem.clone();
        let t2 = create_task(async move {
            let _g = s.acquire().await?;
            panic!("t2 must not get the permit");
            #[allow(unreachable_code)]
            Ok::<(), Cancelled>(())
        });
        *t2_slot.borrow_mut() = Some(t2.to_ref());
        t1.await.unwrap().unwrap();
        assert!(t2.await.is_err());
        let _permit = aio_core::wait_for(sem.acquire(), 1.0).await.unwrap().unwrap();
    });
}

#[test]
fn semaphore_test_acquire() {
    run(async {
        let sem = Rc::new(Semaphore::new(3));
        let result = log();
        sem.acquire().await.unwrap().forget();
        sem.acquire().await.unwrap().forget();
        assert!(!sem.locked());

        let t1 = sem_and_log(&sem, &result, 1);
        let t2 = sem_and_log(&sem, &result, 2);
        let t3 = sem_and_log(&sem, &result, 3);
        turn().await;
        assert_eq!(*result.borrow(), [1]);
        assert!(sem.locked());
        assert_eq!(sem.value(), 0);

        let t4 = sem_and_log(&sem, &result, 4);
        sem.release();
        sem.release();
        assert_eq!(sem.value(), 0);

        turn().await;
        assert_eq!(sem.value(), 0);
        assert_eq!(result.borrow().len(), 3);
        assert!(sem.locked());
        assert!(t1.done());
        let race = [t2, t3, t4];
        assert_eq!(race.iter().filter(|t| t.done()).count(), 2);

        // Clean up the locked semaphore.
        sem.release();
        for t in race {
            t.await.unwrap().unwrap();
        }
        t1.await.unwrap().unwrap();
    });
}

/// `test_acquire_cancel`: an acquire cancelled while it waits leaves no
/// waiter behind: the next release goes to the pool.
#[test]
fn semaphore_test_acquire_cancel() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        sem.acquire().await.unwrap().forget();
        let acquire = {
            let sem = sem.clone();
            create_task(async move { sem.acquire().await.map(|g| g.forget()) })
        };
        let a = acquire.to_ref();
        aio_core::get_running_loop().call_soon(move || {
            a.cancel();
        });
        assert!(acquire.await.is_err());
        sem.release();
        assert_eq!(sem.value(), 1, "no waiter was left to take the permit");
    });
}

#[test]
fn semaphore_test_acquire_fifo_order() {
    run(async {
        let sem = Rc::new(Semaphore::new(1));
        let result: Rc<RefCell<Vec<String>>> = Rc::default();
        let coro = |tag: &'static str| {
            let (sem, result) = (sem.clone(), result.clone());
            create_task(async move {
                for round in 1..=2 {
                    sem.acquire().await?.forget();
                    result.borrow_mut().push(format!("{tag}_{round}"));
                    sleep(0.01).await?;
                    sem.release();
                }
                Ok::<_, Cancelled>(())
            })
        };
        let ts = [coro("c1"), coro("c2"), coro("c3")];
        for t in ts {
            t.await.unwrap().unwrap();
        }
        assert_eq!(*result.borrow(), ["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"]);
    });
}

#[test]
fn semaphore_test_acquire_fifo_order_3() {
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let result = log();
        let ts: Vec<_> = (1..=3).map(|n| sem_and_log(&sem, &result, n)).collect();
        turn().await;
        ts[0].cancel();
        turn().await;
        sem.release();
        sem.release();
        for t in ts {
            let _ = t.await;
        }
        assert_eq!(*result.borrow(), [2, 3]);
    });
}

/// A successful acquire wakes every task that queued behind it because of
/// FIFO while permits were free.
#[test]
fn semaphore_test_acquire_fifo_order_4() {
    run(async {
        let sem = Rc::new(Semaphore::new(0));
        let result = log();
        let t4: Rc<RefCell<Option<Task<()>>>> = Rc::default();
        let (s, r, slot) = (sem.clone(), result.clone(), t4.clone());
        let t1 = create_task(async move {
            assert_eq!(s.value(), 0);
            s.acquire().await?.forget();
            // Every waiting task was woken now.
            assert_eq!(s.value(), 0);
            // A fourth task, to run after c3, not c2.
            let r4 = r.clone();
            *slot.borrow_mut() = Some(create_task(async move { r4.borrow_mut().push(4) }));
            r.borrow_mut().push(1);
            Ok::<_, Cancelled>(())
        });
        let (s, r) = (sem.clone(), result.clone());
        let t2 = create_task(async move {
            s.release();
            s.release();
            s.release();
            assert_eq!(s.value(), 2);
            // Locked: c1 has not woken up yet.
            assert!(s.locked());
            s.acquire().await?.forget();
            r.borrow_mut().push(2);
            Ok::<_, Cancelled>(())
        });
        let (s, r) = (sem.clone(), result.clone());
        let t3 = create_task(async move {
            s.acquire().await?.forget();
            assert!(s.locked());
            r.borrow_mut().push(3);
            Ok::<_, Cancelled>(())
        });
        turn().await;
        // Three tasks queue, the first not woken up yet.
        assert_eq!(sem.value(), 2);
        turn().await;
        for t in [t1, t2, t3] {
            t.await.unwrap().unwrap();
        }
        let t4 = t4.borrow_mut().take().expect("c1 made c4");
        t4.await.unwrap();
        assert_eq!(*result.borrow(), [1, 2, 3, 4]);
    });
}
