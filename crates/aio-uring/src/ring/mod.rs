//! The io_uring ring: [`Ring`], its table of operations in flight, and
//! `poll_op`, which submits an operation and hands its result to its
//! future.
//!
//! The rest is a file per concern: `setup` (the best ring the kernel
//! takes, its probing, shutdown), `submit` (the submission queue and its
//! backlog), `wake` (parking, and waking from other threads), `reap`
//! (completions, by kind), `fds` (what the ring knows of each
//! descriptor), `watch` (receives that wait for their socket's data),
//! `multishot` (receive and accept streams) and `orphans` (operations
//! whose futures are gone, and what they leave for the next operation).

mod fds;
mod multishot;
mod orphans;
mod reap;
mod setup;
mod submit;
mod wake;
mod watch;

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::task::{Poll, Waker};

use aio_core::driver::Blocking;
use aio_core::io::RawOp;
use io_uring::{IoUring, opcode, squeue::Entry};
use slab::Slab;

use crate::bufs::BufRing;
use crate::ops::{self, Target};
use fds::{FdHint, hint};
use multishot::Multi;

/// `user_data` of cancel requests (their own completions are ignored).
const CANCEL: u64 = u64::MAX - 1;

/// Where an operation is in its life, from the driver's side.
enum State {
    /// A multishot operation (kept armed across its owner's calls).
    Multi(Multi),
    /// Submitted; the waker is woken at completion.
    Waiting(Option<Waker>),
    /// The kernel said `EAGAIN`: a readiness poll runs, then the operation
    /// is submitted again.
    Polling(Option<Waker>),
    /// A socket's multishot readiness poll, owned by the driver, and the
    /// receives waiting for its next event (their futures hold no token:
    /// nothing of theirs is in the kernel). `live` is false once the socket
    /// is gone (the slot waits for the last CQE).
    Watch { fd: RawFd, live: bool, waiters: Vec<Waker> },
    /// Completed with this result; the future has not picked it up yet.
    Done(i32),
    /// The future was dropped: keep its memory until the completion.
    /// `keep` names the descriptor (and its registration) whose next
    /// operation gets what the completion brings, for an operation that
    /// consumes data or connections and was in the kernel itself (not
    /// waiting in a readiness poll).
    Orphaned {
        owner: Box<dyn Any>,
        keep: Option<(RawFd, u32)>,
    },
}

/// An operation's slot in the table; its key is the `user_data` of its
/// entries and the token its future holds.
struct Op {
    state: State,
    raw: RawOp,
    /// Counted in `Ring::self_completing` (see `ops::completes_by_itself`).
    busy: bool,
    /// For a receive: its socket's watch events when it was submitted.
    seen: u32,
    /// Its future asked to cancel it: a completion that says "try again"
    /// (`EAGAIN`: nothing was done) ends it as cancelled instead of arming
    /// a readiness poll the cancel already missed.
    cancelled: bool,
}

/// The ring and everything the driver keeps for what is in flight on it.
pub(crate) struct Ring {
    ring: IoUring,
    ops: Slab<Op>,
    /// Entries that did not fit in a full submission queue.
    backlog: VecDeque<Entry>,
    /// The eventfd other threads write to wake the ring.
    wake_fd: OwnedFd,
    /// What its read gets: boxed, so the address the kernel writes to
    /// stays put when the ring moves.
    wake_buf: Box<u64>,
    /// The eventfd read is in the kernel.
    wake_armed: bool,
    /// The ring runs task work only when asked (`IORING_SETUP_DEFER_TASKRUN`).
    defer_taskrun: bool,
    /// Submissions waiting for the next `io_uring_enter`.
    unsubmitted: bool,
    /// Provided buffers for multishot receives (None: the kernel lacks them).
    bufs: Option<BufRing>,
    /// Multishot receive (kernel 6.0+) and accept (5.19+) are available.
    multishot: bool,
    /// What the driver knows of each registered descriptor, by number.
    fds: Vec<FdHint>,
    /// Free slots of the registered-file table.
    free_slots: Vec<u32>,
    /// The next registration's `FdHint::generation`.
    next_generation: u32,
    /// File calls the kernel has no opcode for (getdents, and any other
    /// this kernel lacks) run on threads.
    blocking: Blocking,
    /// The file opcodes this kernel supports (a bit per opcode number).
    file_opcodes: u128,
    /// Operations in the kernel that complete by themselves
    /// (`ops::completes_by_itself`).
    self_completing: usize,
}

