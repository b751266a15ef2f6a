//! Entry points: `run` and `Runner`, asyncio's `asyncio.run` and
//! `asyncio.Runner`.

use std::future::Future;

use crate::event_loop::Loop;
use crate::event_loop::builder::Builder;
use crate::task::TaskError;

/// Runs `fut` on a new loop until it completes, closes the loop (cancelling
/// and awaiting what is left, shutting the thread pool down), and returns
/// the future's output: asyncio's `asyncio.run`.
///
/// aio-core's `run` uses a loop without I/O; the `aio` facade's `run`
/// picks the I/O backend.
///
/// # Panics
/// If `fut` panics (the panic continues here, as the exception would
/// propagate out of `asyncio.run`), or if it is cancelled, or if a loop is
/// already running on this thread.
///
/// # Examples
/// ```
/// let v = aio_core::run(async {
///     aio_core::sleep(0.001).await?;
///     Ok::<_, aio_core::Cancelled>("done")
/// });
/// assert_eq!(v.unwrap(), "done");
/// ```
#[track_caller]
pub fn run<F>(fut: F) -> F::Output
where
    F: Future + 'static,
{
    Runner::new().run(fut)
}

/// Like [`run`], on a loop that parks in `driver` (an I/O driver such as
/// aio-poll's `PollDriver` or aio-uring's `UringDriver`).
#[track_caller]
pub fn run_on<D, F>(driver: D, fut: F) -> F::Output
where
    D: crate::driver::Driver,
    F: Future + 'static,
{
    Runner::with_loop(Builder::new().driver(driver).build()).run(fut)
}

/// What `#[aio_core::main]` and `#[aio_core::test]` expand to.
#[doc(hidden)]
#[track_caller]
pub fn macro_run<F>(start_paused: bool, fut: F) -> F::Output
where
    F: Future + 'static,
{
    let mut b = Builder::new();
    if start_paused {
        b = b.paused_clock();
    }
    Runner::with_loop(b.build()).run(fut)
}

/// Runs several top-level futures, one after another, on one loop, then
/// closes it: asyncio's `asyncio.Runner`.
///
/// # Examples
/// ```
/// let runner = aio_core::Runner::new();
/// assert_eq!(runner.run(async { 1 }), 1);
/// assert_eq!(runner.run(async { 2 }), 2);
/// runner.close();
/// ```
#[derive(Debug)]
pub struct Runner {
    lp: Loop,
    /// The context every run's main task runs in, as asyncio's Runner
    /// keeps one (`test_run_keeps_context`): what a run sets, the next
    /// sees. A copy of the caller's, made at the first run.
    ctx: std::cell::OnceCell<crate::contextvars::Context>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Runner {
    /// A runner on a new loop with aio-core's defaults.
    pub fn new() -> Runner {
        Runner::with_loop(Builder::new().build())
    }

    /// A runner on the given loop (it closes the loop when done).
    pub fn with_loop(lp: Loop) -> Runner {
        Runner {
            lp,
            ctx: std::cell::OnceCell::new(),
        }
    }

    /// Runs `fut` as the main task, in the runner's context: the task
    /// starts with it, and what the task leaves in it stays for the next
    /// run.
    fn run_in_context<F>(&self, fut: F) -> Result<F::Output, TaskError>
    where
        F: Future + 'static,
    {
        let ctx = self.ctx.get_or_init(crate::contextvars::copy_context);
        let keep = KeepContext(ctx.shared_slot());
        let fut = async move {
            // Dropped with the task's future, in the task's context.
            let _keep = keep;
            fut.await
        };
        ctx.run(|| self.lp.run_until_complete(fut))
    }

    /// Runs `fut` to completion on the runner's loop, as a task, and
    /// returns its output.
    ///
    /// # Panics
    /// As [`run`].
    #[track_caller]
    pub fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + 'static,
    {
        match self.run_in_context(fut) {
            Ok(v) => v,
            Err(TaskError::Panicked(p)) => p.resume(),
            Err(TaskError::Cancelled(c)) => panic!("the main task was cancelled ({c})"),
            Err(TaskError::Retrieved) => unreachable!("the main task's result is taken once"),
        }
    }

    /// Like [`run`](Runner::run) but returns a cancellation or panic of the
    /// main task as an error instead of panicking.
    pub fn try_run<F>(&self, fut: F) -> Result<F::Output, TaskError>
    where
        F: Future + 'static,
    {
        self.run_in_context(fut)
    }

    /// The runner's loop.
    pub fn get_loop(&self) -> &Loop {
        &self.lp
    }

    /// Closes the loop (dropping the runner does the same).
    pub fn close(self) {
        self.lp.close();
    }
}

/// Saves the context current when it drops (the main task's, as its
/// future drops) into the runner's.
struct KeepContext(std::rc::Rc<crate::contextvars::ContextSlot>);

impl Drop for KeepContext {
    fn drop(&mut self) {
        self.0.set(crate::contextvars::current());
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if !self.lp.is_running() && !std::thread::panicking() {
            self.lp.close();
        }
    }
}
