//! aio-core: asyncio's event loop, tasks and cancellation, in Rust.
//!
//! This crate is the foundation of [aio]: a single-threaded event loop per
//! thread ([`Loop`]), tasks that need not be `Send` ([`create_task`]),
//! timers ([`sleep`], [`Loop::call_later`]), asyncio's catchable
//! cooperative cancellation ([`Task::cancel`](TaskRef::cancel),
//! [`Cancelled`], [`uncancel`]), the combinators ([`gather`](fn@gather), [`wait`],
//! [`as_completed`], [`timeout`], [`wait_for`], [`shield`],
//! [`TaskGroup`]), futures for bridging callback code ([`Future`]), and
//! the bridge to threads ([`to_thread`], [`LoopHandle`]). It knows no OS
//! I/O mechanism: I/O drivers plug in through the
//! [`Driver`](driver::Driver) trait (aio-poll, aio-uring), and without one
//! the loop parks on a plain thread parker.
//!
//! # The model, for asyncio users
//!
//! | asyncio | aio |
//! |---|---|
//! | `asyncio.run(main())` | `aio::run(main())` |
//! | `await asyncio.sleep(0.5)` | `aio::sleep(0.5).await?` |
//! | `asyncio.create_task(coro)` | `aio::create_task(fut)` |
//! | `except asyncio.CancelledError` | `Err(Cancelled)` from any aio await point |
//! | `async with asyncio.timeout(1)` | `aio::timeout(1, fut).await` |
//! | `await asyncio.gather(a, b)` | `aio::gather!(a, b).await` |
//! | `fut = loop.create_future()` / `await fut` | `let fut = aio::Future::new()` / `(&fut).await` |
//! | `contextvars.ContextVar("v", default=0)` | `static V: aio::ContextVar<u32> = ContextVar::new("v", 0)` ([`contextvars`]) |
//! | (tokio's `time::pause` / `advance`, for tests) | `Builder::paused_clock()`, [`time::advance`] |
//!
//! Every aio await point returns a `Result` whose error converts from
//! [`Cancelled`]: when the task is cancelled, the next one returns
//! `Err(Cancelled)` once, clean-up code may await normally, and `?`
//! propagates it. See [`cancel`] for the precise rules.
//!
//! [aio]: https://docs.rs/aio
//!
//! # Where things are
//!
//! The files form layers; each imports only from layers below it, with one
//! exception on the waker's path (a task's header holds its loop's
//! `Shared`, which queues task pointers: `task/header.rs` and
//! `event_loop/shared.rs` import each other, as tokio's and async-task's
//! wakers have their circle).
//!
//! | layer | what | files |
//! |---|---|---|
//! | data | plain values, no thread-local | `clock.rs` (the loop clock), `delay.rs` (delays, deadlines), `cancel/scope.rs` ([`Cancelled`], a cancel scope), `contextvars/vars.rs` (a context's values), `task/error.rs`, `task/output.rs`, `timer/heap.rs` (the radix timer heap), `event_loop/exception.rs`, `event_loop/metrics.rs` (a loop's load: the loop-thread counters and the atomics other threads read), `io/{raw,ops,buf,file}.rs` (each I/O operation, once), `driver/` (the [`Driver`](driver::Driver) trait, the file-call threads, what dropped operations kept), `thread/pool.rs` |
//! | scheduling core | what a wake touches | `task/header.rs` (header, state word, reference count), `task/cells.rs` (a loop's free task cells), `event_loop/shared.rs` (the injection queue, the park handshake), `event_loop/queue.rs` (the ready queue), `event_loop/registry.rs` (the live tasks), `event_loop/core.rs` (the loop-thread state), `context.rs` (the thread-local: which loop, task, scope chain, context; `Restore` for changes that last a call), `event_loop/wake.rs` (where a wake goes), `task/raw.rs` (the waker and a task's vtable) |
//! | reads the thread-local | leaves and their helpers | `cancel/mod.rs` (the cancellation rule: [`cancel::check`]), `contextvars/mod.rs`, `time/now.rs`, `callback.rs`, `timer/entry.rs` (the armed-timer entry every timer uses), `io/{future,registered,multi,calls}.rs` |
//! | tasks | | `task/run.rs` (a step, completion), `task/task_ref.rs`, `task/handle.rs` ([`Task`], spawning), `task/mod.rs` |
//! | the loop | a turn and its ends | `event_loop/turn.rs` (asyncio's `_run_once`), `event_loop/close.rs`, `event_loop/builder.rs`, `event_loop/mod.rs` ([`Loop`]), `handle.rs` ([`LoopHandle`], its [`metrics`](LoopHandle::metrics), [`Job`], [`HeldConnection`]), `runner.rs`, `thread/mod.rs` ([`to_thread`], pinning a thread to a CPU) |
//! | futures and combinators | | `future.rs`, `timer/sleep.rs`, `combinator/` (gather, wait, as_completed, timeout, shield, TaskGroup), `time/mod.rs` |
//!
//! # Examples
//!
//! ```
//! async fn fetch(name: &str, delay: f64) -> aio_core::Result<String> {
//!     aio_core::sleep(delay).await?;
//!     Ok(format!("data from {name}"))
//! }
//!
//! let out = aio_core::run(async {
//!     let slow = aio_core::create_task(fetch("slow", 10.0));
//!     let fast = fetch("fast", 0.01).await?;
//!     slow.cancel();
//!     assert!(slow.await.unwrap_err().is_cancelled());
//!     Ok::<_, aio_core::Cancelled>(fast)
//! });
//! assert_eq!(out.unwrap(), "data from fast");
//! ```

