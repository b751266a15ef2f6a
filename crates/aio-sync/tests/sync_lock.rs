//! Lock: mutual exclusion, FIFO hand-off, cancellation at every point;
//! asyncio's manual `release()`, and owned guards.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use aio_core::{create_task, run};
use aio_sync::{Lock, LockReleaseError, OwnedLockGuard};
use aio_test::{assert_cancelled, block_on, poll_once, settle, spawn_on, waiting_on};

/// How a contender takes the lock and gives it back.
#[derive(Clone, Copy)]
enum Hold {
    /// `acquire`, released when its guard drops.
    Guard,
    /// `acquire_owned`, released when its owned guard drops.
    Owned,
    /// asyncio's manual style: `acquire` (guard forgotten), then `release`.
    Manual,
}

/// A task that takes `lock` as `hold` says, logs `name` while it holds
/// it, and gives it back.
fn contender(lock: &Arc<Lock>, log: &Rc<RefCell<Vec<&'static str>>>, hold: Hold, name: &'static str) -> Contender {
    let (lock, log) = (lock.clone(), log.clone());
    create_task(async move {
        match hold {
            Hold::Guard => {
                let _g = lock.acquire().await?;
                log.borrow_mut().push(name);
            }
            Hold::Owned => {
                let _g = lock.acquire_owned().await?;
                log.borrow_mut().push(name);
            }
            Hold::Manual => {
                lock.acquire().await?.forget();
                log.borrow_mut().push(name);
                lock.release().expect("this task holds it");
            }
        }
        Ok(())
    })
}

type Contender = aio_core::Task<Result<(), aio_core::Cancelled>>;

/// Contenders `a` and `b` queue behind a holder (who holds as `hold`
/// says); `a` is cancelled while it waits (`early`) or after the holder's
/// release handed it the lock, before it ran. Either way only `b` gets
/// the lock, and it ends unlocked. Returns the lock for further checks.
async fn a_cancelled_contender(hold: Hold, early: bool) -> Arc<Lock> {
    let lock = Arc::new(Lock::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    let release: Box<dyn FnOnce()> = match hold {
        Hold::Guard => Box::new(drop_later(lock.acquire().await.unwrap())),
        Hold::Owned => Box::new(drop_later(lock.acquire_owned().await.unwrap())),
        Hold::Manual => {
            lock.acquire().await.unwrap().forget();
            let lock = lock.clone();
            Box::new(move || lock.release().unwrap())
        }
    };
    let a = contender(&lock, &log, hold, "a");
    let b = contender(&lock, &log, hold, "b");
    settle(1).await;
    if early {
        a.cancel(); // before any wake-up
        settle(1).await;
        release();
    } else {
        release(); // handed to `a`, which is woken but has not run
        a.cancel();
    }
    assert_cancelled(a).await;
    b.await.unwrap().unwrap();
    assert_eq!(*log.borrow(), ["b"]);
    assert!(!lock.locked());
    lock
}

/// A release that drops `guard` when called.
fn drop_later<G>(guard: G) -> impl FnOnce() {
    move || drop(guard)
}

/// Three waiters queue behind a holder whose guard `held` is: the first
/// dropped before the hand-off (it simply leaves), the second after it
/// (it passes the lock on), and the third, a plain `acquire`, gets it.
fn two_dropped_waiters<W: Future>(lock: &Lock, held: impl FnOnce(), first: W, second: W) {
    let (mut first, mut second) = (Box::pin(first), Box::pin(second));
    let mut third = Box::pin(lock.acquire());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    assert!(poll_once(third.as_mut()).is_pending());
    drop(first); // before the hand-off: simply leaves
    held();
    // Handed to `second`, which has not run: asyncio's lock is not
    // "locked" then, but it is `second`'s: nobody else gets it.
    assert!(!lock.locked());
    assert!(lock.try_acquire().is_none());
    drop(second); // passes it to `third`
    let g3 = match poll_once(third.as_mut()) {
        Poll::Ready(g) => g.unwrap(),
        Poll::Pending => panic!("the lock was lost"),
    };
    drop(g3);
    assert!(!lock.locked());
}

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
        let waiter = waiting_on(&lock, |l2| async move { l2.acquire().await.map(drop) }).await;
        drop(g);
        // Handed to the waiter, which has not run yet: not held (asyncio's
        // `locked()` is false), yet a newcomer cannot take it, and a stray
        // release fails instead of letting a second task in.
        assert!(!lock.locked());
        assert!(lock.try_acquire().is_none());
        assert_eq!(lock.release(), Err(aio_sync::LockReleaseError));
        waiter.await.unwrap().unwrap();
        assert!(!lock.locked());
    });
}

