//! `TaskGroup`: asyncio's structured concurrency.
//!
//! The group's future polls the body and every child itself (no task is
//! spawned), so children may borrow from the enclosing function. Each child
//! runs in its own boundary scope. When a child fails (an `Err` or a
//! panic), the group cancels the body and the other children, waits for
//! all of them, and returns every error together (asyncio's
//! `ExceptionGroup`). When the task running the group is cancelled, the
//! body sees it at its await point; the group cancels the children, waits
//! for them and returns `Cancelled`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::ready::ReadySet;
use crate::cancel::{self, Cancelled, Scope};
use crate::contextvars::ContextSlot;
use crate::task::Panic;
use pin_project_lite::pin_project;

/// What a [`TaskGroup`] returns when it did not complete normally.
pub enum TaskGroupError<E> {
    /// The task running the group was cancelled; every child was cancelled
    /// and awaited.
    Cancelled(Cancelled),
    /// One or more children (or the body) failed; the rest were cancelled
    /// and awaited. In the order the failures happened.
    Failed(Vec<Failure<E>>),
}

/// One failure inside a [`TaskGroup`].
pub enum Failure<E> {
    /// A child (or the body) returned this error.
    Error(E),
    /// A child panicked.
    Panic(Panic),
}

impl<E> From<Cancelled> for TaskGroupError<E> {
    fn from(c: Cancelled) -> Self {
        TaskGroupError::Cancelled(c)
    }
}

