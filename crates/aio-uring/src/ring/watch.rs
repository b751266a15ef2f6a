//! Receives on an empty socket wait in the driver. A short receive on a
//! stream socket says its buffer is empty, so the next one would only have
//! the kernel arm (and tear down) a one-shot poll; instead it waits, with
//! nothing submitted, for the socket's watch: one multishot readiness poll
//! that stays armed for the socket's life, like an epoll registration.
//! Counting the watch's events lets a receive that saw one while it ran
//! leave the socket unmarked, so no data arrives unnoticed.

use std::os::fd::RawFd;
use std::task::{Poll, Waker};

use aio_core::io::RawOp;
use io_uring::{opcode, types};

use super::fds::{FdHint, NONE, hint, hint_mut, target};
use super::{Op, Ring, State, add_waiter};
// `on!` names `Target` and `types` where it is used.
use crate::ops::{Target, on};

impl Ring {
    /// The socket index of `raw` if it is a receive that should wait for
    /// its socket's watch: a plain receive on a stream socket whose last
    /// receive emptied it.
    #[inline]
    pub(super) fn parks(&self, raw: &RawOp) -> Option<usize> {
        let RawOp::Recv { fd, flags: 0, .. } = *raw else {
            return None;
        };
        let h = hint(&self.fds, fd)?;
        (self.multishot && h.stream && h.drained && !h.closed).then_some(fd as usize)
    }

    /// Makes `waker` wait for socket `i`'s next watch event, arming the
    /// watch if needed. Waiters are woken in the order they came.
    #[inline]
    pub(super) fn wait_for_data(&mut self, i: usize, waker: &Waker) {
        let key = self.watch(i);
        if let Some(Op {
            state: State::Watch { waiters, .. },
            ..
        }) = self.ops.get_mut(key)
        {
            add_waiter(waiters, waker);
        }
    }

    /// The key of socket `i`'s watch (a multishot poll that stays armed for
    /// the socket's life), armed now if it was not.
    fn watch(&mut self, i: usize) -> usize {
        let watch = self.fds[i].watch as usize;
        if let Some(Op {
            state: State::Watch { .. },
            ..
        }) = self.ops.get(watch)
        {
            return watch;
        }
        let fd = i as RawFd;
        let w = self.ops.insert(Op {
            state: State::Watch {
                fd,
                live: true,
                waiters: Vec::new(),
            },
            raw: RawOp::Close { fd: -1 },
            seen: 0,
            busy: false,
            cancelled: false,
        });
        self.fds[i].watch = w as u32;
        let mask = (libc::POLLIN | libc::POLLRDHUP) as u32;
        self.push(
            on!(target(&self.fds, fd), f => opcode::PollAdd::new(f, mask).multi(true).build()).user_data(w as u64),
        );
        w
    }

    /// See `IoDriver::watch_readable`: the events socket `fd`'s watch has
    /// counted, arming it if needed; `None` for what has no watch (not a
    /// stream socket, no multishot poll, or its end already seen).
    pub(crate) fn watch_readable(&mut self, fd: RawFd) -> Option<u32> {
        let h = hint(&self.fds, fd)?;
        if !(self.multishot && h.stream && !h.closed && h.generation != 0) {
            return None;
        }
        let events = h.events;
        self.watch(fd as usize);
        Some(events)
    }

    /// See `IoDriver::poll_readable`: `Ready` once socket `fd`'s watch
    /// counted an event after `seen`, ended, or the socket is gone.
    pub(crate) fn poll_readable(&mut self, fd: RawFd, seen: u32, waker: &Waker) -> Poll<()> {
        let Some(h) = hint(&self.fds, fd) else {
            return Poll::Ready(());
        };
        if h.events != seen || h.closed || h.watch == NONE || h.generation == 0 {
            return Poll::Ready(());
        }
        self.wait_for_data(fd as usize, waker);
        Poll::Pending
    }
}

/// Socket `fd`'s watch (key `key`) reported `res` (a poll mask, or an
/// error) or its end: the next receive need not wait.
#[inline]
pub(super) fn watch_event(fds: &mut [FdHint], fd: RawFd, key: u64, res: i32, more: bool) {
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

/// Records in `fds` what a completed receive says about its socket's
/// buffer: a short read left it empty, unless the watch saw data come while
/// the receive ran (`seen` is the watch's count when it was submitted).
#[inline]
pub(super) fn note_result(fds: &mut [FdHint], raw: &RawOp, res: i32, seen: u32) {
    let RawOp::Recv { fd, len, flags: 0, .. } = *raw else {
        return;
    };
    if let Some(h) = hint_mut(fds, fd) {
        h.drained = h.stream && res > 0 && (res as usize) < len && h.events == seen;
    }
}
