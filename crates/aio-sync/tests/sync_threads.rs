//! The primitives shared by two loops on two threads and by plain threads
//! at once, with stress tests that count every increment and permit —
//! including waiters cancelled by timeouts mid-hand-off.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread;

use aio_core::{create_task, run};
use aio_sync::{Barrier, Condition, Event, Lock, Semaphore};
use aio_test::{block_on, within};

const LOOPS: usize = 2;
const PLAIN: usize = 2;

/// Runs `on_loop(i)` as the main future of a loop on each of `LOOPS`
/// threads and `on_thread(i)` on each of `PLAIN` plain threads, all at
/// once, and waits for all of them.
fn everywhere<L, P>(on_loop: L, on_thread: P)
where
    L: Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + Sync + 'static,
    P: Fn(usize) + Send + Sync + 'static,
{
    let on_loop = Arc::new(on_loop);
    let on_thread = Arc::new(on_thread);
    let start = Arc::new(std::sync::Barrier::new(LOOPS + PLAIN));
    let mut hs = Vec::new();
    for i in 0..LOOPS {
        let (f, start) = (on_loop.clone(), start.clone());
        hs.push(thread::spawn(move || {
            start.wait();
            run(async move { f(i).await });
        }));
    }
    for i in 0..PLAIN {
        let (f, start) = (on_thread.clone(), start.clone());
        hs.push(thread::spawn(move || {
            start.wait();
            f(i);
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn lock_counts_every_increment_across_loops_and_threads() {
    within(120, || {
        const TASKS: usize = 10;
        const PER_TASK: usize = 200;
        const PER_THREAD: usize = 2000;
        let lock = Arc::new(Lock::new());
        let counter = Arc::new(AtomicUsize::new(0));
        let (l1, c1, l2, c2) = (lock.clone(), counter.clone(), lock.clone(), counter.clone());
        everywhere(
            move |_| {
                let (lock, counter) = (l1.clone(), c1.clone());
                Box::pin(async move {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|_| {
                            let (lock, counter) = (lock.clone(), counter.clone());
                            create_task(async move {
                                for _ in 0..PER_TASK {
                                    let _g = lock.acquire().await.unwrap();
                                    // A read-yield-write that only a working
                                    // lock keeps exact.
                                    let v = counter.load(Relaxed);
                                    aio_core::yield_now().await.unwrap();
                                    counter.store(v + 1, Relaxed);
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            },
            move |_| {
                for _ in 0..PER_THREAD {
                    let _g = block_on(l2.acquire()).unwrap();
                    let v = c2.load(Relaxed);
                    thread::yield_now();
                    c2.store(v + 1, Relaxed);
                }
            },
        );
        assert_eq!(counter.load(Relaxed), LOOPS * TASKS * PER_TASK + PLAIN * PER_THREAD);
        assert!(!lock.locked());
    });
}

#[test]
fn semaphore_never_exceeds_its_permits_and_loses_none() {
    within(120, || {
        const PERMITS: usize = 3;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let in_use = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let enter = {
            let (in_use, peak, total) = (in_use.clone(), peak.clone(), total.clone());
            move || {
                let n = in_use.fetch_add(1, Relaxed) + 1;
                peak.fetch_max(n, Relaxed);
                total.fetch_add(1, Relaxed);
            }
        };
        let leave = {
            let in_use = in_use.clone();
            move || {
                in_use.fetch_sub(1, Relaxed);
            }
        };
        let (s1, s2) = (sem.clone(), sem.clone());
        let (e1, e2, x1, x2) = (enter.clone(), enter, leave.clone(), leave);
        everywhere(
            move |_| {
                let (sem, enter, leave) = (s1.clone(), e1.clone(), x1.clone());
                Box::pin(async move {
                    let tasks: Vec<_> = (0..8)
                        .map(|_| {
                            let (sem, enter, leave) = (sem.clone(), enter.clone(), leave.clone());
                            create_task(async move {
                                for _ in 0..300 {
                                    let _p = sem.acquire().await.unwrap();
                                    enter();
                                    aio_core::yield_now().await.unwrap();
                                    leave();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            },
            move |_| {
                for _ in 0..2000 {
                    let _p = block_on(s2.acquire()).unwrap();
                    e2();
                    thread::yield_now();
                    x2();
                }
            },
        );
        assert!(peak.load(Relaxed) <= PERMITS);
        assert_eq!(total.load(Relaxed), LOOPS * 8 * 300 + PLAIN * 2000);
        assert_eq!(sem.value(), PERMITS);
    });
}

#[test]
fn waiters_cancelled_by_timeouts_never_leak_the_lock_or_a_permit() {
    within(120, || {
        let lock = Arc::new(Lock::new());
        let sem = Arc::new(Semaphore::new(2));
        let done = Arc::new(AtomicUsize::new(0));
        let (l1, m1, d1, l2, m2) = (lock.clone(), sem.clone(), done.clone(), lock.clone(), sem.clone());
        everywhere(
            move |_| {
                let (lock, sem, done) = (l1.clone(), m1.clone(), d1.clone());
                Box::pin(async move {
                    let tasks: Vec<_> = (0..6)
                        .map(|i| {
                            let (lock, sem, done) = (lock.clone(), sem.clone(), done.clone());
                            create_task(async move {
                                for k in 0..300 {
                                    // Tiny deadlines: many expire while queued
                                    // and some just after the hand-off.
                                    let d = 0.00001 * ((i + k) % 5) as f64;
                                    if let Ok(Ok(g)) = aio_core::wait_for(lock.acquire(), d).await {
                                        aio_core::yield_now().await.unwrap();
                                        drop(g);
                                        done.fetch_add(1, Relaxed);
                                    }
                                    if let Ok(Ok(p)) = aio_core::wait_for(sem.acquire(), d).await {
                                        aio_core::yield_now().await.unwrap();
                                        drop(p);
                                    }
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            },
            move |_| {
                for _ in 0..1500 {
                    drop(block_on(l2.acquire()).unwrap());
                    drop(block_on(m2.acquire()).unwrap());
                }
            },
        );
        // Whatever was cancelled when: nothing is held, nothing is lost.
        assert!(!lock.locked());
        assert!(lock.try_acquire().is_some());
        assert_eq!(sem.value(), 2);
        assert!(done.load(Relaxed) > 0);
    });
}

#[test]
fn event_set_from_a_plain_thread_wakes_both_loops() {
    within(60, || {
        for _ in 0..50 {
            let ev = Arc::new(Event::new());
            let woken = Arc::new(AtomicUsize::new(0));
            let (e1, w1, e2) = (ev.clone(), woken.clone(), ev.clone());
            everywhere(
                move |_| {
                    let (ev, woken) = (e1.clone(), w1.clone());
                    Box::pin(async move {
                        let tasks: Vec<_> = (0..5)
                            .map(|_| {
                                let (ev, woken) = (ev.clone(), woken.clone());
                                create_task(async move {
                                    ev.wait().await.unwrap();
                                    woken.fetch_add(1, Relaxed);
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    })
                },
                move |i| {
                    if i == 0 {
                        e2.set();
                    } else {
                        block_on(e2.wait()).unwrap();
                    }
                },
            );
            assert_eq!(woken.load(Relaxed), LOOPS * 5);
        }
    });
}

#[test]
fn condition_across_threads_never_misses_a_notification() {
    within(120, || {
        const STEPS: usize = 500;
        let cond = Arc::new(Condition::new());
        let state = Arc::new(AtomicUsize::new(0));
        let (c1, s1, c2, s2) = (cond.clone(), state.clone(), cond.clone(), state.clone());
        everywhere(
            move |_| {
                let (cond, state) = (c1.clone(), s1.clone());
                Box::pin(async move {
                    // Consumers: wait for every value in turn.
                    for want in 1..=STEPS {
                        let mut g = cond.acquire().await.unwrap();
                        cond.wait_for(&mut g, || state.load(Relaxed) >= want).await.unwrap();
                    }
                })
            },
            move |i| {
                if i == 0 {
                    // The producer: one step at a time, under the lock.
                    for _ in 0..STEPS {
                        let _g = block_on(c2.acquire()).unwrap();
                        s2.fetch_add(1, Relaxed);
                        c2.notify_all().unwrap();
                    }
                } else {
                    let mut g = block_on(c2.acquire()).unwrap();
                    block_on(c2.wait_for(&mut g, || s2.load(Relaxed) == STEPS)).unwrap();
                }
            },
        );
        assert_eq!(state.load(Relaxed), STEPS);
        assert!(!cond.locked());
    });
}

#[test]
fn barrier_rounds_across_loops_and_threads() {
    within(120, || {
        const ROUNDS: usize = 200;
        let b = Arc::new(Barrier::new(LOOPS + PLAIN).unwrap());
        let seen = Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let (b1, n1, b2, n2) = (b.clone(), seen.clone(), b.clone(), seen.clone());
        everywhere(
            move |_| {
                let (b, seen) = (b1.clone(), n1.clone());
                Box::pin(async move {
                    for r in 0..ROUNDS {
                        let i = b.wait().await.unwrap();
                        seen[r].fetch_or(1 << i, Relaxed);
                    }
                })
            },
            move |_| {
                for r in 0..ROUNDS {
                    let i = block_on(b2.wait()).unwrap();
                    n2[r].fetch_or(1 << i, Relaxed);
                }
            },
        );
        // Every round, each arrival index 0..parties was handed out once.
        for r in seen.iter() {
            assert_eq!(r.load(Relaxed), (1 << (LOOPS + PLAIN)) - 1);
        }
    });
}

/// A lock biased to one thread (released there with nobody waiting),
/// taken and released in a tight loop there while another thread takes
/// it over: the other thread's first use revokes the bias wherever the
/// owner is in its sequence (the real `membarrier` path). Many fresh
/// locks, so the revocation lands at many points: never two holders,
/// every critical section counted, the lock free at the end.
#[test]
fn a_bias_revoked_mid_sequence_keeps_mutual_exclusion() {
    use std::sync::atomic::AtomicBool;
    within(120, || {
        const LOCKS: usize = 300;
        const EACH: usize = 50;
        for _ in 0..LOCKS {
            let lock = Arc::new(Lock::new());
            // Released with nobody waiting: biased to this thread.
            drop(lock.try_acquire().expect("a new lock is free"));
            let inside = Arc::new(AtomicBool::new(false));
            let count = Arc::new(AtomicUsize::new(0));
            let go = Arc::new(AtomicBool::new(false));
            let section = |lock: &Lock, inside: &AtomicBool, count: &AtomicUsize| {
                for spins in 0u32.. {
                    assert!(spins < 10_000_000, "the lock was never free");
                    if let Some(g) = lock.try_acquire() {
                        assert!(!inside.swap(true, Relaxed), "two holders");
                        count.fetch_add(1, Relaxed);
                        inside.store(false, Relaxed);
                        drop(g);
                        return;
                    }
                    // The holder may be waiting for this core.
                    if spins % 256 == 255 {
                        thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            };
            let other = {
                let (lock, inside, count, go) = (lock.clone(), inside.clone(), count.clone(), go.clone());
                thread::spawn(move || {
                    while !go.load(std::sync::atomic::Ordering::Acquire) {
                        thread::yield_now();
                    }
                    for _ in 0..EACH {
                        section(&lock, &inside, &count);
                    }
                })
            };
            go.store(true, std::sync::atomic::Ordering::Release);
            for _ in 0..EACH {
                section(&lock, &inside, &count);
            }
            other.join().unwrap();
            assert_eq!(count.load(Relaxed), 2 * EACH);
            assert!(!lock.locked());
            drop(lock.try_acquire().expect("free at the end"));
        }
    });
}

/// A lock biased to a loop's thread, held by one of its tasks while a
/// loop on another thread waits for it: the waiter revokes the bias and
/// gets the lock when the holder's guard drops, in order.
#[test]
fn a_waiter_on_another_loop_gets_a_lock_held_under_bias() {
    within(60, || {
        let lock = Arc::new(Lock::new());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (l, o) = (lock.clone(), order.clone());
        run(async move {
            drop(l.acquire().await.unwrap()); // biased to this thread
            let g = l.acquire().await.unwrap();
            let (l2, o2) = (l.clone(), o.clone());
            let other = thread::spawn(move || {
                run(async move {
                    let _g = l2.acquire().await.unwrap();
                    o2.lock().unwrap().push("other");
                })
            });
            // Give the other loop time to queue (not needed for the
            // outcome: it gets the lock either way).
            for _ in 0..100 {
                aio_core::yield_now().await.unwrap();
            }
            o.lock().unwrap().push("holder");
            drop(g);
            aio_core::to_thread(move || other.join().unwrap()).await.unwrap();
        });
        assert_eq!(*order.lock().unwrap(), ["holder", "other"]);
        assert!(!lock.locked());
    });
}
