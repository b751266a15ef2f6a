//! [`Future`]: asyncio's `Future`, a result slot bound to a loop that
//! callback code completes and async code awaits. It owns the slot's
//! state, its awaiters' wakers and its done callbacks. It is one type
//! with asyncio's whole API (over 700 lines, most of them its docs and
//! their examples), kept in one file so the slot's states read together.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::future::IntoFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::callback::CallbackCell;
use crate::cancel::{self, Cancelled};
use crate::event_loop::exception::ExceptionContext;
use crate::event_loop::{Loop, get_running_loop};

/// The error of an operation that the future's state does not allow:
/// asyncio's `InvalidStateError`.
///
/// [`Future::set_result`], [`set_exception`](Future::set_exception) on a
/// future that is already done, and [`Future::result`] or
/// [`exception`](Future::exception) on one that is not, return it (never
/// panic), with asyncio's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidStateError {
    msg: &'static str,
}

impl InvalidStateError {
    const RESULT_NOT_SET: InvalidStateError = InvalidStateError {
        msg: "Result is not set.",
    };
    const EXCEPTION_NOT_SET: InvalidStateError = InvalidStateError {
        msg: "Exception is not set.",
    };
    const FINISHED: InvalidStateError = InvalidStateError {
        msg: "invalid state: the future is already finished",
    };
    const CANCELLED: InvalidStateError = InvalidStateError {
        msg: "invalid state: the future is already cancelled",
    };
    const TAKEN: InvalidStateError = InvalidStateError {
        msg: "Result was already taken.",
    };
}

impl fmt::Display for InvalidStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.msg)
    }
}

impl Error for InvalidStateError {}

/// Why a [`Future`] gave no value: what asyncio's `result()` raises.
#[derive(Debug, Clone)]
pub enum FutureError {
    /// The future was cancelled (asyncio's `CancelledError`), or the task
    /// awaiting it was.
    Cancelled(Cancelled),
    /// The future was completed with [`Future::set_exception`].
    Exception(Rc<dyn Error>),
    /// The future is not done yet, or its result was already taken.
    InvalidState(InvalidStateError),
}

impl FutureError {
    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, FutureError::Cancelled(_))
    }

    /// The exception the future was completed with, if that is the error.
    pub fn into_exception(self) -> Option<Rc<dyn Error>> {
        match self {
            FutureError::Exception(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Cancelled> for FutureError {
    fn from(c: Cancelled) -> FutureError {
        FutureError::Cancelled(c)
    }
}

impl From<InvalidStateError> for FutureError {
    fn from(e: InvalidStateError) -> FutureError {
        FutureError::InvalidState(e)
    }
}

impl fmt::Display for FutureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled(c) => fmt::Display::fmt(c, f),
            FutureError::Exception(e) => fmt::Display::fmt(e, f),
            FutureError::InvalidState(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl Error for FutureError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            FutureError::Exception(e) => e.source(),
            _ => None,
        }
    }
}

/// Names a callback added with [`Future::add_done_callback`], for
/// [`Future::remove_done_callback`] (Rust closures have no identity to
/// compare, as asyncio compares callbacks). Unique in the process: handed
/// to another future, it removes nothing there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

type DoneCallback<T> = Box<dyn FnOnce(&Future<T>)>;

enum State<T> {
    Pending,
    Finished(T),
    /// Finished, and the value was moved out by `take_result`.
    Taken,
    Failed(Rc<dyn Error>),
    /// Holds a detached copy (not a delivery), so a kept future does not
    /// keep anyone's cancellation propagating.
    Cancelled(Cancelled),
}

impl<T> State<T> {
    fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Finished(_) | State::Taken | State::Failed(_) => "finished",
            State::Cancelled(_) => "cancelled",
        }
    }
}

/// The wakers of the awaiters parked on a pending future, one slot each,
/// tagged with the order they registered in. A dropped awaiter frees its
/// slot, so the table is as large as the most awaiters at once.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<(u64, Waker)>>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, seq: u64, w: Waker) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some((seq, w));
                i
            }
            None => {
                self.slots.push(Some((seq, w)));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) -> Option<(u64, Waker)> {
        let old = self.slots.get_mut(i).and_then(Option::take);
        if old.is_some() {
            self.free.push(i);
        }
        old
    }
}

