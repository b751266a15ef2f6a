//! CPython's tests of what every event loop must do
//! (`Lib/test/test_asyncio/test_events.py`, a 3.12-era version: the
//! loop-level tests of `EventLoopTestsMixin`, and `HandleTests`,
//! `TimerTests` and `GetEventLoopTestsMixin` where aio has the API),
//! ported step for step: the same callbacks, the same turns, the same
//! assertions.
//!
//! How the constructs map:
//!
//! - `EventLoopTestsMixin` runs each test on every selector loop of the
//!   platform (`create_event_loop`); aio-core's loop has one driver without
//!   I/O, so each test runs once, on a loop of its own with a paused clock
//!   ([`new_test_loop`]: time moves only when the loop would wait, to the
//!   next timer, so nothing here sleeps for real), except
//!   `test_timeout_rounding`, which is about the real clock's resolution
//!   (its five sleeps take about 10 ms). The mixin's `tearDown`
//!   (`run_briefly` unless the loop is closed, then the cleanup that
//!   closes it) is [`tear_down`]. `loop.call_soon(cb, *args)`,
//!   `call_later`, `call_at`, `time()`, `stop()`, `run_forever()`,
//!   `run_until_complete()`, `close()`, `is_closed()`, `is_running()`,
//!   `create_task()`, `create_future()` are the [`Loop`] methods of the
//!   same names; a callback's arguments are captured by its closure. A
//!   callback that calls `self.loop.stop()` calls
//!   `get_running_loop().stop()`. `loop.call_soon_threadsafe` is
//!   [`LoopHandle::call_soon_threadsafe`](aio_core::LoopHandle::call_soon_threadsafe)
//!   (the handle is the `Send` way into a loop; a [`Loop`] is `!Send`), and
//!   `loop.run_in_executor(None, f)` is [`to_thread`]`(f)`, which, like
//!   `asyncio.to_thread`, needs the loop to be running: it is called from
//!   inside a run, where asyncio calls the loop method before the run.
//! - `test_utils.run_briefly(loop)` is `run_until_complete` of an empty
//!   future ([`run_briefly`]); `test_utils.run_once(loop)` is
//!   `call_soon(stop)` then `run_forever()` ([`run_once`]): one turn.
//! - An exception raised by an API is, in aio, a documented panic for
//!   misuse (running a running or closed loop, closing a running loop,
//!   `get_running_loop()` with no loop running), caught with
//!   `catch_unwind` as `assertRaises` catches it; raised inside the future
//!   `run_until_complete` runs, it is that call's `Err(TaskError::Panicked)`
//!   (aio returns a task's panic rather than resuming it).
//!   `run_until_complete` of a future the loop stopped before it completed
//!   (asyncio's `RuntimeError('Event loop stopped before Future
//!   completed.')`) returns `Err(TaskError::Cancelled)` and cancels the
//!   task (asyncio leaves it pending; the test does not look). On a closed
//!   loop, where asyncio raises `RuntimeError`, `call_soon`, `call_later`
//!   and `call_at` drop the callback and return a cancelled handle,
//!   `create_task` returns a task that has already ended, cancelled, its
//!   future dropped (the methods' docs), and `call_soon_threadsafe`
//!   returns `Err(LoopClosed)`.
//! - A coroutine "never awaited" (asyncio's `RuntimeWarning`) is a Rust
//!   future dropped without being polled: dropped silently, which the
//!   tests check with a flag.
//! - `asyncio.Handle(cb, args, loop)` and `asyncio.TimerHandle(when, cb,
//!   args, loop)` have no public constructor in aio: the handles are those
//!   `call_soon` and `call_at` return. Their private `_callback` and
//!   `_args` are not read; `_callback is None` after `cancel()` is the
//!   closure (with what it captured) dropped at once, checked with a flag.
//!   `time.monotonic()` is [`aio_core::monotonic`], the clock of a loop
//!   that is not paused.
//! - `mock.patch` of `loop.call_exception_handler`: an exception handler
//!   that records what it is given ([`record_reports`]); aio's
//!   [`ExceptionContext`](aio_core::ExceptionContext) has no `handle` or
//!   `source_traceback` field, and a panicking callback's message is "a
//!   callback panicked" (a closure has no name to print).
//! - A private counter or monkeypatched method that counts turns
//!   (`test_timeout_rounding`'s `_run_once`) is the loop's public turn
//!   counter, [`LoopMetrics::turns`](aio_core::LoopMetrics::turns).
//! - `assertIs(asyncio.get_running_loop(), loop)` is
//!   `LoopHandle::same_loop` ([`Loop`] has no identity comparison of its
//!   own).
//!
//! Where aio's outcome differs by design, the test asserts aio's, and says
//! why: `test_close`'s `run_in_executor` step (aio's `to_thread` is bound
//! to the running loop, which a closed loop can never be: called there, it
//! panics with "no running event loop"), `test_run_in_executor_cancel`
//! (what it observes is the wake of the waiting task, asyncio's
//! `call_soon_threadsafe` from the executor's done callback; `close()`
//! joins the pool, so no real sleep is needed to let the thread finish).
//!
//! Three tests have namesakes in `core_cpython_base_events.rs`:
//! `test_call_soon`, `test_call_later` and `test_close` there port
//! `BaseEventLoopTests`' tests of those names, whose steps differ (they read
//! `_ready` and `_scheduled` and one turn; these run the loop until the
//! callback stops it, and `test_close` here goes on to schedule on the
//! closed loop). They are ported here as the mixin's own.
//!
//! A divergence the port found (f2c9715 ran with it ignored), since
//! mended:
//!
//! - `test_call_soon_threadsafe`, `test_call_soon_threadsafe_same_thread`:
//!   asyncio's `call_soon_threadsafe` appends to the same ready queue as
//!   `call_soon`, so a callback sent with it before another is scheduled
//!   with `call_soon` runs first (`['hello', 'world']`). aio's went
//!   through the injection queue, which the loop drained into the ready
//!   queue only at the start of its next turn, after what `call_soon` had
//!   queued meanwhile (`['world', 'hello']`). `call_soon` now takes in
//!   what other threads sent before it queues.
//!
//! Not ported:
//!
//! - Sockets, covered by aio-net's suites: `test_reader_callback`,
//!   `test_writer_callback`, `test_create_connection`,
//!   `test_create_unix_connection`, `test_create_ssl_connection`,
//!   `test_create_ssl_unix_connection`, `test_create_connection_local_addr`,
//!   `test_create_connection_local_addr_in_use`,
//!   `test_connect_accepted_socket`, `test_ssl_connect_accepted_socket`,
//!   `test_connect_accepted_socket_ssl_timeout_for_plain_socket`,
//!   `test_create_server_multiple_hosts_ipv4`,
//!   `test_create_server_multiple_hosts_ipv6`, `test_create_server`,
//!   `test_create_server_reuse_port`, `test_create_unix_server`,
//!   `test_create_unix_server_path_socket_error`, `test_create_server_ssl`,
//!   `test_create_unix_server_ssl`, `test_create_server_ssl_verify_failed`,
//!   `test_create_unix_server_ssl_verify_failed`,
//!   `test_create_server_ssl_match_failed`,
//!   `test_create_unix_server_ssl_verified`,
//!   `test_create_server_ssl_verified`, `test_create_server_sock`,
//!   `test_create_server_addr_in_use`, `test_create_server_dual_stack`,
//!   `test_server_close`, `test_create_datagram_endpoint`,
//!   `test_create_datagram_endpoint_ipv6`,
//!   `test_create_datagram_endpoint_sock`, `test_prompt_cancellation`
//!   (`sock_recv`), `test_remove_fds_after_closing`,
//!   `test_add_fds_after_closing` (`add_reader`/`add_writer`), and the
//!   servers' `TestServer.test_get_loop`, `TestAbstractServer`
//!   (`test_close`, `test_wait_closed`, `test_get_loop`).
//! - Pipes and ptys (aio-net's): `test_read_pipe`,
//!   `test_unclosed_pipe_transport`, `test_read_pty_output`,
//!   `test_write_pipe`, `test_write_pipe_disconnect_on_close`,
//!   `test_write_pty`, `test_bidirectional_pty`.
//! - Signals (aio-core has no `add_signal_handler`; Ctrl-C is aio-net's):
//!   `test_add_signal_handler`, `test_signal_handling_while_selecting`,
//!   `test_signal_handling_args`, and the `add_signal_handler` step of
//!   `test_close`.
//! - Subprocesses, the whole of `SubprocessTestsMixin`:
//!   `test_subprocess_exec`, `test_subprocess_interactive`,
//!   `test_subprocess_shell`, `test_subprocess_exitcode`,
//!   `test_subprocess_close_after_finish`, `test_subprocess_kill`,
//!   `test_subprocess_terminate`, `test_subprocess_send_signal`,
//!   `test_subprocess_stderr`, `test_subprocess_stderr_redirect_to_stdout`,
//!   `test_subprocess_close_client_stream`,
//!   `test_subprocess_wait_no_same_group`,
//!   `test_subprocess_exec_invalid_args`,
//!   `test_subprocess_shell_invalid_args`.
//! - Private attributes: `test_internal_fds` (the selector loop's
//!   self-pipe, `_internal_fds`, `_csock`, `_ssock`; aio-core's park
//!   driver has no descriptors and nothing public counts them);
//!   `test_handle_source_traceback` (`_source_traceback`, the creation
//!   stack debug mode records; aio records none).
//! - `repr` strings: `test_handle_repr`, `test_handle_repr_debug`,
//!   `test_timer_repr`, `test_timer_repr_debug`,
//!   `test_coroutine_like_object_debug_formatting`.
//! - Python's object model: `test_handle_weakref` (a `__weakref__` slot).
//! - What aio does not expose: `test_hash` and `test_timer_comparison`
//!   (`TimerHandle` implements no `Hash`, `PartialEq` or `PartialOrd`;
//!   the timer heap orders deadlines internally);
//!   `AbstractEventLoopTests.test_not_implemented` and
//!   `test_not_implemented_async` (aio has no abstract event loop whose
//!   methods raise `NotImplementedError`: [`Loop`] is the one concrete
//!   type, and what plugs in is a `Driver`).
//! - Event-loop policies: the whole of `PolicyTests`
//!   (`test_event_loop_policy`, `test_get_event_loop`,
//!   `test_get_event_loop_calls_set_event_loop`,
//!   `test_get_event_loop_after_set_none`, `test_get_event_loop_thread`,
//!   `test_new_event_loop`, `test_set_event_loop`,
//!   `test_get_event_loop_policy`, `test_set_event_loop_policy`), and the
//!   policy steps of `test_get_event_loop_returns_running_loop` (a policy
//!   whose `get_event_loop` raises, `set_event_loop`): aio has no policy
//!   and no current loop outside a run, so no `get_event_loop`; the
//!   running-loop steps are ported. `TestPyGetEventLoop` and
//!   `TestCGetEventLoop` run the mixin on Python's two implementations;
//!   aio has one.
//! - `test_get_event_loop_new_process`: a `ProcessPoolExecutor` in
//!   `run_in_executor`; aio has no process executor.
//! - This version of the file has no `test_run_forever_*` or `test_stop_*`
//!   in the mixin (`test_base_events.py`'s are in
//!   `core_cpython_base_events.rs`).