#[test]
fn cancelled_while_waiting_leaves_the_queue() {
    run(a_cancelled_contender(Hold::Guard, true));
}

#[test]
fn cancelled_after_the_hand_off_passes_the_lock_on() {
    run(a_cancelled_contender(Hold::Guard, false));
}

#[test]
fn cancelled_after_the_hand_off_with_nobody_behind_unlocks() {
    run(async {
        let lock = Arc::new(Lock::new());
        let g = lock.acquire().await.unwrap();
        let a = waiting_on(&lock, |l2| async move { l2.acquire().await.map(drop) }).await;
        drop(g);
        a.cancel();
        assert_cancelled(a).await;
        assert!(!lock.locked());
    });
}

#[test]
fn dropped_waiter_before_and_after_the_hand_off() {
    let lock = Lock::new();
    let g = lock.try_acquire().unwrap();
    two_dropped_waiters(&lock, drop_later(g), lock.acquire(), lock.acquire());
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
        assert_cancelled(t).await;
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

// asyncio's manual style: `await lock.acquire()` ... `lock.release()`.

#[test]
fn release_unlocks_a_lock_acquired_without_a_guard() {
    run(async {
        let lock = Lock::new();
        lock.acquire().await.unwrap().forget();
        assert!(lock.locked(), "forget keeps it locked");
        assert_eq!(lock.release(), Ok(()));
        assert!(!lock.locked());
        lock.try_acquire().unwrap().forget();
        assert_eq!(lock.release(), Ok(()));
        assert!(!lock.locked());
    });
}

#[test]
fn releasing_an_unlocked_lock_is_an_error() {
    // asyncio: RuntimeError('Lock is not acquired.'), and no change.
    let lock = Lock::new();
    assert_eq!(lock.release(), Err(LockReleaseError));
    assert_eq!(LockReleaseError.to_string(), "Lock is not acquired");
    assert!(!lock.locked());
    let g = lock.try_acquire().unwrap();
    drop(g);
    assert_eq!(lock.release(), Err(LockReleaseError), "the guard released it");
    // Still a working lock, counted once.
    let g = lock.try_acquire().unwrap();
    assert!(lock.try_acquire().is_none());
    drop(g);
}

#[test]
fn release_hands_the_lock_to_the_first_waiter_in_order() {
    let order = run(async {
        let lock = Arc::new(Lock::new());
        let order = Rc::new(RefCell::new(Vec::new()));
        lock.acquire().await.unwrap().forget();
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let (lock, order) = (lock.clone(), order.clone());
                create_task(async move {
                    lock.acquire().await?.forget();
                    order.borrow_mut().push(i);
                    aio_core::yield_now().await?;
                    lock.release().expect("this task holds it");
                    Ok::<_, aio_core::Cancelled>(())
                })
            })
            .collect();
        settle(1).await;
        lock.release().unwrap();
        // Handed to waiter 0, which has not run yet: a newcomer cannot take
        // it, and it is not "locked" until waiter 0 runs (asyncio's rule).
        assert!(!lock.locked());
        assert!(lock.try_acquire().is_none());
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(!lock.locked());
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, [0, 1, 2]);
}

#[test]
fn any_task_may_release_the_lock() {
    run(async {
        let lock = Arc::new(Lock::new());
        spawn_on(&lock, |l2| async move { l2.acquire().await.map(|g| g.forget()) })
            .await
            .unwrap()
            .unwrap();
        assert!(lock.locked());
        assert_eq!(lock.release(), Ok(()), "asyncio does not track the owner");
        assert!(!lock.locked());
    });
}

#[test]
fn cancelled_after_a_release_handed_it_the_lock_passes_it_on() {
    let lock = run(a_cancelled_contender(Hold::Manual, false));
    assert_eq!(lock.release(), Err(LockReleaseError));
}

