//! aio-poll: aio's readiness driver, on the [`polling`] crate (epoll on
//! Linux, kqueue on the BSDs and macOS).
//!
//! [`PollDriver`] runs each I/O operation as a non-blocking system call
//! right away; only when the call would block does it wait for the
//! descriptor to become ready, then try again. Descriptors are registered
//! once, edge-triggered (oneshot re-arming where the platform has no edge
//! mode), so waiting costs no system call per operation. Readers and
//! writers of one descriptor wait separately, and several tasks may wait on
//! the same direction.
//!
//! Most programs get this driver through the `aio` facade (`aio::run`).
//! Used directly:
//!
//! ```
//! let lp = aio_core::Loop::builder().driver(aio_poll::PollDriver::new().unwrap()).build();
//! assert_eq!(lp.backend(), "poll");
//! let v = lp.run_until_complete(async { aio_core::sleep(0.001).await.map(|_| 7) });
//! assert_eq!(v.unwrap().unwrap(), 7);
//! lp.close();
//! ```

#[cfg(target_os = "linux")]
mod linux;
mod ops;

use std::any::Any;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use aio_core::driver::{Accepted, Blocking, Driver, FdKind, IoDriver, Unpark};
use aio_core::io::{Interest, PeerAddr, RawOp};
#[cfg(not(target_os = "linux"))]
use polling::Events;
use polling::{Event, PollMode, Poller};

/// The readiness driver. See the crate docs.
pub struct PollDriver {
    poller: Arc<Poller>,
    #[cfg(not(target_os = "linux"))]
    events: Events,
    #[cfg(target_os = "linux")]
    waiter: linux::Waiter,
    #[cfg(target_os = "linux")]
    wake: Arc<linux::EventFd>,
    /// Indexed by descriptor number.
    sources: Vec<Source>,
    edge: bool,
    /// File calls, which no readiness applies to, run on threads.
    blocking: Blocking,
}

#[derive(Default)]
struct Source {
    registered: bool,
    /// A regular file or directory: not in the poller; its reads and
    /// writes run on the file-call threads.
    file: bool,
    /// A stream socket: a short read or write means the kernel buffer was
    /// drained or filled, so the next call would block.
    stream: bool,
    /// Whether a call in each direction is known to block: set when one
    /// would block (or a short transfer on a stream says it will), cleared
    /// when the poller reports readiness. Edge-triggered registration
    /// reports every change after a call saw the buffer empty or full, so
    /// skipping the call while the flag is set loses no event; it saves
    /// the system call that returns `EAGAIN` after every request. Unknown
    /// (false) until a call says otherwise: a new source tries first.
    read_blocked: bool,
    write_blocked: bool,
    /// The poller reported a hang-up or error: end of file or an error is
    /// waiting, and no later edge will announce it, so readiness is never
    /// cleared on a short transfer again.
    closed: bool,
    readers: Vec<Waker>,
    writers: Vec<Waker>,
}

impl Source {
    fn blocked(&mut self, interest: Interest) -> &mut bool {
        match interest {
            Interest::Readable => &mut self.read_blocked,
            Interest::Writable => &mut self.write_blocked,
        }
    }

    fn waiters(&mut self, interest: Interest) -> &mut Vec<Waker> {
        match interest {
            Interest::Readable => &mut self.readers,
            Interest::Writable => &mut self.writers,
        }
    }
}

#[cfg(not(target_os = "linux"))]
struct PollUnparker(Arc<Poller>);

#[cfg(not(target_os = "linux"))]
impl Unpark for PollUnparker {
    fn unpark(&self) {
        // A failed notification can only mean the poller is gone, and with
        // it the loop that would have been woken.
        let _ = self.0.notify();
    }
}

fn key(fd: RawFd) -> usize {
    fd as usize
}

