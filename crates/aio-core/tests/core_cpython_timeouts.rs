//! CPython's own tests of `asyncio.timeout` (`Lib/test/test_asyncio/
//! test_timeouts.py`), ported: `async with timeout(d) as cm` is
//! `timeout_with(Some(d), |cm| ...)`, with a clone of `cm` kept to ask
//! `expired()` and `when()` afterwards. The exception-chaining tests
//! (`__cause__`/`__context__`) have no Rust counterpart beyond the cause
//! that `core_timeout.rs` checks; `timeout_with` has no unentered state
//! (its handle exists only inside the running timeout), so
//! `test_timeout_not_entered` has no counterpart either. The rest is here,
//! assertion for assertion: asyncio's `RuntimeError` of a `reschedule`
//! after the deadline or the end is [`RescheduleError`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use aio_core::{
    Cancelled, RescheduleError, TimeoutError, TimeoutHandle, create_task, current_task, get_running_loop, run, sleep,
    timeout, timeout_with,
};

/// Runs `body` under `timeout(delay) as cm`; returns the result and `cm`.
async fn with_timeout<T, F: Future<Output = T>>(
    delay: Option<f64>,
    body: impl FnOnce(TimeoutHandle) -> F,
) -> (Result<T, TimeoutError>, TimeoutHandle) {
    let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
    let s = slot.clone();
    let r = timeout_with(delay, move |cm| {
        *s.borrow_mut() = Some(cm.clone());
        body(cm)
    })
    .await;
    let cm = slot.borrow_mut().take().expect("the body was made");
    (r, cm)
}

fn now() -> f64 {
    get_running_loop().time()
}

#[test]
fn test_timeout_basic() {
    run(async {
        let (r, cm) = with_timeout(Some(0.01), |_| sleep(10)).await;
        assert_eq!(r, Err(TimeoutError));
        assert!(cm.expired());
    });
}

#[test]
fn test_timeout_at_basic() {
    run(async {
        let deadline = now() + 0.01;
        let (r, cm) = with_timeout(None, move |cm| {
            cm.reschedule(Some(deadline)).unwrap();
            sleep(10)
        })
        .await;
        assert_eq!(r, Err(TimeoutError));
        assert!(cm.expired());
        assert_eq!(cm.when(), Some(deadline));
    });
}

/// Only the topmost of two timeouts with the same deadline raises
/// `TimeoutError`; the inner one sees the cancellation pass through.
#[test]
fn test_nested_timeouts() {
    run(async {
        let deadline = now() + 0.01;
        let cancelled = Rc::new(Cell::new(false));
        let inner_cm: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
        let (c, slot) = (cancelled.clone(), inner_cm.clone());
        let (r, cm1) = with_timeout(None, move |cm1| {
            cm1.reschedule(Some(deadline)).unwrap();
            async move {
                let (r, cm2) = with_timeout(None, move |cm2| {
                    cm2.reschedule(Some(deadline)).unwrap();
                    sleep(10)
                })
                .await;
                *slot.borrow_mut() = Some(cm2);
                match r {
                    Ok(Err(e)) => {
                        c.set(true);
                        Err::<(), Cancelled>(e)
                    }
                    other => panic!("the inner timeout gave {other:?}"),
                }
            }
        })
        .await;
        assert_eq!(r, Err(TimeoutError));
        assert!(cancelled.get());
        assert!(cm1.expired());
        assert!(inner_cm.borrow().as_ref().unwrap().expired());
    });
}

#[test]
fn test_waiter_cancelled() {
    run(async {
        let cancelled = Rc::new(Cell::new(false));
        let c = cancelled.clone();
        let (r, _) = with_timeout(Some(0.01), move |_| async move {
            let r = sleep(10).await;
            c.set(r.is_err());
            r
        })
        .await;
        assert_eq!(r, Err(TimeoutError));
        assert!(cancelled.get());
    });
}

#[test]
fn test_timeout_not_called() {
    run(async {
        let (r, cm) = with_timeout(Some(10.0), |_| sleep(0.01)).await;
        let t1 = now();
        assert_eq!(r, Ok(Ok(())));
        assert!(!cm.expired());
        assert!(cm.when().unwrap() > t1);
    });
}

#[test]
fn test_timeout_disabled() {
    run(async {
        let (r, cm) = with_timeout(None, |_| sleep(0.01)).await;
        assert_eq!(r, Ok(Ok(())));
        assert!(!cm.expired());
        assert_eq!(cm.when(), None);
    });
}

