//! `futures-io` (and, with the `tokio-io` feature, tokio) `AsyncRead` /
//! `AsyncWrite` for the stream sockets, and the state their split halves
//! carry.
//!
//! On a readiness driver the trait's borrowed buffer is used directly (the
//! call runs before `poll_read` returns). On a completion driver the
//! kernel would need memory it owns for a receive or a send in flight, so
//! these impls do not put one in flight: they try the system call at once
//! on the caller's buffer (the socket is non-blocking) and, when it would
//! block, wait for readiness, then try again: a read waits for the
//! socket's watch (a multishot poll the driver keeps armed, as epoll keeps
//! a registration; no request per wait), a write for a one-shot poll. A
//! read after a short one waits first, as on epoll, instead of trying a
//! call that would say `EAGAIN`. That is readiness on a completion ring:
//! no owned buffer per stream, no copy, and no loop turn when the data is
//! already there (a turn per call made the adapters 25–30% slower than on
//! the readiness backend; a one-shot poll and a failed try per wait,
//! 10%). Nothing is
//! ever in flight but a poll, so a dropped or cancelled call loses no
//! byte, and the read and write sides are independent (split halves each
//! keep their own).
//!
//! These impls do not observe aio's cancellation (the traits cannot report
//! it); a task waiting only on them is dropped when cancelled.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aio_core::io::{self as aio_io, Borrowed, Interest, OpFuture, PollReady, Registered};

use crate::sock::sref;

/// One direction's state on a completion driver: what the last try that
/// found the socket empty waits for.
#[derive(Default)]
pub(crate) struct Side {
    /// The one-shot readiness poll in flight.
    ready: Option<OpFuture<PollReady>>,
    /// The read side waits for the socket's watch (a readiness poll the
    /// driver keeps armed, see `IoDriver::watch_readable`) to count an
    /// event past this one: no request per wait, as on epoll. Set by a
    /// read that would block, and by a short read (the socket's queue ran
    /// dry then), so the next read does not try a call that would most
    /// likely fail with `EAGAIN`; if data came meanwhile, the watch has
    /// counted it already and the read goes ahead.
    seen: Option<u32>,
}

/// Both directions of a stream socket.
#[derive(Default)]
pub(crate) struct Compat {
    pub(crate) read: Side,
    pub(crate) write: Side,
}

/// Runs `call` now; while it would block, waits for `interest` (with the
/// socket's watch, or with a poll on the ring) and runs it again.
fn poll_try(
    fd: &Registered,
    side: &mut Side,
    cx: &mut Context<'_>,
    interest: Interest,
    mut call: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        if let Some(seen) = side.seen {
            ready!(fd.poll_readable(seen, cx));
            side.seen = None;
        }
        if let Some(op) = side.ready.as_mut() {
            let res = ready!(Pin::new(op).poll(cx));
            side.ready = None;
            // A failed poll (the socket's error) is what the call reports.
            drop(res);
        }
        match call() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_for(fd, side, interest),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return Poll::Ready(other),
        }
    }
}

/// A call on `fd` would block: `side` waits for `interest`, a read on the
/// socket's watch when the driver keeps one, else on a one-shot poll.
fn wait_for(fd: &Registered, side: &mut Side, interest: Interest) {
    side.seen = match interest {
        Interest::Readable => fd.watch_readable(),
        _ => None,
    };
    if side.seen.is_none() && side.ready.is_none() {
        side.ready = Some(aio_io::submit_shielded(PollReady::new(fd.as_raw_fd(), interest)));
    }
}

pub(crate) fn poll_read(
    fd: &Registered,
    side: &mut Side,
    cx: &mut Context<'_>,
    out: &mut [u8],
) -> Poll<io::Result<usize>> {
    if out.is_empty() {
        return Poll::Ready(Ok(0));
    }
    if let Some(p) = fd.poll_borrowed(Borrowed::Recv(out), cx) {
        return p;
    }
    let want = out.len();
    let res = poll_try(fd, side, cx, Interest::Readable, || (&*sref(fd)).read(out));
    // A stream socket's read is short only when its queue ran dry (and
    // `Ok(0)` is end of stream, after which nothing is waited for).
    if matches!(res, Poll::Ready(Ok(n)) if n > 0 && n < want) {
        side.seen = fd.watch_readable();
    }
    res
}

pub(crate) fn poll_write(
    fd: &Registered,
    side: &mut Side,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    if data.is_empty() {
        return Poll::Ready(Ok(0));
    }
    if let Some(p) = fd.poll_borrowed(Borrowed::Send(data), cx) {
        return p;
    }
    // A completion driver just tried the send (`IoDriver::try_op`) and it
    // would block: wait before trying again, rather than a second call
    // that would say `EAGAIN` too.
    wait_for(fd, side, Interest::Writable);
    // socket2's send passes MSG_NOSIGNAL: a closed peer is EPIPE, not a signal.
    poll_try(fd, side, cx, Interest::Writable, || (&*sref(fd)).write(data))
}

/// Data is handed to the kernel by `poll_write`: nothing to flush.
pub(crate) fn poll_flush() -> Poll<io::Result<()>> {
    Poll::Ready(Ok(()))
}

/// Shuts the sending side down (the peer reads EOF); reading goes on. A
/// socket the peer already disconnected counts as shut down.
pub(crate) fn poll_shutdown(fd: &Registered) -> Poll<io::Result<()>> {
    Poll::Ready(match sref(fd).shutdown(Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    })
}

/// Implements the `futures-io` traits (and tokio's, with `tokio-io`) for a
/// type with `fd: Registered` and `compat: Compat` fields.
macro_rules! impl_async_io {
    ($t:ty) => {
        crate::compat::impl_async_read!($t, |this| (&this.fd, &mut this.compat.read));
        crate::compat::impl_async_write!($t, |this| (&this.fd, &mut this.compat.write));
    };
}
pub(crate) use impl_async_io;

/// `AsyncRead` (futures-io's, and tokio's with `tokio-io`) for `$t`, whose
/// `|this| (fd, side)` gives the socket and the read side's state.
macro_rules! impl_async_read {
    ($t:ty, |$this:ident| $parts:expr) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $this = self.get_mut();
                let (fd, side) = $parts;
                crate::compat::poll_read(fd, side, cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let n = std::task::ready!(futures_io::AsyncRead::poll_read(
                    self,
                    cx,
                    buf.initialize_unfilled()
                ))?;
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
        }
    };
}
pub(crate) use impl_async_read;

/// `AsyncWrite` (futures-io's, and tokio's with `tokio-io`) for `$t`, whose
/// `|this| (fd, side)` gives the socket and the write side's state.
/// Closing (`poll_close`, `poll_shutdown`) shuts the sending side down.
macro_rules! impl_async_write {
    ($t:ty, |$this:ident| $parts:expr) => {
        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $this = self.get_mut();
                let (fd, side) = $parts;
                crate::compat::poll_write(fd, side, cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                crate::compat::poll_flush()
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let $this = self.get_mut();
                let (fd, _) = $parts;
                crate::compat::poll_shutdown(fd)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                futures_io::AsyncWrite::poll_write(self, cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                futures_io::AsyncWrite::poll_flush(self, cx)
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                futures_io::AsyncWrite::poll_close(self, cx)
            }
        }
    };
}
pub(crate) use impl_async_write;
