//! What every queue kind shares: the counting, the waiting, shutdown and
//! `join`, and the futures of `get`, `put` and `join`.
//!
//! One lock guards everything a `put` or a `get` changes: the items, the
//! waiting getters and putters, and the promises made to them. An
//! uncontended `put` or `get` is one turn of that lock — one atomic
//! compare-and-swap to take it, a plain store to release it — and a wait
//! adds a turn to queue and one to collect. (The queues waited on two of
//! aio-sync's semaphores before, one for items and one for free slots:
//! twice the atomic steps per item, since each semaphore and the store
//! had its own word to update.)
//!
//! A put made while getters wait promises its item to the first of them,
//! so a later `get_nowait` cannot take it first; a getter that gives up
//! after the promise passes it on. The item itself stays in the store
//! until the getter runs, which is why a priority queue still gives the
//! smallest item at that moment, as asyncio's does. A slot freed while
//! putters wait is promised the same way.
//!
//! Nothing runs user code under the lock except a priority queue's `Ord`:
//! wakers are woken, and items dropped, after it is released.

use crate::loom::const_unless_loom;
use crate::loom::sync::SpinLock;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use aio_core::Cancelled;
use aio_core::cancel;
use aio_sync::raw::{NotifyWait, Outcome, WaitList};

use crate::error::{GetError, PutError, TaskDoneError, TryGetError, TryPutError};
use crate::store::Store;

/// A queue of any kind: its store and everything around it.
pub(crate) struct Base<T> {
    state: SpinLock<State<T>>,
    tally: Tally,
}

/// What the lock guards.
struct State<T> {
    store: Store<T>,
    getters: WaitList,
    putters: WaitList,
    /// Stored items promised to served getters that have not run yet.
    /// It can exceed the store's length after an immediate shutdown
    /// dropped the items (those getters then find none).
    promised_items: usize,
    /// Free slots promised to served putters that have not run yet.
    promised_slots: usize,
    shut_down: bool,
}

/// What `join`, `qsize`-free reads and `is_shut_down` need without the
/// lock (and without the item type).
struct Tally {
    maxsize: usize,
    /// Items put and not yet marked done. Written only under the lock (a
    /// load and a store, no read-modify-write), read without it.
    unfinished: AtomicUsize,
    /// Mirrors `State::shut_down`, for lock-free reads.
    shut_down: AtomicBool,
    joiners: aio_sync::raw::Notify,
}

impl<T> State<T> {
    /// Stored items nobody has been promised.
    #[inline(always)]
    fn free_items(&self) -> usize {
        self.store.len().saturating_sub(self.promised_items)
    }

    /// Whether a slot is free that nobody has been promised.
    #[inline(always)]
    fn free_slot(&self, maxsize: usize) -> bool {
        maxsize == 0 || self.store.len() + self.promised_slots < maxsize
    }

    /// Promises a free item to the first waiting getter; returns its waker.
    #[inline(always)]
    fn promise_item(&mut self) -> Option<Waker> {
        if self.free_items() == 0 {
            return None;
        }
        let w = self.getters.pop(Outcome::Granted)?;
        self.promised_items += 1;
        Some(w)
    }

    /// Promises a free slot to the first waiting putter; returns its waker.
    #[inline(always)]
    fn promise_slot(&mut self, maxsize: usize) -> Option<Waker> {
        if self.putters.is_empty() || !self.free_slot(maxsize) {
            return None;
        }
        let w = self.putters.pop(Outcome::Granted)?;
        self.promised_slots += 1;
        Some(w)
    }
}

