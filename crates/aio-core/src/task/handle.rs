//! [`Task<T>`]: the typed handle `create_task` returns (and how a task is
//! created: `spawn`); awaiting it gives
//! the output, or why there is none.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::error::{Panic, TaskError};
use super::header::{HANDLE, Header, OBSERVED, Outcome, QUEUED, RETRIEVED, TaskPtr, VTable};
use super::output::Reportable;
use super::raw;
use super::run::{finish, poll_task, unseen_failure};
use super::task_ref::TaskRef;
use crate::cancel::{self, Cancelled};
use crate::context::{CONTEXT, with_core};
use crate::event_loop::core::Core;
use crate::event_loop::exception::default_exception_handler;
use crate::event_loop::queue::Runnable;

/// A task created by [`create_task`](crate::create_task): asyncio's `Task`, typed.
///
/// Awaiting it gives the future's output, or [`TaskError`] if the task was
/// cancelled or panicked. Dropping it detaches the task, which keeps
/// running. The untyped API (`cancel`, `done`, `name`, ...) comes from
/// [`TaskRef`] through `Deref`.
///
/// # Cancellation
/// If the task awaiting a `Task` is cancelled, the awaited task is
/// cancelled too (as in asyncio) and the awaiter keeps waiting for it to
/// finish; wrap it in [`shield`](crate::shield) to keep it running instead.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let t = aio_core::create_task(async { 2 + 2 });
/// assert_eq!(t.await.unwrap(), 4);
/// # });
/// ```
pub struct Task<T> {
    pub(super) raw: TaskRef,
    /// The awaiter's own cancellation, delivered while it waited here: the
    /// awaiter gets it back if the awaited task ends cancelled.
    pub(super) delivered: Option<Cancelled>,
    pub(super) _out: PhantomData<T>,
}

impl<T> Deref for Task<T> {
    type Target = TaskRef;
    fn deref(&self) -> &TaskRef {
        &self.raw
    }
}

impl<T> Task<T> {
    /// Takes the result of a finished task: `None` while it runs. Once
    /// taken (by this or by awaiting the task), it is
    /// `Some(Err(TaskError::Retrieved))`; [`cloned_result`](Task::cloned_result)
    /// reads it without taking it.
    pub fn result(&mut self) -> Option<Result<T, TaskError>> {
        if !self.done() {
            return None;
        }
        let h = self.raw.header();
        if h.flag(RETRIEVED) {
            return Some(Err(TaskError::Retrieved));
        }
        let mut out: Option<Result<T, TaskError>> = None;
        // SAFETY: loop thread (`Task` is `!Send`); the task is complete; the
        // slot has the exact type the vtable writes.
        unsafe { (h.vtable.take_output)(self.raw.ptr, (&mut out as *mut Option<Result<T, TaskError>>).cast()) };
        h.set_flag(RETRIEVED, true);
        out
    }

    /// An untyped handle to the same task.
    pub fn to_ref(&self) -> TaskRef {
        self.raw.clone()
    }
}

impl<T: crate::combinator::TaskOutput> Task<T> {
    /// Whether the task finished with an output that is a failure (an
    /// `Err`), still in place.
    pub(crate) fn output_is_failure(&self) -> bool {
        let h = self.raw.header();
        // SAFETY: loop thread; the pointer is of the type the vtable stores.
        let out = unsafe { (h.vtable.peek)(self.raw.ptr) }.cast::<Result<T, TaskError>>();
        // SAFETY: null, or the stored output, alive for this call.
        matches!(unsafe { out.as_ref() }, Some(Ok(v)) if v.is_failure())
    }
}

