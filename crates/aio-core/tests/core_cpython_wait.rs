//! CPython's own tests of `asyncio.wait` (`Lib/test/test_asyncio/
//! test_tasks.py`), ported on a paused clock (CPython's test loop with its
//! time generator): the same tasks, deadlines, `return_when` and expected
//! `(done, pending)` sets, compared by task id, and the loop time at the
//! end. The ones about argument types (`wait(coro)`, `return_when=-1`)
//! have no Rust counterpart: the types rule them out. Python 3.11's
//! asyncio gives the same sets for the scenarios here (checked by hand).

use std::collections::BTreeSet;
use std::future::Future;

use aio_core::{
    ALL_COMPLETED, Builder, FIRST_COMPLETED, FIRST_EXCEPTION, Task, WaitError, create_task, get_running_loop, sleep,
    wait,
};

fn paused<T>(f: impl Future<Output = T> + 'static) -> T {
    let lp = Builder::new().paused_clock().build();
    let out = lp.run_until_complete(f).expect("the test's main task");
    lp.close();
    out
}

/// Runs `w` in a task of its own, made after the tasks it waits for, as
/// CPython's tests do (`new_task(loop, asyncio.wait(...))`, or
/// `run_until_complete`, which wraps it in one): those tasks step first.
async fn in_task<T: aio_core::TaskOutput + 'static>(w: aio_core::Wait<T>) -> (Vec<Task<T>>, Vec<Task<T>>) {
    create_task(w).await.unwrap().unwrap()
}

fn now() -> f64 {
    get_running_loop().time()
}

#[track_caller]
fn assert_almost_equal(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

/// The ids of `tasks`, as a set (asyncio returns sets).
fn ids<T>(tasks: &[Task<T>]) -> BTreeSet<u64> {
    tasks.iter().map(|t| t.id()).collect()
}

#[derive(Debug, Clone, PartialEq)]
struct ZeroDivisionError(&'static str);

/// `asyncio.sleep(dt)` in a task, as `Result` so `FIRST_EXCEPTION` can
/// tell the failures.
fn sleeper(dt: f64) -> Task<Result<(), ZeroDivisionError>> {
    create_task(async move {
        // Those still sleeping when a test ends are cancelled as its loop
        // closes.
        let _ = sleep(dt).await;
        Ok(())
    })
}

#[test]
fn test_wait() {
    paused(async {
        let t0 = now();
        let a = sleeper(0.1);
        let b = sleeper(0.15);
        let want = BTreeSet::from([a.id(), b.id()]);
        let (done, pending) = in_task(wait([b, a], ALL_COMPLETED)).await;
        assert_eq!(ids(&done), want);
        assert!(pending.is_empty());
        assert_almost_equal(0.15, now() - t0);

        // Doing it again should take no time and exercise a different path.
        let (done, pending) = wait(done, ALL_COMPLETED).await.unwrap();
        assert_eq!(ids(&done), want);
        assert!(pending.is_empty());
        assert_almost_equal(0.15, now() - t0);
    });
}

#[test]
fn test_wait_errors() {
    paused(async {
        let none: Vec<Task<()>> = Vec::new();
        assert!(matches!(wait(none, ALL_COMPLETED).await, Err(WaitError::Empty)));
    });
}

#[test]
fn test_wait_first_completed() {
    paused(async {
        let t0 = now();
        let a = sleeper(10.0);
        let b = sleeper(0.1);
        let (a_id, b_id) = (a.id(), b.id());
        let (done, pending) = in_task(wait([b, a], FIRST_COMPLETED)).await;
        assert_eq!(ids(&done), BTreeSet::from([b_id]));
        assert_eq!(ids(&pending), BTreeSet::from([a_id]));
        assert!(!pending[0].done());
        assert!(done[0].done());
        assert!(matches!(done[0].cloned_result(), Some(Ok(Ok(())))));
        assert_almost_equal(0.1, now() - t0);
    });
}

#[test]
fn test_wait_really_done() {
    paused(async {
        // There is a possibility that some tasks in the pending list
        // became done but their callbacks haven't all been called yet.
        let a = create_task(async {
            sleep(0).await.unwrap();
        });
        let b = create_task(async {
            sleep(0).await.unwrap();
            sleep(0).await.unwrap();
        });
        let want = BTreeSet::from([a.id(), b.id()]);
        let (done, pending) = in_task(wait([b, a], FIRST_COMPLETED)).await;
        assert_eq!(ids(&done), want);
        assert!(pending.is_empty());
        assert!(
            done.iter()
                .all(|t| t.done() && matches!(t.cloned_result(), Some(Ok(()))))
        );
    });
}

/// `test_wait_first_exception` (b failed before the wait: `fails_after`
/// is `None`) and `test_wait_first_exception_in_wait` (b fails 0.01 s
/// into it): the wait returns with b done and a pending, when b failed.
fn first_exception(fails_after: Option<f64>) {
    paused(async move {
        let t0 = now();
        let a = sleeper(10.0);
        let b = create_task(async move {
            if let Some(dt) = fails_after {
                sleep(dt).await.unwrap();
            }
            Err::<(), _>(ZeroDivisionError("err"))
        });
        let (a_id, b_id) = (a.id(), b.id());
        let (done, pending) = in_task(wait([b, a], FIRST_EXCEPTION)).await;
        assert_eq!(ids(&done), BTreeSet::from([b_id]));
        assert_eq!(ids(&pending), BTreeSet::from([a_id]));
        assert_almost_equal(fails_after.unwrap_or(0.0), now() - t0);
    });
}

#[test]
fn test_wait_first_exception() {
    // FIRST_EXCEPTION, a task that already has its exception.
    first_exception(None);
}

#[test]
fn test_wait_first_exception_in_wait() {
    // FIRST_EXCEPTION, an exception while waiting.
    first_exception(Some(0.01));
}

#[test]
fn test_wait_with_exception() {
    paused(async {
        let t0 = now();
        let a = sleeper(0.1);
        let b = create_task(async {
            sleep(0.15).await.unwrap();
            Err::<(), _>(ZeroDivisionError("really"))
        });
        let (done, pending) = in_task(wait([b, a], ALL_COMPLETED)).await;
        assert_eq!(done.len(), 2);
        assert!(pending.is_empty());
        let errors = done
            .iter()
            .filter(|t| t.exception().is_some_and(|e| e.is_ok_and(|e| e.is_some())));
        assert_eq!(errors.count(), 1);
        let failed: Vec<_> = done.iter().filter_map(|t| t.cloned_result()?.ok()?.err()).collect();
        assert_eq!(failed, [ZeroDivisionError("really")]);
        assert_almost_equal(0.15, now() - t0);
    });
}

/// `test_wait_with_timeout` (0.11) and `test_wait_concurrent_complete`
/// (0.1, a's own deadline): a sleeps 0.1 s, b 0.15 s; the wait returns at
/// its timeout with a done and b pending.
fn wait_with_timeout(timeout: f64) {
    paused(async move {
        let t0 = now();
        let a = sleeper(0.1);
        let b = sleeper(0.15);
        let (a_id, b_id) = (a.id(), b.id());
        let (done, pending) = in_task(wait([b, a], ALL_COMPLETED).timeout(timeout)).await;
        assert_eq!(ids(&done), BTreeSet::from([a_id]));
        assert_eq!(ids(&pending), BTreeSet::from([b_id]));
        assert_almost_equal(timeout, now() - t0);
    });
}

#[test]
fn test_wait_with_timeout() {
    wait_with_timeout(0.11);
}

#[test]
fn test_wait_concurrent_complete() {
    wait_with_timeout(0.1);
}
