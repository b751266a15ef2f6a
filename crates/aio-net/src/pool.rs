//! A TCP server spread over several loops ([`PoolServer`]): each loop
//! runs the handler of the connections it holds, as asyncio's
//! `start_server` does on one loop, and a connection goes to a loop that
//! has room ([`Spread`]).
//!
//! How a connection finds its loop ([`Spread::Balanced`], the default):
//! every loop has its own `SO_REUSEPORT` listener on the port, so accepts
//! need no lock and no thread of their own and the kernel spreads the
//! connections by a hash of their addresses. The hash knows nothing of
//! load, and with a hundred connections it often puts 57 on one loop of
//! two; so the loop that accepts a connection compares the connections
//! each loop holds ([`LoopMetrics::connections`](aio_core::LoopMetrics),
//! counted the moment a connection is assigned, so a burst of accepts on
//! two loops sees each other's choices) and, when a sibling holds fewer,
//! hands the descriptor over: it goes into that loop's inbox and wakes
//! it, and the handler starts there. A handed-over connection costs one
//! descriptor move and one cross-thread wake-up, once per connection.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use aio_core::{HeldConnection, LoopHandle, create_task};
use socket2::{Domain, Protocol, Socket, Type};

use crate::stream::{HandlerOutput, Transport, failure, pair_rc, report, report_failure};
use crate::{StreamReader, StreamWriter, TcpListener, TcpStream};

/// How a [`PoolServer`] spreads connections over its loops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Spread {
    /// One `SO_REUSEPORT` listener per loop; a loop that accepts a
    /// connection while a sibling holds fewer connections hands it to the
    /// sibling that holds fewest. Ties stay where they landed.
    #[default]
    Balanced,
    /// One `SO_REUSEPORT` listener per loop, and a connection stays on the
    /// loop whose listener the kernel's hash chose (what thread-per-core
    /// runtimes do).
    Kernel,
    /// One listener, on the first loop, which hands each connection to the
    /// loop holding fewest (itself on a tie).
    Single,
}

/// A handed-over connection and its count on the receiving loop.
type Handed = (std::net::TcpStream, HeldConnection);

/// One loop's part of a server.
struct Slot {
    handle: LoopHandle,
    /// Connections other loops handed to this one.
    inbox: Mutex<VecDeque<Handed>>,
    /// The slot task's waker.
    waker: Mutex<Option<Waker>>,
    /// Connections this loop's listener accepted.
    accepted: AtomicU64,
    /// Connections served here (accepted here and kept, or handed in).
    served: AtomicU64,
    /// This server's connections on this loop whose handler runs.
    active: AtomicUsize,
}

impl Slot {
    fn wake(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.wake();
        }
    }

    fn pop(&self) -> Option<Handed> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }
}

struct Inner {
    addr: SocketAddr,
    spread: Spread,
    /// The key of a stream server's connections in each loop's
    /// [`CLIENTS`] (`start_server_pool`); `None` for a server of raw
    /// `TcpStream`s, which keeps no record of them.
    tracked: Option<u64>,
    slots: Vec<Slot>,
    serving: AtomicBool,
    /// Connections whose handler runs, over every loop.
    active: AtomicUsize,
    /// Slot tasks still running.
    open_slots: AtomicUsize,
    /// Notified when `active` or `open_slots` reaches zero.
    idle: (Mutex<()>, Condvar),
}