#[inline(always)]
fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T> Base<T> {
    const_unless_loom! {
        pub(crate) const fn new(maxsize: usize, store: Store<T>) -> Base<T> {
            Base {
                state: SpinLock::new(State {
                    store,
                    getters: WaitList::new(),
                    putters: WaitList::new(),
                    promised_items: 0,
                    promised_slots: 0,
                    shut_down: false,
                }),
                tally: Tally {
                    maxsize,
                    unfinished: AtomicUsize::new(0),
                    shut_down: AtomicBool::new(false),
                    joiners: aio_sync::raw::Notify::new(),
                },
            }
        }
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.tally.maxsize
    }

    /// The number of stored items, promised or not.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().store.len()
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.tally.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.tally.unfinished()
    }

    /// Stores an item whose slot is secured and promises it to a waiting
    /// getter, if any. Under the lock; the caller wakes the returned waker.
    // `always`: generic, so it is compiled in the caller's crate, where a
    // plain `inline` was not followed (the criterion queue bench called
    // the push and the store out of line).
    #[inline(always)]
    fn push_locked(&self, st: &mut State<T>, item: T) -> Option<Waker> {
        st.store.push(item);
        // Only lock holders write it: no read-modify-write needed.
        let n = self.tally.unfinished.load(Ordering::Relaxed);
        self.tally.unfinished.store(n + 1, Ordering::Release);
        st.promise_item()
    }

    /// Takes the next item for a getter entitled to one (a free item, or
    /// one promised to it) and promises the slot it frees to a waiting
    /// putter. `None` only when an immediate shutdown dropped the items.
    #[inline(always)]
    fn take_locked(&self, st: &mut State<T>) -> (Option<T>, Option<Waker>) {
        let item = st.store.pop();
        let w = if item.is_some() {
            st.promise_slot(self.tally.maxsize)
        } else {
            None
        };
        (item, w)
    }

    pub(crate) fn put_nowait(&self, item: T) -> Result<(), TryPutError<T>> {
        let mut st = self.state.lock();
        if st.shut_down {
            return Err(TryPutError::ShutDown(item));
        }
        // Waiting putters come first (a free slot is promised to them).
        if !st.free_slot(self.tally.maxsize) || !st.putters.is_empty() {
            return Err(TryPutError::Full(item));
        }
        let w = self.push_locked(&mut st, item);
        drop(st);
        wake(w);
        Ok(())
    }

    pub(crate) fn get_nowait(&self) -> Result<T, TryGetError> {
        let mut st = self.state.lock();
        if st.free_items() == 0 {
            return Err(if st.shut_down {
                TryGetError::ShutDown
            } else {
                TryGetError::Empty
            });
        }
        let (item, w) = self.take_locked(&mut st);
        drop(st);
        wake(w);
        item.ok_or(TryGetError::ShutDown)
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let st = self.state.lock();
        let n = self.tally.unfinished.load(Ordering::Relaxed);
        if n == 0 {
            return Err(TaskDoneError);
        }
        self.tally.unfinished.store(n - 1, Ordering::Release);
        drop(st);
        if n == 1 {
            self.tally.joiners.notify_all();
        }
        Ok(())
    }

    /// asyncio 3.13's `shutdown`: refuses puts from now on and wakes every
    /// waiter with the refusal (getters promised an item keep it); with
    /// `immediate`, drops every stored item, counting each as done.
    pub(crate) fn shutdown(&self, immediate: bool) {
        let mut wakers = Vec::new();
        let mut st = self.state.lock();
        st.shut_down = true;
        self.tally.shut_down.store(true, Ordering::Release);
        let dropped = immediate.then(|| st.store.take_all());
        let mut joined = false;
        if let Some(items) = &dropped {
            let n = self.tally.unfinished.load(Ordering::Relaxed);
            let left = n.saturating_sub(items.len());
            self.tally.unfinished.store(left, Ordering::Release);
            joined = left == 0 && n != 0;
        }
        st.getters.pop_all(Outcome::Closed, &mut wakers);
        st.putters.pop_all(Outcome::Closed, &mut wakers);
        drop(st);
        // Items and wakers may run user code: not under the lock.
        drop(dropped);
        aio_sync::raw::wake_all(&mut wakers);
        if joined {
            self.tally.joiners.notify_all();
        }
    }

    pub(crate) fn get(&self) -> QueueGet<'_, T> {
        QueueGet { base: self, key: None }
    }

    pub(crate) fn put(&self, item: T) -> QueuePut<'_, T> {
        QueuePut {
            base: self,
            item: Some(item),
            key: None,
        }
    }

    pub(crate) fn join(&self) -> QueueJoin<'_> {
        QueueJoin {
            tally: &self.tally,
            waiter: self.tally.joiners.waiter(),
        }
    }
}

impl Tally {
    fn unfinished(&self) -> usize {
        self.unfinished.load(Ordering::Acquire)
    }
}

/// Future of `get` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct QueueGet<'a, T> {
    base: &'a Base<T>,
    /// Our place among the waiting getters, while queued.
    key: Option<usize>,
}

impl<T> fmt::Debug for QueueGet<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueGet").field("queued", &self.key.is_some()).finish()
    }
}