/// `test_timeout_zero` (the body sleeps 10 s) and
/// `test_timeout_zero_sleep_zero` (it sleeps 0 s): a zero timeout expires
/// either way, with its deadline at the moment it was made.
#[test]
fn test_timeout_zero_and_zero_sleep_zero() {
    for body_sleep in [10.0, 0.0] {
        run(async move {
            let t0 = now();
            let (r, cm) = with_timeout(Some(0.0), move |_| sleep(body_sleep)).await;
            let t1 = now();
            assert_eq!(r, Err(TimeoutError));
            assert!(cm.expired());
            let when = cm.when().unwrap();
            assert!(t0 <= when && when <= t1);
        });
    }
}

#[test]
fn test_timeout_in_the_past_sleep_zero() {
    run(async {
        let t0 = now();
        let (r, cm) = with_timeout(Some(-11.0), |_| sleep(0)).await;
        assert_eq!(r, Err(TimeoutError));
        assert!(cm.expired());
        assert!(cm.when().unwrap() <= t0);
    });
}

#[test]
fn test_foreign_exception_passed() {
    run(async {
        let (r, cm) = with_timeout(Some(0.01), |_| async { Err::<(), _>("KeyError") }).await;
        assert_eq!(r, Ok(Err("KeyError")));
        assert!(!cm.expired());
    });
}

#[test]
fn test_foreign_cancel_doesnt_timeout_if_not_expired() {
    run(async {
        let t = create_task(async {
            let (r, cm) = with_timeout(Some(10.0), |_| async {
                current_task().unwrap().cancel();
                sleep(10).await
            })
            .await;
            assert!(!cm.expired());
            // The cancellation comes out as itself, not a timeout.
            r.expect("not a timeout")
        });
        assert!(t.await.is_err(), "the task ends cancelled");
    });
}

#[test]
fn test_outer_task_is_not_cancelled() {
    run(async {
        let task = create_task(async { timeout(0.001, sleep(10)).await });
        assert_eq!(task.await.unwrap(), Err(TimeoutError));
    });
}

#[test]
fn test_nested_timeouts_concurrent() {
    run(async {
        let (r, _) = with_timeout(Some(0.002), |_| async {
            let (inner, _) = with_timeout(Some(0.1), |_| async {
                // Pretend we crunch some numbers.
                std::thread::sleep(std::time::Duration::from_millis(10));
                sleep(1).await
            })
            .await;
            // The outer timeout expired first: the inner one passes its
            // cancellation on rather than timing out.
            inner.expect("the inner timeout did not expire")
        })
        .await;
        assert_eq!(r, Err(TimeoutError));
    });
}

/// After the inner timeout, an expensive operation is stopped by the
/// outer one.
#[test]
fn test_nested_timeouts_loop_busy() {
    run(async {
        let t0 = now();
        let (r, _) = with_timeout(Some(0.1), |_| async {
            let (inner, _) = with_timeout(Some(0.01), |_| async {
                // Pretend the loop is busy for a while.
                std::thread::sleep(std::time::Duration::from_millis(100));
                sleep(1).await
            })
            .await;
            if let Ok(Err(c)) = inner {
                // Both expired while the loop was busy: the inner one
                // passes the cancellation on (CPython's test accepts this).
                return Err(c);
            }
            assert_eq!(inner, Err(TimeoutError));
            sleep(10).await // interrupted by the outer timeout
        })
        .await;
        assert_eq!(r, Err(TimeoutError));
        let t1 = now();
        assert!(t0 <= t1 && t1 <= t0 + 1.0);
    });
}

#[test]
fn test_reschedule() {
    run(async {
        let deadline1 = now() + 10.0;
        let deadline2 = deadline1 + 20.0;
        let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
        let s = slot.clone();
        let task = create_task(async move {
            timeout_with(None::<f64>, move |cm| {
                cm.reschedule(Some(deadline1)).unwrap();
                *s.borrow_mut() = Some(cm);
                sleep(50)
            })
            .await
        });
        sleep(0).await.unwrap();
        let cm = slot.borrow_mut().take().unwrap();
        assert_eq!(cm.when(), Some(deadline1));
        cm.reschedule(Some(deadline2)).unwrap();
        assert_eq!(cm.when(), Some(deadline2));
        cm.reschedule(None::<f64>).unwrap();
        assert_eq!(cm.when(), None);
        task.cancel();
        assert!(task.await.is_err());
        assert!(!cm.expired());
    });
}

