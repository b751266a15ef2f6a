//! Catchable cooperative cancellation: delivery at every await point, once;
//! clean-up that awaits; cancel before the first step; cancel twice;
//! cancel during clean-up; uncancel; the hard path for foreign futures.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use aio_core::{Cancelled, TaskError, create_task, run, sleep, yield_now};

/// Runs `body` in a task, cancels it once it is waiting, and returns what
/// the task returned.
fn cancel_while_waiting<F, T>(body: F) -> std::result::Result<T, TaskError>
where
    F: Future<Output = T> + 'static,
    T: aio_core::Reportable + 'static,
{
    run(async move {
        let t = create_task(body);
        // Let the task reach its await point.
        for _ in 0..3 {
            yield_now().await.unwrap();
        }
        assert!(t.cancel());
        t.await
    })
}

#[test]
fn sleep_observes_cancellation() {
    let r = cancel_while_waiting(async { sleep(10).await });
    assert!(r.unwrap_err().is_cancelled());
}

#[test]
fn yield_now_observes_cancellation() {
    let r = cancel_while_waiting(async {
        loop {
            yield_now().await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), Cancelled>(())
    });
    assert!(r.unwrap_err().is_cancelled());
}

#[test]
fn checkpoint_observes_cancellation_without_yielding() {
    let r = cancel_while_waiting(async {
        let mut spins = 0u64;
        loop {
            aio_core::checkpoint().await?;
            spins += 1;
            if spins % 1000 == 0 {
                yield_now().await?;
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), Cancelled>(())
    });
    assert!(r.unwrap_err().is_cancelled());
}

#[test]
fn awaiting_a_task_forwards_the_cancellation_to_it() {
    let inner_saw = Rc::new(Cell::new(false));
    let saw = inner_saw.clone();
    let r = cancel_while_waiting(async move {
        let inner = create_task(async move {
            let r = sleep(10).await;
            saw.set(r.is_err());
            r
        });
        inner.await
    });
    assert!(r.unwrap_err().is_cancelled());
    assert!(
        inner_saw.get(),
        "the awaited task was cancelled too (asyncio semantics)"
    );
}

#[test]
fn gather_wait_as_completed_timeout_to_thread_observe_cancellation() {
    let r = cancel_while_waiting(async { aio_core::gather([sleep(10), sleep(20)]).await });
    assert!(r.unwrap_err().is_cancelled());

    let r = cancel_while_waiting(async { aio_core::gather_settled([sleep(10)]).await });
    assert!(r.unwrap_err().is_cancelled());

    let r = cancel_while_waiting(async {
        let t = create_task(sleep(10));
        aio_core::wait([t], aio_core::ReturnWhen::AllCompleted)
            .await
            .map(|_| ())
    });
    assert!(r.unwrap_err().is_cancelled());

    let r = cancel_while_waiting(async {
        let mut s = aio_core::as_completed([sleep(10)]);
        s.next().await.unwrap()
    });
    assert!(r.unwrap_err().is_cancelled());

    // A cancellation of the caller passes through a timeout: it is not a timeout.
    let r = cancel_while_waiting(async { aio_core::timeout(100, sleep(10)).await });
    assert!(r.unwrap_err().is_cancelled());

    let r = cancel_while_waiting(async {
        match aio_core::to_thread(|| std::thread::sleep(std::time::Duration::from_millis(50))).await {
            Err(aio_core::ToThreadError::Cancelled(c)) => Err::<(), _>(c),
            other => panic!("{other:?}"),
        }
    });
    assert!(r.unwrap_err().is_cancelled());
}

#[test]
fn cancel_before_the_first_step_never_runs_the_body() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let res = run(async move {
        let t = create_task(async move {
            r.set(true);
        });
        t.cancel();
        t.await
    });
    assert!(res.unwrap_err().is_cancelled());
    assert!(!ran.get());
}

#[test]
fn a_delivery_is_consumed_once_and_cleanup_can_await() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let r = cancel_while_waiting(async move {
        let first = sleep(10).await;
        l.borrow_mut().push(format!("first: {first:?}"));
        // Clean-up awaits normally: the delivery was consumed.
        let second = sleep(0.001).await;
        l.borrow_mut().push(format!("cleanup: {second:?}"));
        first
    });
    assert!(r.unwrap_err().is_cancelled());
    assert_eq!(*log.borrow(), ["first: Err(Cancelled)", "cleanup: Ok(())"]);
}

