//! The way into a loop from other threads: `LoopHandle`, and the
//! `ConcurrentFuture` that `run_coroutine_threadsafe` returns.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pin_project_lite::pin_project;

use crate::cancel::{self, Cancelled};
use crate::event_loop::metrics::LoopMetrics;
use crate::event_loop::shared::{Remote, Shared};
use crate::task::header::TaskPtr;
use crate::task::{TaskError, create_task};

/// The error of sending work to a loop that is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopClosed;

impl fmt::Display for LoopClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop is closed")
    }
}

impl std::error::Error for LoopClosed {}

/// A `Send + Sync` handle to a loop, for other threads.
///
/// # Examples
/// ```
/// let lp = aio_core::Loop::new();
/// let h = lp.handle();
/// let fut = std::thread::spawn(move || h.run_coroutine_threadsafe(async { 40 + 2 }))
///     .join()
///     .unwrap();
/// let v = lp.run_until_complete(async move { fut.await }).unwrap();
/// assert_eq!(v.unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").field("closed", &self.is_closed()).finish()
    }
}

impl LoopHandle {
    /// Schedules `f` to run on the loop's thread, waking the loop if it
    /// sleeps: asyncio's `call_soon_threadsafe`. `f` runs in a copy of the
    /// calling thread's current context ([`contextvars`](crate::contextvars)).
    pub fn call_soon_threadsafe(&self, f: impl FnOnce() + Send + 'static) -> Result<(), LoopClosed> {
        if self.shared.is_closed() {
            return Err(LoopClosed);
        }
        // It runs in a copy of this thread's current context.
        let ctx = crate::contextvars::current();
        self.shared
            .inject(Remote::Call(Box::new(move || crate::contextvars::run_in(ctx, f))));
        Ok(())
    }