use std::cell::{Cell, RefCell};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};

use aio_core::{
    Cancelled, Loop, LoopClosed, TaskError, create_task, get_running_loop, monotonic, sleep, to_thread,
    try_get_running_loop,
};

mod cpython;
use cpython::{Report, assert_panics, record_reports, run_briefly, run_once, test_loop as new_test_loop};

/// `EventLoopTestsMixin.tearDown`: a last brief run unless the loop is
/// closed, then the cleanup `set_event_loop` registered, which closes it.
fn tear_down(lp: Loop) {
    if !lp.is_closed() {
        run_briefly(&lp);
    }
    lp.close();
}

/// `assertRaises(RuntimeError, loop.run_until_complete, ...)` where the
/// error is raised inside the future: its `Err(TaskError::Panicked)`,
/// with a message containing `msg`.
#[track_caller]
fn assert_run_panicked<T: std::fmt::Debug>(r: Result<T, TaskError>, msg: &str) {
    match r {
        Err(TaskError::Panicked(p)) => {
            let text = p.message().unwrap_or_default();
            assert!(text.contains(msg), "panicked with {text:?}, expected {msg:?}");
        }
        other => panic!("expected a panic containing {msg:?}, got {other:?}"),
    }
}

/// Sets its flag when dropped: put in a closure or a future, it tells
/// whether the callback (with its arguments) or the coroutine was
/// released (`_callback is None`, `coro.close()`).
struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    /// A flag, and the value that sets it when dropped.
    fn new() -> (Arc<AtomicBool>, DropFlag) {
        let flag = Arc::new(AtomicBool::new(false));
        (flag.clone(), DropFlag(flag))
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The waker [`RecordWakes`] passes down: sets its flag, then wakes the
/// task's own waker.
struct RecordingWaker {
    inner: Waker,
    woken: Arc<AtomicBool>,
}

impl Wake for RecordingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

/// Polls `inner` with a [`RecordingWaker`]: whether anything woke it is
/// the record a patched `call_soon_threadsafe` keeps in
/// `test_run_in_executor_cancel`.
struct RecordWakes<F> {
    inner: Pin<Box<F>>,
    woken: Arc<AtomicBool>,
}

impl<F: Future> Future for RecordWakes<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(RecordingWaker {
            inner: cx.waker().clone(),
            woken: self.woken.clone(),
        }));
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

