//! Multishot receives and accepts (aio-core's `RecvStream` and
//! `AcceptStream`): one request in the kernel for many results, which
//! queue in [`Multi`] until the owner takes them. Receives draw from the
//! shared provided buffers; both pause once enough waits for an owner that
//! stopped taking, and a receive that finds the buffers short goes
//! one-shot, so one idle owner never starves the others.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::task::{Poll, Waker};

use aio_core::io::RawOp;
use io_uring::{opcode, squeue::Entry, types};

use super::fds::{FdHint, hint, live_hint, target};
use super::orphans::orphan_done;
use super::{Op, Ring, State, add_waiter};
use crate::bufs::BufRing;
// `on!` names `Target` and `types` where it is used.
use crate::ops::{Target, on};

/// Provided buffers: how many, and how large (a power of two).
pub(super) const BUF_COUNT: u16 = 256;
pub(super) const BUF_SIZE: usize = 16 * 1024;

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

/// A multishot operation's results waiting for its owner.
pub(super) enum Chunk {
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
pub(super) enum MultiKind {
    Recv,
    Accept,
}

pub(super) struct Multi {
    pub(super) fd: RawFd,
    /// The registration of `fd` it belongs to (see `FdHint::generation`).
    pub(super) generation: u32,
    pub(super) kind: MultiKind,
    pub(super) queue: VecDeque<Chunk>,
    /// Bytes of data in `queue` (not counting what `head` passed).
    pub(super) bytes: usize,
    /// Bytes of the front chunk already handed out.
    pub(super) head: usize,
    pub(super) waiters: Vec<Waker>,
    /// A multishot request is in the kernel.
    pub(super) armed: bool,
    /// A cancel was sent because `bytes` passed `PAUSE_AT`.
    pub(super) pausing: bool,
    /// The request ended for lack of provided buffers.
    starved: bool,
    /// The owner is gone: discard results, free the slot at the last CQE.
    pub(super) orphaned: bool,
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
    pub(super) fn take(&mut self, bufs: &mut BufRing, out: &mut Vec<u8>, max: usize) -> usize {
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

    /// Whether enough waits for the owner to pause the request.
    #[inline]
    pub(super) fn is_full(&self) -> bool {
        match self.kind {
            MultiKind::Recv => self.bytes > PAUSE_AT,
            MultiKind::Accept => self.queue.len() >= ACCEPT_BACKLOG,
        }
    }

    /// Records one completion (`res`, and the provided buffer `bid` it
    /// filled); `more`: the request stays armed. Returns whether the slot
    /// can go (an orphan's last completion).
    #[inline]
    pub(super) fn record(
        &mut self,
        res: i32,
        more: bool,
        bid: Option<u16>,
        bufs: &mut Option<BufRing>,
        fds: &mut [FdHint],
    ) -> bool {
        if !more {
            self.armed = false;
        }
        let chunk = match (self.kind, res) {
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
            (_, e) if e == -libc::ENOBUFS || (e == -libc::ECANCELED && (self.pausing || self.orphaned)) => {
                if !more {
                    self.starved = e == -libc::ENOBUFS;
                    self.pausing = false;
                    self.wake();
                    if self.orphaned {
                        orphan_done(self, fds);
                    }
                }
                return self.orphaned && !more;
            }
            (_, e) => Chunk::Err(e),
        };
        if self.orphaned {
            if let (Chunk::Data(bid, n), MultiKind::Recv) = (&chunk, self.kind) {
                if let (Some(h), Some(b)) = (live_hint(fds, self.fd, self.generation), bufs.as_ref()) {
                    h.kept.get_or_insert_default().push_bytes(b.data(*bid, *n as usize));
                }
            }
            discard(chunk, bufs);
            if !more {
                orphan_done(self, fds);
            }
            return !more;
        }
        if let Chunk::Data(_, n) = chunk {
            self.bytes += n as usize;
        }
        self.queue.push_back(chunk);
        self.wake();
        false
    }
}

impl Ring {
    fn multi_entry(&self, m: &Multi, key: u64) -> Entry {
        let target = target(&self.fds, m.fd);
        match m.kind {
            MultiKind::Recv => {
                let group = self.bufs.as_ref().map_or(0, |b| b.group);
                on!(target, f => opcode::RecvMulti::new(f, group).build()).user_data(key)
            }
            MultiKind::Accept => on!(target, f => opcode::AcceptMulti::new(f)
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
                    cancelled: false,
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
        if let Some(p) = self.recv_from_kept(fd, waker, out, max) {
            return Some(p);
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
}

/// Drops a result nobody will take: buffers go back, descriptors close.
pub(super) fn discard(c: Chunk, bufs: &mut Option<BufRing>) {
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
