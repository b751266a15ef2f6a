//! `OpFuture`: runs an [`Operation`] on the current loop's I/O driver.

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ops::Operation;
use crate::cancel::{self, Cancelled, Taken};
use crate::context::expect_core;
use crate::event_loop::Loop;
use crate::event_loop::busy::Deferred;
use crate::event_loop::core::Core;

/// The error an operation gets on a loop without an I/O driver.
pub(crate) fn no_io_driver() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "this loop has no I/O driver (aio_core's default); create loops with the aio facade \
         (aio::run, aio::Runner, aio::new_event_loop) or give the Builder aio-poll's or aio-uring's driver",
    )
}

fn is_cancel_result(res: &io::Result<usize>) -> bool {
    matches!(res, Err(e) if e.raw_os_error() == Some(libc::ECANCELED))
}

/// Runs `op` on the loop of the task that polls it.
///
/// # Cancellation
/// Before the operation is handed to the kernel, a cancellation returns at
/// once (its output carries an `Interrupted` error made from `Cancelled`,
/// and nothing was read or written). A completion driver (io_uring) that
/// already runs the operation is asked to cancel it; if the kernel finished
/// it first, its result is returned — no data is lost — and the
/// cancellation is delivered at the task's next await point instead.
/// Dropping the future while the kernel still runs the operation hands the
/// operation (its buffers) to the driver until the kernel is done. A file
/// call that a thread runs (the readiness driver's) cannot be interrupted:
/// cancelled, one whose output needs none of its memory (an open, a stat)
/// returns at once and leaves the call to finish with the driver (a
/// descriptor it opens then is closed); a read or write waits for its
/// call, which the kernel ends.
pub fn submit<T: Operation>(op: T) -> OpFuture<T> {
    OpFuture {
        op: Some(op),
        token: None,
        owner: None,
        cancel: None,
        observe: true,
        counted: false,
        _local: PhantomData,
    }
}

/// Like [`submit`], but the operation never observes cancellation: for
/// poll-based trait impls (`futures-io`, tokio's `AsyncRead`) that cannot
/// report it, and for operations a type keeps running across its callers'
/// cancellations (a stream's read-ahead).
pub fn submit_shielded<T: Operation>(op: T) -> OpFuture<T> {
    let mut f = submit(op);
    f.observe = false;
    f
}

/// Future of [`submit`]. Not `Send`: an operation belongs to the loop that
/// runs it.
#[must_use = "futures do nothing unless awaited"]
pub struct OpFuture<T: Operation> {
    op: Option<T>,
    /// Set while a completion driver runs the operation.
    token: Option<u64>,
    /// The loop whose driver holds `token`.
    owner: Option<Loop>,
    /// A delivery taken while in flight, and the scope to put it back on.
    cancel: Option<(Cancelled, Taken)>,
    /// Whether cancellation is observed (see [`submit_shielded`]).
    observe: bool,
    /// Counted in the loop's operations in flight (its metrics).
    counted: bool,
    _local: PhantomData<*const ()>,
}

impl<T: Operation> fmt::Debug for OpFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpFuture")
            .field("in_flight", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Operation> Unpin for OpFuture<T> {}

impl<T: Operation> OpFuture<T> {
    /// Ends the operation with `res` (its memory comes back with it).
    fn finish(&mut self, res: io::Result<usize>) -> Poll<T::Output> {
        self.uncount();
        let op = self.op.take().expect("an operation completes once");
        Poll::Ready(op.complete(res))
    }

    /// No longer in flight: leaves the loop's count.
    fn uncount(&mut self) {
        if std::mem::replace(&mut self.counted, false) {
            crate::context::with_core(|c| {
                if let Some(c) = c {
                    c.stats.ops.set(c.stats.ops.get().saturating_sub(1));
                }
            });
        }
    }

    /// What a cancellation does before this poll reaches the driver:
    /// `Some` ends the operation now. Not handed to the kernel yet, it ends
    /// with the cancellation; in flight, the kernel is asked to cancel it
    /// (its result decides, see [`submit`]) — or, for a call no cancel can
    /// end whose output needs none of its memory, it is left to the driver.
    fn observe_cancel(&mut self, core: &Core) -> Option<Poll<T::Output>> {
        if !self.observe {
            return None;
        }
        let Some(token) = self.token else {
            return cancel::check().err().map(|c| self.finish(Err(c.into())));
        };
        if self.cancel.is_some() {
            return None;
        }
        let taken = cancel::take()?;
        let mut driver = core.driver_mut();
        if let Some(io) = driver.io() {
            io.cancel_op(token);
            if io.cancel_may_wait(token) {
                if let Some(memory) = self.op.as_mut().and_then(Operation::detach) {
                    io.forget_op(token, memory);
                    drop(driver);
                    self.token = None;
                    self.owner = None;
                    let (c, _consumed) = taken;
                    return Some(self.finish(Err(c.into())));
                }
            }
        }
        self.cancel = Some(taken);
        None
    }
}

impl<T: Operation> Future for OpFuture<T> {
    type Output = T::Output;

    #[track_caller]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        assert!(this.op.is_some(), "`OpFuture` polled after completion");
        expect_core(|core| {
            if this.token.is_none() {
                if let Some(e) = this.op.as_ref().and_then(Operation::invalid) {
                    return this.finish(Err(e));
                }
            }
            if let Some(done) = this.observe_cancel(core) {
                return done;
            }
            let raw = this.op.as_mut().expect("checked above").raw();
            let res = {
                let mut driver = core.driver_mut();
                match driver.io() {
                    Some(io) => io.poll_op(&raw, &mut this.token, cx.waker()),
                    None => Poll::Ready(Err(no_io_driver())),
                }
            };
            match res {
                Poll::Pending => {
                    if !this.counted {
                        this.counted = true;
                        core.stats.ops.set(core.stats.ops.get() + 1);
                    }
                    if this.token.is_some() && this.owner.is_none() {
                        this.owner = Some(Loop::from_core_ptr(core));
                    }
                    Poll::Pending
                }
                Poll::Ready(mut res) => {
                    this.token = None;
                    this.owner = None;
                    if let Some((c, taken)) = this.cancel.take() {
                        if is_cancel_result(&res) {
                            res = Err(c.into());
                        } else {
                            // Finished before the cancel took effect: keep
                            // the result, deliver the cancellation later.
                            drop(c);
                            cancel::restore(taken);
                        }
                    }
                    this.finish(res)
                }
            }
        })
    }
}

impl<T: Operation> Drop for OpFuture<T> {
    fn drop(&mut self) {
        self.uncount();
        let (Some(token), Some(lp)) = (self.token.take(), self.owner.take()) else {
            return;
        };
        let Some(op) = self.op.take() else { return };
        // With no I/O driver left (a future that outlived its loop), a
        // thread of the driver's may still run the call: the memory is
        // never freed then. A drop while the driver is busy (by a waker it
        // woke) waits for it.
        lp.core.driver_work(Deferred::Forget(token, Box::new(op)));
    }
}
