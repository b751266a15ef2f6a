//! Operations that stay armed across calls: a socket's receive stream and a
//! listener's accept stream. On io_uring they are multishot operations (and
//! the receive draws from a shared ring of provided buffers, so no buffer
//! is pinned per idle connection); elsewhere they fall back to one-shot
//! operations. Owned by a stream or listener, they survive their callers'
//! cancellations: nothing received or accepted is lost.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use socket2::SockAddr;

use super::future::{OpFuture, no_io_driver, submit_shielded};
use super::ops::{Accept, Recv};
use crate::context::expect_core;
use crate::event_loop::Loop;
use crate::event_loop::busy::Deferred;
use crate::event_loop::core::Core;

/// How much a one-shot fallback receive asks for at a time.
const CHUNK: usize = 64 * 1024;

enum Mode<T: super::Operation> {
    /// Not started yet (or the driver has no multishot form).
    Idle,
    /// Armed on the driver: the token and the loop that holds it.
    Multi(u64, Loop),
    /// One-shot fallback in flight.
    Single(OpFuture<T>),
}

/// Records the driver's answer: armed with `token`, or not armed.
fn rearm<T: super::Operation>(mode: &mut Mode<T>, token: Option<u64>, core: &Core) {
    *mode = match token {
        Some(t) => match std::mem::replace(mode, Mode::Idle) {
            Mode::Multi(_, lp) => Mode::Multi(t, lp),
            _ => Mode::Multi(t, Loop::from_core_ptr(core)),
        },
        None => Mode::Idle,
    };
}

/// Counts the operation in the loop's operations in flight (its metrics)
/// while it is armed on the driver or waited for: `counted` says whether
/// it is counted now, `in_flight` whether it should be.
fn count(counted: &mut bool, in_flight: bool, core: &Core) {
    if *counted != in_flight {
        *counted = in_flight;
        let ops = &core.stats.ops;
        ops.set(if in_flight {
            ops.get() + 1
        } else {
            ops.get().saturating_sub(1)
        });
    }
}

/// A multishot operation dropped while counted leaves the count.
fn uncount(counted: bool) {
    if counted {
        crate::context::with_core(|c| {
            if let Some(c) = c {
                c.stats.ops.set(c.stats.ops.get().saturating_sub(1));
            }
        });
    }
}

/// The receive side of a socket, kept armed between reads.
///
/// Not `Send`: it belongs to the loop that runs it.
pub struct RecvStream {
    fd: RawFd,
    mode: Mode<Recv<Vec<u8>>>,
    multi: bool,
    /// Counted in the loop's operations in flight.
    counted: bool,
    _local: PhantomData<*const ()>,
}

impl fmt::Debug for RecvStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvStream")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl RecvStream {
    /// A receive stream on socket `fd` (which must outlive it).
    pub fn new(fd: RawFd) -> RecvStream {
        RecvStream {
            fd,
            mode: Mode::Idle,
            multi: true,
            counted: false,
            _local: PhantomData,
        }
    }

    /// Appends the next data to `out`, at most `max` bytes (`Ok(0)`: end
    /// of stream). What the driver already received beyond `max` waits
    /// for the next call, so a caller bounds its buffer by bounding `max`.
    ///
    /// This does not observe cancellation (the caller does, before calling):
    /// data the kernel already received is never lost to a cancelled read.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>, out: &mut Vec<u8>, max: usize) -> Poll<io::Result<usize>> {
        let max = max.max(1);
        // (A one-shot receive in flight finishes first: two receives at
        // once could take the data out of order.)
        if self.multi && !matches!(self.mode, Mode::Single(_)) {
            let r = expect_core(|core| {
                let mut d = core.driver_mut();
                let Some(io) = d.io() else {
                    return Some(Poll::Ready(Err(no_io_driver())));
                };
                let mut token = match &self.mode {
                    Mode::Multi(t, _) => Some(*t),
                    _ => None,
                };
                let r = io.poll_recv_multi(self.fd, &mut token, cx.waker(), out, max)?;
                drop(d);
                count(&mut self.counted, token.is_some() || r.is_pending(), core);
                rearm(&mut self.mode, token, core);
                Some(r)
            });
            match r {
                // Out of provided buffers: one-shot, this time.
                Some(Poll::Ready(Err(e))) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Some(p) => return p,
                None => self.multi = false,
            }
        }
        // One-shot receives into a buffer of our own, appended to `out`.
        if matches!(self.mode, Mode::Idle) {
            self.mode = Mode::Single(submit_shielded(Recv::new(
                self.fd,
                Vec::with_capacity(CHUNK.min(max)),
                0,
            )));
        }
        let Mode::Single(op) = &mut self.mode else {
            unreachable!()
        };
        let (res, buf) = ready!(Pin::new(op).poll(cx));
        self.mode = Mode::Idle;
        let n = res?;
        out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        uncount(self.counted);
        if let Mode::Multi(token, lp) = std::mem::replace(&mut self.mode, Mode::Idle) {
            lp.core.driver_work(Deferred::Forget(token, Box::new(())));
        }
    }
}