impl<E> TaskGroupError<E> {
    /// Whether the group was cancelled from outside.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskGroupError::Cancelled(_))
    }

    /// The failures (empty when cancelled).
    pub fn failures(&self) -> &[Failure<E>] {
        match self {
            TaskGroupError::Failed(v) => v,
            TaskGroupError::Cancelled(_) => &[],
        }
    }

    /// The errors returned by children, without the panics.
    pub fn into_errors(self) -> Vec<E> {
        match self {
            TaskGroupError::Failed(v) => v
                .into_iter()
                .filter_map(|f| match f {
                    Failure::Error(e) => Some(e),
                    Failure::Panic(_) => None,
                })
                .collect(),
            TaskGroupError::Cancelled(_) => Vec::new(),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => fmt::Debug::fmt(e, f),
            Failure::Panic(p) => fmt::Debug::fmt(p, f),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Cancelled(c) => fmt::Debug::fmt(c, f),
            TaskGroupError::Failed(v) => f.debug_tuple("TaskGroupError").field(v).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Cancelled(c) => fmt::Display::fmt(c, f),
            TaskGroupError::Failed(v) => {
                write!(
                    f,
                    "unhandled errors in a TaskGroup ({} sub-exception{})",
                    v.len(),
                    if v.len() == 1 { "" } else { "s" }
                )?;
                for x in v {
                    match x {
                        Failure::Error(e) => write!(f, "; {e}")?,
                        Failure::Panic(p) => write!(f, "; panic: {p}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskGroupError<E> {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ChildState {
    Running,
    Ok,
    Cancelled,
    Failed,
}

/// Shared between a child, its [`GroupTask`] handle and the group.
struct Slot<T> {
    scope: Scope,
    state: Cell<ChildState>,
    value: Cell<Option<T>>,
    /// The handle's waker (someone awaits the `GroupTask`).
    waiter: Cell<Option<Waker>>,
    /// The child's readiness waker in the group (to poll it after a cancel).
    poke: Cell<Option<Waker>>,
}

impl<T> Slot<T> {
    fn end(&self, state: ChildState) {
        self.state.set(state);
        if let Some(w) = self.waiter.take() {
            w.wake();
        }
    }
}

enum End<E> {
    Ok,
    Err(E),
    Panic(Panic),
}

/// A child as the group sees it.
trait Child<E> {
    fn scope(&self) -> &Scope;
    fn set_poke(&self, w: Waker);
    fn poll_child(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End<E>>;
    /// The child ended without a value (cancelled or dropped).
    fn end_cancelled(&self);
    fn end_failed(&self);
}

pin_project! {
    struct ChildFut<F, T> {
        #[pin]
        fut: F,
        slot: Rc<Slot<T>>,
        // The child's context variables: a copy of the context
        // `create_task` was called in (asyncio's `tg.create_task` makes a
        // task, which copies it).
        vars: ContextSlot,
    }
}

impl<F, T, E> Child<E> for ChildFut<F, T>
where
    F: Future<Output = Result<T, E>>,
{
    fn scope(&self) -> &Scope {
        &self.slot.scope
    }

    fn set_poke(&self, w: Waker) {
        self.slot.poke.set(Some(w));
    }

    fn poll_child(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End<E>> {
        let this = self.project();
        let fut = this.fut;
        let polled = {
            let _v = this.vars.enter();
            catch_unwind(AssertUnwindSafe(|| fut.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(v))) => {
                if this.slot.scope.ends_cancelled() {
                    this.slot.end(ChildState::Cancelled);
                } else {
                    this.slot.value.set(Some(v));
                    this.slot.end(ChildState::Ok);
                }
                Poll::Ready(End::Ok)
            }
            Ok(Poll::Ready(Err(e))) => Poll::Ready(End::Err(e)),
            Err(p) => Poll::Ready(End::Panic(p.into())),
        }
    }

    fn end_cancelled(&self) {
        self.slot.end(ChildState::Cancelled);
    }

    fn end_failed(&self) {
        self.slot.end(ChildState::Failed);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Running,
    Aborting,
    Done,
}

struct Inner<'scope, E> {
    incoming: RefCell<Vec<Pin<Box<dyn Child<E> + 'scope>>>>,
    phase: Cell<Phase>,
    /// Wakes the group's future when a child is created from elsewhere.
    waker: Cell<Option<Waker>>,
}

/// A handle to a running group: asyncio's `TaskGroup` inside
/// `async with`. Clone it freely; create it with [`TaskGroup::run`].
pub struct TaskGroup<'scope, E> {
    inner: Rc<Inner<'scope, E>>,
}

impl<E> Clone for TaskGroup<'_, E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for TaskGroup<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("phase", &self.inner.phase.get())
            .finish()
    }
}

impl<'scope, E: 'scope> TaskGroup<'scope, E> {
    /// Runs `body` with a new group and waits for every child it creates:
    /// the body of asyncio's `async with asyncio.TaskGroup() as tg:`.
    ///
    /// Returns the body's value once every child finished, or
    /// [`TaskGroupError`]: every failure of the children and the body, or
    /// `Cancelled` when the caller was cancelled.
    ///
    /// # Cancellation
    /// Cancelling the caller is delivered to the body's await point (or to
    /// the group, if the body is done); the group then cancels every child,
    /// waits for them, and returns `Err(TaskGroupError::Cancelled)`.
    /// Dropping the future drops the body and the children.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run(async {
    /// use aio_core::TaskGroup;
    /// let names = vec!["a", "b"];
    /// let out = std::cell::RefCell::new(vec![]);
    /// let (names, out_ref) = (&names, &out);
    /// TaskGroup::run(|tg| async move {
    ///     for (i, n) in names.iter().enumerate() {
    ///         let out = out_ref;
    ///         tg.create_task(async move {
    ///             aio_core::sleep(0.01 * (2 - i) as f64).await?;
    ///             out.borrow_mut().push(*n); // children may borrow
    ///             Ok::<_, aio_core::Cancelled>(())
    ///         });
    ///     }
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap();
    /// assert_eq!(*out.borrow(), ["b", "a"]);
    /// # });
    /// ```
    pub fn run<B, Fut, R>(body: B) -> GroupRun<'scope, Fut, R, E>
    where
        B: FnOnce(TaskGroup<'scope, E>) -> Fut,
        Fut: Future<Output = Result<R, E>> + 'scope,
    {
        let inner = Rc::new(Inner {
            incoming: RefCell::new(Vec::new()),
            phase: Cell::new(Phase::Running),
            waker: Cell::new(None),
        });
        let body = body(TaskGroup { inner: inner.clone() });
        GroupRun {
            body: Some(Box::pin(body)),
            body_scope: Scope::new(),
            body_out: None,
            group: inner,
            children: Vec::new(),
            ready: ReadySet::new(),
            running: 0,
            failures: Vec::new(),
            parent_cancelled: None,
            parent_delivered: false,
        }
    }

    /// Starts `fut` as a child of the group and returns a handle to its
    /// result. The child starts when the body next waits.
    ///
    /// A child created once the group is shutting down (after a failure
    /// or a cancellation) or finished never runs: its future is dropped
    /// unpolled and its handle gives `Err(Cancelled)`. asyncio's
    /// `tg.create_task` raises `RuntimeError` there ("is shutting down",
    /// "is finished") and closes the coroutine unrun.
    pub fn create_task<F, T>(&self, fut: F) -> GroupTask<T>
    where
        F: Future<Output = Result<T, E>> + 'scope,
        T: 'scope,
    {
        let slot = Rc::new(Slot {
            scope: Scope::boundary(),
            state: Cell::new(ChildState::Running),
            value: Cell::new(None),
            waiter: Cell::new(None),
            poke: Cell::new(None),
        });
        match self.inner.phase.get() {
            Phase::Done | Phase::Aborting => slot.end(ChildState::Cancelled),
            Phase::Running => {
                self.inner.incoming.borrow_mut().push(Box::pin(ChildFut {
                    fut,
                    slot: slot.clone(),
                    vars: ContextSlot::new(crate::contextvars::current()),
                }));
                if let Some(w) = self.inner.waker.take() {
                    w.wake_by_ref();
                    self.inner.waker.set(Some(w));
                }
            }
        }
        GroupTask { slot }
    }
}

/// A handle to a child of a [`TaskGroup`]. Awaiting it gives the child's
/// value, or `Err(Cancelled)` if the child was cancelled or failed (its
/// error goes to the group).
///
/// # Cancellation
/// Awaiting is an aio await point; cancelling the awaiter does not cancel
/// the child (use [`GroupTask::cancel`]).
pub struct GroupTask<T> {
    slot: Rc<Slot<T>>,
}

impl<T> fmt::Debug for GroupTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupTask")
            .field("state", &self.slot.state.get())
            .finish()
    }
}

impl<T> GroupTask<T> {
    /// Whether the child has ended.
    pub fn done(&self) -> bool {
        self.slot.state.get() != ChildState::Running
    }

    /// Whether the child ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.slot.state.get() == ChildState::Cancelled
    }

    /// Takes the child's value, if it finished with one.
    pub fn result(&self) -> Option<T> {
        self.slot.value.take()
    }

    /// Cancels this child (cooperatively). Returns `false` if it has ended.
    pub fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        self.slot.scope.cancel(None);
        if let Some(w) = self.slot.poke.take() {
            w.wake_by_ref();
            self.slot.poke.set(Some(w));
        }
        true
    }
}