impl<T> QueueGet<'_, T> {
    /// Leaves the waiting getters; an item promised to us passes to the
    /// next one.
    fn leave(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut st = self.base.state.lock();
        let w = match st.getters.remove(key) {
            Some(Outcome::Granted) => {
                st.promised_items -= 1;
                st.promise_item()
            }
            _ => None,
        };
        drop(st);
        wake(w);
    }
}

impl<T> Future for QueueGet<'_, T> {
    type Output = Result<T, GetError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.leave();
            return Poll::Ready(Err(GetError::Cancelled(c)));
        }
        let base = this.base;
        let mut st = base.state.lock();
        if let Some(key) = this.key {
            match st.getters.poll(key, cx.waker()) {
                None => return Poll::Pending,
                Some(Outcome::Closed) => {
                    this.key = None;
                    return Poll::Ready(Err(GetError::ShutDown));
                }
                Some(Outcome::Granted) => {
                    this.key = None;
                    st.promised_items -= 1;
                }
            }
        } else if st.free_items() == 0 {
            if st.shut_down {
                return Poll::Ready(Err(GetError::ShutDown));
            }
            this.key = Some(st.getters.push(cx.waker().clone()));
            return Poll::Pending;
        }
        let (item, w) = base.take_locked(&mut st);
        drop(st);
        wake(w);
        Poll::Ready(item.ok_or(GetError::ShutDown))
    }
}

impl<T> Drop for QueueGet<'_, T> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Future of `put` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct QueuePut<'a, T> {
    base: &'a Base<T>,
    item: Option<T>,
    /// Our place among the waiting putters, while queued.
    key: Option<usize>,
}

// The item is never pinned: it is only moved out whole.
impl<T> Unpin for QueuePut<'_, T> {}

impl<T> fmt::Debug for QueuePut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuePut").field("queued", &self.key.is_some()).finish()
    }
}

impl<T> QueuePut<'_, T> {
    #[track_caller]
    fn take_item(&mut self) -> T {
        self.item.take().expect("`put` polled after completion")
    }

    /// Leaves the waiting putters; a slot promised to us passes to the
    /// next one.
    fn leave(&mut self) {
        let Some(key) = self.key.take() else { return };
        let base = self.base;
        let mut st = base.state.lock();
        let w = match st.putters.remove(key) {
            Some(Outcome::Granted) => {
                st.promised_slots -= 1;
                st.promise_slot(base.tally.maxsize)
            }
            _ => None,
        };
        drop(st);
        wake(w);
    }
}

impl<T> Future for QueuePut<'_, T> {
    type Output = Result<(), PutError<T>>;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.item.is_none() {
            panic!("`put` polled after completion");
        }
        if let Err(c) = cancel::check() {
            this.leave();
            return Poll::Ready(Err(PutError::Cancelled(c, this.take_item())));
        }
        let base = this.base;
        let mut st = base.state.lock();
        let promised = match this.key {
            Some(key) => match st.putters.poll(key, cx.waker()) {
                None => return Poll::Pending,
                Some(outcome) => {
                    this.key = None;
                    if outcome == Outcome::Granted {
                        st.promised_slots -= 1;
                    }
                    true
                }
            },
            None => false,
        };
        if st.shut_down {
            // A slot promised to us is not passed on: every putter is
            // refused from now on.
            drop(st);
            return Poll::Ready(Err(PutError::ShutDown(this.take_item())));
        }
        if !promised && (!st.free_slot(base.tally.maxsize) || !st.putters.is_empty()) {
            this.key = Some(st.putters.push(cx.waker().clone()));
            return Poll::Pending;
        }
        let item = this.take_item();
        let w = base.push_locked(&mut st, item);
        drop(st);
        wake(w);
        Poll::Ready(Ok(()))
    }
}

impl<T> Drop for QueuePut<'_, T> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Future of `join` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct QueueJoin<'a> {
    tally: &'a Tally,
    waiter: NotifyWait<'a>,
}

impl fmt::Debug for QueueJoin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueJoin")
            .field("unfinished", &self.tally.unfinished())
            .finish()
    }
}

impl Future for QueueJoin<'_> {
    type Output = Result<(), Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.waiter.cancel();
            return Poll::Ready(Err(c));
        }
        let tally = this.tally;
        if !this.waiter.is_queued() && tally.unfinished() == 0 {
            return Poll::Ready(Ok(()));
        }
        this.waiter.poll_until(cx, || tally.unfinished() == 0).map(Ok)
    }
}
