//! Tasks: asyncio's `Task`, one allocation each.
//!
//! [`Task<T>`] is the typed handle returned by [`create_task`]; awaiting it
//! gives `Result<T, TaskError>`. [`TaskRef`] is the untyped handle that
//! [`current_task`] and [`all_tasks`] return; `Task<T>` derefs to it for the
//! shared API (`cancel`, `done`, `name`, ...).

pub(crate) mod error;
pub(crate) mod header;
pub(crate) mod output;
pub(crate) mod raw;

pub use error::{Panic, TaskError};
pub use output::{Reportable, TaskOutput};

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use crate::callback::CallbackCell;
use crate::cancel::{self, Cancelled};
use crate::context::{CONTEXT, Restore, expect_core, with_core};
use crate::event_loop::core::Core;
use crate::event_loop::exception::{ExceptionContext, default_exception_handler};
use crate::event_loop::queue::Runnable;
use header::{
    ABORT, HANDLE, Header, OBSERVED, Outcome, POLLING, PollOutcome, RETRIEVED, SCHEDULED, STARTED, TaskPtr, VTable,
};

impl Core {
    /// Snapshot of the live tasks (asyncio's `all_tasks`).
    pub(crate) fn all_tasks(&self) -> Vec<TaskRef> {
        self.tasks
            .borrow()
            .iter()
            .filter(|t| !t.header().is_complete())
            .map(|t| TaskRef::from_ptr(t.0))
            .collect()
    }
}

// --- spawning and running ------------------------------------------------