struct Inner<T> {
    /// A handle that does not keep the loop open (as sockets hold theirs).
    lp: Loop,
    state: RefCell<State<T>>,
    waiters: RefCell<Slots>,
    /// Each with its place in the sequence and its [`CallbackId`].
    callbacks: RefCell<Vec<(u64, u64, DoneCallback<T>)>>,
    /// Numbers callbacks and awaiters in one sequence, so completion wakes
    /// and schedules them in the order they came (asyncio's awaiters are
    /// done callbacks too).
    next_seq: Cell<u64>,
    /// `result()`/`exception()` was called on the finished future: asyncio's
    /// "exception was never retrieved" check is off.
    retrieved: Cell<bool>,
}

impl<T> Inner<T> {
    fn next_seq(&self) -> u64 {
        let n = self.next_seq.get();
        self.next_seq.set(n + 1);
        n
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        if let State::Failed(e) = self.state.get_mut() {
            if !self.retrieved.get() {
                self.lp.core.report(ExceptionContext {
                    message: format!("Future exception was never retrieved: {e}"),
                    task: None,
                    panic: None,
                    error: None,
                });
            }
        }
    }
}

/// A result that will be set later, bound to a loop: asyncio's `Future`
/// (`loop.create_future()`), the tool for turning callback APIs into
/// awaitables.
///
/// A `Future` is a cheap handle (clones refer to the same future) and is
/// `!Send`: it belongs to the loop it was created on, whose thread is the
/// only one that may complete it. Callback code completes it once, with
/// [`set_result`](Future::set_result), [`set_exception`](Future::set_exception)
/// or [`cancel`](Future::cancel); async code awaits it, as many awaiters as
/// needed, each getting `Result<T, FutureError>` (`T: Clone`; see
/// [`take`](Future::take) otherwise). Done callbacks run on the loop, soon
/// after completion, never inside the call that completed it.
///
/// The exception is any error (`Rc<dyn Error>`: every awaiter gets the
/// same one); downcast it to get the concrete type back.
///
/// # Cancellation
/// Awaiting a future (`(&fut).await`, or `fut.await`) is an aio await
/// point. If the awaiting task is cancelled, or a `timeout` around the
/// await expires, while the future is pending, the future itself is
/// cancelled, as asyncio's `Task.cancel()` cancels the future its task
/// waits on: every other awaiter gets `Err(FutureError::Cancelled)` too,
/// and a later `set_result` returns [`InvalidStateError`] (the callback
/// side can check [`cancelled`](Future::cancelled) to stop early). The
/// cancelled awaiter gets its own `Cancelled` back, so `?` propagates it.
/// Await [`shield(&fut)`](crate::shield) to leave the future alone: the
/// shield returns `Err(Cancelled)` and the future stays pending. An
/// awaiter dropped midway just unregisters.
///
/// Awaiting a future that was cancelled (by [`cancel`](Future::cancel),
/// or through another awaiter) raises its cancellation in the awaiting
/// task, as asyncio's `await fut` raises `CancelledError`: a task that
/// lets the `Err(FutureError::Cancelled)` escape (returns it, or an error
/// holding it) ends cancelled, with the future's message; one that
/// handles it keeps what it returns.
///
/// # Examples
/// Bridging a callback API:
/// ```
/// use std::io;
///
/// // A callback-style API: it calls `on_done` later, on the loop.
/// fn lookup(name: &str, on_done: impl FnOnce(io::Result<u32>) + 'static) {
///     let known = name == "aio";
///     let later = aio_core::get_running_loop().call_later(0.01, move || {
///         on_done(if known { Ok(42) } else { Err(io::ErrorKind::NotFound.into()) })
///     });
///     later.expect("0.01 is a number");
/// }
///
/// // Its async version.
/// async fn lookup_async(name: &str) -> Result<u32, aio_core::FutureError> {
///     let fut = aio_core::Future::new();
///     let done = fut.clone();
///     lookup(name, move |r| {
///         // An error here means the awaiter was cancelled: nothing to do.
///         let _ = match r {
///             Ok(v) => done.set_result(v),
///             Err(e) => done.set_exception(e),
///         };
///     });
///     fut.await
/// }
///
/// aio_core::run(async {
///     assert_eq!(lookup_async("aio").await.unwrap(), 42);
///     let e = lookup_async("asyncio").await.unwrap_err().into_exception().unwrap();
///     assert_eq!(e.downcast_ref::<io::Error>().unwrap().kind(), io::ErrorKind::NotFound);
/// });
/// ```
pub struct Future<T> {
    inner: Rc<Inner<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Future<T> {
        Future {
            inner: self.inner.clone(),
        }
    }
}

