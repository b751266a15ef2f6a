//! The loop API: callbacks and timers, stop, close, Runner, threads,
//! cross-thread wakes, run_coroutine_threadsafe, to_thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use aio_core::{Builder, Cancelled, Loop, Runner, create_task, get_running_loop, run, sleep, to_thread, yield_now};

#[test]
fn call_soon_runs_in_fifo_order_and_handles_cancel() {
    let lp = Loop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..3 {
        let l = log.clone();
        let h = lp.call_soon(move || l.borrow_mut().push(i));
        if i == 1 {
            h.cancel();
            assert!(h.cancelled());
        }
    }
    let l = log.clone();
    let lp2 = lp.clone();
    lp.call_soon(move || {
        l.borrow_mut().push(99);
        lp2.stop();
    });
    lp.run_forever();
    assert_eq!(*log.borrow(), [0, 2, 99]);
    lp.close();
}

/// asyncio's `call_soon`/`call_later`/`call_at` on a closed loop raise
/// `RuntimeError('Event loop is closed')`. aio's drop the callback at
/// once (nothing could ever run it, or free it before the loop's core
/// goes) and return its handle cancelled.
#[test]
fn callbacks_given_to_a_closed_loop_are_dropped_and_their_handles_cancelled() {
    /// Counts its drops.
    struct Flag(Rc<Cell<u32>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let lp = Loop::new();
    lp.close();
    let f = Flag(drops.clone());
    let soon = lp.call_soon(move || drop(f));
    let f = Flag(drops.clone());
    let later = lp.call_later(1, move || drop(f)).unwrap();
    let f = Flag(drops.clone());
    let at = lp.call_at(lp.time() + 1.0, move || drop(f)).unwrap();
    assert_eq!(drops.get(), 3, "every callback was dropped");
    assert!(soon.cancelled() && later.cancelled() && at.cancelled());
}

#[test]
fn call_later_and_call_at_fire_in_deadline_order() {
    let lp = Loop::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let t0 = lp.time();
    for (d, name) in [(0.02, "b"), (0.01, "a"), (0.03, "c")] {
        let l = log.clone();
        lp.call_later(d, move || l.borrow_mut().push(name)).unwrap();
    }
    let l = log.clone();
    let cancelled = lp.call_at(t0 + 0.015, move || l.borrow_mut().push("never")).unwrap();
    cancelled.cancel();
    let lp2 = lp.clone();
    lp.call_later(0.04, move || lp2.stop()).unwrap();
    lp.run_forever();
    assert_eq!(*log.borrow(), ["a", "b", "c"]);
    assert!(lp.time() - t0 >= 0.04);
    lp.close();
}

/// asyncio orders timers by deadline even when it is in the past: they
/// all run at the next turn, after what `call_soon` queued, the earliest
/// deadline first (CPython prints `['soon', 'x', 'at-2', 'b-1', 'c-0.5',
/// 'a0', 'sleep-1', 'sleep0']` for this program).
#[test]
fn past_deadlines_run_next_turn_in_deadline_order() {
    run(async {
        let lp = get_running_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let push = |name: &'static str| {
            let l = log.clone();
            move || l.borrow_mut().push(name)
        };
        lp.call_later(0, push("a0")).unwrap();
        lp.call_later(-1, push("b-1")).unwrap();
        lp.call_soon(push("soon"));
        lp.call_at(lp.time() - 2.0, push("at-2")).unwrap();
        lp.call_later(-0.5, push("c-0.5")).unwrap();
        let h = lp.call_later(-3, push("x")).unwrap();
        assert!(
            (lp.time() - 3.0 - h.when()).abs() < 0.5,
            "when() is the deadline, in the past"
        );
        for (d, name) in [(-1.0, "sleep-1"), (0.0, "sleep0")] {
            let l = log.clone();
            drop(create_task(async move {
                sleep(d).await?;
                l.borrow_mut().push(name);
                Ok::<_, Cancelled>(())
            }));
        }
        sleep(0.01).await.unwrap();
        assert_eq!(
            *log.borrow(),
            ["soon", "x", "at-2", "b-1", "c-0.5", "a0", "sleep-1", "sleep0"]
        );

        // Sleeps until times gone by wake in deadline order too.
        log.borrow_mut().clear();
        let now = lp.time();
        for (at, name) in [(now - 1.0, "until-1"), (now - 2.0, "until-2"), (now - 1.5, "until-1.5")] {
            let l = log.clone();
            drop(create_task(async move {
                aio_core::sleep_until(at).await?;
                l.borrow_mut().push(name);
                Ok::<_, Cancelled>(())
            }));
        }
        sleep(0.01).await.unwrap();
        assert_eq!(*log.borrow(), ["until-2", "until-1.5", "until-1"]);
    });
}