/// A `reschedule` no longer allowed raises, saying why: "expiring" while
/// the block handles its timeout's cancellation, "expired" once such a
/// block is over, "finished" once one that ended in time is.
#[track_caller]
fn assert_reschedule_fails(cm: &TimeoutHandle, want: RescheduleError, says: &str) {
    let e = cm.reschedule(Some(now() + 0.02)).unwrap_err();
    assert_eq!(e, want);
    assert!(e.to_string().contains(says), "{e}");
}

#[test]
fn test_timeout_finished() {
    run(async {
        let (r, cm) = with_timeout(Some(0.01), |_| async {}).await;
        assert_eq!(r, Ok(()));
        assert_reschedule_fails(&cm, RescheduleError::Finished, "finished");
    });
}

#[test]
fn test_timeout_expired() {
    run(async {
        let (r, cm) = with_timeout(Some(0.01), |_| sleep(1)).await;
        assert_eq!(r, Err(TimeoutError));
        assert_reschedule_fails(&cm, RescheduleError::Expired, "expired");
    });
}

#[test]
fn test_timeout_expiring() {
    run(async {
        let (r, cm) = with_timeout(Some(0.01), |cm| async move {
            assert!(sleep(1).await.is_err(), "the sleep was cancelled");
            assert_reschedule_fails(&cm, RescheduleError::Expiring, "expiring");
        })
        .await;
        // The block handled its cancellation: it ends normally, expired.
        assert_eq!(r, Ok(()));
        assert!(cm.expired());
        assert_eq!(cm.reschedule(None::<f64>), Err(RescheduleError::Expired));
    });
}

/// A deadline moved through the future itself (`Timeout::reschedule`)
/// follows the same rule, and so does a handle whose timeout was dropped
/// before it finished.
#[test]
fn reschedule_of_an_expired_or_dropped_timeout_is_an_error() {
    run(async {
        let mut t = std::pin::pin!(timeout(0.01, async {
            let _ = sleep(1).await;
            sleep(0).await
        }));
        assert!(t.as_mut().reschedule(Some(now() + 0.01)).is_ok());
        std::future::poll_fn(|cx| {
            assert!(t.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        sleep(0.05).await.unwrap();
        // The deadline fires at the next poll, which the body survives
        // (it handles the cancellation and waits once more).
        std::future::poll_fn(|cx| {
            assert!(t.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        assert!(t.expired());
        assert_eq!(t.as_mut().reschedule(None::<f64>), Err(RescheduleError::Expiring));
        assert_eq!(t.as_mut().await, Ok(Ok(())));
        assert_eq!(t.as_mut().reschedule(None::<f64>), Err(RescheduleError::Expired));

        let slot: Rc<RefCell<Option<TimeoutHandle>>> = Rc::default();
        let s = slot.clone();
        drop(timeout_with(Some(10.0), move |cm| {
            *s.borrow_mut() = Some(cm);
            sleep(10)
        }));
        let cm = slot.borrow_mut().take().unwrap();
        assert_eq!(cm.reschedule(None::<f64>), Err(RescheduleError::Finished));
    });
}

#[test]
fn test_timeout_after_cancellation() {
    run(async {
        let t = create_task(async {
            current_task().unwrap().cancel();
            let work: Result<(), Cancelled> = sleep(1).await; // cancelled
            assert!(work.is_err());
            // Handled; the clean-up still times out on its own.
            let (r, _) = with_timeout(Some(0.0), |_| sleep(1)).await;
            assert_eq!(r, Err(TimeoutError));
        });
        t.await.unwrap();
    });
}

#[test]
fn test_cancel_in_timeout_after_cancellation() {
    run(async {
        let t = create_task(async {
            current_task().unwrap().cancel();
            assert!(sleep(1).await.is_err());
            let (r, cm) = with_timeout(Some(1.0), |_| async {
                current_task().unwrap().cancel();
                sleep(2).await
            })
            .await;
            assert!(!cm.expired());
            // A cancellation, not a timeout.
            assert!(matches!(r, Ok(Err(_))));
            r.unwrap()
        });
        assert!(t.await.is_err());
    });
}