/// What a finished task failed with, borrowed from it: [`Task::failure`]
/// (asyncio's `Task.exception()`).
#[derive(Debug)]
pub enum TaskFailure<'a, E> {
    /// The task returned `Err(e)`.
    Error(&'a E),
    /// The task panicked.
    Panic(&'a Panic),
}

impl<E> Clone for TaskFailure<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for TaskFailure<'_, E> {}

impl<V, E> Task<Result<V, E>> {
    /// asyncio's `Task.exception()`, typed: the error a finished task
    /// returned, or the panic it ended with, borrowed from the task.
    ///
    /// - `None` while the task runs (asyncio raises `InvalidStateError`);
    /// - `Some(Err(TaskError::Cancelled(c)))` if it was cancelled (asyncio
    ///   raises `CancelledError`), `Some(Err(TaskError::Retrieved))` if
    ///   its result was already taken (by [`result`](Task::result) or
    ///   awaiting the task);
    /// - `Some(Ok(Some(failure)))`: [`TaskFailure::Error`] for an `Err`
    ///   output, [`TaskFailure::Panic`] for a panic;
    /// - `Some(Ok(None))`: it returned `Ok`.
    ///
    /// Reading it marks the failure retrieved, as asyncio's `exception()`
    /// does: dropping the task afterwards reports nothing ("Task exception
    /// was never retrieved" is for failures nobody looked at). The result
    /// stays in place for [`result`](Task::result).
    ///
    /// # Examples
    /// ```
    /// use aio_core::TaskFailure;
    ///
    /// aio_core::run(async {
    ///     let t = aio_core::create_task(async { "x".parse::<u32>() });
    ///     aio_core::sleep(0).await.unwrap();
    ///     match t.failure() {
    ///         Some(Ok(Some(TaskFailure::Error(e)))) => assert_eq!(e.to_string(), "invalid digit found in string"),
    ///         other => panic!("{other:?}"),
    ///     }
    ///     drop(t); // seen: not reported
    /// });
    /// ```
    pub fn failure(&self) -> Option<Result<Option<TaskFailure<'_, E>>, TaskError>> {
        if !self.done() {
            return None;
        }
        let h = self.raw.header();
        if h.outcome() == Outcome::Cancelled {
            return Some(Err(TaskError::Cancelled(h.scope.error())));
        }
        // SAFETY: loop thread (`Task` is `!Send`); the task is complete;
        // the pointer is of the exact type the vtable stores.
        let out = unsafe { (h.vtable.peek)(self.raw.ptr) }.cast::<Result<Result<V, E>, TaskError>>();
        // SAFETY: null once taken, else the stored output. It stays in
        // place while `self` is borrowed: only `result` (which takes
        // `&mut self`) and dropping the last `Task` handle take it.
        let out = unsafe { out.as_ref() };
        h.set_flag(OBSERVED, true);
        Some(match out {
            None => Err(TaskError::Retrieved),
            Some(Ok(Ok(_))) => Ok(None),
            Some(Ok(Err(e))) => Ok(Some(TaskFailure::Error(e))),
            Some(Err(TaskError::Panicked(p))) => Ok(Some(TaskFailure::Panic(p))),
            Some(Err(e)) => Err(e.clone()),
        })
    }
}

impl<T: Clone> Task<T> {
    /// A copy of the result of a finished task, leaving it in place (as
    /// asyncio's `result()` gives the same result every time): `None`
    /// while it runs; `Some(Err(TaskError::Retrieved))` if it was taken.
    /// A panic is copied as its message.
    pub fn cloned_result(&self) -> Option<Result<T, TaskError>> {
        if !self.done() {
            return None;
        }
        let h = self.raw.header();
        // Its failure, if any, has been seen: no report when it is dropped.
        h.set_flag(OBSERVED, true);
        // SAFETY: loop thread (`Task` is `!Send`); the task is complete;
        // the pointer is of the exact type the vtable stores.
        let out = unsafe { (h.vtable.peek)(self.raw.ptr) }.cast::<Result<T, TaskError>>();
        // SAFETY: null once taken, else the stored output, alive for this call.
        Some(match unsafe { out.as_ref() } {
            Some(r) => r.clone(),
            None => Err(TaskError::Retrieved),
        })
    }
}

/// Awaiting `&task` reads a copy of the result and leaves it in place, so
/// any number of awaiters (or one, several times) get the same result, as
/// in asyncio.
///
/// # Cancellation
/// As awaiting the `Task` itself: cancelling the awaiter cancels the task.
impl<'a, T: Clone> IntoFuture for &'a Task<T> {
    type Output = Result<T, TaskError>;
    type IntoFuture = JoinRef<'a, T>;
    fn into_future(self) -> JoinRef<'a, T> {
        JoinRef {
            task: self,
            delivered: None,
        }
    }
}

/// Future of awaiting `&Task<T>`: the task's result, copied.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct JoinRef<'a, T> {
    task: &'a Task<T>,
    delivered: Option<Cancelled>,
}