// ------------------------------------------------------- EventLoopTestsMixin

#[test]
fn test_run_until_complete_nesting() {
    let lp = new_test_loop();
    let polled = Rc::new(Cell::new(false));
    let (dropped, guard) = DropFlag::new();

    let p = polled.clone();
    let coro1 = async move {
        let _coro = &guard;
        p.set(true);
        sleep(0).await.unwrap();
    };

    let coro2 = async move {
        let lp = get_running_loop();
        assert!(lp.is_running());
        let _ = lp.run_until_complete(coro1);
    };

    // `assertRaises(RuntimeError, self.loop.run_until_complete, coro2())`
    assert_run_panicked(lp.run_until_complete(coro2), "already running");
    // `assertWarnsRegex(RuntimeWarning, "coroutine \S+ was never
    // awaited")`: `coro1` was dropped without ever being polled.
    assert!(!polled.get(), "coro1 was polled");
    assert!(dropped.load(Ordering::SeqCst), "coro1 was not dropped");
    tear_down(lp);
}

// Note: because of the default Windows timing granularity of 15.6 msec,
// CPython uses fairly long sleep times here (~100 msec); the paused clock
// makes them free.

#[test]
fn test_run_until_complete() {
    let lp = new_test_loop();
    let t0 = lp.time();
    lp.run_until_complete(sleep(0.1)).unwrap().unwrap();
    let t1 = lp.time();
    assert!((0.08..=0.8).contains(&(t1 - t0)), "{}", t1 - t0);
    tear_down(lp);
}

