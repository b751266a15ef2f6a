//! CPython's own tests of `asyncio.run` and `asyncio.Runner`
//! (`Lib/test/test_asyncio/test_runners.py`, the newest version: `RunTests`
//! and `RunnerTests`), ported step for step: the same coroutines, the same
//! runs, the same assertions. `asyncio.run(main())` is [`aio_core::run`],
//! `asyncio.Runner(loop_factory=f)` is `Runner::with_loop(f())`, and
//! `asyncio.run(main(), loop_factory=self.new_loop)` is [`run_checked`]:
//! `run`, then `BaseTest.tearDown`'s check that the loop was closed (the
//! mock loop's `shutdown_asyncgens` flag has no counterpart: Rust has no
//! async generators to shut down). An exception escaping `main` is a
//! panic here (`run` resumes it, as `asyncio.run` re-raises), caught with
//! `catch_unwind` as `assertRaises` catches the exception; `1 / 0` is a
//! division by a zero the compiler cannot see. What only Rust's types
//! rule out is said where it happens:
//!
//! - `Runner::close` takes the runner, so `runner.get_loop()` after it
//!   ("Runner is closed") does not compile; `test_run`, `test_explicit_close`
//!   and `test_double_close` keep the rest (the loop is closed, a second
//!   close, through the loop, is harmless), and `test_second_with_block_raises`
//!   runs the second block on the closed runner's loop, which refuses it;
//! - in `test_recursive_run`, the "coroutine ... was never awaited"
//!   warning: a Rust future that is never polled is dropped silently.
//!
//! Not ported:
//!
//! - `test_asyncio_run_only_coro`, `test_run_non_coro`: passing a
//!   non-awaitable (`1`, a lambda, `123`); `run` takes a `Future`, so the
//!   compiler refuses it;
//! - `test_asyncio_run_set_event_loop`, `test_set_event_loop_called_once`:
//!   they mock `asyncio.set_event_loop`, the policy's current loop, which
//!   aio does not have (the running loop is the thread's only loop);
//! - `test_loop_factory_default_event_loop`: which class the default loop
//!   is (`SelectorEventLoop`, `ProactorEventLoop`);
//! - `test_no_repr_is_call_on_the_task_result`: `repr()` of the result;
//! - `test_asyncio_run_without_uncancel`, `test_interrupt_call_soon`,
//!   `test_interrupt_wait`, `test_interrupt_cancelled_task`: they send the
//!   process SIGINT (`_thread.interrupt_main`) and check how
//!   `asyncio.Runner`'s SIGINT handler turns it into a cancellation of the
//!   main task and then `KeyboardInterrupt` (using `uncancel()`). aio's
//!   `Runner` installs no SIGINT handler: Ctrl-C is `aio::ctrl_c().await`
//!   in aio-net (README, the `KeyboardInterrupt` row), so there is no
//!   interrupt for the runner to translate.
//!
//! Found by this port and mended (checked on Python 3.11):
//!
//! - `test_asyncio_run_closes_gens_after_hanging_tasks_errors`: asyncio's
//!   `run_until_complete` stops the loop from the main task's done
//!   callback, one turn after the main task ends, so a task the main task
//!   created in its last step takes its first step before the loop stops.
//!   aio stopped in the turn the main task ended, and the task never ran;
//!   it now runs that turn too.
//! - `test_run_keeps_context`: `asyncio.Runner` runs every `run()` in one
//!   context of its own, so a value set in one run is seen by the next
//!   (`-1`, `1`, `2`). aio's runner started each run from the thread's
//!   context; it now keeps one.
//!
//! `test_asyncio_run_reports_hanging_tasks_errors` found that a task that
//! raised as `run()` cancelled it at shutdown reached the loop's handler
//! only when detached (as "Task exception was never retrieved"); a held
//! one was reported when its handle dropped, after the loop closed, to
//! the default handler. Both are now asyncio's "unhandled exception during
//! asyncio.run() shutdown" to the loop's handler, once.
//!
//! `test_signal_install_not_supported_ok` runs the runner where
//! `signal.signal()` would fail ("signal only works in main thread"): on a
//! thread that is not the main one.
//!
//! The `mock.patch('asyncio.coroutines._is_debug_mode')` steps of
//! `test_asyncio_run_debug` are `AIO_DEBUG` (README, the debug row): the
//! test runs itself again in child processes with `AIO_DEBUG=1` and
//! `AIO_DEBUG=0`, as setting the variable in this multi-threaded process
//! is not sound.