impl<T> Future for GroupTask<T> {
    type Output = Result<T, Cancelled>;
    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.slot.state.get() {
            ChildState::Running => {
                cancel::check()?;
                self.slot.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
            ChildState::Ok => match self.slot.value.take() {
                Some(v) => Poll::Ready(Ok(v)),
                None => panic!("`GroupTask` polled after its value was taken"),
            },
            ChildState::Cancelled | ChildState::Failed => Poll::Ready(Err(Cancelled::new())),
        }
    }
}

/// Future of [`TaskGroup::run`].
#[must_use = "futures do nothing unless awaited"]
pub struct GroupRun<'scope, Fut, R, E> {
    /// Boxed, so the group future itself is never pinned in place (one
    /// allocation per group: no pin projections to get right).
    body: Option<Pin<Box<Fut>>>,
    body_scope: Scope,
    body_out: Option<R>,
    group: Rc<Inner<'scope, E>>,
    children: Vec<Option<Pin<Box<dyn Child<E> + 'scope>>>>,
    ready: ReadySet,
    running: usize,
    failures: Vec<Failure<E>>,
    parent_cancelled: Option<Cancelled>,
    /// The body took a cancellation of the caller at some await point.
    parent_delivered: bool,
}

// Nothing is pinned in place: the body is boxed.
impl<Fut, R, E> Unpin for GroupRun<'_, Fut, R, E> {}

impl<Fut, R, E> fmt::Debug for GroupRun<'_, Fut, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupRun")
            .field("body_running", &self.body.is_some())
            .field("children_running", &self.running)
            .field("failures", &self.failures.len())
            .finish()
    }
}

impl<'scope, Fut, R, E> GroupRun<'scope, Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
{
    /// Stops everything: cancels the body and the running children.
    fn abort(&mut self) {
        if self.group.phase.get() != Phase::Running {
            return;
        }
        self.group.phase.set(Phase::Aborting);
        if self.body.is_some() {
            self.body_scope.cancel(None);
        }
        for (i, c) in self.children.iter().enumerate() {
            if let Some(c) = c {
                c.scope().cancel(None);
                self.ready.wake(i);
            }
        }
        for c in self.group.incoming.borrow().iter() {
            c.scope().cancel(None);
        }
    }

    fn adopt(&mut self) -> bool {
        let new: Vec<_> = std::mem::take(&mut *self.group.incoming.borrow_mut());
        let any = !new.is_empty();
        for c in new {
            let i = self.ready.add();
            c.set_poke(self.ready.waker(i).clone());
            self.children.push(Some(c));
            self.running += 1;
        }
        any
    }

    fn poll_body(&mut self, cx: &mut Context<'_>) -> BodyPoll<R, E> {
        let Some(body) = self.body.as_mut() else {
            return BodyPoll::Pending;
        };
        let parent_seen = cancel::chain_deliveries();
        let scope = &self.body_scope;
        let was_pending = scope.is_pending();
        let seen = scope.deliveries();
        let res = {
            let _g = scope.enter();
            body.as_mut().poll(cx)
        };
        if cancel::chain_deliveries() != parent_seen {
            // The body took the caller's cancellation; whether it counts is
            // decided when the body ends (it may handle it).
            self.parent_delivered = true;
        }
        match res {
            Poll::Ready(r) => BodyPoll::Done(r),
            Poll::Pending if was_pending && scope.is_pending() && scope.deliveries() == seen => {
                // The body ignores the group's cancellation: drop it.
                scope.clear_pending();
                BodyPoll::Dropped
            }
            Poll::Pending => BodyPoll::Pending,
        }
    }