#[test]
fn test_run_until_complete_stopped() {
    let lp = new_test_loop();
    async fn cb() -> Result<(), Cancelled> {
        get_running_loop().stop();
        sleep(0.1).await?;
        Ok(())
    }
    let task = cb();
    // `assertRaises(RuntimeError, self.loop.run_until_complete, task)`:
    // 'Event loop stopped before Future completed.'
    match lp.run_until_complete(task) {
        Err(TaskError::Cancelled(c)) => {
            assert_eq!(
                c.message(),
                Some("the event loop was stopped before the future completed")
            );
        }
        other => panic!("expected the stopped run's error, got {other:?}"),
    }
    // As asyncio's, the task stays pending: the next run goes on with it
    // (its sleep ends, and it returns), which nothing can see but time.
    let t0 = lp.time();
    lp.run_until_complete(sleep(0.2)).unwrap().unwrap();
    assert!(lp.time() >= t0 + 0.2);
    tear_down(lp);
}

/// What asyncio's `run_until_complete` leaves when the loop is stopped
/// first: the future's task, pending, which a later run continues and
/// which closing the loop cancels (aio returned `Err` and also cancelled
/// it).
#[test]
fn run_until_complete_stopped_leaves_the_task_pending() {
    let lp = new_test_loop();
    let steps = Rc::new(RefCell::new(Vec::new()));
    let s = steps.clone();
    let stopped = lp.run_until_complete(async move {
        s.borrow_mut().push("started");
        get_running_loop().stop();
        match sleep(0.1).await {
            Ok(()) => s.borrow_mut().push("slept"),
            Err(_) => s.borrow_mut().push("cancelled"),
        }
    });
    assert!(stopped.is_err());
    assert_eq!(*steps.borrow(), ["started"]);
    // The next run goes on with it.
    lp.run_until_complete(sleep(0.2)).unwrap().unwrap();
    assert_eq!(*steps.borrow(), ["started", "slept"]);

    // Stopped again, then closed: the close cancels it.
    let s = steps.clone();
    let _ = lp.run_until_complete(async move {
        get_running_loop().stop();
        match sleep(0.1).await {
            Ok(()) => s.borrow_mut().push("slept"),
            Err(_) => s.borrow_mut().push("cancelled"),
        }
    });
    lp.close();
    assert_eq!(*steps.borrow(), ["started", "slept", "cancelled"]);
}

