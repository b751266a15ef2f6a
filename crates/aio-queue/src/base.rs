//! What every queue kind shares: the counting, the waiting, shutdown and
//! `join`, and the futures of `get`, `put` and `join`.
//!
//! Two fair semaphores from aio-sync do the waiting. `items` counts the
//! items a `get` may take; `space` counts the free slots a `put` may fill
//! (bounded queues only). A `put` hands its item's permit straight to the
//! first waiting getter, so that item is reserved for it: a later
//! `get_nowait` cannot take it first, and a getter cancelled before it ran
//! passes the reservation on. The item itself stays in the store until the
//! getter runs, which is why a priority queue still gives the smallest item
//! at that moment, as asyncio's does.

use crate::loom::const_unless_loom;
use crate::loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use aio_core::Cancelled;
use aio_core::cancel;
use aio_sync::raw::{NotifyWait, RawAcquire, RawSemaphore, TryAcquireError};

use crate::error::{GetError, PutError, TaskDoneError, TryGetError, TryPutError};
use crate::store::Store;

const SHUT_DOWN: u8 = 1;
const IMMEDIATE: u8 = 2;

/// The storage-independent half of a queue.
/// Keeps what producers and consumers on different threads write apart
/// from each other and from the read-mostly fields (no false sharing).
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

pub(crate) struct Base {
    items: Padded<RawSemaphore>,
    space: Padded<RawSemaphore>,
    unfinished: Padded<AtomicUsize>,
    joiners: aio_sync::raw::Notify,
    maxsize: usize,
    shutdown: AtomicU8,
}

impl Base {
    const_unless_loom! {
        pub(crate) const fn new(maxsize: usize) -> Base {
            let slots = if maxsize < aio_sync::raw::MAX_PERMITS {
                maxsize
            } else {
                aio_sync::raw::MAX_PERMITS
            };
            Base {
                items: Padded(RawSemaphore::new(0)),
                space: Padded(RawSemaphore::new(slots)),
                maxsize,
                unfinished: Padded(AtomicUsize::new(0)),
                joiners: aio_sync::raw::Notify::new(),
                shutdown: AtomicU8::new(0),
            }
        }
    }

    #[inline]
    fn bounded(&self) -> bool {
        self.maxsize != 0
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    #[inline]
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire) & SHUT_DOWN != 0
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.unfinished.load(Ordering::SeqCst)
    }

    /// Stores an item whose slot is secured and makes it available.
    // `always`: generic, so it is compiled in the caller's crate, where a
    // plain `inline` was not followed (the criterion queue bench called it,
    // and `is_shut_down`, out of line).
    #[inline(always)]
    fn push<T>(&self, store: &Store<T>, item: T) {
        // Count it before anyone can take it, so task_done never underflows.
        self.unfinished.fetch_add(1, Ordering::SeqCst);
        store.push(item);
        self.items.release();
        if self.shutdown.load(Ordering::Acquire) & IMMEDIATE != 0 {
            // Lost a race with `shutdown(immediate=true)` on another thread.
            self.drain(store);
        }
    }

    /// Takes an item whose permit was acquired; `None` only when an
    /// immediate shutdown drained it.
    #[inline(always)]
    fn pop<T>(&self, store: &Store<T>) -> Option<T> {
        let item = store.pop()?;
        if self.bounded() {
            self.space.release();
        }
        Some(item)
    }

    pub(crate) fn put_nowait<T>(&self, store: &Store<T>, item: T) -> Result<(), TryPutError<T>> {
        if self.is_shut_down() {
            return Err(TryPutError::ShutDown(item));
        }
        if self.bounded() {
            match self.space.try_acquire() {
                Ok(()) => {}
                Err(TryAcquireError::NoPermits) => return Err(TryPutError::Full(item)),
                Err(TryAcquireError::Closed) => return Err(TryPutError::ShutDown(item)),
            }
        }
        self.push(store, item);
        Ok(())
    }

    pub(crate) fn get_nowait<T>(&self, store: &Store<T>) -> Result<T, TryGetError> {
        match self.items.try_acquire() {
            Ok(()) => self.pop(store).ok_or(TryGetError::ShutDown),
            Err(TryAcquireError::NoPermits) => Err(TryGetError::Empty),
            Err(TryAcquireError::Closed) => Err(TryGetError::ShutDown),
        }
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut n = self.unfinished.load(Ordering::SeqCst);
        loop {
            if n == 0 {
                return Err(TaskDoneError);
            }
            match self
                .unfinished
                .compare_exchange_weak(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(actual) => n = actual,
            }
        }
        if n == 1 {
            self.joiners.notify_all();
        }
        Ok(())
    }

    pub(crate) fn shutdown<T>(&self, store: &Store<T>, immediate: bool) {
        let flags = if immediate { SHUT_DOWN | IMMEDIATE } else { SHUT_DOWN };
        self.shutdown.fetch_or(flags, Ordering::AcqRel);
        if immediate {
            self.drain(store);
        }
        self.items.close();
        self.space.close();
    }

    /// Drops every stored item, counting each as done (asyncio 3.13's
    /// `shutdown(immediate=True)`).
    fn drain<T>(&self, store: &Store<T>) {
        let mut dropped = false;
        while let Some(item) = store.pop() {
            drop(item);
            dropped = true;
            let _ = self
                .unfinished
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
        if dropped && self.unfinished() == 0 {
            self.joiners.notify_all();
        }
    }

    pub(crate) fn get<'a, T>(&'a self, store: &'a Store<T>) -> QueueGet<'a, T> {
        QueueGet {
            base: self,
            store,
            acq: self.items.acquire(),
        }
    }

    pub(crate) fn put<'a, T>(&'a self, store: &'a Store<T>, item: T) -> QueuePut<'a, T> {
        QueuePut {
            base: self,
            store,
            item: Some(item),
            acq: self.space.acquire(),
        }
    }

    pub(crate) fn join(&self) -> QueueJoin<'_> {
        QueueJoin {
            base: self,
            waiter: self.joiners.waiter(),
        }
    }
}