thread_local! {
    /// This loop's connections of stream pool servers, by server key:
    /// what `close_clients` and `abort_clients` end (asyncio's
    /// `Server._clients`). Weak, so a connection ends when its handler and
    /// streams let it go.
    static CLIENTS: std::cell::RefCell<std::collections::HashMap<u64, Vec<std::rc::Weak<Transport>>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Records a connection of server `key` on this loop; now and then
/// forgets the ended ones (of every server, so a closed server's record
/// goes too).
fn track(key: u64, t: &Rc<Transport>) {
    CLIENTS.with(|c| {
        let mut c = c.borrow_mut();
        let v = c.entry(key).or_default();
        v.push(Rc::downgrade(t));
        if v.len() >= 16 && v.len().is_power_of_two() {
            c.retain(|_, v| {
                v.retain(|w| w.strong_count() > 0);
                !v.is_empty()
            });
        }
    });
}

/// Ends this loop's open connections of server `key` (`abort`: at once),
/// and forgets them.
fn end_clients_here(key: u64, abort: bool) {
    let live: Vec<Rc<Transport>> = CLIENTS.with(|c| {
        let gone = c.borrow_mut().remove(&key).unwrap_or_default();
        gone.iter().filter_map(std::rc::Weak::upgrade).collect()
    });
    for t in live {
        t.end(abort);
    }
}

impl Inner {
    fn notify(&self) {
        let _g = self.idle.0.lock().unwrap_or_else(|e| e.into_inner());
        self.idle.1.notify_all();
    }

    /// The loop a connection accepted on loop `i` goes to.
    fn choose(&self, i: usize) -> usize {
        if self.spread == Spread::Kernel || self.slots.len() == 1 {
            return i;
        }
        let load = |j: usize| self.slots[j].handle.metrics().connections;
        let mut best = (load(i), i);
        for j in (0..self.slots.len()).filter(|&j| j != i) {
            let l = load(j);
            if l < best.0 {
                best = (l, j);
            }
        }
        best.1
    }
}

/// A TCP server whose connections are spread over a pool of loops (see
/// [`Spread`]); each connection's handler runs on the loop that got it,
/// as a task of that loop with all of asyncio's semantics (it need not be
/// `Send`). A `PoolServer` is `Send + Sync`: any thread may read its
/// counts, close it and wait for its connections.
///
/// Built by [`start_pool_server`] (a handler of a [`TcpStream`]) or
/// [`start_server_pool`] (asyncio's reader and writer); the `aio` facade's
/// `LoopPool::start_server` starts one on its loops.
#[derive(Clone)]
pub struct PoolServer {
    inner: Arc<Inner>,
}

impl fmt::Debug for PoolServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolServer")
            .field("addr", &self.inner.addr)
            .field("spread", &self.inner.spread)
            .field("serving", &self.is_serving())
            .field("connections", &self.connections_per_loop())
            .finish()
    }
}

/// Binds the listeners of a server on `addr` for `n` loops: `n`
/// `SO_REUSEPORT` sockets on one port (port 0 picks one free port for
/// all), or one socket.
fn bind(addr: SocketAddr, n: usize, reuse_port: bool) -> io::Result<Vec<std::net::TcpListener>> {
    let mut port = addr.port();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_nonblocking(true)?;
        s.set_reuse_address(true)?;
        if reuse_port {
            s.set_reuse_port(true)?;
        }
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.bind(&SocketAddr::new(addr.ip(), port).into())?;
        s.listen(1024)?;
        let l: std::net::TcpListener = s.into();
        port = l.local_addr()?.port();
        out.push(l);
    }
    Ok(out)
}

/// Starts a TCP server on `addr` spread over `loops`: for each
/// connection, `handler(stream)` runs in its own task on the loop chosen
/// by `spread`. Port 0 picks a free port ([`PoolServer::local_addr`]).
/// May be called from any thread, including a loop of the pool: the
/// sockets listen when it returns, and each loop starts accepting at its
/// next turn.
///
/// A handler's failure (an `Err` output) or panic is reported through its
/// loop's exception handler, as `start_server` does; the loop goes on.
///
/// # Errors
/// Binding fails, or a loop is closed.
pub fn start_pool_server<H, Fut>(
    loops: &[LoopHandle],
    addr: SocketAddr,
    spread: Spread,
    handler: H,
) -> io::Result<PoolServer>
where
    H: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    start_pool(loops, addr, spread, handler, None)
}

/// [`start_pool_server`], for a server whose handler records its
/// connections under `tracked` (stream servers).
fn start_pool<H, Fut>(
    loops: &[LoopHandle],
    addr: SocketAddr,
    spread: Spread,
    handler: H,
    tracked: Option<u64>,
) -> io::Result<PoolServer>
where
    H: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    if loops.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a pool server needs a loop",
        ));
    }
    let listeners = match spread {
        Spread::Single => bind(addr, 1, false)?,
        Spread::Balanced | Spread::Kernel => bind(addr, loops.len(), true)?,
    };
    let inner = Arc::new(Inner {
        addr: listeners[0].local_addr()?,
        spread,
        tracked,
        slots: loops
            .iter()
            .map(|h| Slot {
                handle: h.clone(),
                inbox: Mutex::new(VecDeque::new()),
                waker: Mutex::new(None),
                accepted: AtomicU64::new(0),
                served: AtomicU64::new(0),
                active: AtomicUsize::new(0),
            })
            .collect(),
        serving: AtomicBool::new(true),
        active: AtomicUsize::new(0),
        open_slots: AtomicUsize::new(loops.len()),
        idle: (Mutex::new(()), Condvar::new()),
    });
    let handler = Arc::new(handler);
    let mut listeners = listeners.into_iter();
    for (i, h) in loops.iter().enumerate() {
        let (open, handler, listener) = (SlotOpen(inner.clone()), handler.clone(), listeners.next());
        let sent = h.call_soon_threadsafe(move || {
            drop(create_task(run_slot(open, i, listener, handler)));
        });
        if sent.is_err() {
            let server = PoolServer { inner };
            server.close();
            return Err(io::Error::other(aio_core::LoopClosed));
        }
    }
    Ok(PoolServer { inner })
}