mod callback;
pub mod cancel;
mod clock;
pub mod combinator;
mod context;
pub mod contextvars;
mod delay;
pub mod driver;
mod event_loop;
pub mod fence;
mod future;
mod handle;
pub mod io;
#[cfg(not(loom))]
mod loom;
#[cfg(loom)]
#[doc(hidden)]
pub mod loom;
mod runner;
mod task;
mod thread;
pub mod time;
mod timer;

pub use callback::{Handle, TimerHandle};
pub use cancel::{Cancelled, checkpoint, uncancel};
pub use combinator::{
    ALL_COMPLETED, AsCompleted, AsCompletedTimeout, FIRST_COMPLETED, FIRST_EXCEPTION, Failure, GroupRun, GroupTask,
    Join, RescheduleError, ReturnWhen, Shield, TaskGroup, TaskGroupError, TaskOutput, Timeout, TimeoutError,
    TimeoutHandle, Wait, WaitError, as_completed, gather, gather_settled, shield, timeout, timeout_at, timeout_with,
    wait, wait_for,
};
pub use contextvars::{ContextVar, copy_context};
pub use event_loop::builder::{Builder, Settings};
pub use event_loop::exception::{ExceptionContext, default_exception_handler};
pub use event_loop::metrics::LoopMetrics;
pub use event_loop::{Loop, get_running_loop, try_get_running_loop};
pub use future::{CallbackId, Future, FutureError, FutureTake, FutureWait, InvalidStateError};
pub use handle::{ConcurrentFuture, HeldConnection, Job, LoopClosed, LoopHandle};
pub use runner::{Runner, run, run_on};

/// `#[aio_core::main]` and `#[aio_core::test]`: aio-macros' attributes,
/// expanding to aio-core's loop (no I/O driver), for crates that depend
/// on aio-core alone. Through the `aio` facade they are `#[aio::main]`
/// and `#[aio::test]`, on the default I/O backend.
///
/// ```
/// #[aio_core::main]
/// async fn main() {
///     aio_core::sleep(0.001).await.unwrap();
/// }
/// ```
pub use aio_macros::{core_main as main, core_test as test};

/// What aio's attribute macros expand to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runner::macro_run as run;
}
pub use delay::{IntoDeadline, IntoDelay, InvalidDelay};
pub use task::{
    DoneCallbackId, JoinRef, Panic, Reportable, Task, TaskError, TaskFailure, TaskRef, all_tasks, create_eager_task,
    create_task, current_task,
};
pub use thread::{ToThread, ToThreadError, allowed_cpus, pin_current_thread, set_scheduler_slice, to_thread};
pub use time::monotonic;
pub use timer::{Sleep, YieldNow, sleep, sleep_until, yield_now};

/// The result of an aio await point: `Ok`, or the task was cancelled.
pub type Result<T, E = Cancelled> = std::result::Result<T, E>;
