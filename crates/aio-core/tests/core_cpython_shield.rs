//! CPython's own tests of cancellation through `shield`, `wait` and
//! awaited futures (`Lib/test/test_asyncio/test_tasks.py`), ported: the
//! same futures, tasks and loop turns (`test_utils.run_briefly` is one
//! `yield_now`), the same assertions. `asyncio.shield(coro)` wraps the
//! coroutine in a task; aio's `shield` is given that task, as its docs
//! say (a plain future is dropped with the shield).

use std::error::Error;
use std::fmt;
use std::rc::Rc;

use std::cell::Cell;

use aio_core::{
    FIRST_COMPLETED, Future, FutureError, Task, TaskError, create_task, get_running_loop, run, shield, wait, wait_for,
    yield_now,
};

#[derive(Debug)]
struct Expected;

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected")
    }
}

impl Error for Expected {}

/// `test_utils.run_briefly`: one turn of the loop.
async fn run_briefly() {
    yield_now().await.unwrap();
}

#[test]
fn test_shield_result() {
    run(async {
        let inner = Future::<i32>::new();
        let outer = create_task(shield(inner.clone()));
        inner.set_result(42).unwrap();
        let res = outer.await.unwrap().unwrap().unwrap();
        assert_eq!(res, 42);
    });
}

#[test]
fn test_shield_exception() {
    run(async {
        let inner = Future::<i32>::new();
        let outer = create_task(shield(inner.clone()));
        run_briefly().await;
        inner.set_exception(Expected).unwrap();
        run_briefly().await;
        let exc = inner.exception().unwrap().expect("the inner future failed");
        match outer.await.unwrap().unwrap() {
            Err(FutureError::Exception(e)) => assert!(Rc::ptr_eq(&e, &exc), "the same exception"),
            other => panic!("the outer future gave {other:?}"),
        }
    });
}

#[test]
fn test_shield_cancel_inner() {
    run(async {
        let inner = Future::<i32>::new();
        let outer = create_task(shield(inner.clone()));
        run_briefly().await;
        inner.cancel();
        run_briefly().await;
        assert!(outer.done());
        assert!(outer.cancelled(), "the inner future's cancellation cancels the outer");
    });
}

#[test]
fn test_shield_cancel_outer() {
    run(async {
        let inner = Future::<i32>::new();
        let outer = create_task(shield(inner.clone()));
        run_briefly().await;
        outer.cancel();
        run_briefly().await;
        assert!(outer.cancelled());
        assert!(!inner.done(), "the shield kept the cancellation from the inner future");
    });
}

#[test]
fn test_shield_shortcut() {
    run(async {
        let fut = Future::<i32>::new();
        fut.set_result(42).unwrap();
        let res = shield(fut).await.unwrap().unwrap();
        assert_eq!(res, 42);
    });
}

/// test_shield_effect's and test_yield_wait_does_not_shield_cancel's
/// program: outer() waits, by `through`, on a task running inner(), which
/// waits for `waiter` and then adds 1 to the proof; outer() adds 100 after.
/// Cancelling outer() cancels it and leaves inner() running: the proof
/// ends at 1.
async fn cancelling_outer_leaves_inner<F, E>(through: impl FnOnce(Task<()>) -> F + 'static)
where
    F: std::future::Future<Output = Result<(), E>> + 'static,
    E: std::fmt::Debug + 'static,
{
    let proof = Rc::new(Cell::new(0));
    let waiter = Future::<()>::new();
    let (p, w) = (proof.clone(), waiter.clone());
    let inner = async move {
        w.await.unwrap();
        p.set(p.get() + 1);
    };
    let p = proof.clone();
    let outer = async move {
        through(create_task(inner)).await?;
        p.set(p.get() + 100);
        Ok::<(), E>(())
    };
    let f = create_task(outer);
    run_briefly().await;
    f.cancel();
    assert!(matches!(f.await, Err(TaskError::Cancelled(_))));
    waiter.set_result(()).unwrap();
    run_briefly().await;
    assert_eq!(proof.get(), 1);
}

#[test]
fn test_shield_effect() {
    // Cancelling outer() does not affect inner().
    run(cancelling_outer_leaves_inner(|inner| async {
        shield(inner).await.map(|r| r.unwrap())
    }));
}

#[test]
fn test_yield_future_passes_cancel() {
    run(async {
        // Cancelling outer() cancels inner() cancels waiter.
        let proof = Rc::new(Cell::new(0));
        let waiter = Future::<()>::new();
        let (p, w) = (proof.clone(), waiter.clone());
        let inner = async move {
            match w.await {
                Err(e) if e.is_cancelled() => {
                    p.set(p.get() + 1);
                    Err::<(), FutureError>(e)
                }
                other => panic!("got past the waiter in inner(): {other:?}"),
            }
        };
        let p = proof.clone();
        let outer = async move {
            match inner.await {
                Err(e) if e.is_cancelled() => p.set(p.get() + 100), // Expect this path.
                _ => p.set(p.get() + 10),
            }
        };
        let f = create_task(outer);
        run_briefly().await;
        f.cancel();
        f.await.unwrap();
        assert_eq!(proof.get(), 101);
        assert!(waiter.cancelled(), "the cancellation reached the awaited future");
    });
}

#[test]
fn test_yield_wait_does_not_shield_cancel() {
    // Cancelling outer() makes wait() return early, leaves inner()
    // running.
    run(cancelling_outer_leaves_inner(|inner| async {
        wait([inner], FIRST_COMPLETED).await.map(drop)
    }));
}

/// `_test_cancel_wait_for`: cancelling a `wait_for` of a task cancels the
/// task (Python issue #23219), with a timeout (`test_cancel_wait_for`)
/// and without (`test_cancel_blocking_wait_for`, a plain await).
async fn cancel_wait_for<T: 'static>(wait: impl FnOnce(Task<FutureResult>) -> Task<T>) {
    let blocking = async {
        // Block: the future's result is never set.
        Future::<()>::new().await
    };
    let task = create_task(blocking);
    let probe = task.to_ref();
    let w = wait(task);
    let w2 = w.to_ref();
    get_running_loop().call_soon(move || {
        w2.cancel();
    });
    assert!(matches!(w.await, Err(TaskError::Cancelled(_))));
    assert!(probe.cancelled(), "cancelling the wait cancelled the task");
}

type FutureResult = Result<(), FutureError>;

#[test]
fn test_cancel_wait_for() {
    run(cancel_wait_for(|task| {
        create_task(async move { wait_for(task, 60.0).await })
    }));
}

#[test]
fn test_cancel_blocking_wait_for() {
    run(cancel_wait_for(create_task));
}