#[test]
fn test_call_later() {
    let lp = new_test_loop();
    let results = Rc::new(RefCell::new(Vec::new()));

    let callback = |arg: &'static str| {
        let results = results.clone();
        move || {
            results.borrow_mut().push(arg);
            get_running_loop().stop();
        }
    };

    lp.call_later(0.1, callback("hello world")).unwrap();
    lp.run_forever();
    assert_eq!(*results.borrow(), ["hello world"]);
    tear_down(lp);
}

#[test]
fn test_call_soon() {
    let lp = new_test_loop();
    let results = Rc::new(RefCell::new(Vec::new()));

    let callback = |arg1: &'static str, arg2: &'static str| {
        let results = results.clone();
        move || {
            results.borrow_mut().push((arg1, arg2));
            get_running_loop().stop();
        }
    };

    lp.call_soon(callback("hello", "world"));
    lp.run_forever();
    assert_eq!(*results.borrow(), [("hello", "world")]);
    tear_down(lp);
}

#[test]
fn test_call_soon_threadsafe() {
    let lp = new_test_loop();
    let results = Arc::new(Mutex::new(Vec::new()));

    let callback = |arg: &'static str| {
        let results = results.clone();
        move || {
            let mut results = results.lock().unwrap();
            results.push(arg);
            if results.len() >= 2 {
                get_running_loop().stop();
            }
        }
    };

    // `lock.acquire()`; the thread releases it once it has called
    // `call_soon_threadsafe`, and `with lock:` waits for that.
    let (release, lock) = mpsc::channel::<()>();
    let handle = lp.handle();
    let hello = callback("hello");
    let run_in_thread = move || {
        handle.call_soon_threadsafe(hello).unwrap();
        release.send(()).unwrap();
    };

    let t = std::thread::spawn(run_in_thread);

    lock.recv().unwrap();
    lp.call_soon(callback("world"));
    lp.run_forever();
    t.join().unwrap();
    assert_eq!(*results.lock().unwrap(), ["hello", "world"]);
    tear_down(lp);
}

#[test]
fn test_call_soon_threadsafe_same_thread() {
    let lp = new_test_loop();
    // (Behind a `Mutex`: `call_soon_threadsafe` takes a `Send` callback.)
    let results = Arc::new(Mutex::new(Vec::new()));

    let callback = |arg: &'static str| {
        let results = results.clone();
        move || {
            let mut results = results.lock().unwrap();
            results.push(arg);
            if results.len() >= 2 {
                get_running_loop().stop();
            }
        }
    };

    lp.handle().call_soon_threadsafe(callback("hello")).unwrap();
    lp.call_soon(callback("world"));
    lp.run_forever();
    assert_eq!(*results.lock().unwrap(), ["hello", "world"]);
    tear_down(lp);
}

#[test]
fn test_run_in_executor() {
    let lp = new_test_loop();
    let run = |arg: &'static str| (arg, std::thread::current().id());
    // `f2 = self.loop.run_in_executor(None, run, 'yo')`: `to_thread` is
    // called where the loop runs (the module docs).
    let (res, thread_id) = lp
        .run_until_complete(async move { to_thread(move || run("yo")).await })
        .unwrap()
        .unwrap();
    assert_eq!(res, "yo");
    assert_ne!(thread_id, std::thread::current().id());
    tear_down(lp);
}

