//! asyncio's `Future`, from its documented behaviour: one completion
//! (`set_result`, `set_exception` or `cancel`), `InvalidStateError` for
//! anything the state does not allow, done callbacks scheduled on the loop
//! in order, any number of awaiters, and cancelling an awaiting task
//! cancels the future.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::future::{Future as _, IntoFuture};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Waker};

use aio_core::{
    Cancelled, Future, FutureError, Loop, TaskError, TimeoutError, create_task, run, shield, sleep, wait_for, yield_now,
};

#[derive(Debug, PartialEq)]
struct Boom(&'static str);

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "boom: {}", self.0)
    }
}

impl Error for Boom {}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// A task that awaits (a clone of) `fut`.
fn awaiter(fut: &Future<i32>) -> aio_core::Task<Result<i32, FutureError>> {
    create_task(fut.clone().into_future())
}

fn invalid_state(r: Result<impl fmt::Debug, FutureError>) -> String {
    match r {
        Err(FutureError::InvalidState(e)) => e.to_string(),
        other => panic!("expected InvalidStateError, got {other:?}"),
    }
}

#[test]
fn set_result_then_await() {
    run(async {
        let lp = aio_core::get_running_loop();
        let fut = lp.create_future::<i32>();
        let setter = fut.clone();
        lp.call_later(0.01, move || setter.set_result(5).unwrap()).unwrap();
        assert!(!fut.done());
        assert_eq!((&fut).await.unwrap(), 5);
        assert!(fut.done() && !fut.cancelled());
        assert_eq!(fut.result().unwrap(), 5);
        assert!(fut.exception().unwrap().is_none());
        // A done future is awaited again at once, by value too.
        assert_eq!(fut.await.unwrap(), 5);
    });
}

#[test]
fn several_awaiters_each_get_the_result() {
    run(async {
        let fut = Future::<String>::new();
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let f = fut.clone();
                create_task(async move { format!("{i}:{}", f.await.unwrap()) })
            })
            .collect();
        yield_now().await.unwrap();
        fut.set_result("x".into()).unwrap();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        assert_eq!(got, ["0:x", "1:x", "2:x"]);
    });
}

