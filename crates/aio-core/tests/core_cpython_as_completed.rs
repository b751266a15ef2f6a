//! CPython's own tests of `asyncio.as_completed` (`Lib/test/test_asyncio/
//! test_tasks.py`), ported on a paused clock (CPython's test loop with its
//! time generator): the same sleepers, deadlines and `advance_time` calls,
//! the same expected values and loop time at the end.
//!
//! Not ported: `test_as_completed_duplicate_coroutines` (one future passed
//! twice: Rust moves a future, so it cannot be), and the second,
//! "no time" run of `test_as_completed` (it re-iterates consumed
//! coroutines, which Rust rules out the same way).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Waker};

use aio_core::{Builder, TimeoutError, as_completed, create_task, get_running_loop, sleep, time};

fn paused<T>(f: impl Future<Output = T> + 'static) -> T {
    let lp = Builder::new().paused_clock().build();
    let out = lp.run_until_complete(f).expect("the test's main task");
    lp.close();
    out
}

fn now() -> f64 {
    get_running_loop().time()
}

#[track_caller]
fn assert_almost_equal(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

/// CPython's test loop's `advance_time(dt)`: moves the clock at once,
/// without yielding. aio's `time::advance` also yields, to let the tasks
/// it woke run; polled once and dropped, it has moved the clock (and
/// fired what is due) and yields nothing.
fn advance_time(dt: f64) {
    let mut adv = std::pin::pin!(time::advance(dt));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        adv.as_mut().poll(&mut cx).is_pending(),
        "advance moves the clock on its first poll"
    );
}

/// `asyncio.sleep(dt, result)`.
async fn sleep_value(dt: f64, v: &'static str) -> &'static str {
    sleep(dt).await.unwrap();
    v
}

#[test]
fn test_as_completed() {
    paused(async {
        let t0 = now();
        let completed = Rc::new(RefCell::new(BTreeSet::new()));
        let time_shifted = Rc::new(Cell::new(false));
        // Once a and b are done, the sleeper that saw it moves the clock
        // on by 0.14, so c (due at 0.15) is due at once.
        let sleeper = |dt: f64, x: &'static str| {
            let (completed, time_shifted) = (completed.clone(), time_shifted.clone());
            async move {
                sleep(dt).await.unwrap();
                completed.borrow_mut().insert(x);
                let both = completed.borrow().contains("a") && completed.borrow().contains("b");
                if !time_shifted.get() && both {
                    time_shifted.set(true);
                    advance_time(0.14);
                }
                x
            }
        };
        let (a, b, c) = (sleeper(0.01, "a"), sleeper(0.01, "b"), sleeper(0.15, "c"));
        let mut values = Vec::new();
        let mut s = as_completed([b, c, a]);
        while let Some(v) = s.next().await {
            values.push(v);
        }
        assert_almost_equal(0.15, now() - t0);
        assert!(values[..2].contains(&"a"), "{values:?}");
        assert!(values[..2].contains(&"b"), "{values:?}");
        assert_eq!(values[2], "c");
    });
}

#[test]
fn test_as_completed_with_timeout() {
    paused(async {
        let t0 = now();
        let a = create_task(sleep_value(0.1, "a"));
        let b = create_task(sleep_value(0.15, "b"));
        let b_ref = b.to_ref();
        let mut values = Vec::new();
        let mut s = as_completed([a, b]).timeout(0.12);
        // asyncio's `as_completed` gives one awaitable per future.
        for _ in 0..2 {
            if !values.is_empty() {
                advance_time(0.02);
            }
            match s.next().await {
                Some(Ok(v)) => values.push(Ok(v.unwrap())),
                Some(Err(e)) => values.push(Err(e)),
                None => panic!("as_completed ended early"),
            }
        }
        assert_eq!(values, [Ok("a"), Err(TimeoutError)]);
        assert_almost_equal(0.12, now() - t0);
        // The deadline ends the wait, not the task (asyncio's
        // `as_completed` never cancels what it waits for): b still runs
        // to its value.
        assert!(!b_ref.done());
        // (CPython's test then waits for b: `run_until_complete(wait([a, b]))`.)
        time::advance(10).await.unwrap();
        for _ in 0..10 {
            if b_ref.done() {
                break;
            }
            sleep(0).await.unwrap();
        }
        assert!(b_ref.done() && !b_ref.cancelled());
    });
}

#[test]
fn test_as_completed_with_unused_timeout() {
    paused(async {
        let t0 = now();
        let mut s = as_completed([sleep_value(0.01, "a")]).timeout(1);
        while let Some(v) = s.next().await {
            assert_eq!(v, Ok("a"));
        }
        assert_almost_equal(0.01, now() - t0);
    });
}

#[test]
fn test_as_completed_reverse_wait() {
    paused(async {
        let t0 = now();
        let mut s = as_completed([sleep_value(0.05, "a"), sleep_value(0.10, "b")]);
        assert_eq!(s.remaining(), 2);
        assert_eq!(s.next().await, Some("a"));
        assert_almost_equal(0.05, now() - t0);
        advance_time(0.05);
        assert_eq!(s.next().await, Some("b"));
        assert_almost_equal(0.10, now() - t0);
        assert_eq!(s.next().await, None);
    });
}

#[test]
fn test_as_completed_concurrent() {
    paused(async {
        let t0 = now();
        let mut s = as_completed([sleep_value(0.05, "a"), sleep_value(0.05, "b")]);
        let mut got = BTreeSet::new();
        while let Some(v) = s.next().await {
            got.insert(v);
        }
        assert_eq!(got, BTreeSet::from(["a", "b"]));
        assert_almost_equal(0.05, now() - t0);
    });
}