/// Identity, as asyncio compares futures: two handles are equal when they
/// refer to the same future.
impl<T> PartialEq for Future<T> {
    fn eq(&self, other: &Future<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Eq for Future<T> {}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field("state", &self.inner.state.borrow().name())
            .field("callbacks", &self.inner.callbacks.borrow().len())
            .finish()
    }
}

impl<T: 'static> Future<T> {
    /// A pending future bound to the running loop (asyncio's
    /// `get_running_loop().create_future()`).
    ///
    /// # Panics
    /// When no aio loop runs on this thread; use
    /// [`Loop::create_future`] to bind one to a loop that is not running.
    #[track_caller]
    // A `Default` that panics outside a loop would surprise more than help.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Future<T> {
        Future::bound_to(&get_running_loop())
    }

    pub(crate) fn bound_to(lp: &Loop) -> Future<T> {
        Future {
            inner: Rc::new(Inner {
                lp: Loop::from_core_ptr(Rc::as_ptr(&lp.core)),
                state: RefCell::new(State::Pending),
                waiters: RefCell::new(Slots::default()),
                callbacks: RefCell::new(Vec::new()),
                next_seq: Cell::new(0),
                retrieved: Cell::new(false),
            }),
        }
    }

    /// The loop the future is bound to (asyncio's `get_loop()`). The
    /// handle does not keep the loop open.
    pub fn get_loop(&self) -> Loop {
        self.inner.lp.clone()
    }

    /// Whether the future is done: it has a result or an exception, or was
    /// cancelled.
    pub fn done(&self) -> bool {
        !matches!(*self.inner.state.borrow(), State::Pending)
    }

    /// Whether the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(*self.inner.state.borrow(), State::Cancelled(_))
    }

    /// Marks the future done with `value`, wakes its awaiters and
    /// schedules its done callbacks.
    ///
    /// # Errors
    /// [`InvalidStateError`] if the future is already done (`value` is
    /// dropped).
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError> {
        self.complete(State::Finished(value))
    }

    /// Marks the future done with an exception, which `result()` and every
    /// awaiter return as [`FutureError::Exception`].
    ///
    /// # Errors
    /// [`InvalidStateError`] if the future is already done.
    pub fn set_exception(&self, exception: impl Error + 'static) -> Result<(), InvalidStateError> {
        self.set_exception_rc(Rc::new(exception))
    }

    /// [`set_exception`](Future::set_exception) with an exception already
    /// shared: one taken from another future, or a `Box<dyn Error>`
    /// converted with `Rc::from`.
    ///
    /// # Errors
    /// [`InvalidStateError`] if the future is already done.
    pub fn set_exception_rc(&self, exception: Rc<dyn Error>) -> Result<(), InvalidStateError> {
        self.complete(State::Failed(exception))
    }

    /// Cancels the future: it becomes done and cancelled, its awaiters get
    /// `Err(FutureError::Cancelled)` and its done callbacks are scheduled.
    /// Returns `false` (and changes nothing) if it is already done.
    pub fn cancel(&self) -> bool {
        self.cancel_as(Cancelled::new())
    }

    /// [`cancel`](Future::cancel) with a message, carried by the
    /// `Cancelled` that `result()` and the awaiters return.
    pub fn cancel_with(&self, msg: impl Into<String>) -> bool {
        self.cancel_as(Cancelled::with_message(msg))
    }

    fn cancel_as(&self, c: Cancelled) -> bool {
        // As asyncio's: even a cancel that changes nothing counts as
        // looking at the exception.
        self.inner.retrieved.set(true);
        self.complete(State::Cancelled(c)).is_ok()
    }

    /// The future's result: asyncio's `result()`.
    ///
    /// # Errors
    /// [`FutureError::Exception`] if it was completed with an exception,
    /// [`FutureError::Cancelled`] if it was cancelled, and
    /// [`FutureError::InvalidState`] if it is not done yet ("Result is not
    /// set.") or its value was taken with [`take_result`](Future::take_result).
    pub fn result(&self) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let st = self.inner.state.borrow();
        match &*st {
            State::Pending => Err(InvalidStateError::RESULT_NOT_SET.into()),
            State::Finished(v) => {
                self.inner.retrieved.set(true);
                Ok(v.clone())
            }
            other => Err(self.error_of(other)),
        }
    }

    /// Like [`result`](Future::result), but moves the value out, so `T`
    /// need not be `Clone`. Later calls, and awaiters still waiting, get
    /// [`InvalidStateError`] ("Result was already taken.") instead of the
    /// value; an exception or a cancellation is returned each time.
    ///
    /// # Errors
    /// As [`result`](Future::result).
    pub fn take_result(&self) -> Result<T, FutureError> {
        let mut st = self.inner.state.borrow_mut();
        match &*st {
            State::Pending => Err(InvalidStateError::RESULT_NOT_SET.into()),
            State::Finished(_) => {
                self.inner.retrieved.set(true);
                match std::mem::replace(&mut *st, State::Taken) {
                    State::Finished(v) => Ok(v),
                    _ => unreachable!("matched above"),
                }
            }
            other => Err(self.error_of(other)),
        }
    }

    /// The exception the future was completed with, `None` if it has a
    /// result: asyncio's `exception()`.
    ///
    /// # Errors
    /// [`FutureError::Cancelled`] if it was cancelled, and
    /// [`FutureError::InvalidState`] if it is not done yet ("Exception is
    /// not set.").
    pub fn exception(&self) -> Result<Option<Rc<dyn Error>>, FutureError> {
        match &*self.inner.state.borrow() {
            State::Pending => Err(InvalidStateError::EXCEPTION_NOT_SET.into()),
            State::Cancelled(c) => Err(FutureError::Cancelled(c.clone())),
            State::Failed(e) => {
                self.inner.retrieved.set(true);
                Ok(Some(e.clone()))
            }
            State::Finished(_) | State::Taken => {
                self.inner.retrieved.set(true);
                Ok(None)
            }
        }
    }

    /// The error `result()` returns for a done future that has no value.
    fn error_of(&self, st: &State<T>) -> FutureError {
        self.inner.retrieved.set(true);
        match st {
            State::Failed(e) => FutureError::Exception(e.clone()),
            State::Cancelled(c) => FutureError::Cancelled(c.clone()),
            State::Taken => InvalidStateError::TAKEN.into(),
            State::Pending | State::Finished(_) => unreachable!("done futures without a value only"),
        }
    }

    /// Runs `f` on the loop (with `call_soon`) once the future is done; if
    /// it already is, schedules it now. Callbacks run in the order they
    /// were added, interleaved with the awaiters woken by the completion
    /// in the order those started waiting, and may read the future's
    /// state. On a closed loop nothing runs: the callback is dropped.
    ///
    /// The callback is handed the future: capturing a clone of it instead
    /// would make an `Rc` cycle that lives as long as the future is
    /// pending (forever, if it never completes).
    ///
    /// # Examples
    /// ```
    /// # aio_core::run(async {
    /// let fut = aio_core::Future::<u32>::new();
    /// fut.add_done_callback(|f| println!("done: {:?}", f.result()));
    /// fut.set_result(7).unwrap();
    /// aio_core::sleep(0).await?; // the callback runs on the next turn
    /// # Ok::<(), aio_core::Cancelled>(())
    /// # }).unwrap();
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<T>) + 'static) -> CallbackId {
        let seq = self.inner.next_seq();
        let id = crate::callback::done_callback_id();
        // It runs in the context current now, as asyncio's callbacks do.
        let ctx = crate::contextvars::current();
        let f = move |fut: &Future<T>| crate::contextvars::run_in(ctx, || f(fut));
        if self.done() {
            self.schedule(Box::new(f));
        } else {
            self.inner.callbacks.borrow_mut().push((seq, id, Box::new(f)));
        }
        CallbackId(id)
    }

    /// Removes a callback that has not been scheduled yet; returns whether
    /// it was there. Once the future is done its callbacks are scheduled,
    /// and removing them does nothing, as in asyncio.
    pub fn remove_done_callback(&self, id: CallbackId) -> bool {
        let removed = {
            let mut cbs = self.inner.callbacks.borrow_mut();
            cbs.iter().position(|(_, i, _)| *i == id.0).map(|at| cbs.remove(at))
        };
        removed.is_some()
    }

    /// Waits for the future and moves its result out (as
    /// [`take_result`](Future::take_result)), for a `T` that is not
    /// `Clone`. Awaiting the future itself needs `T: Clone`.
    ///
    /// # Cancellation
    /// As awaiting the future (see [`Future`]): cancelling the awaiter
    /// cancels the future.
    pub fn take(&self) -> FutureTake<T> {
        FutureTake {
            waiter: Waiter::new(self.clone()),
        }
    }

    fn complete(&self, new: State<T>) -> Result<(), InvalidStateError> {
        {
            let mut st = self.inner.state.borrow_mut();
            match *st {
                State::Pending => {}
                State::Cancelled(_) => return Err(InvalidStateError::CANCELLED),
                _ => return Err(InvalidStateError::FINISHED),
            }
            *st = new;
        }
        // The future is done from here on, so no awaiter touches its slot
        // again.
        let slots = std::mem::take(&mut *self.inner.waiters.borrow_mut());
        let callbacks = std::mem::take(&mut *self.inner.callbacks.borrow_mut());
        let mut wakers: Vec<(u64, Waker)> = slots.slots.into_iter().flatten().collect();
        wakers.sort_unstable_by_key(|w| w.0);
        let mut wakers = wakers.into_iter().peekable();
        for (seq, _, cb) in callbacks {
            while let Some((_, w)) = wakers.next_if(|w| w.0 < seq) {
                w.wake();
            }
            self.schedule(cb);
        }
        wakers.for_each(|(_, w)| w.wake());
        Ok(())
    }

    fn schedule(&self, cb: DoneCallback<T>) {
        let lp = &self.inner.lp;
        if lp.is_closed() {
            // Nothing would ever run it (and queued, it would keep the
            // loop's core alive through this future).
            return;
        }
        let me = self.clone();
        lp.core.call_soon_rc(CallbackCell::rc(move || cb(&me)));
    }
}

