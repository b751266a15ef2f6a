//! CPython's own tests of `asyncio.wait_for` (`Lib/test/test_asyncio/
//! test_waitfor.py`), ported: the same tasks, timeouts and expected
//! outcomes, on a paused clock where the sleeps only order events.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use aio_core::{Builder, Cancelled, TimeoutError, create_task, shield, sleep, wait_for, yield_now};

fn paused<T>(f: impl Future<Output = T> + 'static) -> T {
    let lp = Builder::new().paused_clock().build();
    let out = lp.run_until_complete(f).expect("the test's main task");
    lp.close();
    out
}

const EPSILON: f64 = 0.0001;

/// `SlowTask`: runs for 0.2 s whatever cancels it.
async fn slow_task(exited: Rc<Cell<bool>>) {
    let until = aio_core::get_running_loop().time() + 0.2;
    loop {
        let left = until - aio_core::get_running_loop().time();
        if left <= 0.0 {
            break;
        }
        let _ = sleep(left).await; // a cancellation is swallowed
    }
    exited.set(true);
}

#[test]
fn test_asyncio_wait_for_cancelled() {
    paused(async {
        let exited = Rc::new(Cell::new(false));
        let e = exited.clone();
        let waitfortask = create_task(async move { wait_for(slow_task(e), 0.4).await });
        yield_now().await.unwrap();
        waitfortask.cancel();
        let _ = waitfortask.await;
        assert!(exited.get());
    });
}

#[test]
fn test_asyncio_wait_for_timeout() {
    paused(async {
        let exited = Rc::new(Cell::new(false));
        let _ = wait_for(slow_task(exited.clone()), 0.1).await;
        assert!(exited.get());
    });
}

#[test]
fn test_wait_for_timeout_less_then_0_or_0_future_done() {
    paused(async {
        let t = create_task(async { "done" });
        yield_now().await.unwrap();
        assert!(t.done());
        assert!(matches!(wait_for(t, 0).await, Ok(Ok("done"))));
    });
}

/// With a timeout of 0 or less, asyncio never starts a coroutine (it
/// wraps it in a task and cancels that first). aio's `wait_for` cannot
/// tell a coroutine from a finished future (whose result
/// `test_..._future_done` wants back), so it polls the future once with
/// the cancellation already due: one that finishes without awaiting
/// returns its output (as under `asyncio.timeout(0)`); one that awaits
/// sees the cancellation there, and it is a timeout.
#[test]
fn test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started() {
    paused(async {
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let r = wait_for(async move { s.set(true) }, 0).await;
        assert_eq!(r, Ok(()), "aio differs here, by the note above");
        assert!(started.get());
        let (s, awaited) = (started.clone(), Rc::new(Cell::new(false)));
        let a = awaited.clone();
        started.set(false);
        let r = wait_for(
            async move {
                s.set(true);
                sleep(0).await?;
                a.set(true);
                Ok::<_, Cancelled>(())
            },
            0,
        )
        .await;
        assert_eq!(r, Err(TimeoutError));
        assert!(!awaited.get(), "nothing runs past the first await point");
    });
}

/// CPython's `foo()`: a task that sleeps `secs`, with a flag that is set
/// while it runs (`foo_running`).
fn foo(secs: f64) -> (Rc<Cell<bool>>, aio_core::Task<Result<&'static str, Cancelled>>) {
    let running = Rc::new(Cell::new(false));
    let r = running.clone();
    let fut = create_task(async move {
        r.set(true);
        let out = sleep(secs).await;
        r.set(false);
        out.map(|()| "done")
    });
    (running, fut)
}

#[test]
fn test_wait_for_timeout_less_then_0_or_0() {
    for timeout in [0.0, -1.0] {
        paused(async move {
            let (running, fut) = foo(10.0);
            yield_now().await.unwrap(); // await started
            assert!(running.get());
            assert_eq!(wait_for(&fut, timeout).await.map(drop), Err(TimeoutError));
            assert!(fut.done());
            // It was cancelled by the timeout.
            assert!(fut.cancelled());
            assert!(!running.get());
        });
    }
}

#[test]
fn test_wait_for() {
    paused(async {
        let (running, fut) = foo(3600.0);
        assert_eq!(wait_for(&fut, 0.1).await.map(drop), Err(TimeoutError));
        assert!(fut.done());
        assert!(fut.cancelled());
        assert!(!running.get());
    });
}

#[test]
fn test_wait_for_cancellation_race_condition() {
    paused(async {
        let r = wait_for(
            async {
                assert!(sleep(1).await.is_err());
                1
            },
            0.01,
        )
        .await;
        assert_eq!(r, Ok(1));
    });
}

#[test]
fn test_wait_for_waits_for_task_cancellation() {
    paused(async {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let inner = create_task(async move {
            let r = match sleep(10).await {
                Err(c) => {
                    let _ = sleep(EPSILON).await;
                    Err(c)
                }
                ok => ok,
            };
            d.set(true);
            r
        });
        assert_eq!(wait_for(&inner, EPSILON).await.map(drop), Err(TimeoutError));
        assert!(done.get());
    });
}