/// Future of `get` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct QueueGet<'a, T> {
    base: &'a Base,
    store: &'a Store<T>,
    acq: RawAcquire<'a>,
}

impl<T> fmt::Debug for QueueGet<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueGet")
            .field("queued", &self.acq.is_queued())
            .finish()
    }
}

impl<T> Future for QueueGet<'_, T> {
    type Output = Result<T, GetError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Err(c) = cancel::check() {
            this.acq.cancel();
            return Poll::Ready(Err(GetError::Cancelled(c)));
        }
        match this.acq.poll_acquire(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(this.base.pop(this.store).ok_or(GetError::ShutDown)),
            Poll::Ready(Err(_)) => Poll::Ready(Err(GetError::ShutDown)),
        }
    }
}

/// Future of `put` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct QueuePut<'a, T> {
    base: &'a Base,
    store: &'a Store<T>,
    item: Option<T>,
    acq: RawAcquire<'a>,
}

// The item is never pinned: it is only moved out whole.
impl<T> Unpin for QueuePut<'_, T> {}

impl<T> fmt::Debug for QueuePut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuePut")
            .field("queued", &self.acq.is_queued())
            .finish()
    }
}

impl<T> Future for QueuePut<'_, T> {
    type Output = Result<(), PutError<T>>;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let base = this.base;
        if let Err(c) = cancel::check() {
            this.acq.cancel();
            return Poll::Ready(Err(PutError::Cancelled(c, this.take_item())));
        }
        if base.is_shut_down() {
            this.acq.cancel();
            return Poll::Ready(Err(PutError::ShutDown(this.take_item())));
        }
        if base.bounded() {
            match this.acq.poll_acquire(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(PutError::ShutDown(this.take_item()))),
                Poll::Ready(Ok(())) => {
                    if base.is_shut_down() {
                        base.space.release();
                        return Poll::Ready(Err(PutError::ShutDown(this.take_item())));
                    }
                }
            }
        }
        let item = this.take_item();
        base.push(this.store, item);
        Poll::Ready(Ok(()))
    }
}

impl<T> QueuePut<'_, T> {
    #[track_caller]
    fn take_item(&mut self) -> T {
        self.item.take().expect("`put` polled after completion")
    }
}

/// Future of `join` on every queue kind.
#[must_use = "futures do nothing unless awaited"]
pub struct QueueJoin<'a> {
    base: &'a Base,
    waiter: NotifyWait<'a>,
}

impl fmt::Debug for QueueJoin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueJoin")
            .field("unfinished", &self.base.unfinished())
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
        let base = this.base;
        if !this.waiter.is_queued() && base.unfinished() == 0 {
            return Poll::Ready(Ok(()));
        }
        this.waiter.poll_until(cx, || base.unfinished() == 0).map(Ok)
    }
}
