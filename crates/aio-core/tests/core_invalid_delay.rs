//! A delay or deadline that is not a number is bad input, reported as an
//! `InvalidInput`-style error, never taken for zero: `sleep`,
//! `sleep_until`, `timeout`, `timeout_at`, `wait_for`, `timeout_with` (and
//! its `reschedule`), `wait(..).timeout`, `call_later` and `call_at`.
//! Negative delays still mean zero, as in asyncio.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use aio_core::{
    Cancelled, FIRST_COMPLETED, InvalidDelay, Loop, TaskError, create_task, get_running_loop, run, sleep, sleep_until,
    timeout, timeout_at, timeout_with, wait, wait_for,
};

fn is_invalid_input(e: impl Into<io::Error>) -> bool {
    let e = e.into();
    e.kind() == io::ErrorKind::InvalidInput && e.to_string().contains("NaN")
}

#[test]
fn sleep_nan_is_an_error_and_negative_is_zero() {
    run(async {
        let e = sleep(f64::NAN).await.unwrap_err();
        assert!(e.is_invalid_delay(), "{e:?}");
        assert_eq!(e.invalid_delay(), Some(InvalidDelay));
        assert_eq!(e.to_string(), "invalid delay: NaN (not a number)");
        assert_ne!(e, Cancelled::new());
        assert!(is_invalid_input(e));
        assert!(sleep(f32::NAN).await.unwrap_err().is_invalid_delay());
        assert!(sleep_until(f64::NAN).await.unwrap_err().is_invalid_delay());
        // Negative delays mean zero, as in asyncio.
        sleep(-1.0).await.unwrap();
        sleep(f64::NEG_INFINITY).await.unwrap();
        // A real cancellation is not an invalid delay.
        assert!(!Cancelled::new().is_invalid_delay());
        assert!(!Cancelled::with_message("invalid delay: NaN (not a number)").is_invalid_delay());
    });
}

/// The error travels through `?` in `aio::Result` code and does not make
/// the task cancelled.
#[test]
fn a_nan_sleep_propagates_without_cancelling_the_task() {
    async fn nap(d: f64) -> aio_core::Result<u32> {
        sleep(d).await?;
        Ok(1)
    }
    run(async {
        let t = create_task(nap(f64::NAN));
        match t.await {
            Ok(Err(c)) => assert!(c.is_invalid_delay(), "{c:?}"),
            other => panic!("expected the task's own error, got {other:?}"),
        }
        let t = create_task(nap(f64::NAN));
        let r = t.await;
        assert!(!matches!(r, Err(TaskError::Cancelled(_))), "{r:?}");
        // The next await point of the same task works normally.
        assert_eq!(nap(0.0).await, Ok(1));
    });
}

#[test]
fn a_nan_timeout_is_an_error_and_does_not_run_the_body() {
    run(async {
        let ran = Rc::new(Cell::new(false));
        let body = |ran: Rc<Cell<bool>>| async move {
            ran.set(true);
            5
        };
        let e = timeout(f64::NAN, body(ran.clone())).await.unwrap_err();
        assert!(e.is_invalid_delay(), "{e:?}");
        assert_ne!(e, aio_core::TimeoutError::new());
        assert_eq!(e.to_string(), "invalid delay: NaN (not a number)");
        assert!(is_invalid_input(e));
        let e = wait_for(body(ran.clone()), f64::NAN).await.unwrap_err();
        assert!(e.is_invalid_delay());
        let e = timeout_at(f64::NAN, body(ran.clone())).await.unwrap_err();
        assert!(e.is_invalid_delay());
        let e = timeout_with(Some(f32::NAN), |_| body(ran.clone())).await.unwrap_err();
        assert!(e.is_invalid_delay());
        assert!(!ran.get(), "the body ran under a NaN timeout");
        // Negative delays: an expired timeout, the plain kind.
        let e = timeout(-1.0, sleep(10)).await.unwrap_err();
        assert!(!e.is_invalid_delay());
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::TimedOut);
    });
}

/// Rescheduling a running timeout to NaN cancels the body cooperatively
/// (it cleans up) and reports the invalid delay.
#[test]
fn rescheduling_to_nan_cancels_the_body_and_reports_it() {
    run(async {
        let cleaned = Rc::new(Cell::new(false));
        let c2 = cleaned.clone();
        let r = timeout_with(Some(10.0), |cm| async move {
            cm.reschedule(Some(f64::NAN)).unwrap();
            assert!(cm.when().is_some_and(f64::is_nan));
            let r = sleep(10).await;
            c2.set(true);
            r
        })
        .await;
        let e = r.unwrap_err();
        assert!(e.is_invalid_delay(), "{e:?}");
        assert!(cleaned.get(), "the body did not see its cancellation");
    });
}

#[test]
fn wait_with_a_nan_timeout_is_an_error() {
    run(async {
        let t = create_task(sleep(10));
        let e = wait([t], FIRST_COMPLETED).timeout(f64::NAN).await.unwrap_err();
        assert!(matches!(e, aio_core::WaitError::InvalidDelay(_)), "{e:?}");
    });
}

#[test]
fn call_later_and_call_at_refuse_nan() {
    let lp = Loop::new();
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    assert_eq!(lp.call_later(f64::NAN, move || c.set(true)).unwrap_err(), InvalidDelay);
    let c = called.clone();
    assert_eq!(lp.call_at(f64::NAN, move || c.set(true)).unwrap_err(), InvalidDelay);
    assert!(is_invalid_input(InvalidDelay));
    lp.run_until_complete(async {
        let lp = get_running_loop();
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        lp.call_later(-1.0, move || f.set(true)).unwrap();
        sleep(0.01).await.unwrap();
        assert!(fired.get(), "a negative delay means now");
    })
    .unwrap();
    lp.close();
    assert!(!called.get(), "a NaN callback ran");
}