#[test]
fn test_run_in_executor_cancel() {
    // `called`: what the patched `call_soon`/`call_soon_threadsafe`
    // record; in aio, the executor's completion reaching the loop is a
    // wake of the task waiting for it.
    let called = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicBool::new(false));

    // `run()`: `time.sleep(0.05)`, i.e. still running when `f2` is
    // cancelled; here it waits until it has been, so that holds for sure.
    let (cancelled, gate) = mpsc::channel::<()>();
    let r = ran.clone();
    let run = move || {
        let _ = gate.recv();
        r.store(true, Ordering::SeqCst);
    };

    let lp = new_test_loop();
    let c = called.clone();
    lp.run_until_complete(async move {
        let f2 = create_task(RecordWakes {
            inner: Box::pin(to_thread(run)),
            woken: c,
        });
        // (Its first step: it waits for the thread, its waker registered,
        // as `wrap_future` registers its callback at once.)
        sleep(0).await.unwrap();
        f2.cancel();
        assert!(matches!(f2.await, Err(TaskError::Cancelled(_))));
        cancelled.send(()).unwrap();
    })
    .unwrap();
    // `run_until_complete(shutdown_default_executor())`, `close()`: aio's
    // close shuts the pool down, joining its thread.
    lp.close();
    assert!(ran.load(Ordering::SeqCst), "close() did not join the thread");
    // (`time.sleep(0.4)`: the thread has ended already.)
    assert!(
        !called.load(Ordering::SeqCst),
        "the completion woke the cancelled waiter"
    );
}

#[test]
fn test_timeout_rounding() {
    // The point is the real clock's resolution: a paused clock jumps to
    // each deadline exactly, so this loop runs on the real one.
    let lp = Loop::new();

    async fn wait() {
        sleep(1e-2).await.unwrap();
        sleep(1e-4).await.unwrap();
        sleep(1e-6).await.unwrap();
        sleep(1e-8).await.unwrap();
        sleep(1e-10).await.unwrap();
    }

    // `self.loop._run_once_counter`
    let before = lp.metrics().turns;
    lp.run_until_complete(wait()).unwrap();
    let turns = lp.metrics().turns - before;
    // The ideal number of call is 12, but on some platforms, the selector
    // may sleep at little bit less than timeout depending on the resolution
    // of the clock used by the kernel. Tolerate a few useless calls on
    // these platforms.
    assert!(turns <= 20, "{turns} turns");
    tear_down(lp);
}

#[test]
fn test_close_running_event_loop() {
    let lp = new_test_loop();
    async fn close_loop(lp: Loop) {
        lp.close();
    }

    // (The coroutine is given a clone of the loop, its `loop` argument.)
    let coro = close_loop(lp.clone());
    // `with self.assertRaises(RuntimeError): run_until_complete(coro)`
    assert_run_panicked(lp.run_until_complete(coro), "cannot close a running event loop");
    tear_down(lp);
}

#[test]
fn test_close() {
    let lp = new_test_loop();
    lp.close();

    let (coro_dropped, coro_guard) = DropFlag::new();
    let test = async move {
        let _coro = &coro_guard;
    };

    /// `func = lambda: False`, with a flag that tells whether it was dropped.
    fn func() -> (Arc<AtomicBool>, impl FnOnce() + Send + 'static) {
        let (dropped, guard) = DropFlag::new();
        (dropped, move || {
            let _func = &guard;
        })
    }

    // operation blocked when the loop is closed
    assert_panics(|| lp.run_forever(), "the event loop is closed");
    let fut = lp.create_future::<()>();
    assert_panics(|| lp.run_until_complete(fut.into_future()), "the event loop is closed");

    // `call_soon(func)`: RuntimeError. aio: dropped, the handle cancelled.
    let (dropped, f) = func();
    let h = lp.call_soon(f);
    assert!(h.cancelled());
    assert!(dropped.load(Ordering::SeqCst));

    // `call_soon_threadsafe(func)`: RuntimeError. aio: `Err(LoopClosed)`.
    let (dropped, f) = func();
    assert_eq!(lp.handle().call_soon_threadsafe(f), Err(LoopClosed));
    assert!(dropped.load(Ordering::SeqCst));

    // `call_later(1.0, func)`: RuntimeError. aio: as `call_soon`.
    let (dropped, f) = func();
    let h = lp.call_later(1.0, f).unwrap();
    assert!(h.cancelled());
    assert!(dropped.load(Ordering::SeqCst));

    // `call_at(self.loop.time() + .0, func)`: RuntimeError. aio: as
    // `call_soon`.
    let (dropped, f) = func();
    let h = lp.call_at(lp.time() + 0.0, f).unwrap();
    assert!(h.cancelled());
    assert!(dropped.load(Ordering::SeqCst));

    // `create_task(coro)`: RuntimeError (and `addCleanup(coro.close)`).
    // aio: the task has ended, cancelled, and `coro` was dropped.
    let task = lp.create_task(test);
    assert!(task.done() && task.cancelled());
    assert!(coro_dropped.load(Ordering::SeqCst));

    // `run_in_executor(None, func)`, iterated once: RuntimeError. aio's
    // `to_thread` reaches only a running loop, which a closed one can
    // never be (the module docs).
    assert_panics(|| to_thread(|| false), "no running event loop");
    drop(task);
    tear_down(lp);
}

