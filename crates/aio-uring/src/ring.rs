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

use aio_core::driver::{Blocking, FdKind, Unpark};
use aio_core::io::RawOp;
use io_uring::{IoUring, Probe, opcode, squeue::Entry, types};
use slab::Slab;

use crate::bufs::BufRing;
use crate::ops::{self, Target, on};
use aio_core::driver::kept::{self, Kept};

/// Provided buffers: how many, and how large (a power of two).
const BUF_COUNT: u16 = 256;
const BUF_SIZE: usize = 16 * 1024;

/// A multishot receive is paused (its request cancelled) once this much
/// data waits for its reader: a reader that stops reading leaves the rest
/// in the socket, where flow control holds the sender back, and the shared
/// buffers stay free for other sockets.
const PAUSE_AT: usize = 64 * 1024;
/// A multishot receive is armed only while this many provided buffers are
/// free; with fewer, receives go one-shot into their caller's buffer.
const MIN_FREE: u16 = BUF_COUNT / 8;
/// A multishot accept is paused once this many accepted connections wait
/// for their owner: a server that stops accepting ("take a permit, then
/// accept") leaves the rest in the kernel's backlog, as on aio-poll,
/// instead of holding descriptors nobody asked for.
const ACCEPT_BACKLOG: usize = 16;

/// Slots in the ring's table of registered files (at most; fewer when the
/// descriptor limit is lower). Descriptors beyond them are used by number.
const MAX_SLOTS: u32 = 8192;

/// `io_uring_enter` flag: wait for (and, with deferred task work, run) completions.
const IORING_ENTER_GETEVENTS: u32 = 1;

/// `user_data` of the eventfd read that wakes the ring from other threads.
const WAKE: u64 = u64::MAX;
/// `user_data` of cancel requests (their own completions are ignored).
const CANCEL: u64 = u64::MAX - 1;

/// A multishot operation's results waiting for its owner.
enum Chunk {
    /// Data in provided buffer `bid`.
    Data(u16, u32),
    /// An accepted connection.
    Fd(RawFd),
    /// End of stream.
    End,
    /// A failure (negative errno).
    Err(i32),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MultiKind {
    Recv,
    Accept,
}

struct Multi {
    fd: RawFd,
    /// The registration of `fd` it belongs to (see `FdHint::generation`).
    generation: u32,
    kind: MultiKind,
    queue: VecDeque<Chunk>,
    /// Bytes of data in `queue` (not counting what `head` passed).
    bytes: usize,
    /// Bytes of the front chunk already handed out.
    head: usize,
    waiters: Vec<Waker>,
    /// A multishot request is in the kernel.
    armed: bool,
    /// A cancel was sent because `bytes` passed `PAUSE_AT`.
    pausing: bool,
    /// The request ended for lack of provided buffers.
    starved: bool,
    /// The owner is gone: discard results, free the slot at the last CQE.
    orphaned: bool,
}

impl Multi {
    fn new(fd: RawFd, generation: u32, kind: MultiKind) -> Multi {
        Multi {
            fd,
            generation,
            kind,
            queue: VecDeque::new(),
            bytes: 0,
            head: 0,
            waiters: Vec::new(),
            armed: false,
            pausing: false,
            starved: false,
            orphaned: false,
        }
    }

    /// Appends up to `max` bytes of the data at the front of the queue to
    /// `out`, giving fully read buffers back; returns how much.
    fn take(&mut self, bufs: &mut BufRing, out: &mut Vec<u8>, max: usize) -> usize {
        let mut n = 0;
        while let Some(&Chunk::Data(bid, len)) = self.queue.front() {
            if n == max {
                break;
            }
            let data = &bufs.data(bid, len as usize)[self.head..];
            let k = data.len().min(max - n);
            out.extend_from_slice(&data[..k]);
            n += k;
            self.head += k;
            if self.head == len as usize {
                self.queue.pop_front();
                bufs.recycle(bid);
                self.head = 0;
            }
        }
        self.bytes -= n;
        n
    }

