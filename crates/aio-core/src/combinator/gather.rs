//! `gather` and `gather_settled`: run futures concurrently inside the
//! calling task and collect their results in argument order.
//!
//! Each child runs in its own cancel scope, a boundary: a cancellation of
//! the caller is taken by the gather itself, which then cancels every
//! child, waits for them to finish their clean-up, and returns
//! `Err(Cancelled)`. In `gather`, the first child error cancels the
//! others the same way and is returned once they are done.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::ready::ReadySet;
use crate::cancel::{self, Cancelled, Scope};
use crate::contextvars::ContextSlot;

pin_project! {
    /// A child slot: the future, then its output.
    #[doc(hidden)]
    #[project = MaybeDoneProj]
    #[project_replace = MaybeDoneReplace]
    pub enum MaybeDone<F: Future> {
        Running { #[pin] fut: F },
        Done { out: F::Output },
        Gone,
    }
}

impl<F: Future> MaybeDone<F> {
    /// Polls a running child; keeps a finished output in place.
    fn poll_store(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let MaybeDoneProj::Running { fut } = self.as_mut().project() {
            let out = std::task::ready!(fut.poll(cx));
            self.set(MaybeDone::Done { out });
        }
        Poll::Ready(())
    }

    /// Drops the future or the output where it is.
    fn drop_in_place(mut self: Pin<&mut Self>) {
        self.set(MaybeDone::Gone);
    }

    /// Moves a finished output out (a running future stays where it is).
    fn take(self: Pin<&mut Self>) -> Option<F::Output> {
        if !matches!(*self, MaybeDone::Done { .. }) {
            return None;
        }
        match self.project_replace(MaybeDone::Gone) {
            MaybeDoneReplace::Done { out } => Some(out),
            _ => unreachable!("checked above"),
        }
    }
}

/// Polls a fail-fast child: `Err` is taken out and returned.
fn poll_fail_fast<F, T, E>(mut m: Pin<&mut MaybeDone<F>>, cx: &mut Context<'_>) -> Poll<Result<(), E>>
where
    F: Future<Output = Result<T, E>>,
{
    std::task::ready!(m.as_mut().poll_store(cx));
    if matches!(*m, MaybeDone::Done { out: Err(_) }) {
        if let MaybeDoneReplace::Done { out: Err(e) } = m.project_replace(MaybeDone::Gone) {
            return Poll::Ready(Err(e));
        }
    }
    Poll::Ready(Ok(()))
}

fn take_ok<F, T, E>(m: Pin<&mut MaybeDone<F>>) -> T
where
    F: Future<Output = Result<T, E>>,
{
    match m.take() {
        Some(Ok(v)) => v,
        _ => unreachable!("gather completed with a child missing its value"),
    }
}

fn take_any<F: Future>(m: Pin<&mut MaybeDone<F>>) -> F::Output {
    m.take()
        .expect("gather_settled completed with a child missing its output")
}

/// The children of a join, however they are stored.
#[doc(hidden)]
pub trait Kids {
    /// What the join returns when every child succeeded.
    type Ok;
    /// What a failing child (fail-fast) or a cancellation produces.
    type Err: From<Cancelled>;
    fn count(&self) -> usize;
    /// Polls child `i`; `Err` only in fail-fast mode.
    fn poll_kid(self: Pin<&mut Self>, i: usize, cx: &mut Context<'_>) -> Poll<Result<(), Self::Err>>;
    /// Drops child `i` (its future or its output).
    fn drop_kid(self: Pin<&mut Self>, i: usize);
    /// Collects every output.
    fn take_all(self: Pin<&mut Self>) -> Self::Ok;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KidState {
    Running,
    Finished,
}

/// The join's bookkeeping for one child.
struct Kid {
    state: KidState,
    /// The child's context variables: a copy of the context the join was
    /// created in (asyncio's gather wraps each child in a task, which copies
    /// it), so a child's `set` is not seen by the caller or its siblings.
    vars: ContextSlot,
}

pin_project! {
    /// The engine of [`gather`], [`gather_settled`] and the `gather!` macros.
    #[must_use = "futures do nothing unless awaited"]
    pub struct Join<K: Kids> {
        #[pin]
        kids: K,
        book: Book<K::Err>,
    }
}

/// A join's bookkeeping (nothing of it is pinned).
struct Book<E> {
    ready: ReadySet,
    scopes: Box<[Scope]>,
    state: Box<[Kid]>,
    remaining: usize,
    failure: Option<E>,
    cancelled: Option<Cancelled>,
    done: bool,
}

impl<K: Kids> Join<K> {
    #[doc(hidden)]
    pub fn new(kids: K) -> Join<K> {
        let n = kids.count();
        let mut ready = ReadySet::with_capacity(n);
        for _ in 0..n {
            ready.add();
        }
        Join {
            kids,
            book: Book {
                ready,
                scopes: (0..n).map(|_| Scope::boundary()).collect(),
                state: {
                    let vars = crate::contextvars::current();
                    (0..n)
                        .map(|_| Kid {
                            state: KidState::Running,
                            vars: ContextSlot::new(vars.clone()),
                        })
                        .collect()
                },
                remaining: n,
                failure: None,
                cancelled: None,
                done: false,
            },
        }
    }
}

impl<K: Kids> std::fmt::Debug for Join<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join")
            .field("children", &self.book.state.len())
            .field("remaining", &self.book.remaining)
            .finish()
    }
}

impl<K: Kids> Future for Join<K> {
    type Output = Result<K::Ok, K::Err>;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let projected = self.project();
        let mut kids = projected.kids;
        let this = projected.book;
        assert!(!this.done, "`gather` polled after completion");

        if this.failure.is_none() && this.cancelled.is_none() {
            if let Err(c) = cancel::check() {
                this.cancelled = Some(c);
                cancel_running(&this.scopes, &this.state, &this.ready, usize::MAX);
            }
        }
        this.ready.set_parent(cx.waker());
        loop {
            let batch = this.ready.take();
            if batch.is_empty() {
                this.ready.recycle(batch);
                break;
            }
            for &i in &batch {
                if this.state[i].state == KidState::Running && this.step(kids.as_mut(), i) {
                    this.state[i].state = KidState::Finished;
                    this.state[i].vars.clear();
                    this.remaining -= 1;
                }
            }
            this.ready.recycle(batch);
        }
        if this.remaining > 0 {
            return Poll::Pending;
        }
        this.done = true;
        Poll::Ready(if let Some(c) = this.cancelled.take() {
            Err(c.into())
        } else if let Some(e) = this.failure.take() {
            Err(e)
        } else {
            Ok(kids.take_all())
        })
    }
}

impl<E> Book<E> {
    /// Polls running child `i` once, in its scope and context; returns
    /// whether it finished (with a value, an error, or dropped because it
    /// ignores its cancellation). The first failure is kept and cancels
    /// the others.
    fn step<K: Kids<Err = E>>(&mut self, mut kids: Pin<&mut K>, i: usize) -> bool {
        let scope = &self.scopes[i];
        let was_pending = scope.is_pending();
        let seen = scope.deliveries();
        let mut kcx = Context::from_waker(self.ready.begin_poll(i));
        let res = {
            let _g = scope.enter();
            let _v = self.state[i].vars.enter();
            kids.as_mut().poll_kid(i, &mut kcx)
        };
        match res {
            Poll::Pending => {
                let ignores = was_pending && scope.is_pending() && scope.deliveries() == seen;
                if ignores {
                    // The child ignores cancellation: drop it.
                    scope.clear_pending();
                    kids.drop_kid(i);
                }
                ignores
            }
            Poll::Ready(Ok(())) => {
                if scope.ends_cancelled() {
                    // Its cancellation propagated (or was never delivered):
                    // its value does not count.
                    kids.drop_kid(i);
                }
                true
            }
            Poll::Ready(Err(e)) => {
                // An error that carries the child's own cancellation is that
                // cancellation, not a failure; any other error (one raised
                // while handling it) is.
                let failed = !scope.ends_cancelled();
                if failed && self.failure.is_none() && self.cancelled.is_none() {
                    self.failure = Some(e);
                    cancel_running(&self.scopes, &self.state, &self.ready, i);
                }
                true
            }
        }
    }
}

fn cancel_running(scopes: &[Scope], state: &[Kid], ready: &ReadySet, except: usize) {
    for (j, s) in scopes.iter().enumerate() {
        if j != except && state[j].state == KidState::Running {
            s.cancel(None);
            ready.wake(j);
        }
    }
}

// --- children in a vector ---------------------------------------------------------

/// Fail-fast children in a vector (`gather`).
#[doc(hidden)]
pub struct VecFailFast<F: Future>(Box<[MaybeDone<F>]>);
/// Settled children in a vector (`gather_settled`).
#[doc(hidden)]
pub struct VecSettled<F: Future>(Box<[MaybeDone<F>]>);

fn slot<F: Future>(v: &mut [MaybeDone<F>], i: usize) -> Pin<&mut MaybeDone<F>> {
    // SAFETY: the boxed slice is never reallocated, so its elements never
    // move; they are dropped in place.
    unsafe { Pin::new_unchecked(&mut v[i]) }
}

impl<F, T, E> Kids for VecFailFast<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<Cancelled>,
{
    type Ok = Vec<T>;
    type Err = E;
    fn count(&self) -> usize {
        self.0.len()
    }
    fn poll_kid(self: Pin<&mut Self>, i: usize, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        poll_fail_fast(slot(&mut self.get_mut().0, i), cx)
    }
    fn drop_kid(self: Pin<&mut Self>, i: usize) {
        slot(&mut self.get_mut().0, i).drop_in_place();
    }
    fn take_all(self: Pin<&mut Self>) -> Vec<T> {
        let v = &mut self.get_mut().0;
        (0..v.len()).map(|i| take_ok(slot(v, i))).collect()
    }
}

impl<F: Future> Kids for VecSettled<F> {
    type Ok = Vec<F::Output>;
    type Err = Cancelled;
    fn count(&self) -> usize {
        self.0.len()
    }
    fn poll_kid(self: Pin<&mut Self>, i: usize, cx: &mut Context<'_>) -> Poll<Result<(), Cancelled>> {
        slot(&mut self.get_mut().0, i).poll_store(cx).map(Ok)
    }
    fn drop_kid(self: Pin<&mut Self>, i: usize) {
        slot(&mut self.get_mut().0, i).drop_in_place();
    }
    fn take_all(self: Pin<&mut Self>) -> Vec<F::Output> {
        let v = &mut self.get_mut().0;
        (0..v.len()).map(|i| take_any(slot(v, i))).collect()
    }
}

// The vector kinds own their children through a `Box`, so they are `Unpin`.
impl<F: Future> Unpin for VecFailFast<F> {}
impl<F: Future> Unpin for VecSettled<F> {}

/// Runs every future concurrently and returns their values in argument
/// order: asyncio's `gather`. The first error cancels the other children
/// (cooperatively; they may clean up), and is returned once they finished.
///
/// The children run inside the calling task (no task is spawned), so they
/// may borrow from the caller. For futures of different types use
/// [`gather!`](crate::gather!).
///
/// # Cancellation
/// Cancelling the caller cancels every child; `gather` waits for them to
/// finish and returns `Err(Cancelled)` (converted into `E`). Dropping the
/// future drops the children.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// async fn square(x: u32) -> aio_core::Result<u32> {
///     aio_core::sleep(0.01).await?;
///     Ok(x * x)
/// }
/// let v = aio_core::gather([square(2), square(3), square(4)]).await?;
/// assert_eq!(v, [4, 9, 16]);
/// # Ok::<(), aio_core::Cancelled>(())
/// # }).unwrap();
/// ```
pub fn gather<I, T, E>(futs: I) -> Join<VecFailFast<<I::Item as IntoFuture>::IntoFuture>>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
    E: From<Cancelled>,
{
    Join::new(VecFailFast(
        futs.into_iter()
            .map(|f| MaybeDone::Running { fut: f.into_future() })
            .collect(),
    ))
}

/// Runs every future concurrently and returns all their outputs, errors
/// included, in argument order: asyncio's `gather(..., return_exceptions=True)`.
/// A failing child does not affect the others.
///
/// # Cancellation
/// Cancelling the caller cancels every child; once they finished,
/// `Err(Cancelled)` is returned.
pub fn gather_settled<I>(futs: I) -> Join<VecSettled<<I::Item as IntoFuture>::IntoFuture>>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    Join::new(VecSettled(
        futs.into_iter()
            .map(|f| MaybeDone::Running { fut: f.into_future() })
            .collect(),
    ))
}