#[test]
fn timers_are_never_early() {
    run(async {
        let lp = get_running_loop();
        for d in [0.0005, 0.001, 0.003] {
            let t0 = Instant::now();
            sleep(d).await?;
            assert!(t0.elapsed() >= Duration::from_secs_f64(d) - Duration::from_micros(50));
        }
        let _ = lp.time();
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn runner_runs_several_futures_on_one_loop_then_closes() {
    let r = Runner::new();
    let a = r.run(async { get_running_loop().time() });
    let b = r.run(async { get_running_loop().time() });
    assert!(b >= a);
    let lp = r.get_loop().clone();
    r.close();
    assert!(lp.is_closed());
}

#[test]
fn close_cancels_pending_tasks_and_lets_them_clean_up() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    run(async move {
        create_task(async move {
            if sleep(100).await.is_err() {
                sleep(0.001).await.unwrap(); // clean-up may await during close
                l.borrow_mut().push("cleaned up");
            }
        });
        yield_now().await.unwrap();
    });
    assert_eq!(*log.borrow(), ["cleaned up"]);
}

#[test]
fn close_drops_tasks_that_outlive_the_shutdown_timeout() {
    let lp = Builder::new().shutdown_timeout(Duration::from_millis(20)).build();
    lp.run_until_complete(async {
        create_task(async {
            loop {
                let _ = sleep(1).await; // ignores every cancellation
            }
        });
        yield_now().await.unwrap();
    })
    .unwrap();
    let t0 = Instant::now();
    lp.close();
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_nested_run_is_refused() {
    let r = std::panic::catch_unwind(|| {
        run(async {
            run(async {});
        })
    });
    assert!(r.is_err());
}

#[test]
fn stop_ends_run_until_complete_early() {
    let lp = Loop::new();
    let r = lp.run_until_complete(async {
        get_running_loop().stop();
        sleep(10).await
    });
    assert!(r.unwrap_err().is_cancelled());
    lp.close();
}

/// A waker parked by a task, woken from another thread.
#[test]
fn wakes_from_other_threads_reach_a_parked_loop() {
    run(async {
        for _ in 0..200 {
            let slot: Arc<parking_lot::Mutex<Option<Waker>>> = Arc::default();
            let s2 = slot.clone();
            let woke = Arc::new(AtomicUsize::new(0));
            let w2 = woke.clone();
            let th = std::thread::spawn(move || {
                loop {
                    if let Some(w) = s2.lock().take() {
                        w2.store(1, Ordering::SeqCst);
                        w.wake();
                        return;
                    }
                    std::thread::yield_now();
                }
            });
            std::future::poll_fn(|cx| {
                if woke.load(Ordering::SeqCst) == 1 {
                    return std::task::Poll::Ready(());
                }
                *slot.lock() = Some(cx.waker().clone());
                std::task::Poll::Pending
            })
            .await;
            th.join().unwrap();
        }
    });
}

#[test]
fn run_coroutine_threadsafe_from_a_plain_thread() {
    let lp = Loop::new();
    let h = lp.handle();
    let th = std::thread::spawn(move || {
        let a = h.run_coroutine_threadsafe(async {
            sleep(0.01).await?;
            Ok::<_, Cancelled>(40)
        });
        let b = h.run_coroutine_threadsafe(async { 2 });
        let v = a.wait().unwrap().unwrap() + b.wait().unwrap();
        // Cancel one that would run forever.
        let c = h.run_coroutine_threadsafe(async { sleep(100).await });
        std::thread::sleep(Duration::from_millis(5));
        c.cancel();
        let cr = c.wait();
        h.call_soon_threadsafe(|| get_running_loop().stop()).unwrap();
        (v, cr.is_err())
    });
    lp.run_forever();
    let (v, cancelled) = th.join().unwrap();
    assert_eq!(v, 42);
    assert!(cancelled);
    lp.close();
    assert!(lp.handle().call_soon_threadsafe(|| {}).is_err());
}

#[test]
fn a_concurrent_future_can_be_awaited_from_another_loop() {
    let lp = Loop::new();
    let h = lp.handle();
    let th = std::thread::spawn(move || {
        run(async move {
            let v = h.run_coroutine_threadsafe(async { 6 * 7 }).await.unwrap();
            h.call_soon_threadsafe(|| get_running_loop().stop()).unwrap();
            v
        })
    });
    lp.run_forever();
    assert_eq!(th.join().unwrap(), 42);
    lp.close();
}

#[test]
fn to_thread_runs_blocking_work_off_the_loop() {
    let lp = Builder::new().max_threads(2).build();
    let v = lp
        .run_until_complete(async {
            let jobs: Vec<_> = (0..8u64)
                .map(|i| {
                    create_task(async move {
                        to_thread(move || {
                            std::thread::sleep(Duration::from_millis(5));
                            i * 2
                        })
                        .await
                        .unwrap()
                    })
                })
                .collect();
            let mut sum = 0;
            for j in jobs {
                sum += j.await.unwrap();
            }
            let p = to_thread(|| panic!("in a thread")).await;
            assert!(matches!(p, Err(aio_core::ToThreadError::Panicked(_))));
            sum
        })
        .unwrap();
    assert_eq!(v, 56);
    lp.close();
}

#[test]
fn debug_mode_flags_slow_steps() {
    // Only checks that debug mode runs; the warning goes to stderr.
    let lp = Builder::new()
        .debug(true)
        .slow_callback_duration(Duration::from_millis(1))
        .build();
    assert!(lp.get_debug());
    lp.run_until_complete(async {
        std::thread::sleep(Duration::from_millis(2));
        create_task(sleep(10)); // reported as pending at close
    })
    .unwrap();
    lp.close();
}

#[test]
fn a_submission_the_loop_never_ran_resolves_cancelled_at_close() {
    let lp = aio_core::Loop::new();
    lp.run_until_complete(async {}).unwrap(); // open and idle
    let h = lp.handle();
    let fut = h.run_coroutine_threadsafe(async { 1 });
    lp.close();
    assert!(
        fut.wait_timeout(Duration::from_secs(10)),
        "the submission never resolved"
    );
    assert!(fut.wait().unwrap_err().is_cancelled());
    // After close, a submission resolves at once.
    let late = h.run_coroutine_threadsafe(async { 2 });
    assert!(late.wait().unwrap_err().is_cancelled());
}

#[test]
fn submissions_racing_the_close_all_resolve() {
    for _ in 0..20 {
        let lp = aio_core::Loop::new();
        let h = lp.handle();
        let submitter = std::thread::spawn(move || {
            (0..200)
                .map(|i| h.run_coroutine_threadsafe(async move { i }))
                .collect::<Vec<_>>()
        });
        lp.run_until_complete(async {
            for _ in 0..3 {
                yield_now().await.unwrap();
            }
        })
        .unwrap();
        lp.close();
        for (i, f) in submitter.join().unwrap().into_iter().enumerate() {
            assert!(f.wait_timeout(Duration::from_secs(10)), "submission {i} never resolved");
            match f.wait() {
                Ok(v) => assert_eq!(v, i),
                Err(e) => assert!(e.is_cancelled()),
            }
        }
    }
}

#[test]
fn dropping_the_last_owner_closes_the_loop() {
    let lp = aio_core::Loop::new();
    let h = lp.handle();
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    lp.run_until_complete(async move {
        // A task holding a handle of its own loop (as a socket does).
        drop(aio_core::create_task(async move {
            let _own = get_running_loop();
            let r = sleep(1000).await;
            c.set(r.is_err());
        }));
        yield_now().await.unwrap();
    })
    .unwrap();
    let copy = lp.clone();
    drop(lp);
    assert!(!h.is_closed(), "a clone still owns it");
    drop(copy);
    assert!(h.is_closed());
    assert!(cleaned.get(), "the task saw its cancellation");
}

#[test]
fn a_loop_dropped_inside_another_loops_task_closes() {
    let outer = aio_core::Loop::new();
    let closed = outer
        .run_until_complete(async {
            let inner = aio_core::Loop::new();
            let h = inner.handle();
            let t = inner.create_task(async { sleep(1000).await });
            drop(inner);
            assert!(t.done(), "closing the inner loop finished its task");
            // The outer loop's context is back.
            sleep(0.001).await.unwrap();
            h.is_closed()
        })
        .unwrap();
    assert!(closed);
    outer.close();
}

/// Timers due within 50 µs fire in one turn, as asyncio's do (its
/// wait rounds up to whole milliseconds): a sleeping loop wakes a little
/// after the first deadline, so the first timer's callback finds the
/// other two already queued before anything it schedules. The kernel's
/// own slack on the thread's timed waits (50 µs by default, which it
/// may or may not use) is set to 1 ns, so the loop's slack is what
/// gathers them.
#[test]
fn timers_due_microseconds_apart_fire_in_one_turn() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only the
    // calling thread's timer slack; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
    for _ in 0..20 {
        let lp = Loop::new();
        let log = Rc::new(RefCell::new(Vec::new()));
        let t = lp.time() + 0.002;
        for (i, when) in [t, t + 40e-6, t + 45e-6].into_iter().enumerate() {
            let (l, lp2) = (log.clone(), lp.clone());
            lp.call_at(when, move || {
                l.borrow_mut().push(i.to_string());
                if i == 0 {
                    let l = l.clone();
                    lp2.call_soon(move || l.borrow_mut().push("next turn".into()));
                }
                if i == 2 {
                    lp2.call_soon({
                        let lp2 = lp2.clone();
                        move || lp2.stop()
                    });
                }
            })
            .unwrap();
        }
        lp.run_forever();
        assert_eq!(*log.borrow(), ["0", "1", "2", "next turn"]);
        lp.close();
    }
}

/// `RawSleep` (for other libraries' timers): ends at its deadline on the
/// loop that armed it, and tells rather than panics where no loop runs,
/// or on another loop.
#[test]
fn raw_sleep_ends_on_its_loop_and_says_none_elsewhere() {
    use aio_core::time::RawSleep;
    use std::future::poll_fn;
    use std::task::{Context, Poll};
    let mut cx = Context::from_waker(Waker::noop());
    let mut s = RawSleep::until(Instant::now() + Duration::from_millis(5));
    assert_eq!(s.poll_sleep(&mut cx), None, "no loop runs here");
    let t0 = Instant::now();
    run(async move { poll_fn(|cx| s.poll_sleep(cx).expect("on the loop")).await });
    assert!(t0.elapsed() >= Duration::from_millis(5));
    // Armed on one loop, it cannot be answered for on another.
    let (a, b) = (Loop::new(), Loop::new());
    let mut s = RawSleep::until(Instant::now() + Duration::from_secs(3600));
    let (first, mut s) = a
        .run_until_complete(async move { (poll_fn(|cx| Poll::Ready(s.poll_sleep(cx))).await, s) })
        .unwrap();
    assert_eq!(first, Some(Poll::Pending));
    let second = b
        .run_until_complete(async move { poll_fn(|cx| Poll::Ready(s.poll_sleep(cx))).await })
        .unwrap();
    assert_eq!(second, None);
    a.close();
    b.close();
}

/// A disarmed timer's waker is dropped outside the loop's timer heap,
/// whether a sweep, a firing turn or the loop's close takes it out:
/// dropping it may disarm another timer (here the waker owns an armed
/// `sleep`), which must not find the heap borrowed.
#[test]
fn a_waker_dropped_by_the_timer_heap_may_disarm_timers() {
    use aio_core::time::RawSleep;
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake};

    struct OwnsSleep {
        _sleep: parking_lot::Mutex<Option<Pin<Box<aio_core::Sleep>>>>,
    }
    impl Wake for OwnsSleep {
        fn wake(self: Arc<Self>) {}
    }

    /// A timer at `at` holding the only reference to a waker that owns
    /// a sleep armed on this loop; disarmed unless `keep`.
    async fn plant(at: Instant, keep: bool) -> Option<RawSleep> {
        let mut owned = Box::pin(sleep(3600));
        let first = poll_fn(|cx| Poll::Ready(owned.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        let w = Waker::from(Arc::new(OwnsSleep {
            _sleep: parking_lot::Mutex::new(Some(owned)),
        }));
        let mut raw = RawSleep::until(at);
        assert_eq!(raw.poll_sleep(&mut Context::from_waker(&w)), Some(Poll::Pending));
        keep.then_some(raw)
    }

    let far = Instant::now() + Duration::from_secs(3600);
    let lp = Loop::new();
    let kept = lp.run_until_complete(async move {
        // Taken out by a sweep: enough timers armed and disarmed after it.
        plant(far, false).await;
        for _ in 0..3000 {
            let mut s = RawSleep::until(far);
            poll_fn(|cx| Poll::Ready(s.poll_sleep(cx))).await;
        }
        // Taken out by the turn that reaches its deadline.
        plant(Instant::now() + Duration::from_millis(1), false).await;
        sleep(0.01).await.unwrap();
        // Still armed when the loop closes.
        plant(far, true).await
    });
    let kept = kept.expect("no panic while the heap was borrowed");
    lp.close();
    drop(kept);
}

/// A loop without an I/O driver that spins before it parks
/// (`Builder::spin_before_park`) takes what pool threads send without
/// sleeping, and ends its spin at its next timer.
#[test]
fn a_spinning_loop_without_io_takes_wake_ups_and_fires_timers() {
    let window = Duration::from_secs(30);
    let bound = Duration::from_secs(10);
    let lp = Builder::new().spin_before_park(window).build();
    let started = Instant::now();
    let (sum, parks) = lp
        .run_until_complete(async move {
            to_thread(|| ()).await.expect("the pool");
            let before = get_running_loop().metrics().parks;
            let mut sum = 0;
            for i in 0..10u32 {
                sum += to_thread(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    i
                })
                .await
                .expect("the value");
                assert!(started.elapsed() < bound, "a spin missed a wake-up");
            }
            (sum, get_running_loop().metrics().parks - before)
        })
        .unwrap();
    assert_eq!(sum, 45);
    assert_eq!(parks, 0, "every result came within the window: the loop never slept");
    let t0 = Instant::now();
    lp.run_until_complete(sleep(0.01)).unwrap().unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(10) && took < bound,
        "the timer took {took:?}"
    );
}