use std::cell::{Cell, RefCell};
use std::future::{Future, IntoFuture};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use aio_core::{
    Builder, ContextVar, ExceptionContext, Loop, Runner, Task, copy_context, create_task, get_running_loop, run, sleep,
};

mod cpython;
use cpython::{divide_by_zero, panic_text};

/// `asyncio.run(fut, loop_factory=self.new_loop)` followed by
/// `BaseTest.tearDown`'s check: the loop `fut` ran on is closed, whether
/// `fut` returned or raised (panicked). The loop is read from inside, so
/// this test keeps no handle that would hold it open.
fn run_checked<F: Future + 'static>(fut: F) -> std::thread::Result<F::Output> {
    let seen: Rc<RefCell<Option<Loop>>> = Rc::default();
    let slot = seen.clone();
    let out = catch_unwind(AssertUnwindSafe(|| {
        run(async move {
            *slot.borrow_mut() = Some(get_running_loop());
            fut.await
        })
    }));
    let lp = seen.borrow_mut().take().expect("main ran");
    assert!(lp.is_closed(), "the loop run() used is closed");
    out
}

/// `raise ValueError('spam')`.
#[derive(Debug)]
struct ValueError(&'static str);

/// `class FancyExit(Exception)`.
#[derive(Debug)]
struct FancyExit;

// ---------------------------------------------------------------- RunTests

#[test]
fn test_asyncio_run_return() {
    let out = run_checked(async {
        sleep(0).await.unwrap();
        42
    });
    assert_eq!(out.unwrap(), 42);
}

#[test]
fn test_asyncio_run_raises() {
    let err = run_checked(async {
        sleep(0).await.unwrap();
        std::panic::panic_any(ValueError("spam"));
    })
    .unwrap_err();
    let e = err.downcast_ref::<ValueError>().expect("ValueError escapes run()");
    assert_eq!(e.0, "spam");
}

/// `asyncio.get_event_loop().get_debug()` inside main, for `debug=`
/// `Some(on)` (`Builder::debug`) or `None` (the default: `AIO_DEBUG`).
fn run_debug(debug: Option<bool>, expected: bool) {
    let mut b = Builder::new();
    if let Some(on) = debug {
        b = b.debug(on);
    }
    Runner::with_loop(b.build()).run(async move {
        assert_eq!(get_running_loop().get_debug(), expected);
    });
}

const DEBUG_CHILD: &str = "AIO_TEST_RUNNERS_DEBUG_CHILD";

#[test]
fn test_asyncio_run_debug() {
    if let Ok(mode) = std::env::var(DEBUG_CHILD) {
        // In a child process: `mock.patch('asyncio.coroutines._is_debug_mode',
        // lambda: <mode>)` is `AIO_DEBUG=<mode>`.
        let on = mode == "1";
        run_debug(None, on);
        run_debug(Some(!on), !on);
        return;
    }
    run_debug(Some(false), false);
    run_debug(Some(true), true);
    for mode in ["1", "0"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "test_asyncio_run_debug", "--test-threads=1"])
            .env(DEBUG_CHILD, mode)
            .env("AIO_DEBUG", mode)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "AIO_DEBUG={mode}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the child ran the test"
        );
    }
}

#[test]
fn test_asyncio_run_from_running_loop() {
    async fn main() {
        // The inner future is dropped unpolled, as `coro.close()`.
        run(Box::pin(async {}) as Pin<Box<dyn Future<Output = ()>>>);
    }
    let err = run_checked(main()).unwrap_err();
    let msg = panic_text(err);
    // asyncio: "asyncio.run() cannot be called from a running event loop".
    assert!(msg.contains("while another loop is running"), "{msg}");
}

#[test]
fn test_asyncio_run_cancels_hanging_tasks() {
    let lo_task: Rc<RefCell<Option<Task<aio_core::Result<()>>>>> = Rc::default();

    async fn leftover() -> aio_core::Result<()> {
        sleep(0.1).await
    }

    let slot = lo_task.clone();
    let out = run_checked(async move {
        *slot.borrow_mut() = Some(create_task(leftover()));
        123
    });
    assert_eq!(out.unwrap(), 123);
    assert!(lo_task.borrow().as_ref().unwrap().done());
}

/// What the exception handler was called with: message, task name, panic.
type Report = (String, Option<String>, Option<String>);

