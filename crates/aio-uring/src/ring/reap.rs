//! Reaping: every completion the kernel posted, handled by what it
//! completes — a multishot stream's result, a socket watch's event, or a
//! one-shot operation (whose future waits for it, which waited for
//! readiness after `EAGAIN`, or whose future is gone).

use std::any::Any;
use std::os::fd::RawFd;
use std::task::Waker;

use io_uring::{cqueue, opcode, squeue::Entry};

use super::fds::{FdHint, target};
use super::multishot::Multi;
use super::orphans::{close_unclaimed, keep_result};
use super::wake::WAKE;
use super::watch::{note_result, watch_event};
use super::{CANCEL, Op, Ring, State};
use crate::bufs::BufRing;
use crate::ops;

/// What a completion may change besides its operation's slot, borrowed
/// apart from the ring, whose completion queue `reap` holds meanwhile.
struct Reaping<'a> {
    fds: &'a mut [FdHint],
    bufs: &'a mut Option<BufRing>,
    self_completing: &'a mut usize,
    /// Entries to submit once the completion queue is let go (submitting
    /// may reap).
    resubmit: Vec<Entry>,
}

impl Ring {
    /// Takes every completion from the queue.
    pub(super) fn reap(&mut self) {
        let mut reaping = Reaping {
            fds: &mut self.fds,
            bufs: &mut self.bufs,
            self_completing: &mut self.self_completing,
            resubmit: Vec::new(),
        };
        {
            let mut cq = self.ring.completion();
            cq.sync();
            for cqe in &mut cq {
                match cqe.user_data() {
                    WAKE => self.wake_armed = false,
                    CANCEL => {}
                    key => {
                        let Some(op) = self.ops.get_mut(key as usize) else {
                            continue;
                        };
                        if reaping.complete(op, key, &cqe) {
                            self.ops.remove(key as usize);
                        }
                    }
                }
            }
        }
        for e in reaping.resubmit {
            self.push(e);
        }
    }
}

impl Reaping<'_> {
    /// Handles `cqe`, a completion of `op` (key `key`); returns whether its
    /// slot can go.
    #[inline]
    fn complete(&mut self, op: &mut Op, key: u64, cqe: &cqueue::Entry) -> bool {
        let (res, flags) = (cqe.result(), cqe.flags());
        match &mut op.state {
            State::Multi(m) => self.multishot(m, key, res, flags),
            State::Watch { fd, live, waiters } => self.watch(*fd, *live, waiters, key, res, flags),
            _ => self.one_shot(op, key, res),
        }
    }

    /// A result of multishot operation `m`, queued for its owner.
    #[inline]
    fn multishot(&mut self, m: &mut Multi, key: u64, res: i32, flags: u32) -> bool {
        let (more, bid) = (cqueue::more(flags), cqueue::buffer_select(flags));
        if m.record(res, more, bid, self.bufs, self.fds) {
            return true;
        }
        if m.armed && !m.pausing && m.is_full() {
            // Enough waits for the owner: leave the rest in the socket
            // until it reads or accepts.
            m.pausing = true;
            self.resubmit
                .push(opcode::AsyncCancel::new(key).build().user_data(CANCEL));
        }
        false
    }

    /// An event of socket `fd`'s watch (its last, unless `flags` say more).
    #[inline]
    fn watch(&mut self, fd: RawFd, live: bool, waiters: &mut Vec<Waker>, key: u64, res: i32, flags: u32) -> bool {
        let more = cqueue::more(flags);
        if live {
            watch_event(self.fds, fd, key, res, more);
        }
        // The waiting receives try again (and submit); the list keeps its
        // memory for the next ones.
        for w in waiters.drain(..) {
            w.wake();
        }
        !more
    }

    /// The completion of one-shot operation `op`: `Done` for its future to
    /// take, unless it goes on (a readiness poll, then the operation again).
    #[inline]
    fn one_shot(&mut self, op: &mut Op, key: u64, res: i32) -> bool {
        match std::mem::replace(&mut op.state, State::Done(res)) {
            State::Waiting(w) if ops::is_retry(&op.raw, res) && op.cancelled => {
                // Nothing was done, and its future asked to cancel it
                // (the cancel met it in the kernel and missed).
                op.state = State::Done(-libc::ECANCELED);
                self.left_kernel(op);
                wake(w);
            }
            State::Waiting(w) if ops::is_retry(&op.raw, res) => match op.raw.interest() {
                Some(interest) => {
                    op.state = State::Polling(w);
                    let target = target(self.fds, op.raw.fd());
                    self.resubmit.push(ops::poll(target, interest).user_data(key));
                }
                None => {
                    self.left_kernel(op);
                    wake(w);
                }
            },
            State::Waiting(w) => {
                self.left_kernel(op);
                wake(w);
                note_result(self.fds, &op.raw, res, op.seen);
            }
            State::Polling(w) => {
                if res < 0 && res != -libc::EAGAIN {
                    // The poll itself failed (or was cancelled): report that.
                    wake(w);
                } else if op.cancelled {
                    // Ready, but its future asked to cancel it meanwhile.
                    op.state = State::Done(-libc::ECANCELED);
                    wake(w);
                } else {
                    op.state = State::Waiting(w);
                    let target = target(self.fds, op.raw.fd());
                    self.resubmit.push(ops::entry(&op.raw, target).user_data(key));
                }
            }
            State::Orphaned { owner, keep } => {
                self.orphaned(op, owner, keep, res);
                return true;
            }
            State::Done(_) => {}
            State::Multi(_) | State::Watch { .. } => unreachable!("handled above"),
        }
        false
    }

    /// The completion of `op`, whose future is gone: what it got goes to
    /// the next operation on descriptor `keep`, or is closed; then its
    /// memory (`owner`) is freed.
    #[inline]
    fn orphaned(&mut self, op: &Op, owner: Box<dyn Any>, keep: Option<(RawFd, u32)>, res: i32) {
        self.left_kernel(op);
        match keep {
            // SAFETY: `owner` keeps the operation's memory alive, and its
            // completion just came.
            Some((fd, generation)) => unsafe { keep_result(self.fds, fd, generation, &op.raw, res, true) },
            None => close_unclaimed(&op.raw, res),
        }
        drop(owner);
    }

    /// `op` left the kernel: uncount it if it completes by itself (see
    /// `Ring::is_busy`).
    #[inline]
    fn left_kernel(&mut self, op: &Op) {
        if op.busy {
            debug_assert!(*self.self_completing > 0, "a self-completing operation counted twice");
            *self.self_completing = self.self_completing.saturating_sub(1);
        }
    }
}

/// Wakes the future waiting for an operation, if one polled it.
fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}