/// An awaiter's registration on a future; unregisters when dropped.
struct Waiter<T> {
    fut: Future<T>,
    slot: Option<usize>,
}

impl<T: 'static> Waiter<T> {
    fn new(fut: Future<T>) -> Waiter<T> {
        Waiter { fut, slot: None }
    }

    /// `Ready(Ok(()))` once the future is done; `Ready(Err)` (and the
    /// future cancelled) if the awaiter was cancelled first.
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Cancelled>> {
        if let Err(c) = cancel::check() {
            self.unregister();
            // asyncio: cancelling the task that awaits a future cancels
            // the future. It keeps a copy; the delivery itself goes back
            // to the awaiter. A future already done keeps its outcome.
            if !self.fut.done() {
                self.fut.cancel_as(c.detached());
            }
            return Poll::Ready(Err(c));
        }
        if self.fut.done() {
            self.slot = None;
            return Poll::Ready(Ok(()));
        }
        let inner = &self.fut.inner;
        let stale = {
            let mut ws = inner.waiters.borrow_mut();
            match self.slot.and_then(|i| ws.slots.get_mut(i)) {
                Some(Some((_, w))) if w.will_wake(cx.waker()) => None,
                Some(Some((_, w))) => Some(std::mem::replace(w, cx.waker().clone())),
                _ => {
                    self.slot = Some(ws.insert(inner.next_seq(), cx.waker().clone()));
                    None
                }
            }
        };
        // Dropped outside the borrow: a waker's drop is foreign code.
        drop(stale);
        Poll::Pending
    }
}

