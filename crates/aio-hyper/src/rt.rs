//! hyper's runtime hooks on aio: [`LocalExecutor`] (`hyper::rt::Executor`
//! for futures that need not be `Send`), [`AioTimer`] (`hyper::rt::Timer`
//! on the loop's timers) and [`Io`] (hyper's `Read`/`Write` on asyncio's
//! streams).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use aio_core::time::RawSleep;
use aio_net::{StreamReader, StreamWriter, TcpStream};
use futures_io::{AsyncBufRead, AsyncWrite};
use hyper::rt::ReadBufCursor;

/// Runs hyper's background futures (HTTP/2 streams, client connections)
/// as aio tasks on the running loop: `hyper::rt::Executor` for any
/// `Future + 'static`, `Send` or not.
///
/// # Panics
/// `execute` panics outside a running aio loop (hyper calls it from the
/// connection it drives, which runs on the loop).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        // Detached: it runs to its end (a connection, a stream); hyper
        // reads nothing from what it returns.
        drop(aio_core::create_task(async move {
            let _ = fut.await;
        }));
    }
}

/// hyper's timer on the loop's timers: `header_read_timeout`, HTTP/2
/// keep-alive pings and the like work on aio (tokio's timer panics there,
/// and without a timer hyper panics when a timeout is configured).
///
/// hyper wants `Send + Sync` sleeps; this one arms the polling task's
/// waker in the loop's timer heap the first time it is polled
/// ([`aio_core::time::RawSleep`]: no allocation, no callback), and
/// disarms it when dropped. Unlike `aio::sleep` it does not observe
/// aio's cancellation: hyper's futures are foreign to aio, and a cancelled
/// task running them is dropped, not interrupted inside hyper.
#[derive(Clone, Copy, Debug, Default)]
pub struct AioTimer;

impl hyper::rt::Timer for AioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // A deadline past what Instant holds is "never".
        let deadline = Instant::now().checked_add(duration);
        Box::pin(TimerSleep::new(deadline))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TimerSleep::new(Some(deadline)))
    }
}

/// The fallback of a sleep polled where no aio loop runs: a helper
/// thread fires it.
struct Shared {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Shared {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let w = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

struct TimerSleep {
    deadline: Option<Instant>,
    /// Armed on the loop that first polled it: a waker in the loop's
    /// timer heap, no allocation, disarmed when dropped.
    on_loop: Option<RawSleep>,
    /// Armed on a helper thread (polled outside aio).
    off_loop: Option<Arc<Shared>>,
}

impl TimerSleep {
    fn new(deadline: Option<Instant>) -> TimerSleep {
        TimerSleep {
            deadline,
            on_loop: None,
            off_loop: None,
        }
    }

    /// Polled outside aio (another executor, or off the loop it was armed
    /// on): a helper thread keeps the contract rather than never waking.
    fn poll_off_loop(&mut self, deadline: Instant, cx: &Context<'_>) -> Poll<()> {
        let shared = self.off_loop.get_or_insert_with(|| {
            let shared = Arc::new(Shared {
                fired: AtomicBool::new(false),
                waker: Mutex::new(None),
            });
            let s = shared.clone();
            std::thread::spawn(move || {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                s.fire();
            });
            shared
        });
        {
            let mut w = shared.waker.lock().unwrap_or_else(|e| e.into_inner());
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        if shared.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Future for TimerSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        if this.off_loop.is_none() {
            if this.on_loop.is_none() {
                // Once armed, the timer says when: no clock read per poll
                // (hyper polls its header-read sleep with every read of a
                // request).
                if Instant::now() >= deadline {
                    return Poll::Ready(());
                }
                this.on_loop = Some(RawSleep::until(deadline));
            }
            if let Some(p) = this.on_loop.as_mut().and_then(|s| s.poll_sleep(cx)) {
                return p;
            }
        }
        this.poll_off_loop(deadline, cx)
    }
}

impl hyper::rt::Sleep for TimerSleep {}

/// asyncio's streams as hyper's I/O: a [`StreamReader`] and a
/// [`StreamWriter`] (plain or TLS) implementing `hyper::rt::Read` and
/// `hyper::rt::Write`.
///
/// Reads copy from the reader's buffer into hyper's (one copy, and no
/// zeroing of hyper's buffer); writes go through the writer, whose
/// high-water mark bounds what hyper can queue; flushing is `drain`, and
/// shutting down is `close` (TLS sends close_notify).
pub struct Io {
    reader: StreamReader,
    writer: StreamWriter,
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("reader", &self.reader)
            .field("writer", &self.writer)
            .finish()
    }
}

impl Io {
    /// hyper's I/O on a reader and writer (from `open_connection`,
    /// `open_connection_tls`, `start_tls`, a server's handler, ...).
    pub fn new(reader: StreamReader, writer: StreamWriter) -> Io {
        Io { reader, writer }
    }

    /// hyper's I/O on a TCP connection (with `TCP_NODELAY`, as asyncio's
    /// streams set it).
    pub fn tcp(stream: TcpStream) -> Io {
        let (reader, writer) = stream.into_streams();
        Io { reader, writer }
    }

    /// The writer (addresses, TLS information).
    pub fn writer(&self) -> &StreamWriter {
        &self.writer
    }

    /// The streams back.
    pub fn into_inner(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }
}

impl Io {
    /// hyper's read, telling how many bytes it gave (0 at EOF): the
    /// client counts them to know whether a response began.
    pub(crate) fn poll_read_counted(
        &mut self,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<usize>> {
        let data = ready!(Pin::new(&mut self.reader).poll_fill_buf(cx))?;
        let n = data.len().min(buf.remaining());
        buf.put_slice(&data[..n]);
        Pin::new(&mut self.reader).consume(n);
        Poll::Ready(Ok(n))
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_counted(cx, buf).map_ok(|_| ())
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}