/// The accept side of a listener, kept armed between accepts.
///
/// Not `Send`: it belongs to the loop that runs it.
pub struct AcceptStream {
    fd: RawFd,
    mode: Mode<Accept>,
    multi: bool,
    /// Counted in the loop's operations in flight.
    counted: bool,
    _local: PhantomData<*const ()>,
}

impl fmt::Debug for AcceptStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptStream")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl AcceptStream {
    /// An accept stream on listening socket `fd` (which must outlive it).
    pub fn new(fd: RawFd) -> AcceptStream {
        AcceptStream {
            fd,
            mode: Mode::Idle,
            multi: true,
            counted: false,
            _local: PhantomData,
        }
    }

    /// The next accepted connection (non-blocking, close-on-exec).
    ///
    /// This does not observe cancellation (the caller does, before
    /// calling): a connection the kernel accepted is never lost.
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<OwnedFd>> {
        self.poll_accept_from(cx).map_ok(|(fd, _)| fd)
    }

    /// [`poll_accept`](AcceptStream::poll_accept), with the peer's address
    /// when the accept reported it (a one-shot accept does; a multishot
    /// accept does not, so the caller asks the socket instead).
    pub fn poll_accept_from(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(OwnedFd, Option<SockAddr>)>> {
        if self.multi {
            let r = expect_core(|core| {
                let mut d = core.driver_mut();
                let Some(io) = d.io() else {
                    return Some(Poll::Ready(Err(no_io_driver())));
                };
                let mut token = match &self.mode {
                    Mode::Multi(t, _) => Some(*t),
                    _ => None,
                };
                let r = io.poll_accept_multi(self.fd, &mut token, cx.waker())?;
                drop(d);
                count(&mut self.counted, token.is_some() || r.is_pending(), core);
                rearm(&mut self.mode, token, core);
                // SAFETY: the driver hands over a new descriptor it gives to
                // nobody else.
                Some(r.map(|r| r.map(|(fd, addr)| (unsafe { OwnedFd::from_raw_fd(fd) }, addr))))
            });
            match r {
                Some(p) => return p,
                None => self.multi = false,
            }
        }
        if matches!(self.mode, Mode::Idle) {
            self.mode = Mode::Single(submit_shielded(Accept::new(self.fd)));
        }
        let Mode::Single(op) = &mut self.mode else {
            unreachable!()
        };
        let res = ready!(Pin::new(op).poll(cx));
        self.mode = Mode::Idle;
        Poll::Ready(res.map(|(fd, addr)| (fd, Some(addr))))
    }
}

impl Drop for AcceptStream {
    fn drop(&mut self) {
        uncount(self.counted);
        if let Mode::Multi(token, lp) = std::mem::replace(&mut self.mode, Mode::Idle) {
            lp.core.driver_work(Deferred::Forget(token, Box::new(())));
        }
    }
}