// --- children in a tuple (the macros) --------------------------------------------

pin_project! {
    /// Fail-fast children in a tuple (`gather!`).
    #[doc(hidden)]
    pub struct TupleFailFast<T> {
        #[pin]
        kids: T,
    }
}

pin_project! {
    /// Settled children in a tuple (`gather_settled!`).
    #[doc(hidden)]
    pub struct TupleSettled<T> {
        #[pin]
        kids: T,
    }
}

impl<T> TupleFailFast<T> {
    #[doc(hidden)]
    pub fn new(kids: T) -> TupleFailFast<T> {
        TupleFailFast { kids }
    }
}

impl<T> TupleSettled<T> {
    #[doc(hidden)]
    pub fn new(kids: T) -> TupleSettled<T> {
        TupleSettled { kids }
    }
}

/// A pinned tuple of children, projected to each of them pinned.
trait PinTuple {
    type Pinned<'a>
    where
        Self: 'a;
    fn project_each(self: Pin<&mut Self>) -> Self::Pinned<'_>;
}

macro_rules! tuple_kids {
    ($( $F:ident $T:ident $i:tt ),+) => {
        impl<$($F: Future),+> PinTuple for ($(MaybeDone<$F>,)+) {
            type Pinned<'a> = ($(Pin<&'a mut MaybeDone<$F>>,)+) where Self: 'a;
            fn project_each(self: Pin<&mut Self>) -> Self::Pinned<'_> {
                // SAFETY: the tuple's fields are structurally pinned: a
                // pinned tuple is never moved, and its fields are only
                // reached through these pins (they are dropped in place,
                // never moved out: outputs leave by `project_replace`).
                let t = unsafe { self.get_unchecked_mut() };
                // SAFETY: as above.
                ($(unsafe { Pin::new_unchecked(&mut t.$i) },)+)
            }
        }

        impl<Er, $($F, $T),+> Kids for TupleFailFast<($(MaybeDone<$F>,)+)>
        where
            $($F: Future<Output = Result<$T, Er>>,)+
            Er: From<Cancelled>,
        {
            type Ok = ($($T,)+);
            type Err = Er;
            fn count(&self) -> usize {
                [$($i),+].len()
            }
            fn poll_kid(self: Pin<&mut Self>, i: usize, cx: &mut Context<'_>) -> Poll<Result<(), Er>> {
                let t = self.project().kids.project_each();
                match i {
                    $($i => poll_fail_fast(t.$i, cx),)+
                    _ => unreachable!(),
                }
            }
            fn drop_kid(self: Pin<&mut Self>, i: usize) {
                let t = self.project().kids.project_each();
                match i {
                    $($i => t.$i.drop_in_place(),)+
                    _ => unreachable!(),
                }
            }
            fn take_all(self: Pin<&mut Self>) -> Self::Ok {
                let t = self.project().kids.project_each();
                ($(take_ok(t.$i),)+)
            }
        }

        impl<$($F: Future),+> Kids for TupleSettled<($(MaybeDone<$F>,)+)> {
            type Ok = ($($F::Output,)+);
            type Err = Cancelled;
            fn count(&self) -> usize {
                [$($i),+].len()
            }
            fn poll_kid(self: Pin<&mut Self>, i: usize, cx: &mut Context<'_>) -> Poll<Result<(), Cancelled>> {
                let t = self.project().kids.project_each();
                match i {
                    $($i => t.$i.poll_store(cx).map(Ok),)+
                    _ => unreachable!(),
                }
            }
            fn drop_kid(self: Pin<&mut Self>, i: usize) {
                let t = self.project().kids.project_each();
                match i {
                    $($i => t.$i.drop_in_place(),)+
                    _ => unreachable!(),
                }
            }
            fn take_all(self: Pin<&mut Self>) -> Self::Ok {
                let t = self.project().kids.project_each();
                ($(take_any(t.$i),)+)
            }
        }
    };
}