    /// Submits `fut` to the loop as a task and returns a future for its
    /// result that any thread can wait on or await: asyncio's
    /// `run_coroutine_threadsafe`. If the loop is closed, or closes before
    /// it takes the submission, the result is `Err(TaskError::Cancelled)`:
    /// every submission resolves.
    pub fn run_coroutine_threadsafe<F>(&self, fut: F) -> ConcurrentFuture<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (job, result) = Job::new(fut);
        // Refused (the loop is closed): the job is dropped unstarted, which
        // resolves `result` as cancelled.
        let _ = self.call_soon_threadsafe(move || job.start());
        result
    }

    /// Whether the loop was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Wakes the loop if it is parked (it will run one turn).
    pub fn wake(&self) {
        self.shared.wake();
    }

    /// The loop's load, read from any thread (tokio's `RuntimeMetrics`,
    /// per loop): tasks alive, the ready queue, the busy fraction of the
    /// last second, connections held, I/O operations in flight, whether it
    /// sleeps. The loop publishes them once per turn (plain stores), so a
    /// reading costs a few loads and never slows the loop.
    ///
    /// # Examples
    /// ```
    /// let lp = aio_core::Loop::new();
    /// let h = lp.handle();
    /// lp.run_until_complete(async {
    ///     let _t = aio_core::create_task(std::future::pending::<()>());
    ///     aio_core::sleep(0).await.unwrap();
    ///     let m = std::thread::spawn(move || h.metrics()).join().unwrap();
    ///     assert_eq!(m.tasks, 2); // this one and the pending one
    /// })
    /// .unwrap();
    /// ```
    pub fn metrics(&self) -> LoopMetrics {
        self.shared.gauges.read(self.shared.is_parked(), self.shared.injected())
    }

    /// Counts one connection in the loop's metrics until the guard is
    /// dropped (see [`Loop::hold_connection`](crate::Loop::hold_connection)).
    pub fn hold_connection(&self) -> HeldConnection {
        HeldConnection::new(self.shared.clone())
    }

    /// Whether `self` and `other` are handles to the same loop.
    pub fn same_loop(&self, other: &LoopHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// One connection counted in its loop's
/// [`LoopMetrics::connections`] until dropped (from
/// [`Loop::hold_connection`](crate::Loop::hold_connection)). `Send`: it
/// may be dropped on any thread.
pub struct HeldConnection {
    shared: Arc<Shared>,
}

impl HeldConnection {
    pub(crate) fn new(shared: Arc<Shared>) -> HeldConnection {
        shared.gauges.connections.fetch_add(1, Ordering::Relaxed);
        HeldConnection { shared }
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        self.shared.gauges.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for HeldConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldConnection").finish_non_exhaustive()
    }
}

/// A `Send` future packaged to become a task on whichever loop starts it,
/// and the [`ConcurrentFuture`] of its result: what
/// [`LoopHandle::run_coroutine_threadsafe`] sends, for code that decides
/// later which loop runs it (a pool of loops places it on the least busy
/// one, and an idle loop may take it from a busy sibling's queue before
/// it starts). Dropped unstarted, its result resolves as cancelled.
///
/// # Examples
/// ```
/// let (job, result) = aio_core::Job::new(async { 6 * 7 });
/// let lp = aio_core::Loop::new();
/// let v = lp.run_until_complete(async move {
///     job.start(); // a task on this loop
///     result.await
/// });
/// assert_eq!(v.unwrap().unwrap(), 42);
/// ```
pub struct Job {
    run: Box<dyn FnOnce() + Send>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Job {
    /// Packages `fut`; nothing runs until [`start`](Job::start).
    pub fn new<F>(fut: F) -> (Job, ConcurrentFuture<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let slot = Arc::new(CfSlot {
            state: Mutex::new(CfState {
                result: None,
                waker: None,
                task: None,
                cancel_requested: false,
                taken: false,
            }),
            cv: Condvar::new(),
        });
        let unrun = Unrun(Some(slot.clone()));
        let run = move || {
            let mut unrun = unrun;
            let shared = crate::context::expect_core(|core| core.shared.clone());
            let s2 = unrun.0.take().expect("taken only here");
            let task = create_task(Reporter {
                fut,
                slot: Some(s2.clone()),
            });
            let ptr = task.ptr();
            crate::task::header::add_ref(task.header());
            let cancel = {
                let mut st = s2.state.lock();
                st.task = Some(RemoteTask {
                    ptr: TaskPtr(ptr),
                    shared,
                });
                st.cancel_requested
            };
            if cancel {
                task.cancel();
            }
        };
        (Job { run: Box::new(run) }, ConcurrentFuture { slot, delivered: None })
    }

    /// Starts the job as a task on the loop running on this thread.
    ///
    /// # Panics
    /// When no loop runs on this thread (the job's result then resolves as
    /// cancelled).
    #[track_caller]
    pub fn start(self) {
        (self.run)()
    }
}

/// A submission the loop has not run yet: dropped unrun (the loop closed
/// first), it resolves its future as cancelled instead of leaving it
/// pending forever.
struct Unrun<T>(Option<Arc<CfSlot<T>>>);

impl<T> Drop for Unrun<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.finish(Err(TaskError::Cancelled(Cancelled::with_message(
                "the event loop closed before running the submission",
            ))));
        }
    }
}

/// A counted reference to a task on another thread's loop.
struct RemoteTask {
    ptr: TaskPtr,
    shared: Arc<Shared>,
}

impl Drop for RemoteTask {
    fn drop(&mut self) {
        // SAFETY: we own one reference; releasing it from any thread only
        // frees the header (see `task::raw`).
        unsafe { crate::task::header::release(self.ptr.0) };
    }
}

struct CfState<T> {
    result: Option<Result<T, TaskError>>,
    waker: Option<Waker>,
    task: Option<RemoteTask>,
    cancel_requested: bool,
    taken: bool,
}

struct CfSlot<T> {
    state: Mutex<CfState<T>>,
    cv: Condvar,
}

impl<T> CfSlot<T> {
    fn finish(&self, r: Result<T, TaskError>) {
        let mut st = self.state.lock();
        if st.result.is_some() || st.taken {
            return;
        }
        st.result = Some(r);
        st.task = None;
        let w = st.waker.take();
        drop(st);
        self.cv.notify_all();
        if let Some(w) = w {
            w.wake();
        }
    }
}