/// `loop.call_exception_handler = mock`: what `lp` reports goes to `calls`.
fn record_reports(lp: &Loop, calls: Rc<RefCell<Vec<Report>>>) {
    lp.set_exception_handler(Some(move |ctx: &ExceptionContext| {
        calls.borrow_mut().push((
            ctx.message.clone(),
            ctx.task.clone(),
            ctx.panic.as_ref().map(|p| p.to_string()),
        ));
    }));
}

#[test]
fn test_asyncio_run_reports_hanging_tasks_errors() {
    let lo_task: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let call_exc_handler_mock: Rc<RefCell<Vec<Report>>> = Rc::default();

    async fn leftover() {
        if sleep(0.1).await.is_err() {
            divide_by_zero();
        }
    }

    let (slot, rep) = (lo_task.clone(), call_exc_handler_mock.clone());
    let out = run_checked(async move {
        // `loop.call_exception_handler = call_exc_handler_mock`
        record_reports(&get_running_loop(), rep);
        *slot.borrow_mut() = Some(create_task(leftover()));
        123
    });
    assert_eq!(out.unwrap(), 123);
    let lo_task = lo_task.borrow_mut().take().unwrap();
    assert!(lo_task.done());

    // `assert_called_with`: the last call, made while run() shut down.
    let calls = call_exc_handler_mock.borrow();
    let (message, task, panic) = calls.last().expect("the exception handler was called");
    assert!(message.contains("shutdown"), "{message}");
    assert_eq!(task.as_deref(), Some(&*lo_task.name()));
    let panic = panic.as_deref().expect("the exception");
    assert!(panic.contains("divide by zero"), "{panic}");
}

#[test]
fn test_asyncio_run_closes_gens_after_hanging_tasks_errors() {
    /// `fidget()`, the async generator: `while True: yield 1; await
    /// asyncio.sleep(1)`. Its frame is gone (`ag_frame is None`) once it
    /// is dropped.
    struct Fidget {
        started: bool,
        frame_gone: Rc<Cell<bool>>,
    }
    impl Fidget {
        async fn next(&mut self) -> aio_core::Result<i32> {
            if self.started {
                sleep(1).await?;
            }
            self.started = true;
            Ok(1)
        }
    }
    impl Drop for Fidget {
        fn drop(&mut self) {
            self.frame_gone.set(true);
        }
    }

    let spinner_gone = Rc::new(Cell::new(false));
    let lazyboy: Rc<RefCell<Option<Task<()>>>> = Rc::default();

    let gone = spinner_gone.clone();
    let spin = async move {
        let mut spinner = Fidget {
            started: false,
            frame_gone: gone,
        };
        // `async for the_meaning_of_life in spinner: pass`
        loop {
            if spinner.next().await.is_err() {
                // `except asyncio.CancelledError: 1 / 0`
                divide_by_zero();
            }
        }
    };

    let slot = lazyboy.clone();
    let err = run_checked(async move {
        // `loop.call_exception_handler = mock.Mock()`
        get_running_loop().set_exception_handler(Some(|_: &ExceptionContext| {}));
        *slot.borrow_mut() = Some(create_task(spin));
        std::panic::panic_any(FancyExit);
    })
    .unwrap_err();
    assert!(err.downcast_ref::<FancyExit>().is_some(), "FancyExit escapes run()");

    assert!(lazyboy.borrow().as_ref().unwrap().done());
    assert!(spinner_gone.get(), "the generator's frame is gone");
}

#[test]
fn test_asyncio_run_loop_factory() {
    let calls = Cell::new(0);
    let made: Rc<RefCell<Option<Loop>>> = Rc::default();
    let factory = || {
        calls.set(calls.get() + 1);
        let lp = Builder::new().build();
        *made.borrow_mut() = Some(lp.clone());
        lp
    };

    let seen = made.clone();
    Runner::with_loop(factory()).run(async move {
        // `assertEqual(asyncio.get_running_loop(), loop)`: one loop runs on
        // a thread, so the factory's loop running is it.
        let lp = seen.borrow().clone().unwrap();
        assert!(lp.is_running());
        assert!(get_running_loop().is_running());
    });
    assert_eq!(calls.get(), 1, "factory.assert_called_once_with()");
    assert!(made.borrow().as_ref().unwrap().is_closed());
}

// ------------------------------------------------------------- RunnerTests

#[test]
fn test_non_debug() {
    let runner = Runner::with_loop(Builder::new().debug(false).build());
    assert!(!runner.get_loop().get_debug());
    runner.close();
}

