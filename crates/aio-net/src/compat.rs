//! `futures-io` (and, with the `tokio-io` feature, tokio) `AsyncRead` /
//! `AsyncWrite` for the stream types.
//!
//! On a readiness driver the trait's borrowed buffer is used directly (the
//! call runs before `poll_read` returns). On a completion driver the kernel
//! needs memory it owns, so reads go through an owned buffer kept here and
//! writes that the socket does not take at once through an owned copy: a
//! write that returned `Pending` is already in flight and completes when
//! the caller polls again (callers repeat the same write, as the trait's
//! contract has them do).
//!
//! These impls do not observe aio's cancellation (the traits cannot report
//! it); a task waiting only on them is dropped when cancelled.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aio_core::io::{self as aio_io, Borrowed, OpFuture, Registered};

const READ_CHUNK: usize = 64 * 1024;

/// Per-stream state of the completion path.
#[derive(Default)]
pub(crate) struct Compat {
    read: Option<OpFuture<aio_io::Recv<Vec<u8>>>>,
    rbuf: Vec<u8>,
    rpos: usize,
    write: Option<OpFuture<aio_io::Send<Vec<u8>>>>,
    shutdown: Option<OpFuture<aio_io::Shutdown>>,
}

pub(crate) fn poll_read(
    fd: &Registered,
    c: &mut Compat,
    cx: &mut Context<'_>,
    out: &mut [u8],
) -> Poll<io::Result<usize>> {
    if c.rpos < c.rbuf.len() {
        let n = out.len().min(c.rbuf.len() - c.rpos);
        out[..n].copy_from_slice(&c.rbuf[c.rpos..c.rpos + n]);
        c.rpos += n;
        return Poll::Ready(Ok(n));
    }
    if out.is_empty() {
        return Poll::Ready(Ok(0));
    }
    if let Some(p) = fd.poll_borrowed(Borrowed::Recv(out), cx) {
        return p;
    }
    let op = c.read.get_or_insert_with(|| {
        let mut b = std::mem::take(&mut c.rbuf);
        b.clear();
        b.reserve(READ_CHUNK);
        aio_io::submit_shielded(aio_io::Recv::new(fd.as_raw_fd(), b, 0))
    });
    let (res, buf) = ready!(Pin::new(op).poll(cx));
    c.read = None;
    c.rbuf = buf;
    c.rpos = 0;
    let got = res?;
    let n = out.len().min(got);
    out[..n].copy_from_slice(&c.rbuf[..n]);
    c.rpos = n;
    Poll::Ready(Ok(n))
}

pub(crate) fn poll_write(
    fd: &Registered,
    c: &mut Compat,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    if c.write.is_none() {
        if let Some(p) = fd.poll_borrowed(Borrowed::Send(data), cx) {
            return p;
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        c.write = Some(aio_io::submit_shielded(aio_io::Send::new(
            fd.as_raw_fd(),
            data.to_vec(),
            0,
            0,
        )));
    }
    let op = c.write.as_mut().expect("set above");
    let (res, _buf) = ready!(Pin::new(op).poll(cx));
    c.write = None;
    Poll::Ready(res)
}

pub(crate) fn poll_flush(c: &mut Compat, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    // Data is handed to the kernel by `poll_write`; only a write still in
    // flight needs finishing.
    if let Some(op) = c.write.as_mut() {
        let (res, _) = ready!(Pin::new(op).poll(cx));
        c.write = None;
        res?;
    }
    Poll::Ready(Ok(()))
}

pub(crate) fn poll_shutdown(fd: &Registered, c: &mut Compat, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    ready!(poll_flush(c, cx))?;
    let op = c
        .shutdown
        .get_or_insert_with(|| aio_io::submit_shielded(aio_io::Shutdown::new(fd.as_raw_fd(), Shutdown::Write)));
    let res = ready!(Pin::new(op).poll(cx));
    c.shutdown = None;
    Poll::Ready(match res {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    })
}

/// Implements the `futures-io` traits (and tokio's, with `tokio-io`) for a
/// type with `fd: Registered` and `compat: Compat` fields.
macro_rules! impl_async_io {
    ($t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                crate::compat::poll_read(&this.fd, &mut this.compat, cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                crate::compat::poll_write(&this.fd, &mut this.compat, cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                crate::compat::poll_flush(&mut self.get_mut().compat, cx)
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                crate::compat::poll_shutdown(&this.fd, &mut this.compat, cx)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                let n = std::task::ready!(crate::compat::poll_read(
                    &this.fd,
                    &mut this.compat,
                    cx,
                    buf.initialize_unfilled()
                ))?;
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                crate::compat::poll_write(&this.fd, &mut this.compat, cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                crate::compat::poll_flush(&mut self.get_mut().compat, cx)
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                crate::compat::poll_shutdown(&this.fd, &mut this.compat, cx)
            }
        }
    };
}
pub(crate) use impl_async_io;