impl<T: Clone> Future for JoinRef<'_, T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.task.done() {
            if let Err(c) = cancel::check() {
                self.task.raw.cancel_opt(c.shared_message());
                self.delivered = Some(c);
            }
            if self.task.raw.poll_done(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let delivered = self.delivered.take();
        Poll::Ready(match self.task.cloned_result().expect("done") {
            Err(TaskError::Cancelled(c)) => Err(TaskError::Cancelled(delivered.unwrap_or(c))),
            r => r,
        })
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    /// # Panics
    /// When polled again after it returned its result, and when the task
    /// awaits itself ("Task cannot await on itself", asyncio's
    /// `RuntimeError`): it would wait forever, and once cancelled, cancel
    /// itself every turn. The panic ends the task, as the error does in
    /// asyncio.
    #[track_caller]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.done() {
            if let Err(c) = cancel::check() {
                // asyncio: cancelling the awaiter cancels what it awaits.
                self.raw.cancel_opt(c.shared_message());
                self.delivered = Some(c);
            }
            if self.raw.poll_done(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let delivered = self.delivered.take();
        match self.result() {
            // It ended cancelled: the awaiter's own cancellation comes back
            // to it (so it propagates out of the awaiter, as in asyncio).
            Some(Err(TaskError::Cancelled(c))) => Poll::Ready(Err(TaskError::Cancelled(delivered.unwrap_or(c)))),
            // A value (the task handled the cancellation): the awaiter's
            // cancellation is handled with it.
            Some(r) => Poll::Ready(r),
            None => unreachable!("a done task has a result, or says it was taken"),
        }
    }
}

impl<T> Unpin for Task<T> {}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let h = self.raw.header();
        h.set_flag(HANDLE, false);
        if h.flag(RETRIEVED | OBSERVED) || !self.done() {
            // Read (the usual end), or still running: it reports when it
            // finishes, detached.
            return;
        }
        report_dropped_unseen(h, self.raw.ptr);
    }
}

/// The last handle of a finished task whose failure nobody saw is gone:
/// report the failure, if it had one.
#[cold]
#[inline(never)]
fn report_dropped_unseen(h: &Header, ptr: NonNull<Header>) {
    if let Some(ctx) = unseen_failure(h, ptr) {
        h.set_flag(OBSERVED, true);
        let owner = h.shared.core_addr();
        with_core(|c| match c {
            Some(c) if std::ptr::eq(c as *const Core as *const (), owner) => c.report(ctx),
            _ => default_exception_handler(&ctx),
        });
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

// --- creating a task ------------------------------------------------------

/// Creates a task on `core` that reports its failure if it ends detached
/// (asyncio's "Task exception was never retrieved"); `eager` runs its first
/// step now. With the `tracing` feature the task carries the span current
/// now, entered around each step (and while its future is dropped).
#[inline]
pub(crate) fn spawn_reporting<F>(core: &Core, fut: F, eager: bool) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: Reportable,
{
    #[cfg(feature = "tracing")]
    let fut = tracing::Instrument::instrument(fut, tracing::Span::current());
    spawn_reporting_typed(core, fut, eager)
}

#[inline]
fn spawn_reporting_typed<F>(core: &Core, fut: F, eager: bool) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: Reportable,
{
    spawn(core, fut, eager, raw::vtable_reporting::<F>())
}

/// Creates a task on `core` with `vtable` (which says whether an `Err`
/// output can be reported); `eager` runs its first step now.
#[inline]
pub(crate) fn spawn<F: Future + 'static>(core: &Core, fut: F, eager: bool, vtable: &'static VTable) -> Task<F::Output> {
    let (running_here, vars) = CONTEXT.with(|c| (std::ptr::eq(c.core.get(), core), c.vars.get()));
    // asyncio's create_task copies the current context: a pointer copy.
    let vars = if vars.is_null() {
        crate::contextvars::current()
    } else {
        // SAFETY: a non-null slot pointer was installed by a live guard on
        // this thread and outlives it.
        unsafe { (*vars).snapshot() }
    };
    let id = core.next_task_id();
    if core.debug.get() {
        log_created(id);
    }
    let ptr = raw::allocate(fut, vtable, core.shared_ref(), id, vars, Some(&core.cells));
    // SAFETY: freshly allocated; we hold the handle's reference.
    let h = unsafe { ptr.as_ref() };
    h.set_flag(HANDLE, true);
    core.register_task(h, ptr);
    if core.is_closed() {
        // asyncio's create_task raises on a closed loop and closes the
        // coroutine: this task ends at once, cancelled, and its future is
        // dropped now (nothing could ever run or drop it otherwise).
        let closed = Cancelled::with_message("the event loop is closed");
        finish(core, ptr, Outcome::Cancelled, Some(closed));
    } else if eager && running_here {
        poll_task(core, ptr);
    } else {
        h.set_flag(QUEUED, true);
        core.queue.push(Runnable::Task(TaskPtr(ptr)));
    }
    Task {
        raw: TaskRef::from_owned(ptr),
        delivered: None,
        _out: PhantomData,
    }
}

#[cold]
#[inline(never)]
fn log_created(id: u64) {
    log::debug!("aio: created Task-{id}");
}