impl PollDriver {
    /// A new driver with its own epoll/kqueue instance.
    pub fn new() -> io::Result<PollDriver> {
        let poller = Poller::new()?;
        let edge = poller.supports_edge();
        #[cfg(target_os = "linux")]
        let wake = {
            let w = linux::EventFd::new()?;
            w.register(std::os::fd::AsRawFd::as_raw_fd(&poller))?;
            Arc::new(w)
        };
        #[cfg(target_os = "linux")]
        let unparker: Arc<dyn Unpark> = wake.clone();
        let poller = Arc::new(poller);
        #[cfg(not(target_os = "linux"))]
        let unparker: Arc<dyn Unpark> = Arc::new(PollUnparker(poller.clone()));
        Ok(PollDriver {
            blocking: Blocking::new(unparker),
            poller,
            #[cfg(not(target_os = "linux"))]
            events: Events::new(),
            #[cfg(target_os = "linux")]
            waiter: linux::Waiter::new(),
            #[cfg(target_os = "linux")]
            wake,
            sources: Vec::new(),
            edge,
        })
    }

    fn source(&mut self, fd: RawFd) -> io::Result<&mut Source> {
        let i = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if i >= self.sources.len() {
            self.sources.resize_with(i + 1, Source::default);
        }
        Ok(&mut self.sources[i])
    }

    /// The interest a oneshot registration must be armed with now.
    fn armed_event(&self, fd: RawFd) -> Event {
        let s = &self.sources[fd as usize];
        match (!s.readers.is_empty(), !s.writers.is_empty()) {
            (true, true) => Event::all(key(fd)),
            (true, false) => Event::readable(key(fd)),
            (false, true) => Event::writable(key(fd)),
            (false, false) => Event::none(key(fd)),
        }
    }

    fn wait_for(&mut self, fd: RawFd, interest: Interest, waker: &Waker) -> io::Result<()> {
        if !self.source(fd)?.registered {
            self.register(fd)?;
        }
        let edge = self.edge;
        let list = self.source(fd)?.waiters(interest);
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
        if !edge {
            let ev = self.armed_event(fd);
            // SAFETY: `fd` is registered, so it is open (aio-net deregisters
            // before closing).
            let b = unsafe { BorrowedFd::borrow_raw(fd) };
            self.poller.modify_with_mode(b, ev, PollMode::Oneshot)?;
        }
        Ok(())
    }
}

impl PollDriver {
    /// Adds `fd` to the poller: edge-triggered for both directions where
    /// the platform allows it, else one-shot and armed per wait.
    fn add(&self, fd: RawFd, edge: bool) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if edge {
            let epfd = std::os::fd::AsRawFd::as_raw_fd(&*self.poller);
            return linux::register_edge(epfd, fd, key(fd) as u64);
        }
        let (ev, mode) = if edge {
            (Event::all(key(fd)), PollMode::Edge)
        } else {
            (Event::none(key(fd)), PollMode::Oneshot)
        };
        // SAFETY: the caller (aio-net) deregisters the descriptor before it
        // is closed, as `polling` requires.
        unsafe { self.poller.add_with_mode(fd, ev, mode) }
    }

    /// Whether a call on `fd` in this direction is known to block until
    /// the poller reports a change.
    fn known_blocked(&mut self, fd: RawFd, interest: Interest) -> bool {
        match self.sources.get_mut(fd as usize) {
            Some(s) if s.registered => *s.blocked(interest),
            _ => false,
        }
    }

    /// Parks the caller until `fd` is ready in this direction.
    fn wait<T>(&mut self, fd: RawFd, interest: Interest, waker: &Waker) -> Poll<io::Result<T>> {
        match self.wait_for(fd, interest, waker) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Whether `op` is a file call (or a read or write of a regular file),
    /// run on the file-call threads.
    fn is_file_call(&self, op: &RawOp) -> bool {
        match op {
            RawOp::Read { fd, .. } | RawOp::Write { fd, .. } => {
                usize::try_from(*fd).is_ok_and(|i| self.sources.get(i).is_some_and(|s| s.file))
            }
            op => op.is_file_op(),
        }
    }

    /// Runs `op` and records what its result says about readiness.
    fn execute(&mut self, op: &RawOp, interest: Interest) -> io::Result<usize> {
        let result = ops::execute(op);
        let Some(s) = self.sources.get_mut(op.fd() as usize).filter(|s| s.registered) else {
            return result;
        };
        let drained = match (&result, op) {
            (Err(e), _) => e.kind() == io::ErrorKind::WouldBlock,
            // A short transfer on a stream socket emptied the receive
            // buffer or filled the send buffer. Not so for datagrams (one
            // per call), nor for end of file (n = 0), which stays ready.
            (&Ok(n), &RawOp::Recv { len, flags: 0, .. } | &RawOp::Read { len, .. })
            | (&Ok(n), &RawOp::Send { len, .. } | &RawOp::Write { len, .. }) => {
                s.stream && !s.closed && n > 0 && n < len
            }
            _ => false,
        };
        if drained {
            *s.blocked(interest) = true;
        }

        result
    }
}

