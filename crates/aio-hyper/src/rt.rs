//! hyper's runtime hooks on aio: [`LocalExecutor`] (`hyper::rt::Executor`
//! for futures that need not be `Send`), [`AioTimer`] (`hyper::rt::Timer`
//! on the loop's timers) and [`Io`] (hyper's `Read`/`Write` on asyncio's
//! streams).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use aio_core::TimerHandle;
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
/// hyper wants `Send + Sync` sleeps; this one arms a loop timer (a
/// `call_at` callback that wakes the sleep) the first time it is polled,
/// and disarms it when dropped. Unlike `aio::sleep` it does not observe
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

thread_local! {
    /// The loop timers of this thread's armed sleeps, by id: a
    /// `TimerHandle` belongs to its loop's thread, while hyper's sleeps
    /// must be `Send`.
    static ARMED: RefCell<HashMap<u64, TimerHandle>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

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
    shared: Arc<Shared>,
    /// The armed timer: its id in `ARMED` on thread `ThreadId`.
    armed: Option<(u64, ThreadId)>,
}

impl TimerSleep {
    fn new(deadline: Option<Instant>) -> TimerSleep {
        TimerSleep {
            deadline,
            shared: Arc::new(Shared {
                fired: AtomicBool::new(false),
                waker: Mutex::new(None),
            }),
            armed: None,
        }
    }

    fn arm(&mut self, deadline: Instant) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = self.shared.clone();
        match aio_core::try_get_running_loop() {
            Some(lp) => {
                let fire = move || {
                    ARMED.with(|a| a.borrow_mut().remove(&id));
                    shared.fire();
                };
                match lp.call_at(deadline, fire) {
                    Ok(h) => {
                        ARMED.with(|a| a.borrow_mut().insert(id, h));
                    }
                    // An Instant is never NaN; if it were, fire now.
                    Err(_) => self.shared.fire(),
                }
            }
            None => {
                // Polled outside aio (another executor): a helper thread
                // keeps the contract rather than never waking.
                std::thread::spawn(move || {
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                    shared.fire();
                });
            }
        }
        self.armed = Some((id, std::thread::current().id()));
    }
}

impl Future for TimerSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        if this.shared.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        // Once armed, the timer says when: no clock read per poll (hyper
        // polls its header-read sleep with every read of a request).
        if this.armed.is_none() && Instant::now() >= deadline {
            return Poll::Ready(());
        }
        {
            let mut w = this.shared.waker.lock().unwrap_or_else(|e| e.into_inner());
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        if this.armed.is_none() {
            this.arm(deadline);
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for TimerSleep {}

impl Drop for TimerSleep {
    fn drop(&mut self) {
        if let Some((id, thread)) = self.armed {
            // On another thread the timer just fires into nothing.
            if thread == std::thread::current().id() {
                if let Some(h) = ARMED.try_with(|a| a.borrow_mut().remove(&id)).ok().flatten() {
                    h.cancel();
                }
            }
        }
    }
}

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