#[test]
fn set_exception_then_result() {
    run(async {
        let fut = Future::<i32>::new();
        let waiter = awaiter(&fut);
        yield_now().await.unwrap();
        fut.set_exception(Boom("bad")).unwrap();
        assert!(fut.done() && !fut.cancelled());
        let e = fut.result().unwrap_err().into_exception().unwrap();
        assert_eq!(e.downcast_ref::<Boom>(), Some(&Boom("bad")));
        assert_eq!(fut.exception().unwrap().unwrap().to_string(), "boom: bad");
        match waiter.await.unwrap() {
            Err(FutureError::Exception(e)) => assert!(e.is::<Boom>()),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn completing_twice_is_an_invalid_state_error() {
    run(async {
        let fut = Future::<i32>::new();
        fut.set_result(1).unwrap();
        let e = fut.set_result(2).unwrap_err();
        assert_eq!(e.to_string(), "invalid state: the future is already finished");
        assert!(fut.set_exception(Boom("late")).is_err());
        assert!(!fut.cancel(), "cancel on a done future returns false");
        assert_eq!(fut.result().unwrap(), 1, "the first result stands");

        let fut = Future::<i32>::new();
        fut.set_exception(Boom("first")).unwrap();
        assert!(fut.set_result(1).is_err());
        assert!(fut.exception().unwrap().is_some());
    });
}

#[test]
fn result_while_pending_is_an_invalid_state_error() {
    run(async {
        let fut = Future::<i32>::new();
        assert!(!fut.done() && !fut.cancelled());
        assert_eq!(invalid_state(fut.result()), "Result is not set.");
        assert_eq!(invalid_state(fut.exception()), "Exception is not set.");
        assert_eq!(invalid_state(fut.take_result()), "Result is not set.");
    });
}

#[test]
fn cancel_makes_it_done_and_cancelled_for_every_awaiter() {
    run(async {
        let fut = Future::<i32>::new();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let f = fut.clone();
                create_task(async move { f.await })
            })
            .collect();
        yield_now().await.unwrap();
        assert!(fut.cancel_with("no longer needed"));
        assert!(fut.done() && fut.cancelled());
        assert!(!fut.cancel(), "already done");
        for w in waiters {
            // The future's cancellation, raised in each awaiter, escaped
            // it: the awaiting tasks end cancelled, with its message, as
            // asyncio's do when `await fut` raises `CancelledError`.
            let probe = w.to_ref();
            match w.await {
                Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("no longer needed")),
                other => panic!("{other:?}"),
            }
            assert!(probe.cancelled());
        }
        match fut.result() {
            Err(FutureError::Cancelled(c)) => assert_eq!(c.message(), Some("no longer needed")),
            other => panic!("{other:?}"),
        }
        assert!(fut.exception().unwrap_err().is_cancelled());
        assert_eq!(
            fut.set_result(1).unwrap_err().to_string(),
            "invalid state: the future is already cancelled"
        );
    });
}

#[test]
fn done_callbacks_run_on_the_loop_in_order_and_see_the_state() {
    run(async {
        let log = log();
        let fut = Future::<i32>::new();
        for name in ["a", "b", "c"] {
            let l = log.clone();
            fut.add_done_callback(move |f| l.borrow_mut().push(format!("{name}={:?}", f.result().unwrap())));
        }
        fut.set_result(3).unwrap();
        assert!(
            log.borrow().is_empty(),
            "scheduled with call_soon, not run inside set_result"
        );
        yield_now().await.unwrap();
        assert_eq!(*log.borrow(), ["a=3", "b=3", "c=3"]);

        // Added once done: scheduled at once, still not run inline.
        let l = log.clone();
        fut.add_done_callback(move |f| l.borrow_mut().push(format!("late cancelled={}", f.cancelled())));
        assert_eq!(log.borrow().len(), 3);
        yield_now().await.unwrap();
        assert_eq!(log.borrow().last().unwrap(), "late cancelled=false");
    });
}

#[test]
fn cancel_schedules_the_done_callbacks_too() {
    run(async {
        let log = log();
        let fut = Future::<i32>::new();
        let l = log.clone();
        fut.add_done_callback(move |f| l.borrow_mut().push(format!("cancelled={}", f.cancelled())));
        fut.cancel();
        yield_now().await.unwrap();
        assert_eq!(*log.borrow(), ["cancelled=true"]);
    });
}

#[test]
fn remove_done_callback() {
    run(async {
        let log = log();
        let fut = Future::<i32>::new();
        let mut ids = Vec::new();
        for name in ["a", "b", "c"] {
            let l = log.clone();
            ids.push(fut.add_done_callback(move |_| l.borrow_mut().push(name.to_string())));
        }
        assert!(fut.remove_done_callback(ids[1]));
        assert!(!fut.remove_done_callback(ids[1]), "removed once");
        fut.set_result(0).unwrap();
        assert!(!fut.remove_done_callback(ids[2]), "already scheduled");
        yield_now().await.unwrap();
        assert_eq!(*log.borrow(), ["a", "c"]);
    });
}

#[test]
fn awaiters_and_callbacks_resume_in_the_order_they_came() {
    // asyncio's awaiting tasks are done callbacks of the future too.
    run(async {
        let log = log();
        let fut = Future::<i32>::new();
        let waiter = |name: &'static str| {
            let (f, l) = (fut.clone(), log.clone());
            create_task(async move {
                let v = f.await.unwrap();
                l.borrow_mut().push(format!("{name}={v}"));
            })
        };
        let first = waiter("task1");
        yield_now().await.unwrap();
        let l = log.clone();
        fut.add_done_callback(move |_| l.borrow_mut().push("callback".into()));
        let second = waiter("task2");
        yield_now().await.unwrap();
        fut.set_result(1).unwrap();
        first.await.unwrap();
        second.await.unwrap();
        assert_eq!(*log.borrow(), ["task1=1", "callback", "task2=1"]);
    });
}