impl<T> Waiter<T> {
    fn unregister(&mut self) {
        if let Some(i) = self.slot.take() {
            // A done future already emptied its slots (and never reuses them).
            if matches!(*self.fut.inner.state.borrow(), State::Pending) {
                let old = self.fut.inner.waiters.borrow_mut().remove(i);
                // Dropped outside the borrow: a waker's drop is foreign code.
                drop(old);
            }
        }
    }
}

impl<T> Drop for Waiter<T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Future of awaiting a [`Future`] (`(&fut).await`, `fut.await`).
///
/// # Cancellation
/// If the awaiter is cancelled while the future is pending, the future is
/// cancelled (asyncio's rule; every awaiter gets `Err(Cancelled)`) and
/// this one returns its own `Cancelled`. A cancellation that arrives
/// after the future is done leaves the future as it is. Await
/// [`shield(&fut)`](crate::shield) to leave the future pending instead;
/// dropping this future only unregisters it.
#[must_use = "futures do nothing unless awaited"]
pub struct FutureWait<T> {
    waiter: Waiter<T>,
}

impl<T> fmt::Debug for FutureWait<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FutureWait").field(&self.waiter.fut).finish()
    }
}

impl<T: Clone + 'static> std::future::Future for FutureWait<T> {
    type Output = Result<T, FutureError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.waiter.poll_done(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(c)) => Poll::Ready(Err(FutureError::Cancelled(c))),
            Poll::Ready(Ok(())) => Poll::Ready(raised(this.waiter.fut.result())),
        }
    }
}