/// Creates a task on `core` that reports its failure if it ends detached
/// (asyncio's "Task exception was never retrieved"); `eager` runs its first
/// step now.
#[inline]
pub(crate) fn spawn_reporting<F>(core: &Core, fut: F, eager: bool) -> Task<F::Output>
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
    let ptr = raw::allocate(fut, vtable, core.shared.clone(), id, vars);
    // SAFETY: freshly allocated; we hold the handle's reference.
    let h = unsafe { ptr.as_ref() };
    h.set_flag(HANDLE, true);
    core.register_task(TaskPtr(ptr));
    if eager && running_here {
        poll_task(core, ptr);
    } else {
        h.state.fetch_or(SCHEDULED, Ordering::Relaxed);
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

/// One step of a task, with asyncio's cancellation rules applied around it.
pub(crate) fn poll_task(core: &Core, ptr: NonNull<Header>) {
    // SAFETY: the caller holds the task's alive reference.
    let h = unsafe { ptr.as_ref() };
    let scope = &h.scope;
    let was_pending = scope.is_pending();
    if !h.flag(STARTED) {
        h.set_flag(STARTED, true);
        if was_pending {
            // Cancelled before its first step: the body never runs.
            let c = scope.deliver();
            return finish(core, ptr, Outcome::Cancelled, Some(c));
        }
    }
    let deliveries = scope.deliveries();
    h.set_flag(POLLING, true);
    let outcome = {
        // SAFETY: header and scope live in the task allocation, which the
        // alive reference keeps in place for the whole poll.
        let _g = unsafe { Restore::poll(h, scope) };
        let waker = raw::waker_ref(ptr);
        let mut cx = Context::from_waker(&waker);
        // SAFETY: loop thread; the POLLING flag rules out re-entry.
        unsafe { (h.vtable.poll)(ptr, &mut cx) }
    };
    h.set_flag(POLLING, false);
    match outcome {
        PollOutcome::Pending => {
            if h.flag(ABORT) {
                finish(core, ptr, Outcome::Cancelled, Some(scope.error()));
            } else if was_pending && scope.is_pending() && scope.deliveries() == deliveries {
                // Nothing in this step consumed the delivery: the task waits
                // only on foreign futures. Drop it (the hard path).
                scope.clear_pending();
                finish(core, ptr, Outcome::Cancelled, Some(scope.error()));
            }
        }
        PollOutcome::Ready => {
            if scope.ends_cancelled() {
                // Its cancellation propagated out (the output carries it)
                // or was never delivered: asyncio's cancelled task. One
                // that handled it keeps what it returned.
                finish(core, ptr, Outcome::Cancelled, Some(scope.error()));
            } else {
                complete(core, ptr, Outcome::Ok);
            }
        }
        PollOutcome::Panicked => complete(core, ptr, Outcome::Panicked),
    }
}

/// Replaces whatever the task holds with `Err(Cancelled)` and completes it.
fn finish(core: &Core, ptr: NonNull<Header>, outcome: Outcome, c: Option<Cancelled>) {
    // SAFETY: alive reference held by the caller.
    let h = unsafe { ptr.as_ref() };
    let err = crate::TaskError::Cancelled(c.unwrap_or_default());
    // SAFETY: loop thread, not inside the task's own poll.
    unsafe { (h.vtable.finish_with)(ptr, err) };
    complete(core, ptr, outcome);
}

/// Marks a task complete: unregisters it, queues its done callbacks, wakes
/// its awaiter and releases its alive reference (unless it is queued).
fn complete(core: &Core, ptr: NonNull<Header>, outcome: Outcome) {
    // SAFETY: alive reference held by the caller.
    let h = unsafe { ptr.as_ref() };
    h.local.outcome.set(outcome);
    core.unregister_task();
    let release_alive = header::set_complete(h);

    if let Some(mut extras) = h.local.extras.take() {
        for (_, cb) in std::mem::take(&mut extras.callbacks) {
            core.call_soon_rc(CallbackCell::rc(cb));
        }
        h.local.extras.set(Some(extras));
    }
    if let Some(w) = h.local.join_waker.take() {
        w.wake();
    }
    if !h.flag(HANDLE) {
        // Detached: nobody will read the output; drop it here, on the loop
        // thread, and report a panic nobody will see otherwise.
        drop_detached_output(core, h, ptr);
    }
    if release_alive {
        // SAFETY: the alive reference, released exactly once: here, or by
        // the run loop when it dequeues the completed task.
        unsafe { header::release(ptr) };
    }
}

fn drop_detached_output(core: &Core, h: &Header, ptr: NonNull<Header>) {
    if let Some(ctx) = unseen_failure(h, ptr) {
        core.report(ctx);
    }
    h.set_flag(RETRIEVED, true);
    // SAFETY: loop thread; the task is complete, nothing else reads the stage.
    unsafe { (h.vtable.drop_stage)(ptr) };
}

/// The report of a finished task whose failure nobody saw — its panic (taken
/// out), or an output that is a failure (an `Err`, when the task was made by
/// `create_task`) — as asyncio logs "Task exception was never retrieved".
/// Loop thread only.
fn unseen_failure(h: &Header, ptr: NonNull<Header>) -> Option<ExceptionContext> {
    if h.flag(RETRIEVED) || h.flag(OBSERVED) {
        return None;
    }
    let (panic, error) = match h.local.outcome.get() {
        // SAFETY: loop thread; the task is complete, nothing else reads the stage.
        Outcome::Panicked => match unsafe { (h.vtable.take_error)(ptr) } {
            Some(TaskError::Panicked(p)) => (Some(p), None),
            _ => return None,
        },
        // SAFETY: as above.
        Outcome::Ok => (None, Some(unsafe { (h.vtable.failure?)(ptr) }?)),
        Outcome::Cancelled | Outcome::Running => return None,
    };
    Some(ExceptionContext {
        message: "Task exception was never retrieved".into(),
        task: Some(task_name(h)),
        panic,
        error,
    })
}

fn task_name(h: &Header) -> String {
    let e = h.local.extras.take();
    let s = e
        .as_ref()
        .and_then(|e| e.name.as_deref())
        .map_or_else(|| format!("Task-{}", h.id), str::to_owned);
    h.local.extras.set(e);
    s
}

// --- handles ---------------------------------------------------------------

/// Names a done callback for [`TaskRef::remove_done_callback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoneCallbackId(u64);

/// An untyped handle to a task: what [`current_task`] and [`all_tasks`]
/// return, and what [`Task<T>`] derefs to. Clones refer to the same task.
pub struct TaskRef {
    ptr: NonNull<Header>,
    _not_send: PhantomData<*const ()>,
}

impl TaskRef {
    /// Takes over a reference the caller owns.
    pub(crate) fn from_owned(ptr: NonNull<Header>) -> TaskRef {
        TaskRef {
            ptr,
            _not_send: PhantomData,
        }
    }

    /// Adds a reference.
    pub(crate) fn from_ptr(ptr: NonNull<Header>) -> TaskRef {
        // SAFETY: the caller guarantees the task is live.
        header::add_ref(unsafe { ptr.as_ref() });
        TaskRef::from_owned(ptr)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we own a reference.
        unsafe { self.ptr.as_ref() }
    }

    pub(crate) fn ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    /// The loop core owning this task.
    ///
    /// Only valid while the task is not complete: a loop completes all its
    /// tasks when it closes, before its core goes away.
    fn core(&self) -> &Core {
        // SAFETY: see above; callers check `done()` first.
        unsafe { self.header().shared.core() }
    }

    /// Requests cancellation: the task's next aio await point returns
    /// `Err(Cancelled)`. Returns `false` if the task is already done.
    /// Several requests before the task runs are delivered once, and counted
    /// by [`cancelling`](TaskRef::cancelling).
    pub fn cancel(&self) -> bool {
        self.cancel_opt(None)
    }

    /// [`cancel`](TaskRef::cancel) with a message, carried by the
    /// `Cancelled` the task sees.
    pub fn cancel_with(&self, msg: impl Into<String>) -> bool {
        self.cancel_opt(Some(Arc::new(msg.into())))
    }

    pub(crate) fn cancel_opt(&self, msg: Option<Arc<String>>) -> bool {
        if self.done() {
            return false;
        }
        if self.core().debug.get() {
            match &msg {
                Some(m) => log::debug!("aio: cancelling {} ({m})", self.name()),
                None => log::debug!("aio: cancelling {}", self.name()),
            }
        }
        self.header().scope.cancel(msg);
        raw::schedule(self.ptr);
        true
    }

    /// The number of cancel requests not taken back by
    /// [`uncancel`](TaskRef::uncancel).
    pub fn cancelling(&self) -> u32 {
        self.header().scope.cancelling()
    }

    /// Takes back one cancel request (asyncio's `uncancel`); returns how
    /// many remain. A request taken back before it was delivered is not
    /// delivered. (Whether the task ends cancelled does not depend on it:
    /// that is decided by whether the cancellation propagates out.)
    pub fn uncancel(&self) -> u32 {
        self.header().scope.uncancel()
    }

    /// Whether the task has finished (with a value, cancelled or panicked).
    pub fn done(&self) -> bool {
        self.header().is_complete()
    }

    /// Whether the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.header().local.outcome.get() == Outcome::Cancelled
    }

    /// Whether the task ended with a panic.
    pub fn panicked(&self) -> bool {
        self.header().local.outcome.get() == Outcome::Panicked
    }

    /// The task's name; `Task-N` unless set.
    pub fn name(&self) -> String {
        task_name(self.header())
    }

    /// Names the task (shown in debug warnings and reports).
    pub fn set_name(&self, name: impl Into<String>) {
        let name = name.into().into_boxed_str();
        self.header().local.with_extras(|e| e.name = Some(name));
    }

    /// A number unique among the tasks of the loop.
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// Runs `f` (on the loop, soon, as asyncio's `call_soon`) once the task
    /// is done; at once (soon) if it already is. `f` sees the finished task
    /// (`done`, `cancelled`, `panicked`, [`exception`](TaskRef::exception)).
    /// Returns an id for [`remove_done_callback`](TaskRef::remove_done_callback)
    /// (Rust closures have no identity to compare, as asyncio compares
    /// callbacks).
    pub fn add_done_callback(&self, f: impl FnOnce(&TaskRef) + 'static) -> DoneCallbackId {
        let me = self.clone();
        // It runs in the context current now, as asyncio's callbacks do.
        let ctx = crate::contextvars::current();
        let cb = move || crate::contextvars::run_in(ctx, move || f(&me));
        if self.done() {
            with_core(|c| match c {
                Some(c) => c.call_soon_rc(CallbackCell::rc(cb)),
                None => cb(),
            });
            DoneCallbackId(0)
        } else {
            self.header().local.with_extras(|e| {
                e.next_callback += 1;
                e.callbacks.push((e.next_callback, Box::new(cb)));
                DoneCallbackId(e.next_callback)
            })
        }
    }

    /// Removes a done callback that has not been scheduled yet: asyncio's
    /// `remove_done_callback`. Returns how many were removed (0 once the
    /// task is done: its callbacks are scheduled by then).
    pub fn remove_done_callback(&self, id: DoneCallbackId) -> usize {
        if id.0 == 0 {
            return 0;
        }
        self.header().local.with_extras(|e| {
            let before = e.callbacks.len();
            e.callbacks.retain(|(i, _)| *i != id.0);
            before - e.callbacks.len()
        })
    }

    /// asyncio's `Task.exception()`, untyped: `None` while the task runs;
    /// `Some(Err(Cancelled))` if it was cancelled (asyncio raises
    /// `CancelledError`); `Some(Ok(Some(description)))` if it failed — the
    /// message of the panic it ended with, or the `Debug` of the `Err` it
    /// returned (an output that is a failure, see [`TaskOutput`]);
    /// `Some(Ok(None))` if it finished otherwise. Reading it marks the
    /// failure retrieved, as asyncio's does: no "Task exception was never
    /// retrieved" report follows. [`Task::failure`] gives the error itself,
    /// typed.
    pub fn exception(&self) -> Option<Result<Option<String>, Cancelled>> {
        if !self.done() {
            return None;
        }
        let h = self.header();
        Some(match h.local.outcome.get() {
            Outcome::Cancelled => Err(h.scope.error()),
            Outcome::Panicked => {
                // SAFETY: loop thread; the task is complete; the pointer is
                // read before anything can take the output.
                let e = unsafe { (h.vtable.error_ref)(self.ptr) };
                // asyncio: reading the exception marks it retrieved.
                h.set_flag(OBSERVED, true);
                // SAFETY: null, or the stage's error, alive for this call.
                match unsafe { e.as_ref() } {
                    Some(TaskError::Panicked(p)) => Ok(Some(
                        p.message().unwrap_or("(a panic with a non-string payload)").to_owned(),
                    )),
                    _ => Ok(Some("(the task panicked; its panic was taken)".to_owned())),
                }
            }
            _ => {
                h.set_flag(OBSERVED, true);
                // SAFETY: loop thread; the task is complete; `failure` reads
                // the stage of the future type it was made for.
                Ok(h.vtable.failure.and_then(|describe| unsafe { describe(self.ptr) }))
            }
        })
    }

    /// Drops the task's future now, without letting it observe the
    /// cancellation (tokio's `abort`). The task ends cancelled. If the task
    /// is the one running, this happens when its current step returns.
    pub fn abort(&self) {
        if self.done() {
            return;
        }
        let h = self.header();
        if h.flag(POLLING) {
            h.set_flag(ABORT, true);
            return;
        }
        let core = self.core();
        let ptr = self.ptr;
        // The alive reference is still held (the task is not complete).
        finish(core, ptr, Outcome::Cancelled, Some(h.scope.error()));
    }

    /// Registers `cx`'s waker to be woken when the task completes; `Ready`
    /// if it already has. Does not take the output.
    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done() {
            return Poll::Ready(());
        }
        let slot = &self.header().local.join_waker;
        let w = slot.take();
        match w {
            Some(w) if w.will_wake(cx.waker()) => slot.set(Some(w)),
            _ => slot.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        TaskRef::from_ptr(self.ptr)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { header::release(self.ptr) };
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &TaskRef) -> bool {
        self.ptr == other.ptr
    }
}
impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.header().local.outcome.get() {
            Outcome::Running => "pending",
            Outcome::Ok => "finished",
            Outcome::Cancelled => "cancelled",
            Outcome::Panicked => "panicked",
        };
        f.debug_struct("Task")
            .field("name", &self.name())
            .field("state", &state)
            .finish()
    }
}

/// A task created by [`create_task`]: asyncio's `Task`, typed.
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
    raw: TaskRef,
    /// The awaiter's own cancellation, delivered while it waited here: the
    /// awaiter gets it back if the awaited task ends cancelled.
    delivered: Option<Cancelled>,
    _out: PhantomData<T>,
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
        if h.local.outcome.get() == Outcome::Cancelled {
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
    /// When polled again after it returned its result.
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