// --------------------------------------------------------------- HandleTests

#[test]
fn test_handle() {
    let lp = new_test_loop();
    let callback = || {};

    // `asyncio.Handle(callback, args, self.loop)`: the handle `call_soon`
    // gives. (`_callback`, `_args`: private.)
    let h = lp.call_soon(callback);
    assert!(!h.cancelled());

    h.cancel();
    assert!(h.cancelled());
    lp.close();
}

#[test]
fn test_callback_with_exception() {
    let lp = new_test_loop();
    let callback = || panic!("ValueError");

    // `self.loop.call_exception_handler = mock.Mock()`
    let reports = record_reports(&lp);

    // `h = asyncio.Handle(callback, (), self.loop)`; `h._run()`: the loop
    // runs it.
    let _h = lp.call_soon(callback);
    run_once(&lp);

    // `'message': MockPattern('Exception in callback.*')`, `'exception':
    // mock.ANY` (aio's context has no `handle` or `source_traceback`).
    assert_eq!(
        *reports.borrow(),
        [Report {
            message: "a callback panicked".into(),
            panic: Some("ValueError".into()),
        }]
    );
    lp.close();
}

// ---------------------------------------------------------------- TimerTests

#[test]
fn test_when() {
    let lp = Loop::new();
    let when = monotonic();
    // `asyncio.TimerHandle(when, lambda: False, (), mock.Mock())`
    let h = lp.call_at(when, || {}).unwrap();
    assert_eq!(when, h.when());
    lp.close();
}

#[test]
fn test_timer() {
    let lp = Loop::new();
    let (released, guard) = DropFlag::new();
    let args = (1, 2, 3);
    let callback = move || {
        let _callback = &guard;
        let _args = args;
    };

    let when = monotonic();
    let h = lp.call_at(when, callback).unwrap();
    // (`_callback is callback`, `_args is args`: private.)
    assert!(!h.cancelled());

    // cancel
    h.cancel();
    assert!(h.cancelled());
    // `assertIsNone(h._callback)`, `assertIsNone(h._args)`: the closure and
    // what it captured are released.
    assert!(released.load(Ordering::SeqCst));

    // when cannot be None: `AssertionError`. aio: a NaN deadline is
    // refused.
    assert!(lp.call_at(f64::NAN, || {}).is_err());
    lp.close();
}

// ---------------------------------------------------- GetEventLoopTestsMixin

#[test]
fn test_get_event_loop_returns_running_loop() {
    // (The policy steps are not ported: the module docs.)
    let lp = Loop::new();

    // `assertRaisesRegex(RuntimeError, 'no running')`
    assert_panics(get_running_loop, "no running");
    // `assertIs(asyncio._get_running_loop(), None)`
    assert!(try_get_running_loop().is_none());

    let handle = lp.handle();
    let func = async move {
        // (`asyncio.get_event_loop()`: none in aio.)
        assert!(get_running_loop().handle().same_loop(&handle));
        assert!(
            try_get_running_loop()
                .expect("a running loop")
                .handle()
                .same_loop(&handle)
        );
    };

    lp.run_until_complete(func).unwrap();
    lp.close();

    assert_panics(get_running_loop, "no running");
    assert!(try_get_running_loop().is_none());
}
