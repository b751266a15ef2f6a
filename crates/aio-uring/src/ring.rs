//! The ring: setup with the best flags the kernel takes, submission with
//! a backlog for a full queue, waiting, and the table of operations in
//! flight.

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use aio_core::driver::Unpark;
use aio_core::io::RawOp;
use io_uring::{IoUring, Probe, opcode, squeue::Entry, types};
use slab::Slab;

use crate::ops;

/// `io_uring_enter` flag: wait for (and, with deferred task work, run) completions.
const IORING_ENTER_GETEVENTS: u32 = 1;

/// `user_data` of the eventfd read that wakes the ring from other threads.
const WAKE: u64 = u64::MAX;
/// `user_data` of cancel requests (their own completions are ignored).
const CANCEL: u64 = u64::MAX - 1;

enum State {
    /// Submitted; the waker is woken at completion.
    Waiting(Option<Waker>),
    /// The kernel said `EAGAIN`: a readiness poll runs, then the operation
    /// is submitted again.
    Polling(Option<Waker>),
    /// Completed with this result; the future has not picked it up yet.
    Done(i32),
    /// The future was dropped: keep its memory until the completion.
    Orphaned(Box<dyn Any>),
}

struct Op {
    state: State,
    raw: RawOp,
}

pub(crate) struct Ring {
    ring: IoUring,
    ops: Slab<Op>,
    /// Entries that did not fit in a full submission queue.
    backlog: VecDeque<Entry>,
    wake_fd: OwnedFd,
    wake_buf: Box<u64>,
    wake_armed: bool,
    /// The ring runs task work only when asked (`IORING_SETUP_DEFER_TASKRUN`).
    defer_taskrun: bool,
    /// Submissions waiting for the next `io_uring_enter`.
    unsubmitted: bool,
}

/// The opcodes the driver uses; a kernel without one of them is not used.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Read::CODE, "READ"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::RecvMsg::CODE, "RECVMSG"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Shutdown::CODE, "SHUTDOWN"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
];

fn build(entries: u32) -> io::Result<(IoUring, bool)> {
    // The fastest setup first (one issuer thread, task work deferred to
    // our own io_uring_enter: kernel 6.1+), then plainer ones.
    let cq = entries.saturating_mul(4);
    let mut b = IoUring::builder();
    b.setup_cqsize(cq).setup_single_issuer().setup_defer_taskrun();
    if let Ok(r) = b.build(entries) {
        return Ok((r, true));
    }
    let mut b = IoUring::builder();
    b.setup_cqsize(cq).setup_coop_taskrun();
    if let Ok(r) = b.build(entries) {
        return Ok((r, false));
    }
    Ok((IoUring::builder().setup_cqsize(cq).build(entries)?, false))
}