pin_project! {
    /// Runs the submitted future inside its task and reports how it ended.
    struct Reporter<F: Future> {
        #[pin]
        fut: F,
        slot: Option<Arc<CfSlot<F::Output>>>,
    }

    impl<F: Future> PinnedDrop for Reporter<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before finishing: cancelled the hard way or the loop
            // closed.
            if let Some(slot) = this.project().slot.take() {
                slot.finish(Err(TaskError::Cancelled(Cancelled::new())));
            }
        }
    }
}

impl<F: Future> Future for Reporter<F> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let fut = this.fut;
        let r = match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(v)) if !cancel::current_ends_cancelled() => Ok(v),
            Ok(Poll::Ready(_)) => Err(TaskError::Cancelled(Cancelled::new())),
            Err(p) => Err(TaskError::Panicked(p.into())),
        };
        if let Some(slot) = this.slot.take() {
            slot.finish(r);
        }
        Poll::Ready(())
    }
}

/// The result of [`LoopHandle::run_coroutine_threadsafe`]: await it from
/// another loop, or [`wait`](ConcurrentFuture::wait) for it from a plain
/// thread (asyncio's `concurrent.futures.Future`).
///
/// # Cancellation
/// Awaiting it from a task that gets cancelled cancels the submitted task
/// (as asyncio's `wrap_future`) and keeps waiting for it to end.
pub struct ConcurrentFuture<T> {
    slot: Arc<CfSlot<T>>,
    /// The awaiter's cancellation, given back if the task ends cancelled.
    delivered: Option<Cancelled>,
}

impl<T> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentFuture").field("done", &self.done()).finish()
    }
}

impl<T> ConcurrentFuture<T> {
    /// Whether the result is available.
    pub fn done(&self) -> bool {
        let st = self.slot.state.lock();
        st.result.is_some() || st.taken
    }

    /// Asks the loop to cancel the submitted task (cooperatively).
    pub fn cancel(&self) {
        let mut st = self.slot.state.lock();
        st.cancel_requested = true;
        if let Some(t) = &st.task {
            crate::task::header::add_ref(t.ptr.header());
            t.shared.inject(Remote::Cancel(TaskPtr(t.ptr.0), None));
        }
    }

    /// Blocks this thread until the task ends and returns its result.
    ///
    /// # Panics
    /// If the result was already taken by awaiting this future. Never call
    /// it on the loop's own thread: the loop could not run meanwhile.
    #[track_caller]
    pub fn wait(self) -> Result<T, TaskError> {
        let mut st = self.slot.state.lock();
        loop {
            if let Some(r) = st.result.take() {
                st.taken = true;
                return r;
            }
            assert!(!st.taken, "ConcurrentFuture result already taken");
            self.slot.cv.wait(&mut st);
        }
    }

    /// Blocks until the task ends or `timeout` passes; `true` when done.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.slot.state.lock();
        while st.result.is_none() && !st.taken {
            if self.slot.cv.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        st.result.is_some() || st.taken
    }
}

impl<T> ConcurrentFuture<T> {
    /// The awaiter's own cancellation comes back to it when the task ended
    /// cancelled; otherwise the result stands (and the cancellation the
    /// task handled is handled for the awaiter too).
    fn give_back(&mut self, r: Result<T, TaskError>) -> Result<T, TaskError> {
        match (r, self.delivered.take()) {
            (Err(TaskError::Cancelled(_)), Some(c)) => Err(TaskError::Cancelled(c)),
            (r, _) => r,
        }
    }
}

impl<T> Unpin for ConcurrentFuture<T> {}

impl<T> Future for ConcurrentFuture<T> {
    type Output = Result<T, TaskError>;

    #[track_caller]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.slot.state.lock();
        if let Some(r) = st.result.take() {
            st.taken = true;
            drop(st);
            return Poll::Ready(self.give_back(r));
        }
        assert!(!st.taken, "ConcurrentFuture polled after completion");
        drop(st);
        if let Err(c) = cancel::check() {
            self.cancel();
            self.delivered = Some(c);
        }
        let mut st = self.slot.state.lock();
        if let Some(r) = st.result.take() {
            st.taken = true;
            drop(st);
            return Poll::Ready(self.give_back(r));
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