tuple_kids!(F0 T0 0);
tuple_kids!(F0 T0 0, F1 T1 1);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4, F5 T5 5);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4, F5 T5 5, F6 T6 6);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4, F5 T5 5, F6 T6 6, F7 T7 7);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4, F5 T5 5, F6 T6 6, F7 T7 7, F8 T8 8);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4, F5 T5 5, F6 T6 6, F7 T7 7, F8 T8 8, F9 T9 9);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4, F5 T5 5, F6 T6 6, F7 T7 7, F8 T8 8, F9 T9 9, F10 T10 10);
tuple_kids!(F0 T0 0, F1 T1 1, F2 T2 2, F3 T3 3, F4 T4 4, F5 T5 5, F6 T6 6, F7 T7 7, F8 T8 8, F9 T9 9, F10 T10 10, F11 T11 11);

#[doc(hidden)]
pub fn maybe_done<F: IntoFuture>(f: F) -> MaybeDone<F::IntoFuture> {
    MaybeDone::Running { fut: f.into_future() }
}

/// Runs futures of different types concurrently and returns a tuple of
/// their values: asyncio's `gather(a, b, c)`. Every future's output is a
/// `Result<_, E>` with the same `E`, which must convert from
/// [`Cancelled`](crate::Cancelled). Up to 12 futures.
///
/// Semantics as [`gather`](fn@crate::gather): the first error cancels the rest.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let (a, b) = aio_core::gather!(async { Ok::<_, aio_core::Cancelled>(1) }, async { Ok("two") }).await?;
/// assert_eq!((a, b), (1, "two"));
/// # Ok::<(), aio_core::Cancelled>(())
/// # }).unwrap();
/// ```
#[macro_export]
macro_rules! gather {
    ($($f:expr),+ $(,)?) => {
        $crate::combinator::Join::new($crate::combinator::TupleFailFast::new(($($crate::combinator::maybe_done($f),)+)))
    };
}

/// Runs futures of different types concurrently and returns a tuple of
/// their outputs, errors included: asyncio's `gather(a, b,
/// return_exceptions=True)`. The outputs may be of any types. Up to 12.
///
/// Resolves to `Result<(O1, O2, ..), Cancelled>`: `Err` only when the
/// caller was cancelled.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let (a, b) = aio_core::gather_settled!(async { Err::<(), _>("boom") }, aio_core::sleep(0.001)).await?;
/// assert_eq!(a, Err("boom"));
/// assert!(b.is_ok());
/// # Ok::<(), aio_core::Cancelled>(())
/// # }).unwrap();
/// ```
#[macro_export]
macro_rules! gather_settled {
    ($($f:expr),+ $(,)?) => {
        $crate::combinator::Join::new($crate::combinator::TupleSettled::new(($($crate::combinator::maybe_done($f),)+)))
    };
}