#[test]
fn a_guard_dropped_after_a_manual_release_does_not_free_the_lock_twice() {
    let lock = Lock::new();
    let g = lock.try_acquire().unwrap();
    assert_eq!(lock.release(), Ok(()));
    drop(g); // finds the lock unlocked: nothing to give up
    assert!(!lock.locked());
    let g = lock.try_acquire().unwrap();
    assert!(lock.try_acquire().is_none(), "still one holder at most");
    drop(g);
}

// Owned guards: `'static`, movable into another task or thread.

#[test]
fn an_owned_guard_moves_into_another_thread_and_releases_there() {
    fn assert_static_send<T: Send + 'static>(_: &T) {}
    run(async {
        let lock = Arc::new(Lock::new());
        let guard = lock.acquire_owned().await.unwrap();
        assert_static_send(&guard);
        assert!(Arc::ptr_eq(guard.lock(), &lock));
        assert!(lock.locked());
        let waiter = waiting_on(&lock, |l2| async move { l2.acquire().await.map(drop) }).await;
        // Released on another thread: the hand-off wakes the waiter here.
        std::thread::spawn(move || drop(guard)).join().unwrap();
        waiter.await.unwrap().unwrap();
        assert!(!lock.locked());
    });
}

#[test]
fn an_owned_guard_moves_into_another_task() {
    run(async {
        let lock = Arc::new(Lock::new());
        let log = Rc::new(RefCell::new(Vec::new()));
        let guard = lock.acquire_owned().await.unwrap();
        let log2 = log.clone();
        let holder = create_task(async move {
            let _guard: OwnedLockGuard = guard;
            aio_core::yield_now().await?;
            log2.borrow_mut().push("holder done");
            Ok::<_, aio_core::Cancelled>(())
        });
        let _g = lock.acquire().await.unwrap();
        log.borrow_mut().push("main has the lock");
        holder.await.unwrap().unwrap();
        assert_eq!(*log.borrow(), ["holder done", "main has the lock"]);
    });
}

#[test]
fn owned_and_borrowed_acquires_share_one_fifo_queue() {
    let order = run(async {
        let lock = Arc::new(Lock::new());
        let order = Rc::new(RefCell::new(Vec::new()));
        let g = lock.acquire().await.unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (lock, order) = (lock.clone(), order.clone());
                create_task(async move {
                    if i % 2 == 0 {
                        let _g = lock.acquire_owned().await?;
                        order.borrow_mut().push(i);
                        aio_core::yield_now().await?;
                    } else {
                        let _g = lock.acquire().await?;
                        order.borrow_mut().push(i);
                        aio_core::yield_now().await?;
                    }
                    Ok::<_, aio_core::Cancelled>(())
                })
            })
            .collect();
        settle(1).await;
        drop(g);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(!lock.locked());
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn owned_acquire_cancelled_after_the_hand_off_passes_the_lock_on() {
    run(a_cancelled_contender(Hold::Owned, false));
}

#[test]
fn owned_acquire_cancelled_while_waiting_leaves_the_queue() {
    run(async {
        let lock = Arc::new(Lock::new());
        let g = lock.acquire().await.unwrap();
        let a = waiting_on(&lock, |l2| async move { l2.acquire_owned().await.map(drop) }).await;
        a.cancel(); // before any wake-up
        assert_cancelled(a).await;
        drop(g);
        assert!(!lock.locked(), "nobody was left queued to hand it to");
    });
}

#[test]
fn dropped_owned_acquire_before_and_after_the_hand_off() {
    let lock = Arc::new(Lock::new());
    let g = lock.try_acquire_owned().unwrap();
    assert!(lock.try_acquire_owned().is_none());
    two_dropped_waiters(&lock, drop_later(g), lock.acquire_owned(), lock.acquire_owned());
    assert_eq!(Arc::strong_count(&lock), 1, "the futures dropped their references");
}

#[test]
fn owned_guard_forget_then_release() {
    let lock = Arc::new(Lock::new());
    block_on(lock.acquire_owned()).unwrap().forget();
    assert!(lock.locked());
    assert_eq!(Arc::strong_count(&lock), 1, "forget drops the guard's reference");
    assert_eq!(lock.release(), Ok(()));
    assert!(!lock.locked());
}