/// Whether `fd` is in non-blocking mode.
fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer; a bad descriptor fails the call.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_NONBLOCK != 0
}

/// Wakes the waiters of a ready descriptor.
fn ready(sources: &mut [Source], key: usize, readable: bool, writable: bool, closed: bool) {
    let Some(s) = sources.get_mut(key).filter(|s| s.registered) else {
        return;
    };
    s.closed |= closed;
    s.read_blocked &= !readable;
    s.write_blocked &= !writable;
    if readable {
        for w in s.readers.drain(..) {
            w.wake();
        }
    }
    if writable {
        for w in s.writers.drain(..) {
            w.wake();
        }
    }
}

impl Driver for PollDriver {
    #[cfg(target_os = "linux")]
    fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let epfd = std::os::fd::AsRawFd::as_raw_fd(&*self.poller);
        let sources = &mut self.sources;
        let mut woken = false;
        let res = self.waiter.wait(epfd, timeout, |r| {
            if r.key == linux::WAKE_KEY {
                woken = true;
            } else {
                ready(sources, r.key as usize, r.readable, r.writable, r.closed);
            }
        });
        if woken {
            self.wake.drain();
        }
        self.blocking.collect();
        res
    }

    #[cfg(not(target_os = "linux"))]
    fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for e in self.events.iter() {
            // `polling` does not report hang-ups apart from readiness; off
            // Linux `Source::stream` is false, so nothing reads `closed`.
            ready(&mut self.sources, e.key, e.readable, e.writable, false);
        }
        self.blocking.collect();
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn unparker(&self) -> Arc<dyn Unpark> {
        self.wake.clone()
    }

    #[cfg(not(target_os = "linux"))]
    fn unparker(&self) -> Arc<dyn Unpark> {
        Arc::new(PollUnparker(self.poller.clone()))
    }

    fn name(&self) -> &'static str {
        "poll"
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn io(&mut self) -> Option<&mut dyn IoDriver> {
        Some(self)
    }

    /// File calls on the file-call threads complete by themselves: a
    /// paused clock waits for them.
    fn is_busy(&self) -> bool {
        self.blocking.in_flight() > 0
    }
}

impl IoDriver for PollDriver {
    fn register_kind(&mut self, fd: RawFd, kind: FdKind) -> io::Result<()> {
        let edge = self.edge;
        let s = self.source(fd)?;
        if kind == FdKind::File {
            if s.registered {
                return Ok(());
            }
            // A FIFO, socket or character device opened non-blocking (as
            // aio-fs opens them) waits for readiness like a socket: its
            // reads take nothing until data is there, so a read dropped or
            // cancelled midway loses nothing and ends at once. Regular
            // files are always "ready" (epoll refuses them) and blocking
            // descriptors would block the loop: their calls run on threads.
            if !is_nonblocking(fd) || self.add(fd, edge).is_err() {
                self.source(fd)?.file = true;
                return Ok(());
            }
            let s = self.source(fd)?;
            s.registered = true;
            return Ok(());
        }
        if s.registered {
            return Ok(());
        }
        self.add(fd, edge)?;
        // Only the Linux waiter reports hang-ups apart from readiness, which
        // the short-transfer rule needs (see `Source::closed`).
        let stream = cfg!(target_os = "linux") && kind.is_stream_socket(fd);
        // A source is reset (`mem::take`) when deregistered, so the
        // readiness flags start from their defaults here.
        let s = self.source(fd)?;
        s.registered = true;
        s.stream = stream;
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) {
        self.blocking.closed(fd);
        let Ok(s) = self.source(fd) else { return };
        if s.file {
            *s = Source::default();
            return;
        }
        if !s.registered {
            return;
        }
        let s = std::mem::take(s);
        // Wake whoever still waits: their next attempt reports the error.
        for w in s.readers.into_iter().chain(s.writers) {
            w.wake();
        }
        // SAFETY: still open (deregistration comes before close).
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = self.poller.delete(b);
    }