#[test]
fn test_cancel_wait_for() {
    for timeout in [None, Some(60.0)] {
        paused(async move {
            let task = Rc::new(create_task(std::future::pending::<()>()));
            let t = task.clone();
            let wait = create_task(async move {
                // `await wait_for(task, timeout)`: the task's cancellation,
                // kept, propagates.
                match timeout {
                    Some(d) => match wait_for(&*t, d).await {
                        Ok(r) => r,
                        Err(e) => panic!("{e}"),
                    },
                    None => (&*t).await,
                }
            });
            yield_now().await.unwrap();
            wait.cancel();
            assert!(wait.await.is_err(), "the wait ends cancelled");
            // Python issue #23219: cancelling the wait cancels the task.
            yield_now().await.unwrap();
            assert!(task.cancelled());
        });
    }
}

/// The inner task of `test_wait_for_self_cancellation`: it holds up two
/// cancellations (sleeping on after each), then returns 42.
async fn stubborn() -> i32 {
    if sleep(0.3).await.is_err() && sleep(0.3).await.is_err() {
        let _ = sleep(0.3).await;
    }
    42
}

/// Python 3.12's steps: the wait, cancelled before it starts, ends
/// cancelled; the task it would have waited for runs on and returns.
#[test]
fn test_wait_for_self_cancellation() {
    paused(async {
        let inner_task = Rc::new(create_task(stubborn()));

        let i = inner_task.clone();
        // Test that wait_for itself is properly cancellable
        // even when the initial task holds up the initial cancellation.
        let task = create_task(async move { wait_for(&*i, 0.1).await });
        task.cancel();

        assert!(task.await.is_err(), "the wait ends cancelled");

        assert_eq!((&*inner_task).await.unwrap(), 42);
    });
}

/// Python 3.11's version of the test slept 0.2 s before cancelling the
/// wait, which 3.11's `wait_for` (waiting on a future of its own) ended
/// at once. 3.12's, built on `timeout`, waits for the task whatever
/// cancels it: the timeout's cancellation (0.1 s) and this one (0.2 s)
/// are both held up, the task returns 42 and so does the wait (CPython
/// PR 98518, which dropped the sleep for that reason). aio's `wait_for`
/// is 3.12's.
#[test]
fn test_wait_for_self_cancellation_after_the_timeout() {
    paused(async {
        let inner_task = Rc::new(create_task(stubborn()));
        let i = inner_task.clone();
        let task = create_task(async move { wait_for(&*i, 0.1).await });
        sleep(0.2).await.unwrap();
        task.cancel();

        assert!(matches!(task.await, Ok(Ok(Ok(42)))), "the wait returns the task's 42");
        assert_eq!((&*inner_task).await.unwrap(), 42);
    });
}

/// GH-86296: a task that suppresses its cancellation and returns a value:
/// `wait_for` returns the value.
#[test]
fn test_wait_for_cancel_suppressed() {
    paused(async {
        let r = wait_for(
            async {
                match sleep(10).await {
                    Err(_) => 42,
                    Ok(()) => 0,
                }
            },
            0.1,
        )
        .await;
        assert_eq!(r, Ok(42));
    });
}

#[test]
fn test_wait_for_issue86296() {
    paused(async {
        let inner = Rc::new(create_task(async { "done" }));
        let reached_end = Rc::new(Cell::new(false));
        let (i, re) = (inner.clone(), reached_end.clone());
        let task = create_task(async move {
            let _ = wait_for(&*i, 100).await;
            sleep(1).await?;
            re.set(true);
            Ok::<_, Cancelled>(())
        });
        assert!(!task.done());
        yield_now().await.unwrap();
        task.cancel();
        assert!(task.await.is_err());
        assert!(inner.done());
        assert_eq!((&*inner).await.unwrap(), "done");
        assert!(!reached_end.get());
    });
}

#[test]
fn wait_for_shield_tests() {
    paused(async {
        // test_zero_timeout: the shielded task runs on.
        let task = create_task(async {
            sleep(0.01).await?;
            Ok::<_, Cancelled>("done")
        });
        assert_eq!(wait_for(shield(&task), 0).await.map(drop), Err(TimeoutError));
        assert!(!task.done());
        assert!(!task.cancelled());
        sleep(0.1).await.unwrap();
        assert!(task.done());

        // test_shielded_timeout
        let task = create_task(async {
            sleep(0.1).await?;
            Ok::<_, Cancelled>("done")
        });
        assert_eq!(wait_for(shield(&task), 0.01).await.map(drop), Err(TimeoutError));
        assert!(!task.done());
        assert!(!task.cancelled());
        assert_eq!(task.await.unwrap(), Ok("done"));
    });
}