#[test]
fn cancelling_a_task_that_awaits_the_future_cancels_the_future() {
    run(async {
        let fut = Future::<i32>::new();
        let task = awaiter(&fut);
        let bystander = awaiter(&fut);
        yield_now().await.unwrap();
        task.cancel_with("stop");
        let r = task.await;
        assert!(
            matches!(r, Err(TaskError::Cancelled(_))),
            "the task ends cancelled: {r:?}"
        );
        assert!(fut.cancelled());
        match fut.result() {
            Err(FutureError::Cancelled(c)) => assert_eq!(c.message(), Some("stop")),
            other => panic!("{other:?}"),
        }
        // The bystander's await raised the future's cancellation, which
        // escaped it: cancelled too, with the message of the cancel that
        // reached the future.
        match bystander.await {
            Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("stop")),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_task_that_handles_the_cancellation_keeps_its_value() {
    run(async {
        let fut = Future::<i32>::new();
        let task = create_task({
            let f = fut.clone();
            async move {
                match f.await {
                    Err(FutureError::Cancelled(_)) => "handled",
                    _ => "value",
                }
            }
        });
        yield_now().await.unwrap();
        task.cancel();
        assert_eq!(task.await.unwrap(), "handled");
        assert!(fut.cancelled());
    });
}

#[test]
fn a_cancellation_that_comes_after_completion_leaves_the_result() {
    run(async {
        let fut = Future::<i32>::new();
        let task = awaiter(&fut);
        yield_now().await.unwrap();
        fut.set_result(1).unwrap(); // the task is woken ...
        task.cancel(); // ... and cancelled before it runs
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(fut.result().unwrap(), 1);
    });
}

#[test]
fn wait_for_cancels_the_future_on_timeout() {
    run(async {
        let fut = Future::<i32>::new();
        assert_eq!(wait_for(&fut, 0.01).await.unwrap_err(), TimeoutError);
        assert!(fut.cancelled(), "asyncio.wait_for cancels what it waits on");
    });
}

#[test]
fn a_shielded_awaiter_dropped_by_a_timeout_leaves_the_future_pending() {
    run(async {
        let fut = Future::<i32>::new();
        let other = awaiter(&fut);
        assert!(wait_for(shield(&fut), 0.01).await.is_err());
        assert!(!fut.done(), "the shield kept the future out of the cancellation");
        fut.set_result(9).unwrap();
        assert_eq!(other.await.unwrap().unwrap(), 9);
        assert_eq!((&fut).await.unwrap(), 9);
    });
}

#[test]
fn an_awaiter_dropped_mid_wait_does_not_disturb_the_others() {
    run(async {
        let fut = Future::<i32>::new();
        let other = awaiter(&fut);
        // An awaiter whose task is aborted (its future dropped in place).
        let aborted = awaiter(&fut);
        // And one polled once by hand, then dropped.
        {
            let mut w = pin!((&fut).into_future());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        yield_now().await.unwrap();
        aborted.abort();
        assert!(!fut.done(), "dropping an awaiter does not cancel the future");
        sleep(0.001).await.unwrap();
        fut.set_result(4).unwrap();
        assert_eq!(other.await.unwrap().unwrap(), 4);
        assert!(aborted.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn a_loop_that_is_not_running_can_create_and_complete_futures() {
    let lp = Loop::new();
    let log = log();
    let fut = lp.create_future::<&str>();
    let l = log.clone();
    fut.add_done_callback(move |f| l.borrow_mut().push(f.result().unwrap().to_string()));
    fut.set_result("early").unwrap();
    assert!(log.borrow().is_empty());
    let f = fut.clone();
    let got = lp
        .run_until_complete(async move {
            assert!(f.get_loop().is_running());
            f.await.unwrap()
        })
        .unwrap();
    assert_eq!(got, "early");
    assert_eq!(*log.borrow(), ["early"]);
    lp.close();
    assert!(
        fut.get_loop().is_closed(),
        "the future's handle does not keep the loop open"
    );
}

#[test]
#[should_panic(expected = "no running event loop")]
fn future_new_needs_a_running_loop() {
    let _ = Future::<i32>::new();
}

#[test]
fn take_moves_a_result_that_is_not_clone() {
    struct Conn(u32);
    run(async {
        let fut = Future::<Conn>::new();
        let setter = fut.clone();
        aio_core::get_running_loop().call_soon(move || setter.set_result(Conn(7)).map_err(drop).unwrap());
        assert_eq!(fut.take().await.map_err(drop).unwrap().0, 7);
        assert!(fut.done());
        assert_eq!(
            match fut.take_result() {
                Err(FutureError::InvalidState(e)) => e.to_string(),
                _ => panic!(),
            },
            "Result was already taken."
        );
    });
}

#[test]
fn an_exception_nobody_retrieved_is_reported() {
    let lp = Loop::new();
    let reports = log();
    let r = reports.clone();
    lp.set_exception_handler(Some(move |ctx: &aio_core::ExceptionContext| {
        r.borrow_mut().push(ctx.message.clone())
    }));
    lp.run_until_complete(async {
        let fut = Future::<i32>::new();
        fut.set_exception(Boom("unseen")).unwrap();
        drop(fut);
        let fut = Future::<i32>::new();
        fut.set_exception(Boom("seen")).unwrap();
        assert!(fut.result().is_err());
    })
    .unwrap();
    assert_eq!(
        *reports.borrow(),
        ["Future exception was never retrieved: boom: unseen"]
    );
    lp.close();
}

#[test]
fn a_sleep_error_converts_into_a_future_error() {
    async fn f() -> Result<i32, FutureError> {
        sleep(0).await?;
        Ok(1)
    }
    assert_eq!(run(f()).unwrap(), 1);
    let _: FutureError = Cancelled::new().into();
}

/// The README's one difference from asyncio here: settled results that
/// hold a cancelled future's cancellation, returned as they are, end the
/// task cancelled (the cancellation escaped with them); mapped to values
/// first, they are kept.
#[test]
fn settled_results_holding_a_raised_cancellation() {
    run(async {
        let fut = Future::<i32>::new();
        fut.cancel();
        let (f1, f2) = (fut.clone(), fut.clone());
        let as_is =
            create_task(
                async move { aio_core::gather_settled!(f1.into_future(), async { Ok::<_, FutureError>(1) }).await },
            );
        let mapped = create_task(async move {
            let (a, b) = aio_core::gather_settled!(f2.into_future(), async { Ok::<_, FutureError>(1) })
                .await
                .unwrap();
            (a.map_err(|e| e.to_string()), b.map_err(|e| e.to_string()))
        });
        assert!(matches!(as_is.await, Err(TaskError::Cancelled(_))));
        let (a, b) = mapped.await.unwrap();
        assert!(a.is_err() && b == Ok(1));
    });
}

/// A future completed between two runs of its loop, on the loop's thread:
/// the task awaiting it (registered first) and a done callback added after
/// run in that order, as asyncio's `call_soon` keeps them. The task's wake
/// used to take the cross-thread path and come after the callback.
#[test]
fn a_wake_between_runs_keeps_its_place_before_later_callbacks() {
    let lp = aio_core::Loop::new();
    let fut = lp.create_future::<i32>();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (f, l) = (fut.clone(), log.clone());
    // The task handle is the run's value, not awaited.
    #[allow(clippy::async_yields_async)]
    let waiter = lp.run_until_complete(async move {
        aio_core::create_task(async move {
            let v = f.await.unwrap();
            l.borrow_mut().push(format!("task {v}"));
        })
    });
    let waiter = waiter.unwrap();
    // The waiter has taken its first step (the run's last turn): it awaits.
    let l = log.clone();
    fut.add_done_callback(move |_| l.borrow_mut().push("callback".to_string()));
    fut.set_result(7).unwrap();
    lp.run_until_complete(async {}).unwrap();
    assert_eq!(*log.borrow(), ["task 7", "callback"]);
    assert!(waiter.done());
    lp.close();
}
