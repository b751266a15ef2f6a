//! asyncio's outcomes at the edges: what propagates decides. A handled
//! cancellation keeps the code's result; an error raised while handling it
//! is what the caller gets; only an escaping cancellation makes a task
//! cancelled or a timeout a `TimeoutError`; nested timeouts that expire
//! together belong to the outermost; a timeout never delivered did not
//! expire; timers never fire early.

use std::cell::{Cell, RefCell};
use std::error::Error as _;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use aio_core::{
    Cancelled, Failure, TaskGroup, TaskGroupError, TimeoutError, create_task, get_running_loop, run, sleep, timeout,
    timeout_at, timeout_with, wait_for, yield_now,
};

/// Spins the CPU for `d` without yielding (a long loop turn).
fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn a_timeout_whose_block_handles_the_cancellation_gives_the_blocks_value() {
    // async with timeout(0.01): try: await sleep(10) except CancelledError: return "rescued"
    let r = run(async {
        timeout(0.01, async {
            match sleep(10).await {
                Err(_) => "rescued",
                Ok(()) => "slept",
            }
        })
        .await
    });
    assert_eq!(r, Ok("rescued"));
}

#[derive(Debug, PartialEq)]
enum AppError {
    ZeroDivision,
    Cancelled(Cancelled),
}

impl From<Cancelled> for AppError {
    fn from(c: Cancelled) -> AppError {
        AppError::Cancelled(c)
    }
}

#[test]
fn an_error_raised_during_clean_up_is_what_the_caller_gets() {
    let r = run(async {
        wait_for(
            async {
                if sleep(10).await.is_err() {
                    return Err(AppError::ZeroDivision); // raised while cleaning up
                }
                Ok(1)
            },
            0.01,
        )
        .await
    });
    assert_eq!(r, Ok(Err(AppError::ZeroDivision)), "not swallowed, not TimeoutError");
}

#[test]
fn a_cancellation_that_propagates_through_an_error_type_is_a_timeout() {
    // `?` into an error that keeps the Cancelled (io::Error, or an enum
    // variant holding it) propagates it.
    let r = run(async {
        timeout(0.01, async {
            sleep(10).await?;
            Ok::<_, io::Error>(())
        })
        .await
    });
    assert_eq!(r.unwrap_err(), TimeoutError);
    let r = run(async {
        timeout(0.01, async {
            sleep(10).await?;
            Ok::<_, AppError>(())
        })
        .await
    });
    assert_eq!(r.unwrap_err(), TimeoutError);
    // A clone kept and returned propagates too.
    let r = run(async {
        timeout(0.01, async {
            let c = sleep(10).await.unwrap_err();
            let copy = c.clone();
            drop(c);
            Err::<(), _>(copy)
        })
        .await
    });
    assert_eq!(r.unwrap_err(), TimeoutError);
}

#[test]
fn the_timeout_error_is_caused_by_the_inner_cancellation() {
    let r = run(async { timeout(0.001, sleep(10)).await });
    let e = r.unwrap_err();
    let cause = e.source().expect("chained, as asyncio chains CancelledError");
    assert!(cause.downcast_ref::<Cancelled>().is_some());
}