/// The outcome of an awaited future, its cancellation raised in the
/// awaiting task: if that propagates out of the task, the task ends
/// cancelled, as asyncio's does when `await fut` raises `CancelledError`.
fn raised<T>(r: Result<T, FutureError>) -> Result<T, FutureError> {
    match r {
        Err(FutureError::Cancelled(c)) => Err(FutureError::Cancelled(cancel::raise_in_task(&c))),
        r => r,
    }
}

impl<T: Clone + 'static> IntoFuture for &Future<T> {
    type Output = Result<T, FutureError>;
    type IntoFuture = FutureWait<T>;

    /// Awaits the future, keeping the handle.
    fn into_future(self) -> FutureWait<T> {
        FutureWait {
            waiter: Waiter::new(self.clone()),
        }
    }
}

impl<T: Clone + 'static> IntoFuture for Future<T> {
    type Output = Result<T, FutureError>;
    type IntoFuture = FutureWait<T>;

    fn into_future(self) -> FutureWait<T> {
        FutureWait {
            waiter: Waiter::new(self),
        }
    }
}

/// Future of [`Future::take`].
///
/// # Cancellation
/// As [`FutureWait`].
#[must_use = "futures do nothing unless awaited"]
pub struct FutureTake<T> {
    waiter: Waiter<T>,
}

impl<T> fmt::Debug for FutureTake<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FutureTake").field(&self.waiter.fut).finish()
    }
}

impl<T: 'static> std::future::Future for FutureTake<T> {
    type Output = Result<T, FutureError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.waiter.poll_done(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(c)) => Poll::Ready(Err(FutureError::Cancelled(c))),
            Poll::Ready(Ok(())) => Poll::Ready(raised(this.waiter.fut.take_result())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future as _;

    #[test]
    fn dropped_awaiters_free_their_slots() {
        crate::run(async {
            let fut = Future::<u8>::new();
            let noop = Waker::noop();
            let mut cx = Context::from_waker(noop);
            for _ in 0..100 {
                let mut w = std::pin::pin!((&fut).into_future());
                assert!(w.as_mut().poll(&mut cx).is_pending());
            }
            assert_eq!(fut.inner.waiters.borrow().slots.len(), 1);
            let mut a = Box::pin((&fut).into_future());
            let mut b = Box::pin((&fut).into_future());
            assert!(a.as_mut().poll(&mut cx).is_pending() && b.as_mut().poll(&mut cx).is_pending());
            drop(a);
            fut.set_result(1).unwrap();
            assert!(matches!(b.as_mut().poll(&mut cx), Poll::Ready(Ok(1))));
        });
    }
}
