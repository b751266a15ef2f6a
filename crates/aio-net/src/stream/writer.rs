//! `StreamWriter`: asyncio's buffered writer with flow control.

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[cfg(feature = "tls")]
use super::flush::{close_notify, send_tls_output};
use super::flush::{queue, spawn_flusher};
use super::{Kind, Transport};
use crate::sock::{self, sref};
use crate::unix::UnixSocketAddr;

/// asyncio's default high-water mark: 64 KiB (the low one is a quarter).
const HIGH: usize = 64 * 1024;

/// The largest TLS scratch buffer kept between writes (a huge write's
/// buffer is freed, not held for the connection's life).
#[cfg(feature = "tls")]
const SCRATCH_KEPT: usize = 64 * 1024;

/// Writes to a connection through a buffer: asyncio's `StreamWriter`.
///
/// [`write`](StreamWriter::write) never waits: it sends what the kernel
/// takes at once and buffers the rest, which a background flush sends.
/// [`drain`](StreamWriter::drain) waits while the buffer is above the
/// high-water mark, so a writer that drains after each write uses bounded
/// memory however slow the reader is. Errors of the connection (a reset, a
/// closed peer) are reported by `drain` and `wait_closed`.
///
/// Nothing written vanishes without an error: data written after
/// [`write_eof`](StreamWriter::write_eof) (asyncio raises `RuntimeError`
/// there), [`close`](StreamWriter::close),
/// [`abort`](StreamWriter::abort) or a failure of the connection — which
/// can no longer be sent — makes the next `drain` fail (asyncio's
/// `ConnectionResetError("Connection lost")`, or the connection's error).
///
/// Dropping the writer does not close the connection (as in asyncio, where
/// an unused writer leaves it open): buffered data is still sent, and the
/// socket closes once the reader and the writer are both gone. Call
/// [`close`](StreamWriter::close) or [`write_eof`](StreamWriter::write_eof)
/// to shut it down explicitly.
pub struct StreamWriter {
    inner: Rc<Inner>,
}

pub(super) struct Inner {
    pub(super) transport: RefCell<Option<Rc<Transport>>>,
    pub(super) kind: Kind,
    pub(super) st: RefCell<State>,
    /// The running background flush, which `abort` stops at once.
    pub(super) flusher: RefCell<Option<aio_core::TaskRef>>,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<Rc<crate::tls::Session>>,
}

pub(super) struct State {
    /// Data not yet handed to the kernel.
    pub(super) pending: Vec<u8>,
    /// Bytes handed to a send the kernel has not confirmed.
    pub(super) in_flight: usize,
    pub(super) flushing: bool,
    pub(super) paused: bool,
    pub(super) error: Option<(io::ErrorKind, String)>,
    pub(super) eof: bool,
    /// Data was written after `write_eof` and dropped: `drain` and
    /// `wait_closed` report it.
    pub(super) written_after_eof: bool,
    pub(super) closing: bool,
    /// `abort` was called: the buffer was discarded and the connection
    /// shut down (`closing` and `closed` are set with it).
    pub(super) aborted: bool,
    pub(super) closed: bool,
    pub(super) waiters: Vec<Waker>,
    pub(super) high: usize,
    pub(super) low: usize,
    /// Reused for the ciphertext of each TLS write.
    #[cfg(feature = "tls")]
    pub(super) scratch: Vec<u8>,
}

impl State {
    pub(super) fn buffered(&self) -> usize {
        self.pending.len() + self.in_flight
    }

    pub(super) fn wake_all(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }

    pub(super) fn update_pause(&mut self) {
        let b = self.buffered();
        if b > self.high {
            self.paused = true;
        } else if self.paused && b <= self.low {
            self.paused = false;
            self.wake_all();
        }
    }

    pub(super) fn fail(&mut self, e: &io::Error) {
        if self.error.is_none() {
            self.error = Some((e.kind(), e.to_string()));
        }
        self.pending = Vec::new();
        self.in_flight = 0;
        self.paused = false;
        self.wake_all();
    }

    pub(super) fn error(&self) -> Option<io::Error> {
        self.error.as_ref().map(|(k, m)| io::Error::new(*k, m.clone()))
    }

    pub(super) fn wait(&mut self, cx: &Context<'_>) {
        if !self.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.waiters.push(cx.waker().clone());
        }
    }
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.st.borrow();
        f.debug_struct("StreamWriter")
            .field("buffered", &st.buffered())
            .field("closing", &st.closing)
            .field("closed", &st.closed)
            .finish()
    }
}

