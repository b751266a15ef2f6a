//! Operations whose futures are gone, and what they leave behind. A
//! dropped future hands its operation's memory to the driver, which frees
//! it only at the completion (the kernel writes until then). What a dropped
//! receive or accept got before its cancel landed is kept (aio-core's
//! `Kept`) for the next operation on the same registration of its
//! descriptor, ahead of anything newer; a result nobody can take is
//! closed or dropped.

use std::any::Any;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::task::{Poll, Waker};

use aio_core::driver::Blocking;
use aio_core::driver::kept;
use aio_core::io::RawOp;

use super::fds::{FdHint, hint, hint_mut, live_hint};
use super::multishot::{Multi, MultiKind, discard};
use super::{Ring, State};

impl Ring {
    pub(crate) fn forget(&mut self, key: u64, owner: Box<dyn Any>) {
        if Blocking::owns(key) {
            self.blocking.forget(key, owner);
            return;
        }
        match self.ops.get(key as usize).map(|op| &op.state) {
            None => {}
            // A multishot operation writes only into the driver's own
            // buffers: its owner holds nothing the kernel uses.
            Some(State::Multi(_)) => self.forget_multi(key),
            Some(_) => self.forget_op(key, owner),
        }
    }

    /// The owner of multishot operation `key` is gone: received data goes
    /// to the socket's next receive; accepted connections close (the
    /// listener goes with its accept stream).
    fn forget_multi(&mut self, key: u64) {
        let State::Multi(m) = &mut self.ops[key as usize].state else {
            unreachable!("multishot key")
        };
        m.orphaned = true;
        m.waiters.clear();
        let keep = if m.kind == MultiKind::Recv {
            live_hint(&mut self.fds, m.fd, m.generation)
        } else {
            None
        };
        if let Some(h) = keep {
            let k = h.kept.get_or_insert_default();
            if let Some(bufs) = &mut self.bufs {
                let mut data = Vec::with_capacity(m.bytes);
                m.take(bufs, &mut data, usize::MAX);
                k.push_bytes(&data);
            }
            if m.armed {
                k.expect();
            }
        }
        for c in m.queue.drain(..) {
            discard(c, &mut self.bufs);
        }
        m.bytes = 0;
        m.head = 0;
        if m.armed {
            self.cancel(key);
        } else {
            self.ops.remove(key as usize);
        }
    }

    /// The future of one-shot operation `key` is gone: its memory (`owner`)
    /// stays until the completion, and what an operation that consumes
    /// data or connections gets goes to the next one on its descriptor.
    fn forget_op(&mut self, key: u64, owner: Box<dyn Any>) {
        let op = &mut self.ops[key as usize];
        let fd = op.raw.fd();
        let consumes = kept::class(&op.raw).is_some();
        match &op.state {
            State::Done(res) => {
                // Already complete: keep what it got, then nothing holds
                // the memory any more.
                if consumes {
                    let generation = hint(&self.fds, fd).map_or(0, |h| h.generation);
                    // SAFETY: `owner` (alive until the end of this call)
                    // holds the memory; the kernel is done with it.
                    unsafe { keep_result(&mut self.fds, fd, generation, &op.raw, *res, false) };
                } else {
                    close_unclaimed(&op.raw, *res);
                }
                drop(owner);
                self.ops.remove(key as usize);
            }
            State::Waiting(_) => {
                // The operation itself is in the kernel: whatever it gets
                // before the cancel lands is kept for the next one.
                let keep = if consumes {
                    live_hint(&mut self.fds, fd, u32::MAX).map(|h| {
                        h.kept.get_or_insert_default().expect();
                        (fd, h.generation)
                    })
                } else {
                    None
                };
                op.state = State::Orphaned { owner, keep };
                self.cancel(key);
            }
            _ => {
                // Only a readiness poll is in the kernel: it brings nothing.
                op.state = State::Orphaned { owner, keep: None };
                self.cancel(key);
            }
        }
    }

    /// Completes `raw` at once from what dropped operations left on its
    /// descriptor, or makes it wait for those still in the kernel; `None`
    /// when neither applies (the usual case: one branch on a hint).
    #[inline]
    pub(super) fn complete_from_kept(&mut self, raw: &RawOp, waker: &Waker) -> Option<Poll<io::Result<usize>>> {
        let h = hint_mut(&mut self.fds, raw.fd())?;
        let k = h.kept.as_mut()?;
        if let RawOp::PollReady {
            interest: aio_core::io::Interest::Readable,
            ..
        } = raw
        {
            // Kept data makes the socket readable for its owner.
            return k.has_data().then_some(Poll::Ready(Ok(libc::POLLIN as usize)));
        }
        kept::class(raw)?;
        if k.must_wait(waker) {
            return Some(Poll::Pending);
        }
        // SAFETY: `raw` was not submitted: its memory is the caller's, alive
        // for this call.
        let r = unsafe { k.deliver(raw) }?;
        if k.is_idle() {
            h.kept = None;
        }
        Some(Poll::Ready(r))
    }

    /// Appends to `out` (up to `max` bytes) what dropped receives on `fd`
    /// got, which comes before anything newer, or makes the receive wait
    /// for those still in the kernel; `None` when neither applies.
    #[inline]
    pub(super) fn recv_from_kept(
        &mut self,
        fd: RawFd,
        waker: &Waker,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Option<Poll<io::Result<usize>>> {
        let h = hint_mut(&mut self.fds, fd)?;
        let k = h.kept.as_mut()?;
        if k.must_wait(waker) {
            return Some(Poll::Pending);
        }
        let n = k.take_into(out, max);
        if k.is_idle() {
            h.kept = None;
        }
        (n > 0).then_some(Poll::Ready(Ok(n)))
    }
}

/// Closes the descriptor a successful `raw` (an open, an accept) brought
/// for a future that is gone.
#[inline]
pub(super) fn close_unclaimed(raw: &RawOp, res: i32) {
    if res >= 0 && raw.returns_fd() {
        // SAFETY: a new descriptor the kernel gave this operation alone.
        drop(unsafe { OwnedFd::from_raw_fd(res as RawFd) });
    }
}

/// An orphaned multishot receive's last completion came: later receives on
/// its socket need not wait for it any more.
#[inline]
pub(super) fn orphan_done(m: &Multi, fds: &mut [FdHint]) {
    if m.kind != MultiKind::Recv {
        return;
    }
    if let Some(k) = live_hint(fds, m.fd, m.generation).and_then(|h| h.kept.as_mut()) {
        k.arrived();
    }
}

/// A dropped operation `raw` on `fd` completed with `res`: what it got
/// goes to the next operation on the same registration of `fd`; if that
/// is gone, an accepted connection is closed and data is dropped (nobody
/// can read the closed socket any more). `expected`: the operation was
/// counted as in flight when it was dropped.
///
/// # Safety
/// `raw`'s memory must be alive and the kernel done with it.
pub(super) unsafe fn keep_result(
    fds: &mut [FdHint],
    fd: RawFd,
    generation: u32,
    raw: &RawOp,
    res: i32,
    expected: bool,
) {
    match live_hint(fds, fd, generation) {
        Some(h) => {
            let stream = h.stream || matches!(raw, RawOp::Read { .. });
            let k = h.kept.get_or_insert_default();
            // SAFETY: forwarded from the caller.
            unsafe { k.capture(raw, res, stream) };
            if expected {
                k.arrived();
            }
            if k.is_idle() {
                h.kept = None;
            }
        }
        None => close_unclaimed(raw, res),
    }
}