#[test]
fn cancel_twice_delivers_once_and_counts_two() {
    run(async {
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        let t = create_task(async move {
            loop {
                if sleep(10).await.is_err() {
                    s.set(s.get() + 1);
                    // Clean up for a while: no second delivery arrives.
                    for _ in 0..5 {
                        yield_now().await.unwrap();
                    }
                    return aio_core::current_task().unwrap().cancelling();
                }
            }
        });
        yield_now().await?;
        t.cancel();
        t.cancel();
        assert_eq!(t.cancelling(), 2);
        // It handled the delivery (dropped it) and returned a value: the
        // value stands, and both requests are still counted.
        let handle = t.to_ref();
        assert_eq!(t.await.unwrap(), 2);
        assert!(!handle.cancelled());
        assert_eq!(seen.get(), 1);
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn cancel_during_cleanup_is_delivered_again() {
    run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let t = create_task(async move {
            let a = sleep(10).await;
            l.borrow_mut().push(a.is_err());
            let b = sleep(10).await; // clean-up that takes long
            l.borrow_mut().push(b.is_err());
            b
        });
        yield_now().await?;
        t.cancel();
        yield_now().await?;
        yield_now().await?;
        t.cancel();
        assert!(t.await.unwrap_err().is_cancelled());
        assert_eq!(*log.borrow(), [true, true]);
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn uncancel_suppresses_the_cancellation() {
    let v = run(async {
        let t = create_task(async {
            if sleep(10).await.is_err() {
                assert_eq!(aio_core::uncancel(), 0);
            }
            sleep(0.001).await?;
            Ok::<_, Cancelled>(7)
        });
        yield_now().await?;
        t.cancel();
        let r = t.await;
        Ok::<_, Cancelled>(r)
    })
    .unwrap();
    assert_eq!(v.unwrap().unwrap(), 7);
}

#[test]
fn a_task_that_handles_its_cancellation_keeps_its_value() {
    // asyncio: a task that catches CancelledError and returns 7 completes
    // with 7; cancelled() is False and cancelling() stays 1.
    run(async {
        let t = create_task(async {
            let _ = sleep(10).await; // handled: the Cancelled is dropped
            sleep(0.001).await.unwrap(); // clean-up awaits normally
            7
        });
        yield_now().await?;
        t.cancel();
        let handle = t.to_ref();
        assert_eq!(t.await.unwrap(), 7);
        assert!(!handle.cancelled());
        assert_eq!(handle.cancelling(), 1);
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_task_waiting_only_on_foreign_futures_is_dropped() {
    let dropped = Rc::new(Cell::new(false));
    let d = DropFlag(dropped.clone());
    let r = cancel_while_waiting(async move {
        let _d = d;
        // A future aio knows nothing about: never ready, no aio await point.
        std::future::pending::<()>().await;
    });
    assert!(r.unwrap_err().is_cancelled());
    assert!(dropped.get());
}

#[test]
fn abort_drops_the_future_without_delivery() {
    run(async {
        let dropped = Rc::new(Cell::new(false));
        let d = DropFlag(dropped.clone());
        let saw = Rc::new(Cell::new(false));
        let s = saw.clone();
        let t = create_task(async move {
            let _d = d;
            if sleep(10).await.is_err() {
                s.set(true);
            }
        });
        yield_now().await?;
        t.abort();
        assert!(dropped.get(), "abort drops at once");
        assert!(t.done() && t.cancelled());
        assert!(t.await.unwrap_err().is_cancelled());
        assert!(!saw.get());
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn cancel_message_reaches_the_task() {
    run(async {
        let t = create_task(async { sleep(10).await });
        yield_now().await?;
        t.cancel_with("shutting down");
        match t.await {
            Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("shutting down")),
            other => panic!("{other:?}"),
        }
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn self_cancel_is_delivered_at_the_next_await() {
    let r = run(async {
        let t = create_task(async {
            aio_core::current_task().unwrap().cancel();
            let r = sleep(0.001).await;
            (r, sleep(0.001).await)
        });
        t.await
    });
    assert!(r.unwrap_err().is_cancelled());
}

#[test]
fn cancel_after_done_returns_false() {
    run(async {
        let t = create_task(async { 1 });
        yield_now().await?;
        yield_now().await?;
        assert!(t.done());
        assert!(!t.cancel());
        assert_eq!(t.await.unwrap(), 1);
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}