impl StreamWriter {
    pub(crate) fn new(t: Rc<Transport>) -> StreamWriter {
        let inner = Rc::new(StreamWriter::inner(
            t.clone(),
            #[cfg(feature = "tls")]
            None,
        ));
        *t.writer.borrow_mut() = Rc::downgrade(&inner);
        StreamWriter { inner }
    }

    /// Another handle on a writer (a server closing its clients).
    pub(super) fn from_inner(inner: Rc<Inner>) -> StreamWriter {
        StreamWriter { inner }
    }

    /// A writer whose data goes through a TLS session (set up already).
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(t: Rc<Transport>, tls: Rc<crate::tls::Session>) -> StreamWriter {
        let inner = Rc::new(StreamWriter::inner(t.clone(), Some(tls.clone())));
        *t.writer.borrow_mut() = Rc::downgrade(&inner);
        let weak = Rc::downgrade(&inner);
        tls.set_output_hook(Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                send_tls_output(&inner);
            }
        }));
        StreamWriter { inner }
    }

    fn inner(t: Rc<Transport>, #[cfg(feature = "tls")] tls: Option<Rc<crate::tls::Session>>) -> Inner {
        {
            Inner {
                kind: t.kind,
                transport: RefCell::new(Some(t)),
                flusher: RefCell::new(None),
                st: RefCell::new(State {
                    pending: Vec::new(),
                    in_flight: 0,
                    flushing: false,
                    paused: false,
                    error: None,
                    eof: false,
                    written_after_eof: false,
                    closing: false,
                    aborted: false,
                    closed: false,
                    waiters: Vec::new(),
                    high: HIGH,
                    low: HIGH / 4,
                    #[cfg(feature = "tls")]
                    scratch: Vec::new(),
                }),
                #[cfg(feature = "tls")]
                tls,
            }
        }
    }

    /// Waits until everything written was handed to the kernel and takes
    /// the transport out, for `start_tls`.
    #[cfg(feature = "tls")]
    pub(crate) async fn into_transport(self) -> io::Result<Rc<Transport>> {
        if self.inner.tls.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "start_tls: the connection already runs TLS",
            ));
        }
        poll_fn(|cx| {
            aio_core::cancel::check()?;
            let mut st = self.checked_state();
            if let Some(e) = st.error() {
                return Poll::Ready(Err(e));
            }
            if st.closing || st.eof {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "start_tls: the writer is closing",
                )));
            }
            if st.flushing || !st.pending.is_empty() {
                st.wait(cx);
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        self.transport().ok_or_else(closed)
    }

    /// What was negotiated on a TLS connection (`None` on a plain one):
    /// asyncio's `get_extra_info('ssl_object')`, `'peercert'`, `'cipher'`.
    #[cfg(feature = "tls")]
    pub fn tls_info(&self) -> Option<crate::tls::TlsInfo> {
        self.inner.tls.as_ref().map(|s| s.info())
    }

    fn transport(&self) -> Option<Rc<Transport>> {
        self.inner.transport.borrow().clone()
    }

    /// The state, with a failure the reader saw on the connection taken
    /// in: the writer fails with it, as asyncio's does when its protocol
    /// loses the connection.
    fn checked_state(&self) -> std::cell::RefMut<'_, State> {
        let mut st = self.inner.st.borrow_mut();
        if st.error.is_none() && !st.aborted {
            let lost = self.inner.transport.borrow().as_ref().and_then(|t| t.lost());
            if let Some(e) = lost {
                st.fail(&e);
                if !st.flushing {
                    // No flush runs to settle it: the connection is over.
                    st.closed = true;
                }
            }
        }
        st
    }

    /// Queues `data` for sending: asyncio's `write`. Never waits. On a TLS
    /// connection the data is encrypted here, so what is buffered (and
    /// what the flow-control marks count) is ciphertext.
    ///
    /// Data written after [`close`](StreamWriter::close) or
    /// [`abort`](StreamWriter::abort), or after the connection failed,
    /// cannot be sent: it is dropped, as asyncio drops it, and the next
    /// [`drain`](StreamWriter::drain) says so (`ConnectionReset`,
    /// "Connection lost", or the connection's error).
    ///
    /// After [`write_eof`](StreamWriter::write_eof) the peer was told that
    /// nothing more follows, so the data could never arrive (asyncio
    /// raises `RuntimeError: Cannot call write() after write_eof()`): it
    /// is dropped, and every later [`drain`](StreamWriter::drain) and
    /// [`wait_closed`](StreamWriter::wait_closed) fails with that error
    /// (`BrokenPipe`), so the loss is never silent.
    pub fn write(&self, data: &[u8]) {
        let mut st = self.inner.st.borrow_mut();
        if st.eof {
            st.written_after_eof |= !data.is_empty();
            return;
        }
        if data.is_empty() || st.error.is_some() || st.closing {
            return;
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.inner.tls {
            if st.flushing {
                // A flush is running: the records join its buffer directly.
                tls.encrypt(data, &mut st.pending);
                st.update_pause();
                return;
            }
            let mut out = std::mem::take(&mut st.scratch);
            tls.encrypt(data, &mut out);
            let start = queue(&self.inner, &mut st, &out);
            out.clear();
            if out.capacity() <= SCRATCH_KEPT {
                st.scratch = out;
            }
            if start {
                drop(st);
                spawn_flusher(&self.inner);
            }
            return;
        }
        if queue(&self.inner, &mut st, data) {
            drop(st);
            spawn_flusher(&self.inner);
        }
    }

    /// Writes each buffer in turn: asyncio's `writelines` (after
    /// `write_eof`, as [`write`](StreamWriter::write)).
    pub fn writelines<I, B>(&self, lines: I)
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        for l in lines {
            self.write(l.as_ref());
        }
    }

    /// Waits until the buffer is below the low-water mark (if it went above
    /// the high one): asyncio's `drain`.
    ///
    /// # Errors
    /// The connection's error if it failed. Once [`close`](StreamWriter::close)
    /// or [`abort`](StreamWriter::abort) was called, `ConnectionReset`
    /// ("Connection lost", as asyncio's `ConnectionResetError`): nothing
    /// written from then on can be sent. A drain that was already waiting
    /// for room when `close` was called waits for the close to send the
    /// buffer and returns `Ok` (or the error that stopped it); one waiting
    /// when `abort` was called returns `ConnectionReset`, since the buffer
    /// was discarded.
    ///
    /// # Cancellation
    /// Returns `Interrupted` (from `Cancelled`); the buffered data stays
    /// queued and keeps being sent.
    pub async fn drain(&self) -> io::Result<()> {
        let mut waited = false;
        poll_fn(|cx| {
            aio_core::cancel::check()?;
            self.poll_drain(cx, &mut waited)
        })
        .await
    }

    /// `drain` as a poll function (no cancellation check). `waited`: this
    /// drain already waited for room (it began before any close).
    fn poll_drain(&self, cx: &Context<'_>, waited: &mut bool) -> Poll<io::Result<()>> {
        let mut st = self.checked_state();
        if let Some(e) = st.error() {
            return Poll::Ready(Err(e));
        }
        if st.written_after_eof {
            return Poll::Ready(Err(written_after_eof()));
        }
        if st.closing {
            if st.aborted || !*waited {
                return Poll::Ready(Err(connection_lost()));
            }
            if st.closed {
                return Poll::Ready(Ok(()));
            }
            st.wait(cx);
            return Poll::Pending;
        }
        if st.paused {
            st.wait(cx);
            *waited = true;
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// Waits for room in the buffer (the flow control of `AsyncWrite`,
    /// which reports a closed writer its own way).
    fn poll_room(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.checked_state();
        if let Some(e) = st.error() {
            return Poll::Ready(Err(e));
        }
        if st.paused {
            st.wait(cx);
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// Sets the flow-control marks (asyncio's `set_write_buffer_limits`);
    /// `low` defaults to a quarter of `high`.
    pub fn set_write_buffer_limits(&self, high: usize, low: Option<usize>) {
        let mut st = self.inner.st.borrow_mut();
        st.high = high;
        st.low = low.unwrap_or(high / 4).min(high);
        st.update_pause();
    }

    /// The flow-control marks: asyncio's `get_write_buffer_limits()`,
    /// `(low, high)`.
    pub fn get_write_buffer_limits(&self) -> (usize, usize) {
        let st = self.inner.st.borrow();
        (st.low, st.high)
    }

    /// Waits until everything written so far was handed to the kernel
    /// (the buffer is empty: asyncio's "empty waiter" of a transport).
    pub(super) async fn flushed(&self) -> io::Result<()> {
        poll_fn(|cx| {
            aio_core::cancel::check()?;
            let mut st = self.checked_state();
            if let Some(e) = st.error() {
                return Poll::Ready(Err(e));
            }
            if st.buffered() == 0 {
                return Poll::Ready(Ok(()));
            }
            // The flush wakes its waiters when it has sent the buffer.
            st.wait(cx);
            Poll::Pending
        })
        .await
    }

    /// Whether what is written is encrypted first (a TLS connection): the
    /// bytes of a file cannot then go to the socket as they are.
    pub(super) fn encrypts(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.inner.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The connection's descriptor, while the writer is open.
    pub(super) fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.transport().map(|t| t.fd.as_raw_fd())
    }

    /// Bytes written and not yet sent.
    pub fn write_buffer_size(&self) -> usize {
        self.inner.st.borrow().buffered()
    }

    /// Whether `write_eof` is supported (always, for sockets and pipes).
    pub fn can_write_eof(&self) -> bool {
        true
    }

    /// Closes the sending side once the buffer is sent: the peer reads EOF,
    /// and can still send to us. asyncio's `write_eof`. What a later
    /// [`write`](StreamWriter::write) writes is dropped and reported (see
    /// there).
    pub fn write_eof(&self) {
        let mut st = self.inner.st.borrow_mut();
        if st.eof || st.closing {
            return;
        }
        #[cfg(feature = "tls")]
        let start = close_notify(&self.inner, &mut st);
        #[cfg(not(feature = "tls"))]
        let start = false;
        st.eof = true;
        if start || !st.flushing {
            st.flushing = true;
            drop(st);
            spawn_flusher(&self.inner);
        }
    }

    /// Closes the connection once the buffer is sent: asyncio's `close`.
    /// From now on `drain` returns `ConnectionReset` ("Connection lost").
    pub fn close(&self) {
        let mut st = self.inner.st.borrow_mut();
        if st.closing {
            return;
        }
        #[cfg(feature = "tls")]
        let start = !st.eof && close_notify(&self.inner, &mut st);
        #[cfg(not(feature = "tls"))]
        let start = false;
        st.closing = true;
        if start || !st.flushing {
            st.flushing = true;
            drop(st);
            spawn_flusher(&self.inner);
        }
    }

    /// Closes the connection at once, discarding what is buffered:
    /// asyncio's `writer.transport.abort()`.
    ///
    /// The background flush stops, the data not yet handed to the kernel
    /// is dropped, and the socket is shut down in both directions now: the
    /// peer receives what the kernel already had, then EOF (as after
    /// asyncio's abort, which closes the socket without lingering), and
    /// our reader reads EOF. After [`set_linger`](StreamWriter::set_linger)
    /// with `Some(Duration::ZERO)` the connection is reset instead, as
    /// asyncio's abort of a socket set so: only the receiving side shuts
    /// down now (our reader reads EOF, the peer is sent nothing), and the
    /// peer gets the reset when the descriptor closes, once the reader is
    /// dropped too. A pipe's end is closed. Afterwards `drain`
    /// returns `ConnectionReset` ("Connection lost"), `wait_closed`
    /// returns `Ok`, `is_closing` is true and writes are dropped. The
    /// descriptor itself closes when the reader (which shares it) is
    /// dropped too. Aborting twice does nothing; after a failure it still
    /// shuts the socket down (`drain` and `wait_closed` keep reporting the
    /// failure).
    pub fn abort(&self) {
        let mut st = self.inner.st.borrow_mut();
        if st.aborted {
            return;
        }
        st.aborted = true;
        st.closing = true;
        st.closed = true;
        st.flushing = false;
        st.paused = false;
        st.pending = Vec::new();
        st.in_flight = 0;
        st.wake_all();
        drop(st);
        // Dropping the flush drops its send in flight (the driver keeps the
        // buffer until the kernel is done with it) and its transport handle.
        let flusher = self.inner.flusher.borrow_mut().take();
        if let Some(task) = flusher {
            task.abort();
        }
        let t = self.inner.transport.borrow_mut().take();
        if let Some(t) = t {
            if t.kind != Kind::Pipe {
                // The reader shares the socket: shut it down for both now
                // rather than wait for the last handle to close it. A
                // socket set to reset keeps its sending side, which would
                // otherwise say a clean goodbye (FIN) before the reset.
                let sock = sref(&t.fd);
                let resets = sock.linger().ok().flatten() == Some(Duration::ZERO);
                let _ = sock.shutdown(if resets { Shutdown::Read } else { Shutdown::Both });
            }
        }
    }

    /// Whether nothing more may be written: `write_eof`, `close` or
    /// `abort` was called.
    pub(super) fn is_shut(&self) -> bool {
        let st = self.inner.st.borrow();
        st.eof || st.closing
    }

    /// Whether `close` or `abort` was called (or the connection failed,
    /// as the writer or the reader found).
    pub fn is_closing(&self) -> bool {
        let st = self.checked_state();
        st.closing || st.error.is_some()
    }

    /// Waits until the connection is closed: asyncio's `wait_closed`.
    /// Returns the connection's error if it failed.
    ///
    /// # Cancellation
    /// Returns `Interrupted`; the close goes on.
    pub async fn wait_closed(&self) -> io::Result<()> {
        poll_fn(|cx| {
            aio_core::cancel::check()?;
            let mut st = self.checked_state();
            if st.closed {
                return Poll::Ready(match st.error() {
                    Some(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
                    _ if st.written_after_eof => Err(written_after_eof()),
                    _ => Ok(()),
                });
            }
            st.wait(cx);
            Poll::Pending
        })
        .await
    }

    /// Sets `SO_LINGER` on the connection's socket, the `setsockopt` on
    /// asyncio's `writer.get_extra_info('socket')`: `Some(Duration::ZERO)`
    /// makes closing the connection (and [`abort`](StreamWriter::abort))
    /// reset it instead of ending it with EOF.
    ///
    /// # Errors
    /// `NotConnected` once the writer was aborted; `Unsupported` on a
    /// pipe, which has no such option; the OS error otherwise.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let t = self.transport().ok_or_else(closed)?;
        if t.kind == Kind::Pipe {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "a pipe has no SO_LINGER"));
        }
        sref(&t.fd).set_linger(linger)
    }

    /// The peer's address (TCP). On a server's connection it is the
    /// address `accept` gave, as asyncio's transport keeps `peername`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.transport().ok_or_else(closed)?.peer_addr()
    }

    /// The local address (TCP).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let t = self.transport().ok_or_else(closed)?;
        sock::inet(sref(&t.fd).local_addr()?)
    }

    /// The peer's address (Unix sockets).
    pub fn unix_peer_addr(&self) -> io::Result<UnixSocketAddr> {
        let t = self.transport().ok_or_else(closed)?;
        crate::UnixStream::addr_of(sref(&t.fd).peer_addr()?)
    }
}