/// [`start_pool_server`] with asyncio's streams: `handler(reader,
/// writer)` for each connection (asyncio's `start_server` callback),
/// spread over `loops`.
///
/// # Errors
/// As [`start_pool_server`].
pub fn start_server_pool<H, Fut>(
    loops: &[LoopHandle],
    addr: SocketAddr,
    spread: Spread,
    handler: H,
) -> io::Result<PoolServer>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let make = move |s: TcpStream| {
        let t = Rc::new(Transport::tcp(s));
        track(key, &t);
        let (r, w) = pair_rc(t);
        handler(r, w)
    };
    start_pool(loops, addr, spread, make, Some(key))
}

/// What the slot task of a loop waits for.
// Lives for one match on the stack; boxing the accepted stream would cost
// an allocation per connection.
#[allow(clippy::large_enum_variant)]
enum Event {
    Accepted(io::Result<TcpStream>),
    Handed(Handed),
    Closed,
}

type Accepting = Pin<Box<dyn Future<Output = io::Result<TcpStream>>>>;

fn accepting(l: &Rc<TcpListener>) -> Accepting {
    let l = l.clone();
    Box::pin(async move { l.accept().await.map(|(s, _)| s) })
}

/// Loop `i`'s part: accepts on its listener (if it has one) and takes the
/// connections siblings hand over, until the server closes or the loop
/// cancels it.
async fn run_slot<H, Fut>(open: SlotOpen, i: usize, listener: Option<std::net::TcpListener>, handler: Arc<H>)
where
    H: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    let inner = open.0.clone();
    let listener = match listener.map(TcpListener::from_std).transpose() {
        Ok(l) => l.map(Rc::new),
        Err(e) => {
            report(format!("pool server: loop {i} cannot listen: {e}"));
            None
        }
    };
    let mut accept = listener.as_ref().map(accepting);
    let slot = &inner.slots[i];
    let mut backoff = Duration::from_millis(10);
    loop {
        let ev = poll_fn(|cx| {
            if aio_core::cancel::check().is_err() || !inner.serving.load(Ordering::Acquire) {
                return Poll::Ready(Event::Closed);
            }
            if let Some(h) = slot.pop() {
                return Poll::Ready(Event::Handed(h));
            }
            *slot.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            // A hand-over (or a close) between the look and the waker.
            if !inner.serving.load(Ordering::Acquire) {
                return Poll::Ready(Event::Closed);
            }
            if let Some(h) = slot.pop() {
                return Poll::Ready(Event::Handed(h));
            }
            if let Some(a) = accept.as_mut() {
                if let Poll::Ready(r) = a.as_mut().poll(cx) {
                    accept = listener.as_ref().map(accepting);
                    return Poll::Ready(Event::Accepted(r));
                }
            }
            Poll::Pending
        })
        .await;
        match ev {
            Event::Closed => break,
            Event::Handed((s, held)) => match TcpStream::from_std(s) {
                Ok(s) => serve(&inner, i, s, held, &handler),
                Err(e) => report(format!("pool server: a handed-over connection failed: {e}")),
            },
            Event::Accepted(Ok(s)) => {
                backoff = Duration::from_millis(10);
                slot.accepted.fetch_add(1, Ordering::Relaxed);
                let to = inner.choose(i);
                let target = &inner.slots[to];
                let held = target.handle.hold_connection();
                if to == i {
                    serve(&inner, i, s, held, &handler);
                } else {
                    target
                        .inbox
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back((s.into_std(), held));
                    target.wake();
                }
            }
            Event::Accepted(Err(e)) => match e.raw_os_error() {
                _ if e.kind() == io::ErrorKind::Interrupted => break,
                Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR) => {}
                _ => {
                    report(format!(
                        "pool server: accept failed ({e}); retrying in {} ms",
                        backoff.as_millis()
                    ));
                    if aio_core::sleep(backoff).await.is_err() {
                        break;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
        }
    }
    // Closed: stop listening now; what was handed over and not taken is
    // dropped (closed), as a listener's backlog is reset.
    if let Some(l) = &listener {
        l.stop_listening();
    }
    drop(accept);
    while let Some(h) = slot.pop() {
        drop(h);
    }
    *slot.waker.lock().unwrap_or_else(|e| e.into_inner()) = None;
    drop(open);
}

/// A loop's part not yet ended: counted in `open_slots` until dropped
/// (also when its loop closes before starting it, or drops its task).
struct SlotOpen(Arc<Inner>);

impl Drop for SlotOpen {
    fn drop(&mut self) {
        if self.0.open_slots.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.notify();
        }
    }
}

/// Counts a connection on its loop and in the server while its handler
/// runs.
struct Active {
    inner: Arc<Inner>,
    i: usize,
    _held: HeldConnection,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.inner.slots[self.i].active.fetch_sub(1, Ordering::Relaxed);
        if self.inner.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.notify();
        }
    }
}

