//! What the ports of CPython's asyncio tests (`core_cpython_*.rs`) share:
//! CPython's test loop and its `test_utils` steps, `assertAlmostEqual`,
//! a `MockCallback` done callback, a recording exception handler, and
//! reading aio's misuse panics, which stand where asyncio raises
//! `RuntimeError`.
#![allow(dead_code)] // each port uses a part

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use aio_core::{Builder, ExceptionContext, Loop, Panic, Task, TaskError, TaskRef, get_running_loop};

/// CPython's test loop: a paused clock, so time moves only when every
/// task waits (its time generator), and `loop.time()` says by how much.
pub fn test_loop() -> Loop {
    Builder::new().paused_clock().build()
}

/// `test_utils.run_briefly(loop)`: runs a task that does nothing to
/// completion, which is one turn of the loop for what was ready.
pub fn run_briefly(lp: &Loop) {
    lp.run_until_complete(async {}).expect("a task that does nothing");
}

/// `test_utils.run_once(loop)` (and the mocked `loop._run_once()`):
/// `loop.call_soon(loop.stop)`, then `loop.run_forever()`: one turn.
pub fn run_once(lp: &Loop) {
    lp.call_soon(|| get_running_loop().stop());
    lp.run_forever();
}

/// `GatherTestsBase._run_loop`: turns while anything is ready.
pub fn run_loop(lp: &Loop) {
    for _ in 0..100 {
        run_briefly(lp);
        if lp.metrics().ready == 0 {
            return;
        }
    }
    panic!("the loop never ran out of work");
}

/// `loop.run_until_complete(t)` for a task `t`: its result, a
/// cancellation included (as a value).
pub fn run_task<T: 'static>(lp: &Loop, t: Task<T>) -> Result<T, TaskError> {
    lp.run_until_complete(t)
        .expect("run_until_complete's own task is not cancelled")
}

/// `assertAlmostEqual` for times.
#[track_caller]
pub fn assert_almost_equal(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

/// `cb = test_utils.MockCallback(); fut.add_done_callback(cb)`: counts
/// the calls.
pub fn count_done_callbacks(t: &TaskRef) -> Rc<Cell<u32>> {
    let cb = Rc::new(Cell::new(0));
    let c = cb.clone();
    t.add_done_callback(move |_| c.set(c.get() + 1));
    cb
}

/// `1 / 0`: a division the compiler cannot fold, so it panics at run time
/// as Python raises `ZeroDivisionError`.
pub fn divide_by_zero() -> i32 {
    1 / black_box(0)
}

/// The text a division by zero panics with.
pub const ZERO_DIVISION: &str = "attempt to divide by zero";

/// The text of a caught panic (its message, as [`Panic::message`] reads it).
pub fn panic_text(p: Box<dyn Any + Send>) -> String {
    Panic::from(p).message().unwrap_or("(not a string)").to_owned()
}

/// `assertRaisesRegex(RuntimeError, msg)` for aio's misuse panics: `f`
/// panics with a message containing `msg`.
#[track_caller]
pub fn assert_panics<R>(f: impl FnOnce() -> R, msg: &str) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic containing {msg:?}"),
        Err(p) => {
            let text = panic_text(p);
            assert!(text.contains(msg), "panicked with {text:?}, expected {msg:?}");
        }
    }
}

/// One report to the exception handler: its message and the panic's text.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub message: String,
    pub panic: Option<String>,
}

/// A mock exception handler: installs one on `lp` that records what it is
/// given, and returns the record.
pub fn record_reports(lp: &Loop) -> Rc<RefCell<Vec<Report>>> {
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    lp.set_exception_handler(Some(move |ctx: &ExceptionContext| {
        r.borrow_mut().push(Report {
            message: ctx.message.clone(),
            panic: ctx.panic.as_ref().map(|p| p.to_string()),
        })
    }));
    reports
}