#[test]
fn test_debug() {
    let runner = Runner::with_loop(Builder::new().debug(true).build());
    assert!(runner.get_loop().get_debug());
    runner.close();
}

#[test]
fn test_custom_factory() {
    let lp = Builder::new().build();
    let runner = Runner::with_loop(lp.clone());
    // `assertIs(runner.get_loop(), loop)`: what is set through one is
    // seen through the other.
    for on in [true, false] {
        lp.set_debug(on);
        assert_eq!(runner.get_loop().get_debug(), on);
    }
    runner.close();
}

#[test]
fn test_run() {
    async fn f() -> &'static str {
        sleep(0).await.unwrap();
        "done"
    }

    let runner = Runner::new();
    assert_eq!("done", runner.run(f()));
    let lp = runner.get_loop().clone();
    runner.close();
    // (`runner.get_loop()` now: `close` took the runner.)
    assert!(lp.is_closed());
}

#[test]
fn test_run_future() {
    let runner = Runner::new();
    let fut = runner.get_loop().create_future();
    fut.set_result("done").unwrap();
    assert_eq!("done", runner.run(fut.into_future()).unwrap());
    runner.close();
}

#[test]
fn test_run_awaitable() {
    /// An awaitable that is not a coroutine: `__await__` delegates to
    /// `run()`'s.
    struct MyAwaitable(Pin<Box<dyn Future<Output = &'static str>>>);

    impl MyAwaitable {
        fn new() -> MyAwaitable {
            async fn run() -> &'static str {
                "done"
            }
            MyAwaitable(Box::pin(run()))
        }
    }

    impl Future for MyAwaitable {
        type Output = &'static str;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            self.0.as_mut().poll(cx)
        }
    }

    let runner = Runner::new();
    assert_eq!("done", runner.run(MyAwaitable::new()));
    runner.close();
}

#[test]
fn test_explicit_close() {
    let runner = Runner::new();
    let lp = runner.get_loop().clone();
    runner.close();
    // (`runner.get_loop()` now: `close` took the runner.)
    assert!(lp.is_closed());
}

#[test]
fn test_double_close() {
    let runner = Runner::new();
    let lp = runner.get_loop().clone();

    runner.close();
    assert!(lp.is_closed());

    // The second call is a no-op (through the loop: `close` took the
    // runner).
    lp.close();
    assert!(lp.is_closed());
}

#[test]
fn test_second_with_block_raises() {
    let ret = Rc::new(RefCell::new(Vec::new()));
    let f = |arg: i32| {
        let ret = ret.clone();
        async move { ret.borrow_mut().push(arg) }
    };

    let runner = Runner::new();
    runner.run(f(1));
    let lp = runner.get_loop().clone();
    runner.close();

    // The second block, on the closed runner's loop.
    let second = f(2);
    let err = catch_unwind(AssertUnwindSafe(|| Runner::with_loop(lp).run(second))).unwrap_err();
    let msg = panic_text(err);
    assert!(msg.contains("closed"), "{msg}");

    assert_eq!(*ret.borrow(), [1]);
}

static CVAR: ContextVar<i32> = ContextVar::new("cvar", -1);

#[test]
fn test_run_keeps_context() {
    async fn f(val: i32) -> i32 {
        let old = CVAR.get();
        sleep(0).await.unwrap();
        CVAR.set(val);
        old
    }

    async fn get_context() -> aio_core::contextvars::Context {
        copy_context()
    }

    let runner = Runner::new();
    assert_eq!(-1, runner.run(f(1)));
    assert_eq!(1, runner.run(f(2)));
    assert_eq!(2, runner.run(get_context()).run(|| CVAR.get()));
    runner.close();
}

#[test]
fn test_recursive_run() {
    async fn g() {}

    let runner = Rc::new(Runner::new());
    let inner = runner.clone();
    let f = async move {
        inner.run(g());
    };
    let err = catch_unwind(AssertUnwindSafe(|| runner.run(f))).unwrap_err();
    let msg = panic_text(err);
    // asyncio: "Runner.run() cannot be called from a running event loop".
    assert!(msg.contains("already running"), "{msg}");
    Rc::try_unwrap(runner).unwrap().close();
}

#[test]
fn test_signal_install_not_supported_ok() {
    async fn coro() {}

    // Where `signal.signal()` fails: not the main thread.
    std::thread::spawn(|| {
        let runner = Runner::new();
        runner.run(coro());
        runner.close();
    })
    .join()
    .unwrap();
}
