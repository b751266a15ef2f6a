//! Tasks: asyncio's `Task`, one allocation each.
//!
//! [`Task<T>`] is the typed handle returned by [`create_task`]; awaiting it
//! gives `Result<T, TaskError>`. [`TaskRef`] is the untyped handle that
//! [`current_task`] and [`all_tasks`] return; `Task<T>` derefs to it for the
//! shared API (`cancel`, `done`, `name`, ...).

pub(crate) mod cells;
pub(crate) mod error;
mod handle;
pub(crate) mod header;
pub(crate) mod output;
pub(crate) mod raw;
mod run;
mod task_ref;

pub use error::{Panic, TaskError};
pub use handle::{JoinRef, Task, TaskFailure};
pub(crate) use handle::{spawn, spawn_reporting};
pub use output::{Reportable, TaskOutput};
pub(crate) use run::{poll_task, shutdown_failure};
pub use task_ref::{DoneCallbackId, TaskRef};

use std::future::Future;
use std::ptr::NonNull;

use crate::context::{CONTEXT, expect_core};
use crate::event_loop::core::Core;
use header::Header;

impl Core {
    /// Snapshot of the live tasks (asyncio's `all_tasks`).
    pub(crate) fn all_tasks(&self) -> Vec<TaskRef> {
        let mut all = Vec::new();
        self.tasks.borrow().each(|p| all.push(TaskRef::from_ptr(p)));
        all
    }
}

// --- free functions ------------------------------------------------------------

/// Wraps `fut` in a task on the running loop and schedules it: asyncio's
/// `create_task`. The future need not be `Send`. The task starts with a
/// copy of the current [context](crate::contextvars).
///
/// If the task ends with a failure nobody sees — it panics, or returns an
/// `Err`, and its [`Task`] handle was dropped (or is dropped) without the
/// result being read — the loop's exception handler gets a "Task exception
/// was never retrieved" report with the task's name and the panic or the
/// error's `Debug`, as asyncio logs it. That is why the output must be a
/// [`TaskOutput`] (or `!`, see [`Reportable`]): every `Result` with a
/// `Debug` error and the standard types are; for a type of your own,
/// `impl TaskOutput for MyType {}`.
///
/// With the `tracing` feature, the task also carries the `tracing` span
/// that is current here (`tracing::Span::current()`), entered around each
/// of its steps, as `fut.instrument(Span::current())` would: its events
/// and child spans are recorded under its creator's span.
///
/// # Panics
/// When no aio loop runs on this thread.
#[track_caller]
pub fn create_task<F>(fut: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: Reportable,
{
    expect_core(|core| spawn_reporting(core, fut, core.eager_tasks.get()))
}

/// Like [`create_task`], but runs the task's first step inside this call
/// (asyncio 3.12's eager tasks): a task that finishes without waiting
/// never touches the ready queue.
#[track_caller]
pub fn create_eager_task<F>(fut: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: Reportable,
{
    expect_core(|core| spawn_reporting(core, fut, true))
}

/// The task being run, if any (asyncio's `current_task()`).
pub fn current_task() -> Option<TaskRef> {
    let p = CONTEXT.with(|c| c.task.get());
    NonNull::new(p as *mut Header).map(TaskRef::from_ptr)
}

/// The tasks of the running loop that are not done (asyncio's `all_tasks()`).
#[track_caller]
pub fn all_tasks() -> Vec<TaskRef> {
    expect_core(Core::all_tasks)
}