/// Adds `waker` to `waiters` unless it is there already.
fn add_waiter(waiters: &mut Vec<Waker>, waker: &Waker) {
    if !waiters.iter().any(|w| w.will_wake(waker)) {
        waiters.push(waker.clone());
    }
}

impl Ring {
    pub(crate) fn poll_op(&mut self, raw: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        if token.is_some_and(Blocking::owns) {
            return self.blocking.poll(token, waker);
        }
        let Some(key) = *token else {
            return self.start(raw, token, waker);
        };
        let Some(op) = self.ops.get_mut(key as usize) else {
            *token = None;
            return Poll::Ready(Err(io::Error::other("io_uring operation lost")));
        };
        match &mut op.state {
            State::Done(res) => {
                let res = *res;
                let op = self.ops.remove(key as usize);
                *token = None;
                Poll::Ready(ops::result(&op.raw, res))
            }
            State::Waiting(w) | State::Polling(w) => {
                match w {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *w = Some(waker.clone()),
                }
                Poll::Pending
            }
            State::Orphaned { .. } | State::Multi(_) | State::Watch { .. } => {
                unreachable!("a future polls an operation it gave up")
            }
        }
    }

    /// The first poll of `raw`: it runs on a thread, completes from what
    /// dropped operations left on its descriptor, waits for its socket's
    /// watch, or is submitted (and `token` names it from now on).
    #[inline]
    fn start(&mut self, raw: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        if self.on_thread(raw) {
            return self.blocking.submit(raw, token, waker);
        }
        if let Some(p) = self.complete_from_kept(raw, waker) {
            return p;
        }
        if let Some(i) = self.parks(raw) {
            // Not submitted: the future holds no token, so dropping or
            // cancelling it involves the driver in nothing.
            self.wait_for_data(i, waker);
            return Poll::Pending;
        }
        let fd = raw.fd();
        let (seen, target) = hint(&self.fds, fd).map_or((0, Target::Fd(fd)), |h| (h.events, h.target(fd)));
        // Reads and writes of a regular file complete by themselves too.
        let on_file =
            matches!(raw, RawOp::Read { .. } | RawOp::Write { .. }) && hint(&self.fds, fd).is_some_and(|h| h.file);
        let busy = ops::completes_by_itself(raw) || on_file;
        let key = self.ops.insert(Op {
            state: State::Waiting(Some(waker.clone())),
            raw: *raw,
            seen,
            busy,
            cancelled: false,
        }) as u64;
        *token = Some(key);
        if busy {
            self.self_completing += 1;
        }
        self.push(ops::entry(raw, target).user_data(key));
        Poll::Pending
    }

    /// Whether `raw` runs on a thread: getdents, or a file call whose
    /// opcode this kernel lacks.
    fn on_thread(&self, raw: &RawOp) -> bool {
        matches!(raw, RawOp::Getdents { .. } | RawOp::SendFile { .. })
            || ops::file_opcode(raw).is_some_and(|c| self.file_opcodes & (1u128 << c) == 0)
    }

    pub(crate) fn cancel(&mut self, key: u64) {
        if Blocking::owns(key) {
            self.blocking.cancel(key);
            return;
        }
        if let Some(op) = self.ops.get_mut(key as usize) {
            op.cancelled = true;
        }
        self.push(opcode::AsyncCancel::new(key).build().user_data(CANCEL));
    }

    /// Whether operations that complete by themselves are in the kernel.
    pub(crate) fn is_busy(&self) -> bool {
        self.self_completing > 0 || self.blocking.in_flight() > 0
    }

    /// Operations the kernel still runs, and receives waiting for their
    /// socket's watch.
    pub(crate) fn in_flight(&self) -> usize {
        let waiting: usize = self
            .ops
            .iter()
            .map(|(_, o)| match &o.state {
                State::Watch { waiters, .. } => waiters.len(),
                _ => 0,
            })
            .sum();
        self.ops.len() + waiting + self.blocking.in_flight()
    }
}