impl Ring {
    pub(crate) fn new(entries: u32) -> io::Result<Ring> {
        let (ring, defer_taskrun) = build(entries)?;
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring lacks IORING_FEAT_EXT_ARG (kernel 5.11+)",
            ));
        }
        if !ring.params().is_feature_nodrop() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring lacks IORING_FEAT_NODROP (kernel 5.5+)",
            ));
        }
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in REQUIRED {
            if !probe.is_supported(*code) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("io_uring lacks IORING_OP_{name}"),
                ));
            }
        }
        // SAFETY: plain eventfd creation; we own the result.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Ring {
            ring,
            ops: Slab::with_capacity(256),
            backlog: VecDeque::new(),
            // SAFETY: a new descriptor nobody else owns.
            wake_fd: unsafe { OwnedFd::from_raw_fd(fd) },
            wake_buf: Box::new(0),
            wake_armed: false,
            defer_taskrun,
            unsubmitted: false,
        })
    }

    pub(crate) fn unparker(&self) -> io::Result<Arc<dyn Unpark>> {
        Ok(Arc::new(EventFd(self.wake_fd.try_clone()?)))
    }

    pub(crate) fn defer_taskrun(&self) -> bool {
        self.defer_taskrun
    }

    /// Queues `e` for submission; a full queue is submitted first, and what
    /// still does not fit waits in the backlog (never dropped).
    fn push(&mut self, e: Entry) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(e);
            return;
        }
        // SAFETY: every entry's pointers stay valid until its completion:
        // the operation's future owns the memory, or the driver keeps it
        // (`Orphaned`), and the driver's own buffers live in `self`.
        if unsafe { self.ring.submission().push(&e) }.is_ok() {
            self.unsubmitted = true;
            return;
        }
        self.submit_now();
        // SAFETY: as above.
        if unsafe { self.ring.submission().push(&e) }.is_err() {
            self.backlog.push_back(e);
        } else {
            self.unsubmitted = true;
        }
    }

    /// Moves the backlog into the queue as far as it fits.
    fn drain_backlog(&mut self) {
        while let Some(e) = self.backlog.front().cloned() {
            // SAFETY: as in `push`.
            let mut pushed = unsafe { self.ring.submission().push(&e) }.is_ok();
            if !pushed {
                // Full: hand what is queued to the kernel, then retry once.
                self.submit_now();
                // SAFETY: as in `push`.
                pushed = unsafe { self.ring.submission().push(&e) }.is_ok();
            }
            if !pushed {
                return;
            }
            self.backlog.pop_front();
            self.unsubmitted = true;
        }
    }

    /// Hands the queued entries to the kernel now.
    fn submit_now(&mut self) {
        loop {
            match self.ring.submit() {
                Ok(_) => {
                    self.unsubmitted = false;
                    return;
                }
                // The completion queue overflowed: reap, then submit again.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    self.reap();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::error!("io_uring submit failed: {e}");
                    return;
                }
            }
        }
    }

    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let e = opcode::Read::new(
            types::Fd(self.wake_fd.as_raw_fd()),
            (&mut *self.wake_buf as *mut u64).cast(),
            8,
        )
        .build()
        .user_data(WAKE);
        self.wake_armed = true;
        self.push(e);
    }

    /// Submits and waits up to `timeout` for a completion, then reaps.
    pub(crate) fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.arm_wake();
        self.drain_backlog();
        let res = match timeout {
            Some(Duration::ZERO) => {
                if self.unsubmitted || self.defer_taskrun {
                    let n = self.ring.submission().len() as u32;
                    // GETEVENTS runs deferred task work, posting completions.
                    // SAFETY: no argument is passed.
                    unsafe {
                        self.ring
                            .submitter()
                            .enter::<libc::sigset_t>(n, 0, IORING_ENTER_GETEVENTS, None)
                    }
                } else {
                    Ok(0)
                }
            }
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        self.unsubmitted = false;
        match res {
            Ok(_) => {}
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                _ => return Err(e),
            },
        }
        self.reap();
        Ok(())
    }

    /// Takes every completion from the queue.
    fn reap(&mut self) {
        let mut resubmit = Vec::new();
        {
            let mut cq = self.ring.completion();
            cq.sync();
            for cqe in &mut cq {
                let (key, res) = (cqe.user_data(), cqe.result());
                match key {
                    WAKE => self.wake_armed = false,
                    CANCEL => {}
                    key => {
                        let Some(op) = self.ops.get_mut(key as usize) else {
                            continue;
                        };
                        match std::mem::replace(&mut op.state, State::Done(res)) {
                            State::Waiting(w) if ops::is_retry(&op.raw, res) => match op.raw.interest() {
                                Some(i) => {
                                    op.state = State::Polling(w);
                                    resubmit.push(ops::poll(op.raw.fd(), i).user_data(key));
                                }
                                None => {
                                    if let Some(w) = w {
                                        w.wake();
                                    }
                                }
                            },
                            State::Waiting(w) => {
                                if let Some(w) = w {
                                    w.wake();
                                }
                            }
                            State::Polling(w) => {
                                if res < 0 && res != -libc::EAGAIN {
                                    // The poll itself failed: report that.
                                    if let Some(w) = w {
                                        w.wake();
                                    }
                                } else {
                                    op.state = State::Waiting(w);
                                    resubmit.push(ops::entry(&op.raw).user_data(key));
                                }
                            }
                            State::Orphaned(owner) => {
                                if res >= 0 && ops::returns_fd(&op.raw) {
                                    // An accepted connection nobody is left to take.
                                    // SAFETY: a new descriptor the kernel gave us alone.
                                    drop(unsafe { OwnedFd::from_raw_fd(res as RawFd) });
                                }
                                drop(owner);
                                self.ops.remove(key as usize);
                            }
                            State::Done(_) => {}
                        }
                    }
                }
            }
        }
        for e in resubmit {
            self.push(e);
        }
    }

    pub(crate) fn poll_op(&mut self, raw: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        let Some(key) = *token else {
            let key = self.ops.insert(Op {
                state: State::Waiting(Some(waker.clone())),
                raw: *raw,
            }) as u64;
            *token = Some(key);
            self.push(ops::entry(raw).user_data(key));
            return Poll::Pending;
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
            State::Orphaned(_) => unreachable!("a future polls an operation it gave up"),
        }
    }

    pub(crate) fn cancel(&mut self, key: u64) {
        self.push(opcode::AsyncCancel::new(key).build().user_data(CANCEL));
    }

    pub(crate) fn forget(&mut self, key: u64, owner: Box<dyn Any>) {
        let Some(op) = self.ops.get_mut(key as usize) else {
            return;
        };
        match std::mem::replace(&mut op.state, State::Orphaned(owner)) {
            State::Done(res) => {
                // Already complete: nothing holds the memory any more.
                if res >= 0 && ops::returns_fd(&op.raw) {
                    // SAFETY: a new descriptor nobody took.
                    drop(unsafe { OwnedFd::from_raw_fd(res as RawFd) });
                }
                self.ops.remove(key as usize);
            }
            _ => self.cancel(key),
        }
    }

    /// Operations the kernel still runs.
    pub(crate) fn in_flight(&self) -> usize {
        self.ops.len()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel may write into an operation's memory until its
        // completion, and closing the ring does not wait for that: cancel
        // everything and wait (bounded) for the completions, then free.
        let keys: Vec<u64> = self.ops.iter().map(|(k, _)| k as u64).collect();
        for k in keys {
            self.cancel(k);
        }
        if self.wake_armed {
            self.push(opcode::AsyncCancel::new(WAKE).build().user_data(CANCEL));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while (!self.ops.is_empty() || self.wake_armed) && Instant::now() < deadline {
            self.drain_backlog();
            let ts = types::Timespec::from(Duration::from_millis(10));
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            self.reap();
            // Completed (not orphaned) operations stay as `Done` until their
            // futures poll them; their futures are gone, so drop them here.
            let done: Vec<usize> = self
                .ops
                .iter()
                .filter(|(_, o)| matches!(o.state, State::Done(_)))
                .map(|(k, _)| k)
                .collect();
            for k in done {
                self.ops.remove(k);
            }
        }
        if !self.ops.is_empty() {
            // Never free memory the kernel may still write: leak it.
            log::error!(
                "io_uring: {} operations did not complete at shutdown; leaking their buffers",
                self.ops.len()
            );
            for (_, op) in std::mem::take(&mut self.ops) {
                if let State::Orphaned(owner) = op.state {
                    std::mem::forget(owner);
                }
            }
        }
        if self.wake_armed {
            // The eventfd buffer too.
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
    }
}

/// Wakes the ring from another thread: the eventfd read completes.
struct EventFd(OwnedFd);

impl Unpark for EventFd {
    fn unpark(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. A
        // failure (EAGAIN: the counter is full) means a wake is pending anyway.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}
