//! A misuse panic points at the caller's line, not at aio's insides: no
//! running loop (`get_running_loop`, `create_task`, `to_thread`, `sleep`
//! and `timeout` polled outside a loop), a sleep polled on another loop,
//! running a closed loop and closing a running one. (A task awaited after
//! its result was taken is no misuse any more: it gives
//! `TaskError::Retrieved`, see core_task_api.rs.)
//!
//! Each case runs under a panic hook that records the first panic's
//! location; the hook is process-wide, so the tests take `LOCK`. (Awaiting
//! through `&mut fut` goes through core's untracked `impl Future for &mut
//! F`, which reports its own line: the tests await by value or poll.)

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use aio_core::{Loop, Runner, create_eager_task, create_task, get_running_loop, sleep, timeout, to_thread};

static LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f`, which must panic, and returns where the first panic was
/// raised (file, line).
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    let seen: Arc<Mutex<Option<(String, u32)>>> = Arc::default();
    let s2 = seen.clone();
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let mut s = s2.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = info.location().map(|l| (l.file().to_owned(), l.line()));
        }
    }));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(prev);
    assert!(r.is_err(), "no panic");
    let loc = seen.lock().unwrap().take();
    loc.expect("the panic has a location")
}

/// Drops whatever a case returns (a future, a `Poll`, a `Copy` value).
fn discard<T>(_: T) {}

/// Asserts that `$e` panics at the line of this macro's invocation in
/// this file (keep the invocation on one line).
macro_rules! panics_here {
    ($e:expr) => {{
        let line = line!();
        let at = panic_location(|| {
            discard($e);
        });
        assert_eq!((at.0.as_str(), at.1), (file!(), line), "the panic points into aio");
    }};
}

/// Polls `fut` once with a waker that does nothing, on no loop. Tracked,
/// so a tracked `poll` reports this function's caller.
#[track_caller]
fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn no_running_loop() {
    let _g = serial();
    panics_here!(get_running_loop());
    panics_here!(create_task(async {}));
    panics_here!(create_eager_task(async {}));
    panics_here!(aio_core::all_tasks());
    panics_here!(to_thread(|| ()));
    panics_here!(poll_once(pin!(sleep(0.1))));
    panics_here!(poll_once(pin!(timeout(0.1, async {}))));
}

/// `.await` points at the await: the future's `poll` is tracked.
#[test]
fn awaited_outside_a_loop() {
    let _g = serial();
    let line = line!() + 2;
    let mut fut = Box::pin(async {
        let _ = sleep(0.1).await;
    });
    let at = panic_location(|| {
        let _ = poll_once(fut.as_mut());
    });
    assert_eq!((at.0.as_str(), at.1), (file!(), line), "the panic points into aio");
}

#[test]
fn sleep_polled_on_another_loop() {
    let _g = serial();
    let first = Runner::new();
    // The armed sleep is handed out on purpose.
    #[allow(clippy::async_yields_async)]
    let s = first.run(async {
        let mut s = sleep(10);
        std::future::poll_fn(|cx| {
            assert!(Pin::new(&mut s).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        s
    });
    // `first` stays open: its core is not freed and reused by `second`.
    let second = Runner::new();
    let line = line!() + 3;
    let at = panic_location(|| {
        second.run(async move {
            let _ = s.await;
        });
    });
    assert_eq!((at.0.as_str(), at.1), (file!(), line), "the panic points into aio");
}

#[test]
fn closed_and_running_loops() {
    let _g = serial();
    let lp = Loop::new();
    lp.close();
    panics_here!(lp.run_until_complete(async {}));
    panics_here!(lp.run_forever());
    let line = line!() + 3;
    let at = panic_location(|| {
        aio_core::run(async {
            get_running_loop().close();
        });
    });
    assert_eq!((at.0.as_str(), at.1), (file!(), line), "the panic points into aio");
}