impl StreamWriter {
    /// [`write_eof`](StreamWriter::write_eof), then waits until what was
    /// written before it is sent and the sending side shut down: the
    /// half-close that `Duplex` gives as `poll_close`/`poll_shutdown`.
    pub(crate) fn poll_write_eof(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.write_eof();
        let mut st = self.checked_state();
        if let Some(e) = st.error() {
            return Poll::Ready(match e.kind() {
                io::ErrorKind::NotConnected => Ok(()),
                _ => Err(e),
            });
        }
        if st.closed || !st.flushing {
            return Poll::Ready(Ok(()));
        }
        st.wait(cx);
        Poll::Pending
    }
}

/// `futures-io`'s `AsyncWrite` with asyncio's flow control: `poll_write`
/// takes everything (as [`write`](StreamWriter::write)) unless the buffer
/// is above the high-water mark, where it waits as [`drain`](StreamWriter::drain)
/// does; `poll_flush` is `drain` (the data goes out in the background);
/// `poll_close` is `close` then `wait_closed`. So hyper and other
/// `AsyncWrite` users run on asyncio's streams, TLS included.
///
/// Like the socket types' impls, these do not observe aio's cancellation.
impl futures_io::AsyncWrite for StreamWriter {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_room(cx))?;
        {
            let st = self.inner.st.borrow();
            if st.closing || st.eof {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the writer is closed")));
            }
        }
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_room(cx)
    }

    fn poll_close(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close();
        let mut st = self.checked_state();
        if st.closed {
            return Poll::Ready(match st.error() {
                Some(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
                _ => Ok(()),
            });
        }
        st.wait(cx);
        Poll::Pending
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the writer is closed")
}

/// The error of data written after `write_eof` (dropped).
fn written_after_eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "Cannot call write() after write_eof(): the data written after it was dropped",
    )
}

/// What `drain` says once the writer is closing: asyncio's
/// `ConnectionResetError('Connection lost')`.
fn connection_lost() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "Connection lost")
}
