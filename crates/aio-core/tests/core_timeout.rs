//! Timeouts: firing, the inner future's clean-up, nested timeouts,
//! rescheduling, foreign inner futures, and shield.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use aio_core::{Cancelled, TimeoutError, create_task, run, shield, sleep, timeout, timeout_with, wait_for, yield_now};

#[test]
fn a_timeout_fires_and_cancels_the_inner_future() {
    let r = run(async { timeout(0.01, sleep(10)).await });
    assert_eq!(r, Err(TimeoutError));
}

/// asyncio's `raise TimeoutError from exc`: the error's cause is the
/// `CancelledError` the block propagated. Keeping the error keeps no
/// cancellation going: a task that returns it ends with it as its value.
#[test]
fn the_cause_is_the_cancellation_the_block_saw() {
    use std::error::Error;
    run(async {
        let seen = Rc::new(RefCell::new(None));
        let s = seen.clone();
        let e = timeout(0.001, async move {
            let r = sleep(10).await;
            *s.borrow_mut() = r.clone().err();
            r
        })
        .await
        .unwrap_err();
        let cause = e.source().and_then(|c| c.downcast_ref::<Cancelled>());
        assert_eq!(cause, seen.borrow().as_ref(), "the cause is what the block saw");
        let t = create_task(async { timeout(0.001, sleep(10)).await });
        let e = t.await.expect("the task was not cancelled").unwrap_err();
        assert_eq!(e, TimeoutError);
        assert!(e.source().is_some());
    });
}

#[test]
fn a_fast_inner_future_returns_its_value() {
    let r = run(async { wait_for(async { 5 }, 10).await });
    assert_eq!(r, Ok(5));
}

/// An inner future that finishes without ever seeing the cancellation
/// keeps its output, as in asyncio, where only a body that raises
/// `CancelledError` becomes a `TimeoutError`. (An io_uring read that
/// completes as its deadline passes returns its data this way; dropping it
/// would lose the data.) One that sees it still times out.
#[test]
fn an_inner_future_that_never_sees_the_cancellation_keeps_its_output() {
    let r = run(async {
        let unseen = timeout(0, async { 5 }).await;
        let seen = timeout(0, async { sleep(0).await.map(|_| 5) }).await;
        (unseen, seen)
    });
    assert_eq!(r, (Ok(5), Err(TimeoutError)));
}

#[test]
fn the_inner_future_catches_the_cancellation_cleans_up_and_returns() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let r = run(async move {
        timeout(0.01, async move {
            if sleep(10).await.is_err() {
                l.borrow_mut().push("cancelled");
                sleep(0.001).await.unwrap(); // clean-up awaits normally
                l.borrow_mut().push("cleaned up");
                return 42; // handled: asyncio returns the block's value
            }
            0
        })
        .await
    });
    assert_eq!(r, Ok(42));
    assert_eq!(*log.borrow(), ["cancelled", "cleaned up"]);
}

#[test]
fn uncancel_inside_a_timeout_keeps_the_value() {
    let r = run(async {
        timeout(0.01, async {
            if sleep(10).await.is_err() {
                aio_core::uncancel();
                return 42;
            }
            0
        })
        .await
    });
    assert_eq!(r, Ok(42));
}

#[test]
fn nested_timeouts_inner_fires_first() {
    let r = run(async {
        timeout(10, async {
            let inner = timeout(0.01, sleep(10)).await;
            assert_eq!(inner, Err(TimeoutError));
            sleep(0.001).await?; // the outer one is untouched
            Ok::<_, Cancelled>("outer finished")
        })
        .await
    });
    assert_eq!(r, Ok(Ok("outer finished")));
}

#[test]
fn nested_timeouts_outer_fires_first() {
    let inner_result = Rc::new(RefCell::new(None));
    let ir = inner_result.clone();
    let r = run(async move {
        timeout(0.01, async move {
            let inner = timeout(10, sleep(10)).await;
            *ir.borrow_mut() = Some(format!("{inner:?}"));
            inner.expect("the inner timeout did not fire")
        })
        .await
    });
    assert_eq!(r, Err(TimeoutError));
    // The inner timeout passed the outer cancellation through as a value.
    assert_eq!(inner_result.borrow().as_deref(), Some("Ok(Err(Cancelled))"));
}

#[test]
fn an_outer_cancel_is_not_turned_into_a_timeout() {
    run(async {
        let t = create_task(async { timeout(10, sleep(10)).await });
        yield_now().await?;
        t.cancel();
        assert!(t.await.unwrap_err().is_cancelled());
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn an_inner_future_that_ignores_cancellation_is_dropped() {
    let r = run(async { timeout(0.01, std::future::pending::<()>()).await });
    assert_eq!(r, Err(TimeoutError));
}

#[test]
fn reschedule_moves_the_deadline() {
    let r = run(async {
        timeout_with(Some(10.0), |cm| async move {
            let now = aio_core::get_running_loop().time();
            cm.reschedule(Some(now + 0.01)).unwrap();
            sleep(5).await
        })
        .await
    });
    assert_eq!(r, Err(TimeoutError));

    let r = run(async {
        timeout_with(Some(0.01), |cm| async move {
            cm.reschedule(None::<f64>).unwrap();
            sleep(0.03).await?;
            Ok::<_, Cancelled>(cm.expired())
        })
        .await
    });
    assert_eq!(r, Ok(Ok(false)));
}

#[test]
fn shield_keeps_the_task_running_when_the_caller_times_out() {
    let v = run(async {
        let mut t = create_task(async {
            sleep(0.03).await?;
            Ok::<_, Cancelled>("finished")
        });
        let r = wait_for(shield(&mut t), 0.01).await;
        assert_eq!(r.map(|_| ()), Err(TimeoutError));
        assert!(!t.done());
        t.await
    });
    assert_eq!(v.unwrap().unwrap(), "finished");
}

#[test]
fn shield_protects_an_inline_future_while_polled() {
    // The caller is cancelled; the shield returns at once, the inner
    // future never sees the cancellation.
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    run(async move {
        let t = create_task(async move {
            let r = shield(async move {
                let r = sleep(10).await;
                s.set(Some(r.is_ok()));
            })
            .await;
            r.is_err()
        });
        yield_now().await?;
        t.cancel();
        // The shield gave the task its cancellation at once; the task
        // handled it (dropped it) and returned whether it saw one.
        assert!(t.await.unwrap());
        Ok::<_, Cancelled>(())
    })
    .unwrap();
    assert_eq!(
        seen.get(),
        None,
        "the inner sleep neither finished nor saw a cancellation"
    );
}

#[test]
fn a_million_timeouts_created_and_finished_keep_the_loop_fast() {
    // Each completed operation disarms its timer; the timer heap must not
    // keep a million dead entries (checked in the unit tests) and this
    // must finish quickly.
    run(async {
        for _ in 0..200_000 {
            timeout(30, async { 1 }).await.unwrap();
        }
    });
}