#[test]
fn a_task_that_raises_during_clean_up_fails_with_that_error() {
    run(async {
        let t = create_task(async {
            if sleep(10).await.is_err() {
                return Err(AppError::ZeroDivision);
            }
            Ok(())
        });
        yield_now().await?;
        t.cancel();
        let handle = t.to_ref();
        assert_eq!(t.await.unwrap(), Err(AppError::ZeroDivision));
        assert!(!handle.cancelled());
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn a_task_group_child_that_raises_while_cancelled_reports_its_error() {
    #[derive(Debug, PartialEq)]
    enum E {
        Key,
        Boom,
        Cancelled(Cancelled),
    }
    impl From<Cancelled> for E {
        fn from(c: Cancelled) -> E {
            E::Cancelled(c)
        }
    }
    let r = run(async {
        TaskGroup::run(|tg| async move {
            tg.create_task(async {
                if sleep(10).await.is_err() {
                    return Err(E::Key); // a KeyError in the child's clean-up
                }
                Ok(())
            });
            tg.create_task(async {
                sleep(10).await?; // propagates: just cancelled
                Ok(())
            });
            tg.create_task(async {
                sleep(0.001).await?;
                Err::<(), _>(E::Boom)
            });
            Ok(())
        })
        .await
    });
    let Err(TaskGroupError::Failed(v)) = r else {
        panic!("{r:?}")
    };
    let errs: Vec<E> = v
        .into_iter()
        .map(|f| match f {
            Failure::Error(e) => e,
            Failure::Panic(p) => panic!("{p}"),
        })
        .collect();
    assert_eq!(errs, [E::Boom, E::Key]);
}

#[test]
fn nested_timeouts_that_expire_together_belong_to_the_outermost() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let r = run(async move {
        let now = get_running_loop().time();
        timeout_at(now + 0.01, async move {
            let inner = timeout_at(now + 0.01, async {
                let r = sleep(10).await;
                l.borrow_mut().push(format!("inner saw {r:?}"));
                r
            })
            .await;
            l.borrow_mut().push(format!("inner timeout gave {inner:?}"));
            inner
        })
        .await
    });
    // Only the outermost reports TimeoutError.
    assert_eq!(r, Err(TimeoutError));
    assert_eq!(
        *log.borrow(),
        ["inner saw Err(Cancelled)", "inner timeout gave Ok(Err(Cancelled))"]
    );
}

#[test]
fn a_task_cancelled_as_its_timeout_expires_ends_cancelled() {
    run(async {
        let t = create_task(async { timeout(0.005, sleep(10)).await });
        yield_now().await?;
        // Let the deadline pass while the task is not polled, then cancel:
        // the timeout and the task cancel in the same turn.
        std::thread::sleep(Duration::from_millis(10));
        t.cancel();
        assert!(
            t.await.unwrap_err().is_cancelled(),
            "the task's cancellation is not a timeout"
        );
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn a_timeout_that_was_never_delivered_did_not_expire() {
    run(async {
        // timeout(0) around a block that never awaits.
        let r = timeout(0, async { "value" }).await;
        assert_eq!(r, Ok("value"));
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let r = timeout_with(Some(0.0), |cm| async move {
            s.set(Some(cm.clone()));
            "value"
        })
        .await;
        assert_eq!(r, Ok("value"));
        let cm = seen.take().unwrap();
        assert!(!cm.expired());
        // A deadline in the past: the same.
        let past = get_running_loop().time() - 1.0;
        assert_eq!(timeout_at(past, async { 5 }).await, Ok(5));
        // But one awaiting is cancelled and times out.
        assert_eq!(timeout(0, sleep(0.001)).await, Err(TimeoutError));
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn when_is_exactly_the_deadline_that_was_set() {
    run(async {
        let t = 12345.678901234567_f64;
        let mut f = std::pin::pin!(timeout_at(t, async { 1 }));
        assert_eq!(f.when(), Some(t));
        f.as_mut().reschedule(Some(t + 0.1)).unwrap();
        assert_eq!(f.when(), Some(t + 0.1));
        let r = timeout_with(None::<f64>, |cm| async move {
            assert_eq!(cm.when(), None);
            cm.reschedule(Some(t)).unwrap();
            assert_eq!(cm.when(), Some(t));
            cm.reschedule(None::<f64>).unwrap();
            cm.when()
        })
        .await;
        assert_eq!(r, Ok(None));
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn sleeps_started_late_in_a_busy_turn_are_never_early() {
    // 1000 tasks run in one loop turn; each works 2 µs, then sleeps 1 ms:
    // the later ones start their sleep up to 2 ms after the turn began.
    // Each must last its full delay from its call.
    let early = run(async {
        let delay = Duration::from_millis(1);
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                create_task(async move {
                    busy(Duration::from_micros(2));
                    let started = Instant::now();
                    sleep(delay).await.unwrap();
                    started.elapsed() < delay
                })
            })
            .collect();
        let mut early = 0;
        for t in tasks {
            early += usize::from(t.await.unwrap());
        }
        early
    });
    assert_eq!(early, 0, "{early} of 1000 sleeps ended early");
}

#[test]
fn call_later_and_timeouts_started_late_in_a_turn_are_never_early() {
    run(async {
        let lp = get_running_loop();
        let fired = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..50 {
            busy(Duration::from_micros(100));
            let started = Instant::now();
            let f = fired.clone();
            lp.call_later(0.002, move || f.borrow_mut().push(started.elapsed()))
                .unwrap();
        }
        let mut timeouts = Vec::new();
        for _ in 0..50 {
            busy(Duration::from_micros(100));
            let started = Instant::now();
            let t = timeout(0.002, sleep(10));
            timeouts.push(create_task(async move {
                assert_eq!(t.await, Err(TimeoutError));
                started.elapsed()
            }));
        }
        sleep(0.02).await?;
        for took in fired.borrow().iter() {
            assert!(*took >= Duration::from_millis(2), "call_later fired after {took:?}");
        }
        assert_eq!(fired.borrow().len(), 50);
        for t in timeouts {
            let took = t.await.unwrap();
            assert!(took >= Duration::from_millis(2), "timeout expired after {took:?}");
        }
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn an_awaiter_cancelled_while_its_task_handles_the_cancellation_gets_the_value() {
    run(async {
        let outer = create_task(async {
            let inner = create_task(async {
                let _ = sleep(10).await; // handled
                7
            });
            inner.await
        });
        yield_now().await?;
        yield_now().await?;
        outer.cancel();
        let handle = outer.to_ref();
        assert_eq!(outer.await.unwrap().unwrap(), 7, "asyncio: the awaiter gets the value");
        assert!(!handle.cancelled());

        // When the awaited task ends cancelled, the awaiter's cancellation
        // propagates out of the awaiter.
        let outer = create_task(async {
            let inner = create_task(async { sleep(10).await });
            inner.await.map_err(|e| match e {
                aio_core::TaskError::Cancelled(c) => c,
                e => panic!("{e}"),
            })?
        });
        yield_now().await?;
        yield_now().await?;
        outer.cancel();
        assert!(outer.await.unwrap_err().is_cancelled());
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}