    fn poll_children(&mut self) {
        loop {
            self.adopt();
            let batch = self.ready.take();
            if batch.is_empty() {
                self.ready.recycle(batch);
                if self.group.incoming.borrow().is_empty() {
                    return;
                }
                continue;
            }
            for &i in &batch {
                let Some(child) = self.children[i].as_mut() else {
                    continue;
                };
                let mut kcx = Context::from_waker(self.ready.begin_poll(i));
                let scope: *const Scope = child.scope();
                // SAFETY: the scope lives in the child's `Rc<Slot>`, which
                // the boxed child keeps alive at a stable address.
                let scope = unsafe { &*scope };
                let was_pending = scope.is_pending();
                let seen = scope.deliveries();
                let res = {
                    let _g = scope.enter();
                    child.as_mut().poll_child(&mut kcx)
                };
                let ended = match res {
                    Poll::Pending => {
                        if was_pending && scope.is_pending() && scope.deliveries() == seen {
                            scope.clear_pending();
                            child.end_cancelled();
                            true
                        } else {
                            false
                        }
                    }
                    Poll::Ready(End::Ok) => true,
                    Poll::Ready(End::Err(e)) => {
                        // Its own cancellation, propagated, is no failure;
                        // an error raised while handling it is.
                        if scope.ends_cancelled() {
                            child.end_cancelled();
                        } else {
                            child.end_failed();
                            self.failures.push(Failure::Error(e));
                            self.abort();
                        }
                        true
                    }
                    Poll::Ready(End::Panic(p)) => {
                        child.end_failed();
                        self.failures.push(Failure::Panic(p));
                        self.abort();
                        true
                    }
                };
                if ended {
                    self.children[i] = None;
                    self.running -= 1;
                }
            }
            self.ready.recycle(batch);
        }
    }
}

enum BodyPoll<R, E> {
    Pending,
    Done(Result<R, E>),
    Dropped,
}

impl<'scope, Fut, R, E> Future for GroupRun<'scope, Fut, R, E>
where
    Fut: Future<Output = Result<R, E>>,
{
    type Output = Result<R, TaskGroupError<E>>;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            this.group.phase.get() != Phase::Done,
            "`TaskGroup::run` polled after completion"
        );
        this.ready.set_parent(cx.waker());
        let w = this.group.waker.take();
        this.group.waker.set(match w {
            Some(w) if w.will_wake(cx.waker()) => Some(w),
            _ => Some(cx.waker().clone()),
        });

        if this.body.is_none() && this.parent_cancelled.is_none() {
            // The body is done: the group's wait for its children is the
            // await point that takes the caller's cancellation.
            if let Err(c) = cancel::check() {
                this.parent_cancelled = Some(c);
                this.abort();
            }
        }

        match this.poll_body(cx) {
            BodyPoll::Pending => {}
            BodyPoll::Done(r) => {
                this.body = None;
                if this.parent_delivered && this.parent_cancelled.is_none() {
                    // The caller's cancellation propagated out of the body
                    // (its output keeps it alive): the group is cancelled,
                    // and hands that very cancellation on.
                    this.parent_cancelled = cancel::live_delivery();
                }
                let cancelled = this.body_scope.ends_cancelled() || this.parent_cancelled.is_some();
                match r {
                    Ok(v) if !cancelled => this.body_out = Some(v),
                    Ok(_) => {}
                    Err(_) if cancelled => {}
                    Err(e) => {
                        this.failures.push(Failure::Error(e));
                        this.abort();
                    }
                }
            }
            BodyPoll::Dropped => this.body = None,
        }
        if this.parent_cancelled.is_some() {
            this.abort();
        }

        this.poll_children();

        if this.body.is_some() || this.running > 0 {
            return Poll::Pending;
        }
        this.group.phase.set(Phase::Done);
        this.group.waker.take();
        Poll::Ready(if !this.failures.is_empty() {
            Err(TaskGroupError::Failed(std::mem::take(&mut this.failures)))
        } else if let Some(c) = this.parent_cancelled.take() {
            Err(TaskGroupError::Cancelled(c))
        } else {
            match this.body_out.take() {
                Some(v) => Ok(v),
                None => Err(TaskGroupError::Cancelled(Cancelled::new())),
            }
        })
    }
}

impl<Fut, R, E> Drop for GroupRun<'_, Fut, R, E> {
    fn drop(&mut self) {
        self.group.phase.set(Phase::Done);
        self.group.waker.take();
        for c in self.children.iter().flatten() {
            c.end_cancelled();
        }
        for c in self.group.incoming.borrow_mut().drain(..) {
            c.end_cancelled();
        }
    }
}