    fn wake(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}

/// Adds `waker` to `waiters` unless it is there already.
fn add_waiter(waiters: &mut Vec<Waker>, waker: &Waker) {
    if !waiters.iter().any(|w| w.will_wake(waker)) {
        waiters.push(waker.clone());
    }
}

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

struct Op {
    state: State,
    raw: RawOp,
    /// Counted in `Ring::self_completing` (see `ops::completes_by_itself`).
    busy: bool,
    /// For a receive: its socket's watch events when it was submitted.
    seen: u32,
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

/// What the driver knows of a registered descriptor.
struct FdHint {
    /// Which registration of the descriptor number this is: a dropped
    /// operation's late result goes to the same socket, never to a new
    /// one that reuses the number.
    generation: u32,
    /// What dropped operations received, for the next ones (rarely set).
    kept: Option<Box<Kept>>,
    /// A stream socket (TCP, Unix stream).
    stream: bool,
    /// Its last receive was short, and no data came since: the socket's
    /// buffer is empty, so the next receive waits for the watch instead of
    /// trying (as tokio and aio-poll skip the `recv` that would say
    /// `EAGAIN`).
    drained: bool,
    /// The key of its multishot readiness poll, once a receive waited
    /// (`NONE`: no watch).
    watch: u32,
    /// How many watch events came (a receive that saw one come while it
    /// ran may have missed data, so it does not mark the socket drained).
    events: u32,
    /// The watch saw the peer's end of file, a hang-up or an error: every
    /// later receive returns at once, so none waits (a short read that
    /// takes the last data before a FIN already reported says nothing).
    closed: bool,
    /// Its slot in the ring's registered files (`NONE`: used by number).
    slot: u32,
    /// A regular file or directory (its reads complete by themselves).
    file: bool,
}

/// No watch.
const NONE: u32 = u32::MAX;

/// The count of self-completing operations once `op` left the kernel.
fn done_by_itself(count: usize, op: &Op) -> usize {
    if op.busy {
        debug_assert!(count > 0, "a self-completing operation counted twice");
        count.saturating_sub(1)
    } else {
        count
    }
}

impl FdHint {
    /// How entries name this descriptor, `fd`.
    fn target(&self, fd: RawFd) -> Target {
        match self.slot {
            NONE => Target::Fd(fd),
            slot => Target::Fixed(slot),
        }
    }
}

impl Default for FdHint {
    fn default() -> FdHint {
        FdHint {
            generation: 0,
            kept: None,
            stream: false,
            drained: false,
            watch: NONE,
            events: 0,
            closed: false,
            slot: NONE,
            file: false,
        }
    }
}

/// The running kernel's (major, minor) version.
fn kernel_version() -> (u32, u32) {
    // SAFETY: `uts` is a valid out-pointer.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    let rel: String = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    let mut it = rel.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
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
        let multishot = kernel_version() >= (6, 0);
        let bufs = if multishot {
            match BufRing::new(&ring.submitter(), BUF_COUNT, BUF_SIZE, 0) {
                Ok(b) => Some(b),
                Err(e) => {
                    log::debug!("aio: io_uring provided buffers unavailable ({e}); one-shot receives");
                    None
                }
            }
        } else {
            None
        };
        // A table of registered files, filled as descriptors register.
        let nofile = {
            let mut r = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `r` is a valid out-pointer.
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
                u32::try_from(r.rlim_cur).unwrap_or(u32::MAX)
            } else {
                1024
            }
        };
        let file_opcodes = [
            opcode::OpenAt::CODE,
            opcode::Statx::CODE,
            opcode::Fsync::CODE,
            opcode::Ftruncate::CODE,
            opcode::UnlinkAt::CODE,
            opcode::RenameAt::CODE,
            opcode::MkDirAt::CODE,
            opcode::Splice::CODE,
        ]
        .into_iter()
        .filter(|&c| probe.is_supported(c))
        .fold(0u128, |m, c| m | 1u128 << c);
        let slots = nofile.min(MAX_SLOTS);
        let free_slots = match ring.submitter().register_files_sparse(slots) {
            Ok(()) => (0..slots).rev().collect(),
            Err(e) => {
                log::debug!("aio: io_uring registered files unavailable ({e}); descriptors by number");
                Vec::new()
            }
        };
        // SAFETY: a new descriptor nobody else owns.
        let wake_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let blocking = Blocking::new(Arc::new(EventFd(wake_fd.try_clone()?)));
        Ok(Ring {
            ring,
            blocking,
            file_opcodes,
            ops: Slab::with_capacity(256),
            backlog: VecDeque::new(),
            wake_fd,
            wake_buf: Box::new(0),
            wake_armed: false,
            defer_taskrun,
            unsubmitted: false,
            bufs,
            multishot,
            fds: Vec::new(),
            free_slots,
            next_generation: 1,
            self_completing: 0,
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
        self.blocking.collect();
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
                        if let State::Multi(m) = &mut op.state {
                            let more = io_uring::cqueue::more(cqe.flags());
                            let bid = io_uring::cqueue::buffer_select(cqe.flags());
                            if multi_cqe(m, res, more, bid, &mut self.bufs, &mut self.fds) {
                                self.ops.remove(key as usize);
                            } else if m.armed && !m.pausing && m.is_full() {
                                // Enough waits for the owner: leave the rest
                                // in the socket until it reads or accepts.
                                m.pausing = true;
                                resubmit.push(opcode::AsyncCancel::new(key).build().user_data(CANCEL));
                            }
                            continue;
                        }
                        if let State::Watch { fd, live, waiters } = &mut op.state {
                            let more = io_uring::cqueue::more(cqe.flags());
                            if *live {
                                watch_event(&mut self.fds, *fd, key, res, more);
                            }
                            // The waiting receives try again (and submit);
                            // the list keeps its memory for the next ones.
                            for w in waiters.drain(..) {
                                w.wake();
                            }
                            if !more {
                                self.ops.remove(key as usize);
                            }
                            continue;
                        }
                        match std::mem::replace(&mut op.state, State::Done(res)) {
                            State::Waiting(w) if ops::is_retry(&op.raw, res) => match op.raw.interest() {
                                Some(i) => {
                                    op.state = State::Polling(w);
                                    let t = target(&self.fds, op.raw.fd());
                                    resubmit.push(ops::poll(t, i).user_data(key));
                                }
                                None => {
                                    self.self_completing = done_by_itself(self.self_completing, op);
                                    if let Some(w) = w {
                                        w.wake();
                                    }
                                }
                            },
                            State::Waiting(w) => {
                                self.self_completing = done_by_itself(self.self_completing, op);
                                let (raw, seen) = (op.raw, op.seen);
                                if let Some(w) = w {
                                    w.wake();
                                }
                                note_result(&mut self.fds, &raw, res, seen);
                            }
                            State::Polling(w) => {
                                if res < 0 && res != -libc::EAGAIN {
                                    // The poll itself failed: report that.
                                    if let Some(w) = w {
                                        w.wake();
                                    }
                                } else {
                                    op.state = State::Waiting(w);
                                    let t = target(&self.fds, op.raw.fd());
                                    resubmit.push(ops::entry(&op.raw, t).user_data(key));
                                }
                            }
                            State::Orphaned { owner, keep } => {
                                self.self_completing = done_by_itself(self.self_completing, op);
                                match keep {
                                    // SAFETY: `owner` keeps the operation's memory
                                    // alive, and its completion just came.
                                    Some((fd, generation)) => unsafe {
                                        keep_result(&mut self.fds, fd, generation, &op.raw, res, true)
                                    },
                                    None => close_unclaimed(&op.raw, res),
                                }
                                drop(owner);
                                self.ops.remove(key as usize);
                            }
                            State::Done(_) => {}
                            State::Multi(_) | State::Watch { .. } => unreachable!("handled above"),
                        }
                    }
                }
            }
        }
        for e in resubmit {
            self.push(e);
        }
    }

    /// A new descriptor `fd` (a socket or pipe) will take operations.
    pub(crate) fn register(&mut self, fd: RawFd, kind: FdKind) {
        let Ok(i) = usize::try_from(fd) else { return };
        if i >= self.fds.len() {
            self.fds.resize_with(i + 1, FdHint::default);
        }
        self.deregister(fd);
        self.fds[i].stream = kind.is_stream_socket(fd);
        self.fds[i].file = kind == FdKind::File;
        self.fds[i].generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        if let Some(slot) = self.free_slots.pop() {
            match self.ring.submitter().register_files_update(slot, &[fd]) {
                Ok(_) => self.fds[i].slot = slot,
                Err(e) => {
                    log::debug!("aio: io_uring could not register descriptor {fd} ({e}); used by number");
                    self.free_slots.push(slot);
                }
            }
        }
    }

    /// `fd` is closed (its number may come back as another descriptor).
    pub(crate) fn deregister(&mut self, fd: RawFd) {
        let Some(h) = hint_mut(&mut self.fds, fd) else {
            return;
        };
        let h = std::mem::take(h);
        if h.slot != NONE {
            // The table holds a reference to the file: drop it, or closing
            // the descriptor would not close the socket. Operations still in
            // flight keep theirs until they complete.
            match self.ring.submitter().register_files_update(h.slot, &[-1]) {
                Ok(_) => self.free_slots.push(h.slot),
                Err(e) => log::error!("io_uring: could not unregister descriptor {fd} ({e})"),
            }
        }
        if h.watch == NONE {
            return;
        }
        let k = u64::from(h.watch);
        if let Some(Op {
            state: State::Watch { live, waiters, .. },
            ..
        }) = self.ops.get_mut(k as usize)
        {
            *live = false;
            // Whoever still waits tries again and meets the closed socket.
            for w in waiters.drain(..) {
                w.wake();
            }
        }
        self.cancel(k);
    }

    /// The socket index of `raw` if it is a receive that should wait for
    /// its socket's watch: a plain receive on a stream socket whose last
    /// receive emptied it.
    fn parks(&self, raw: &RawOp) -> Option<usize> {
        let RawOp::Recv { fd, flags: 0, .. } = *raw else {
            return None;
        };
        let h = hint(&self.fds, fd)?;
        (self.multishot && h.stream && h.drained && !h.closed).then_some(fd as usize)
    }

    /// Makes `waker` wait for socket `i`'s next watch event, arming the
    /// watch (a multishot poll that stays armed for the socket's life) if
    /// needed. Waiters are woken in the order they came.
    fn wait_for_data(&mut self, i: usize, waker: &Waker) {
        let watch = self.fds[i].watch;
        if let Some(Op {
            state: State::Watch { waiters, .. },
            ..
        }) = self.ops.get_mut(watch as usize)
        {
            add_waiter(waiters, waker);
        } else {
            let fd = i as RawFd;
            let w = self.ops.insert(Op {
                state: State::Watch {
                    fd,
                    live: true,
                    waiters: vec![waker.clone()],
                },
                raw: RawOp::Close { fd: -1 },
                seen: 0,
                busy: false,
            }) as u64;
            self.fds[i].watch = w as u32;
            let mask = (libc::POLLIN | libc::POLLRDHUP) as u32;
            self.push(on!(target(&self.fds, fd), f => opcode::PollAdd::new(f, mask).multi(true).build()).user_data(w));
        }
    }

    /// Whether `raw` runs on a thread: getdents, or a file call whose
    /// opcode this kernel lacks.
    fn on_thread(&self, raw: &RawOp) -> bool {
        matches!(raw, RawOp::Getdents { .. } | RawOp::SendFile { .. })
            || ops::file_opcode(raw).is_some_and(|c| self.file_opcodes & (1u128 << c) == 0)
    }

    pub(crate) fn poll_op(&mut self, raw: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        if token.is_some_and(Blocking::owns) {
            return self.blocking.poll(token, waker);
        }
        if token.is_none() && self.on_thread(raw) {
            return self.blocking.submit(raw, token, waker);
        }
        let Some(key) = *token else {
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
            let (seen, t) = hint(&self.fds, fd).map_or((0, Target::Fd(fd)), |h| (h.events, h.target(fd)));
            // Reads and writes of a regular file complete by themselves too.
            let on_file =
                matches!(raw, RawOp::Read { .. } | RawOp::Write { .. }) && hint(&self.fds, fd).is_some_and(|h| h.file);
            let busy = ops::completes_by_itself(raw) || on_file;
            let key = self.ops.insert(Op {
                state: State::Waiting(Some(waker.clone())),
                raw: *raw,
                seen,
                busy,
            }) as u64;
            *token = Some(key);
            if busy {
                self.self_completing += 1;
            }
            self.push(ops::entry(raw, t).user_data(key));
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
            State::Orphaned { .. } | State::Multi(_) | State::Watch { .. } => {
                unreachable!("a future polls an operation it gave up")
            }
        }
    }

    fn multi_entry(&self, m: &Multi, key: u64) -> Entry {
        let t = target(&self.fds, m.fd);
        match m.kind {
            MultiKind::Recv => {
                let group = self.bufs.as_ref().map_or(0, |b| b.group);
                on!(t, f => opcode::RecvMulti::new(f, group).build()).user_data(key)
            }
            MultiKind::Accept => on!(t, f => opcode::AcceptMulti::new(f)
                .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                .build())
            .user_data(key),
        }
    }

    /// Arms the multishot operation `key` (again).
    fn arm(&mut self, key: u64) {
        let State::Multi(m) = &mut self.ops[key as usize].state else {
            unreachable!("multishot key")
        };
        m.armed = true;
        m.pausing = false;
        m.starved = false;
        let State::Multi(m) = &self.ops[key as usize].state else {
            unreachable!()
        };
        let e = self.multi_entry(m, key);
        self.push(e);
    }

    /// The multishot operation `token` names, or a new one (not armed yet).
    fn multi_key(&mut self, fd: RawFd, kind: MultiKind, token: &mut Option<u64>) -> u64 {
        match *token {
            Some(k) if self.ops.contains(k as usize) => k,
            _ => {
                let generation = hint(&self.fds, fd).map_or(0, |h| h.generation);
                let k = self.ops.insert(Op {
                    state: State::Multi(Multi::new(fd, generation, kind)),
                    raw: RawOp::Close { fd: -1 },
                    seen: 0,
                    busy: false,
                }) as u64;
                *token = Some(k);
                k
            }
        }
    }

    pub(crate) fn poll_recv_multi(
        &mut self,
        fd: RawFd,
        token: &mut Option<u64>,
        waker: &Waker,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Option<Poll<io::Result<usize>>> {
        if !self.multishot || self.bufs.is_none() {
            return None;
        }
        let max = max.max(1);
        // What dropped receives got comes first (and waits for those still
        // in the kernel).
        if let Some(k) = hint_mut(&mut self.fds, fd).and_then(|h| h.kept.as_mut()) {
            if k.must_wait(waker) {
                return Some(Poll::Pending);
            }
            let n = k.take_into(out, max);
            if k.is_idle() {
                hint_mut(&mut self.fds, fd).expect("found above").kept = None;
            }
            if n > 0 {
                return Some(Poll::Ready(Ok(n)));
            }
        }
        let key = self.multi_key(fd, MultiKind::Recv, token);
        let State::Multi(m) = &mut self.ops[key as usize].state else {
            unreachable!("receive stream token")
        };
        let bufs = self.bufs.as_mut().expect("checked above");
        let n = m.take(bufs, out, max);
        if n > 0 {
            return Some(Poll::Ready(Ok(n)));
        }
        let r = match m.queue.pop_front() {
            Some(Chunk::End) => Ok(0),
            Some(Chunk::Err(e)) => Err(io::Error::from_raw_os_error(-e)),
            Some(Chunk::Data(..) | Chunk::Fd(_)) => unreachable!("data was taken; receives yield no descriptors"),
            None if m.armed => {
                add_waiter(&mut m.waiters, waker);
                return Some(Poll::Pending);
            }
            None if m.starved || bufs.free() < MIN_FREE => {
                // Out of provided buffers: this call receives one-shot into
                // a buffer of the caller's (the next arms again), so a
                // reader never waits for other sockets' readers.
                self.ops.remove(key as usize);
                *token = None;
                return Some(Poll::Ready(Err(io::Error::from_raw_os_error(libc::ENOBUFS))));
            }
            None => {
                add_waiter(&mut m.waiters, waker);
                self.arm(key);
                return Some(Poll::Pending);
            }
        };
        if !m.armed && m.queue.is_empty() {
            // A final result: the next call starts afresh.
            self.ops.remove(key as usize);
            *token = None;
        }
        Some(Poll::Ready(r))
    }

    pub(crate) fn poll_accept_multi(
        &mut self,
        fd: RawFd,
        token: &mut Option<u64>,
        waker: &Waker,
    ) -> Option<Poll<io::Result<RawFd>>> {
        if !self.multishot {
            return None;
        }
        let key = self.multi_key(fd, MultiKind::Accept, token);
        let State::Multi(m) = &mut self.ops[key as usize].state else {
            unreachable!("accept stream token")
        };
        let r = match m.queue.pop_front() {
            Some(Chunk::Fd(fd)) => return Some(Poll::Ready(Ok(fd))),
            Some(Chunk::Err(e)) => io::Error::from_raw_os_error(-e),
            Some(Chunk::End) => io::Error::other("the accept stream ended"),
            Some(Chunk::Data(..)) => unreachable!("an accept yields no data"),
            None => {
                add_waiter(&mut m.waiters, waker);
                if !m.armed {
                    self.arm(key);
                }
                return Some(Poll::Pending);
            }
        };
        if !m.armed && m.queue.is_empty() {
            // A final result: the next call starts afresh.
            self.ops.remove(key as usize);
            *token = None;
        }
        Some(Poll::Ready(Err(r)))
    }

    /// Whether operations that complete by themselves are in the kernel.
    pub(crate) fn is_busy(&self) -> bool {
        self.self_completing > 0 || self.blocking.in_flight() > 0
    }

    pub(crate) fn cancel(&mut self, key: u64) {
        if Blocking::owns(key) {
            self.blocking.cancel(key);
            return;
        }
        self.push(opcode::AsyncCancel::new(key).build().user_data(CANCEL));
    }

    pub(crate) fn forget(&mut self, key: u64, owner: Box<dyn Any>) {
        if Blocking::owns(key) {
            self.blocking.forget(key, owner);
            return;
        }
        let Some(op) = self.ops.get_mut(key as usize) else {
            return;
        };
        if let State::Multi(m) = &mut op.state {
            m.orphaned = true;
            m.waiters.clear();
            // Received data goes to the socket's next receive; accepted
            // connections close (the listener goes with its accept stream).
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
            return;
        }
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
    fn complete_from_kept(&mut self, raw: &RawOp, waker: &Waker) -> Option<Poll<io::Result<usize>>> {
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

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel may write into an operation's memory until its
        // completion, and closing the ring does not wait for that: cancel
        // everything and wait (bounded) for the completions, then free.
        let keys: Vec<u64> = self.ops.iter().map(|(k, _)| k as u64).collect();
        for k in keys {
            let armed = match &mut self.ops[k as usize].state {
                State::Multi(m) => {
                    m.orphaned = true;
                    m.armed
                }
                _ => true,
            };
            if armed {
                self.cancel(k);
            } else {
                self.ops.remove(k as usize);
            }
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
                let op = self.ops.remove(k);
                if let State::Done(res) = op.state {
                    close_unclaimed(&op.raw, res);
                }
            }
        }
        if !self.ops.is_empty() {
            // Never free memory the kernel may still write: leak it.
            log::error!(
                "io_uring: {} operations did not complete at shutdown; leaking their buffers",
                self.ops.len()
            );
            for (_, op) in std::mem::take(&mut self.ops) {
                if let State::Orphaned { owner, .. } = op.state {
                    std::mem::forget(owner);
                }
            }
        }
        if self.wake_armed {
            // The eventfd buffer too.
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
        if let Some(b) = self.bufs.take() {
            if self.ops.is_empty() {
                b.unregister(&self.ring.submitter());
                drop(b);
            } else {
                // The kernel may still fill them: never free.
                std::mem::forget(b);
            }
        }
    }
}

/// Records one completion of a multishot operation; returns whether its
/// slot can go (an orphan's last completion).
fn multi_cqe(
    m: &mut Multi,
    res: i32,
    more: bool,
    bid: Option<u16>,
    bufs: &mut Option<BufRing>,
    fds: &mut [FdHint],
) -> bool {
    if !more {
        m.armed = false;
    }
    let chunk = match (m.kind, res) {
        (MultiKind::Accept, fd) if fd >= 0 => Chunk::Fd(fd),
        (MultiKind::Recv, 0) => Chunk::End,
        (MultiKind::Recv, n) if n > 0 => match (bid, bufs.as_mut()) {
            (Some(b), Some(r)) => {
                r.taken();
                Chunk::Data(b, n as u32)
            }
            _ => Chunk::Err(-libc::EIO),
        },
        // Out of provided buffers, or paused (or the owner is gone): the
        // request ended with nothing to report. The owner's next call
        // decides what comes next.
        (_, e) if e == -libc::ENOBUFS || (e == -libc::ECANCELED && (m.pausing || m.orphaned)) => {
            if !more {
                m.starved = e == -libc::ENOBUFS;
                m.pausing = false;
                m.wake();
                if m.orphaned {
                    orphan_done(m, fds);
                }
            }
            return m.orphaned && !more;
        }
        (_, e) => Chunk::Err(e),
    };
    if m.orphaned {
        if let (Chunk::Data(bid, n), MultiKind::Recv) = (&chunk, m.kind) {
            if let (Some(h), Some(b)) = (live_hint(fds, m.fd, m.generation), bufs.as_ref()) {
                h.kept.get_or_insert_default().push_bytes(b.data(*bid, *n as usize));
            }
        }
        discard(chunk, bufs);
        if !more {
            orphan_done(m, fds);
        }
        return !more;
    }
    if let Chunk::Data(_, n) = chunk {
        m.bytes += n as usize;
    }
    m.queue.push_back(chunk);
    m.wake();
    false
}

/// Closes the descriptor a successful `raw` (an open, an accept) brought
/// for a future that is gone.
fn close_unclaimed(raw: &RawOp, res: i32) {
    if res >= 0 && raw.returns_fd() {
        // SAFETY: a new descriptor the kernel gave this operation alone.
        drop(unsafe { OwnedFd::from_raw_fd(res as RawFd) });
    }
}

/// Drops a result nobody will take: buffers go back, descriptors close.
fn discard(c: Chunk, bufs: &mut Option<BufRing>) {
    match c {
        Chunk::Data(bid, _) => {
            if let Some(b) = bufs {
                b.recycle(bid);
            }
        }
        // SAFETY: an accepted descriptor nobody else owns.
        Chunk::Fd(fd) => drop(unsafe { OwnedFd::from_raw_fd(fd) }),
        Chunk::End | Chunk::Err(_) => {}
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

/// Records in `fds` what a completed receive says about its socket's
/// buffer: a short read left it empty, unless the watch saw data come while
/// the receive ran (`seen` is the watch's count when it was submitted).
fn note_result(fds: &mut [FdHint], raw: &RawOp, res: i32, seen: u32) {
    let RawOp::Recv { fd, len, flags: 0, .. } = *raw else {
        return;
    };
    if let Some(h) = hint_mut(fds, fd) {
        h.drained = h.stream && res > 0 && (res as usize) < len && h.events == seen;
    }
}

/// What the driver knows of descriptor `fd`, if it registered.
fn hint(fds: &[FdHint], fd: RawFd) -> Option<&FdHint> {
    fds.get(usize::try_from(fd).ok()?)
}

fn hint_mut(fds: &mut [FdHint], fd: RawFd) -> Option<&mut FdHint> {
    fds.get_mut(usize::try_from(fd).ok()?)
}

/// Where operations name descriptor `fd`: its registered slot if it has one.
fn target(fds: &[FdHint], fd: RawFd) -> Target {
    hint(fds, fd).map_or(Target::Fd(fd), |h| h.target(fd))
}

/// Socket `fd`'s watch (key `key`) reported `res` (a poll mask, or an
/// error) or its end: the next receive need not wait.
fn watch_event(fds: &mut [FdHint], fd: RawFd, key: u64, res: i32, more: bool) {
    let Some(h) = hint_mut(fds, fd) else {
        return;
    };
    if u64::from(h.watch) != key {
        return;
    }
    if !more {
        h.watch = NONE;
    }
    if res < 0 || res & i32::from(libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
        h.closed = true;
    }
    h.events = h.events.wrapping_add(1);
    h.drained = false;
}

impl Multi {
    /// Whether enough waits for the owner to pause the request.
    fn is_full(&self) -> bool {
        match self.kind {
            MultiKind::Recv => self.bytes > PAUSE_AT,
            MultiKind::Accept => self.queue.len() >= ACCEPT_BACKLOG,
        }
    }
}

/// An orphaned multishot receive's last completion came: later receives on
/// its socket need not wait for it any more.
fn orphan_done(m: &Multi, fds: &mut [FdHint]) {
    if m.kind != MultiKind::Recv {
        return;
    }
    if let Some(k) = live_hint(fds, m.fd, m.generation).and_then(|h| h.kept.as_mut()) {
        k.arrived();
    }
}

/// The hint of `fd` if it is still registration `generation` (`u32::MAX`:
/// whichever registration is current).
fn live_hint(fds: &mut [FdHint], fd: RawFd, generation: u32) -> Option<&mut FdHint> {
    let h = hint_mut(fds, fd)?;
    (h.generation != 0 && (generation == u32::MAX || h.generation == generation)).then_some(h)
}

/// A dropped operation `raw` on `fd` completed with `res`: what it got
/// goes to the next operation on the same registration of `fd`; if that
/// is gone, an accepted connection is closed and data is dropped (nobody
/// can read the closed socket any more). `expected`: the operation was
/// counted as in flight when it was dropped.
///
/// # Safety
/// `raw`'s memory must be alive and the kernel done with it.
unsafe fn keep_result(fds: &mut [FdHint], fd: RawFd, generation: u32, raw: &RawOp, res: i32, expected: bool) {
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