    fn poll_op(&mut self, op: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        if token.is_some() {
            return self.blocking.poll(token, waker);
        }
        if self.is_file_call(op) {
            return self.blocking.submit(op, token, waker);
        }
        let Some(interest) = op.interest() else {
            return Poll::Ready(ops::execute(op));
        };
        if self.known_blocked(op.fd(), interest) {
            return self.wait(op.fd(), interest, waker);
        }
        match self.execute(op, interest) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(op.fd(), interest, waker),
            other => Poll::Ready(other),
        }
    }

    fn cancel_op(&mut self, token: u64) {
        // Only file calls are ever in flight (on threads); the rest run as
        // immediate calls.
        if Blocking::owns(token) {
            self.blocking.cancel(token);
        }
    }

    /// A file call on a thread cannot be interrupted.
    fn cancel_may_wait(&self, token: u64) -> bool {
        Blocking::owns(token)
    }

    fn forget_op(&mut self, token: u64, owner: Box<dyn Any>) {
        if Blocking::owns(token) {
            self.blocking.forget(token, owner);
        } else {
            drop(owner);
        }
    }

    fn is_completion_based(&self) -> bool {
        false
    }

    fn try_op(&mut self, op: &RawOp) -> Option<io::Result<usize>> {
        if self.is_file_call(op) {
            return None; // it would block this thread
        }
        let result = match op.interest() {
            Some(interest) if self.known_blocked(op.fd(), interest) => return None,
            Some(interest) => self.execute(op, interest),
            None => ops::execute(op),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            other => Some(other),
        }
    }

    /// Readiness needs no buffer while waiting: receive straight into
    /// `out` when it has room, else into scratch space on the stack, so an
    /// idle connection costs no buffer at all.
    fn poll_recv_multi(
        &mut self,
        fd: RawFd,
        _token: &mut Option<u64>,
        waker: &Waker,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Option<Poll<io::Result<usize>>> {
        let max = max.max(1);
        let len = out.len();
        let room = out.capacity() - len;
        if room >= RECV_CHUNK.min(max) / 4 {
            let op = RawOp::Recv {
                fd,
                // SAFETY: `len <= capacity`: the pointer is within the allocation.
                buf: unsafe { out.as_mut_ptr().add(len) },
                len: room.min(max),
                flags: 0,
            };
            let r = self.poll_op(&op, &mut None, waker);
            if let Poll::Ready(Ok(n)) = r {
                // SAFETY: the kernel wrote `n` bytes after the initialized part.
                unsafe { out.set_len(len + n) };
            }
            return Some(r);
        }
        // Uninitialized: the kernel writes what it returns, and only that
        // is read (zeroing 64 KiB per call cost more than the receive).
        let mut scratch = std::mem::MaybeUninit::<[u8; RECV_CHUNK]>::uninit();
        let op = RawOp::Recv {
            fd,
            buf: scratch.as_mut_ptr().cast(),
            len: RECV_CHUNK.min(max),
            flags: 0,
        };
        let r = self.poll_op(&op, &mut None, waker);
        if let Poll::Ready(Ok(n)) = r {
            // SAFETY: the kernel initialized the first `n <= RECV_CHUNK`
            // bytes of `scratch`.
            let got = unsafe { std::slice::from_raw_parts(scratch.as_ptr().cast::<u8>(), n.min(RECV_CHUNK)) };
            out.extend_from_slice(got);
        }
        Some(r)
    }

    fn poll_accept_multi(
        &mut self,
        fd: RawFd,
        _token: &mut Option<u64>,
        waker: &Waker,
    ) -> Option<Poll<io::Result<Accepted>>> {
        let mut peer = PeerAddr::new();
        let op = peer.accept_op(fd);
        // The call runs before `poll_op` returns, so a local is fine.
        let r = self.poll_op(&op, &mut None, waker);
        Some(r.map(|r| r.map(|fd| (fd as RawFd, Some(peer.addr())))))
    }
}

/// How much a receive asks for when the caller's buffer is nearly full.
const RECV_CHUNK: usize = 64 * 1024;