/// Runs the handler for `s` on this loop (`i`), in its own task.
fn serve<H, Fut>(inner: &Arc<Inner>, i: usize, s: TcpStream, held: HeldConnection, handler: &Arc<H>)
where
    H: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    let slot = &inner.slots[i];
    slot.served.fetch_add(1, Ordering::Relaxed);
    slot.active.fetch_add(1, Ordering::Relaxed);
    inner.active.fetch_add(1, Ordering::AcqRel);
    let active = Active {
        inner: inner.clone(),
        i,
        _held: held,
    };
    let handler = handler.clone();
    drop(create_task(async move {
        let _active = active;
        // Called in the task: a handler that panics while making its
        // future fails this task only.
        let failure = failure(&handler(s).await);
        if aio_core::cancel::cancelling() > 0 {
            return;
        }
        if let Some(f) = failure {
            report_failure("Unhandled exception in client_connected_cb", f);
        }
    }));
}

impl PoolServer {
    /// The address the server listens on (the port it picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// How connections are spread.
    pub fn spread(&self) -> Spread {
        self.inner.spread
    }

    /// Whether the server accepts connections.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.load(Ordering::Acquire)
    }

    /// Connections whose handler runs, over every loop.
    pub fn connections(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// This server's connections whose handler runs, per loop.
    pub fn connections_per_loop(&self) -> Vec<usize> {
        self.inner
            .slots
            .iter()
            .map(|s| s.active.load(Ordering::Relaxed))
            .collect()
    }

    /// Connections served so far, per loop (those it kept of its own
    /// accepts and those handed to it).
    pub fn served_per_loop(&self) -> Vec<u64> {
        self.inner
            .slots
            .iter()
            .map(|s| s.served.load(Ordering::Relaxed))
            .collect()
    }

    /// Connections each loop's listener accepted so far (before any hand-over).
    pub fn accepted_per_loop(&self) -> Vec<u64> {
        self.inner
            .slots
            .iter()
            .map(|s| s.accepted.load(Ordering::Relaxed))
            .collect()
    }

    /// Stops accepting, from any thread: each loop stops listening at its
    /// next turn (connections waiting in a backlog are reset, as asyncio's
    /// `Server.close`); connections in progress go on.
    pub fn close(&self) {
        if !self.inner.serving.swap(false, Ordering::AcqRel) {
            return;
        }
        for s in &self.inner.slots {
            s.wake();
        }
    }

    /// Closes every connection the server accepted that is still open, on
    /// each loop (asyncio 3.13's `Server.close_clients`, for a pool): what
    /// a handler wrote goes out first, then the connection shuts down, and
    /// the handler's reads meet EOF. Each loop does it at its next turn
    /// (the connections live there); call [`close`](PoolServer::close)
    /// first, so no new connection comes in meanwhile, and
    /// [`wait_closed_timeout`](PoolServer::wait_closed_timeout) after.
    ///
    /// # Errors
    /// `Unsupported` for a server of raw `TcpStream`s
    /// ([`start_pool_server`]): it keeps no record of its connections
    /// (its handler owns them); a stream server ([`start_server_pool`])
    /// does.
    pub fn close_clients(&self) -> io::Result<()> {
        self.end_clients(false)
    }

    /// Ends every connection the server accepted that is still open, at
    /// once, discarding what is not sent (asyncio 3.13's
    /// `Server.abort_clients`, each writer's
    /// [`abort`](StreamWriter::abort)), on each loop at its next turn.
    ///
    /// # Errors
    /// As [`close_clients`](PoolServer::close_clients).
    pub fn abort_clients(&self) -> io::Result<()> {
        self.end_clients(true)
    }

    fn end_clients(&self, abort: bool) -> io::Result<()> {
        let Some(key) = self.inner.tracked else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a pool server of raw TcpStreams keeps no record of its connections (start_server_pool's does)",
            ));
        };
        for slot in &self.inner.slots {
            // A closed loop's connections are gone with it.
            let _ = slot.handle.call_soon_threadsafe(move || end_clients_here(key, abort));
        }
        Ok(())
    }

    /// Blocks this thread until the server is closed and every
    /// connection's handler has ended, or `timeout` passes; `true` when
    /// done. Never call it on a loop of the pool (that loop could not run
    /// its handlers meanwhile).
    pub fn wait_closed_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let done = || {
            !self.is_serving()
                && self.inner.active.load(Ordering::Acquire) == 0
                && self.inner.open_slots.load(Ordering::Acquire) == 0
        };
        let mut g = self.inner.idle.0.lock().unwrap_or_else(|e| e.into_inner());
        while !done() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = match self.inner.idle.1.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}
