//! One host's connections: the HTTP/1.1 connections (idle, in use, or
//! delivering a response body), the connection limit and the requests
//! waiting under it (first come, first served), and the shared HTTP/2
//! connection. Each connection is driven by its own task, which also puts
//! it back in the pool when its response body has been read and closes it
//! when it has been idle too long.
//!
//! Everything here is `Rc`/`RefCell` on one loop. One rule keeps the
//! `RefCell`s safe: nothing that can hand out a connection or a slot (an
//! `Rc<H1Conn>`, a [`Slot`], a [`Grant`], a [`Lease`]) is dropped while one
//! of the host's cells is borrowed; code takes such values out of a borrow
//! and drops them after.
//!
//! It is one file, over 700 lines, because that rule is its invariant: the
//! host's state and every handle that gives back to it (a slot, a waiting
//! request, an HTTP/2 opener, a lease) are read together to check it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aio_core::Cancelled;
use hyper::client::conn::{http1, http2};
use hyper::rt::Timer;

use super::ClientError;
use super::body::ReqBody;
use crate::rt::{AioTimer, Io, LocalExecutor};

/// Where requests go: scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// The pool settings a host applies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) http2_only: bool,
    pub(crate) max_idle: usize,
    /// HTTP/1.1 connections open or being opened (at least 1).
    pub(crate) max_open: usize,
    pub(crate) idle_timeout: Option<Duration>,
}

type H1Sender<B> = http1::SendRequest<ReqBody<B>>;
type H2Sender<B> = http2::SendRequest<ReqBody<B>>;

/// One host's connections.
pub(crate) struct Host<B> {
    pub(crate) key: Key,
    limits: Limits,
    /// HTTP/1.1 connections ready for a request, the longest idle first.
    idle: RefCell<VecDeque<Rc<H1Conn<B>>>>,
    /// HTTP/1.1 connections open or being opened: the [`Slot`]s out.
    open: Cell<usize>,
    /// Requests waiting for a connection, in arrival order.
    waiters: RefCell<VecDeque<Rc<Waiter<B>>>>,
    h2: RefCell<H2State<B>>,
    /// The host chose HTTP/2 by ALPN: requests share one connection.
    h2_known: Cell<bool>,
    /// A trim of the idle list is queued on the loop.
    trim_queued: Cell<bool>,
}

enum H2State<B> {
    None,
    /// A request is opening the connection; others wait for it.
    Connecting,
    Ready(Rc<H2Conn<B>>),
}

/// What [`Host::try_checkout`] found.
pub(crate) enum Checkout<B> {
    H1(Lease<B>),
    H2(H2Lease<B>),
    /// Open a connection (HTTP/1.1, or what ALPN picks) under this slot.
    Connect(Slot<B>),
    /// Open the host's HTTP/2 connection, which the others wait for.
    ConnectH2(H2Connecting<B>),
    /// Wait in line ([`Host::wait`]).
    Wait,
}

/// What a waiting request is given.
pub(crate) enum Grant<B> {
    /// An idle HTTP/1.1 connection.
    Conn(Lease<B>),
    /// Room for a new connection.
    Connect(Slot<B>),
    /// The HTTP/2 connection came up, or its opener gave up: look again.
    Retry,
    /// Opening the HTTP/2 connection failed.
    Failed(ClientError),
}

impl<B> Host<B> {
    pub(crate) fn new(key: Key, limits: Limits) -> Host<B> {
        Host {
            key,
            limits,
            idle: RefCell::new(VecDeque::new()),
            open: Cell::new(0),
            waiters: RefCell::new(VecDeque::new()),
            h2: RefCell::new(H2State::None),
            h2_known: Cell::new(false),
            trim_queued: Cell::new(false),
        }
    }

    /// Requests share one HTTP/2 connection.
    fn h2_mode(&self) -> bool {
        self.limits.http2_only || self.h2_known.get()
    }

    /// Idle HTTP/1.1 connections, plus 1 for a live HTTP/2 connection.
    pub(crate) fn pooled(&self) -> usize {
        let h2 = matches!(&*self.h2.borrow(), H2State::Ready(c) if c.is_live());
        self.idle.borrow().len() + usize::from(h2)
    }

    /// A connection for a request now, or what to do to get one.
    pub(crate) fn try_checkout(self: &Rc<Self>) -> Checkout<B> {
        if let Some(lease) = self.h2_lease() {
            return Checkout::H2(lease);
        }
        if self.h2_mode() {
            let mut h2 = self.h2.borrow_mut();
            if matches!(*h2, H2State::Connecting) {
                return Checkout::Wait;
            }
            *h2 = H2State::Connecting;
            return Checkout::ConnectH2(H2Connecting {
                host: self.clone(),
                armed: true,
            });
        }
        // Those already waiting go first.
        if !self.waiters.borrow().is_empty() {
            return Checkout::Wait;
        }
        if let Some(lease) = self.idle_lease() {
            return Checkout::H1(lease);
        }
        match self.take_slot() {
            Some(slot) => Checkout::Connect(slot),
            None => Checkout::Wait,
        }
    }

    fn h2_lease(&self) -> Option<H2Lease<B>> {
        let stale = {
            let h2 = self.h2.borrow();
            let H2State::Ready(conn) = &*h2 else {
                return None;
            };
            if let Some(sender) = conn.live_sender() {
                return Some(H2Lease::new(conn.clone(), sender, true));
            }
            conn.clone()
        };
        self.forget_h2(&stale);
        None
    }

    /// The most recently used idle connection that is still open.
    fn idle_lease(&self) -> Option<Lease<B>> {
        loop {
            let conn = self.idle.borrow_mut().pop_back()?;
            let state = conn.state.replace(H1State::InUse);
            match state {
                H1State::Idle(sender, _) if !sender.is_closed() => {
                    return Some(Lease {
                        conn,
                        sender,
                        reused: true,
                    });
                }
                other => {
                    conn.state.replace(H1State::Closed);
                    drop(other);
                    drop(conn);
                }
            }
        }
    }

    fn take_slot(self: &Rc<Self>) -> Option<Slot<B>> {
        (self.open.get() < self.limits.max_open).then(|| self.force_slot())
    }

    /// A slot even over the limit (a host that turned out to speak
    /// HTTP/1.1 where HTTP/2 was expected).
    pub(crate) fn force_slot(self: &Rc<Self>) -> Slot<B> {
        self.open.set(self.open.get() + 1);
        Slot {
            host: Rc::downgrade(self),
        }
    }

    /// Gives freed slots to the requests waiting for one.
    fn grant_slots(self: &Rc<Self>) {
        // Waiters in HTTP/2 mode wait for the connection being made.
        while !self.h2_mode() && self.open.get() < self.limits.max_open {
            let Some(w) = self.waiters.borrow_mut().pop_front() else {
                break;
            };
            w.give(Grant::Connect(self.force_slot()));
        }
    }

    fn remove_idle(&self, conn: &Rc<H1Conn<B>>) {
        let removed = {
            let mut idle = self.idle.borrow_mut();
            let i = idle.iter().position(|c| Rc::ptr_eq(c, conn));
            i.and_then(|i| idle.remove(i))
        };
        drop(removed);
    }

    fn retry_first(&self) {
        let first = self.waiters.borrow_mut().pop_front();
        if let Some(w) = first {
            w.give(Grant::Retry);
        }
    }

    fn retry_all(&self) {
        let all: Vec<_> = self.waiters.borrow_mut().drain(..).collect();
        for w in all {
            w.give(Grant::Retry);
        }
    }

    fn fail_all(&self, e: &ClientError) {
        let all: Vec<_> = self.waiters.borrow_mut().drain(..).collect();
        for w in all {
            w.give(Grant::Failed(e.share()));
        }
    }

    /// A connection that ALPN made HTTP/2: the host's shared one if it
    /// has none yet. The requests waiting look again.
    pub(crate) fn adopt_h2(&self, conn: &Rc<H2Conn<B>>) {
        self.h2_known.set(true);
        let old = {
            let mut h2 = self.h2.borrow_mut();
            match &*h2 {
                H2State::Ready(c) if c.is_live() => None,
                _ => Some(std::mem::replace(&mut *h2, H2State::Ready(conn.clone()))),
            }
        };
        drop(old);
        self.retry_all();
    }

    /// `conn` is not the host's HTTP/2 connection any more.
    pub(crate) fn forget_h2(&self, conn: &Rc<H2Conn<B>>) {
        let old = {
            let mut h2 = self.h2.borrow_mut();
            match &*h2 {
                H2State::Ready(c) if Rc::ptr_eq(c, conn) => Some(std::mem::replace(&mut *h2, H2State::None)),
                _ => None,
            }
        };
        drop(old);
    }
}

impl<B: 'static> Host<B> {
    /// Lines up for a connection: at the back, or at the front for a
    /// request that already waited its turn.
    pub(crate) fn wait(self: &Rc<Self>, front: bool) -> WaitFor<B> {
        let waiter = Rc::new(Waiter {
            grant: RefCell::new(None),
            waker: RefCell::new(None),
        });
        let mut waiters = self.waiters.borrow_mut();
        if front {
            waiters.push_front(waiter.clone());
        } else {
            waiters.push_back(waiter.clone());
        }
        WaitFor {
            host: self.clone(),
            waiter,
            done: false,
        }
    }

    /// A request is done with `lease` (its response head arrived): the
    /// connection takes the next request once the body has been read.
    pub(crate) fn checkin(self: &Rc<Self>, lease: Lease<B>) {
        let Lease { conn, sender, .. } = lease;
        if sender.is_closed() {
            conn.state.replace(H1State::Closed);
        } else if sender.is_ready() {
            self.offer(conn, sender);
        } else {
            conn.state.replace(H1State::Returning(sender));
            conn.wake_driver();
        }
    }

    /// `conn` is ready for a request: to the first waiting request, or to
    /// the idle list.
    fn offer(self: &Rc<Self>, conn: Rc<H1Conn<B>>, sender: H1Sender<B>) {
        if sender.is_closed() {
            conn.state.replace(H1State::Closed);
            return;
        }
        let waiter = self.waiters.borrow_mut().pop_front();
        if let Some(w) = waiter {
            conn.state.replace(H1State::InUse);
            w.give(Grant::Conn(Lease {
                conn,
                sender,
                reused: true,
            }));
            return;
        }
        conn.state.replace(H1State::Idle(sender, Instant::now()));
        conn.wake_driver();
        let over = {
            let mut idle = self.idle.borrow_mut();
            idle.push_back(conn);
            idle.len() > self.limits.max_idle
        };
        if over {
            self.queue_trim();
        }
    }

    /// Closes idle connections over the limit on the next turn of the
    /// loop, not now: the requests woken by the bodies that just ended
    /// run first and take them back, so a burst of returns does not close
    /// connections that are about to be reused.
    fn queue_trim(self: &Rc<Self>) {
        if self.trim_queued.replace(true) {
            return;
        }
        let host = Rc::downgrade(self);
        let trim = move || {
            if let Some(h) = host.upgrade() {
                h.trim_queued.set(false);
                h.trim();
            }
        };
        match aio_core::try_get_running_loop() {
            Some(lp) => drop(lp.call_soon(trim)),
            None => trim(),
        }
    }

    fn trim(&self) {
        let excess: Vec<_> = {
            let mut idle = self.idle.borrow_mut();
            let n = idle.len().saturating_sub(self.limits.max_idle);
            idle.drain(..n).collect()
        };
        for conn in excess {
            conn.close();
        }
    }

    /// Hands back what a waiter was given and did not use.
    fn pass_on(self: &Rc<Self>, grant: Grant<B>) {
        match grant {
            Grant::Conn(lease) => self.offer(lease.conn, lease.sender),
            Grant::Connect(slot) => drop(slot),
            Grant::Retry => self.retry_first(),
            Grant::Failed(_) => {}
        }
    }
}

impl<B> Drop for Host<B> {
    /// The client is gone: its idle connections close (their drivers
    /// would otherwise keep them until the idle timeout), and so does the
    /// HTTP/2 connection once its streams are done.
    fn drop(&mut self) {
        for conn in self.idle.get_mut().drain(..) {
            conn.close();
        }
        if let H2State::Ready(conn) = self.h2.replace(H2State::None) {
            let sender = conn.sender.borrow_mut().take();
            drop(sender);
        }
    }
}

/// A place under the host's connection limit, given back when dropped
/// (to the first waiting request, if any).
pub(crate) struct Slot<B> {
    host: Weak<Host<B>>,
}

impl<B> Drop for Slot<B> {
    fn drop(&mut self) {
        if let Some(host) = self.host.upgrade() {
            host.open.set(host.open.get() - 1);
            host.grant_slots();
        }
    }
}

/// A request waiting for a connection.
struct Waiter<B> {
    grant: RefCell<Option<Grant<B>>>,
    waker: RefCell<Option<Waker>>,
}

impl<B> Waiter<B> {
    /// Called once, after the waiter left the line.
    fn give(&self, grant: Grant<B>) {
        let old = self.grant.replace(Some(grant));
        debug_assert!(old.is_none(), "a waiter is given one thing");
        let waker = self.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Waits for what the line gives: a connection, a slot, a retry, or the
/// failure of the HTTP/2 connection.
///
/// Dropped (or cancelled) before it returned, it leaves the line and
/// passes on whatever it had been given: the connection or the slot go to
/// the next request waiting.
pub(crate) struct WaitFor<B: 'static> {
    host: Rc<Host<B>>,
    waiter: Rc<Waiter<B>>,
    done: bool,
}

impl<B: 'static> Future for WaitFor<B> {
    type Output = Result<Grant<B>, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Cancelled: `Drop` passes on a grant that came at the same time.
        aio_core::cancel::check()?;
        let grant = this.waiter.grant.borrow_mut().take();
        if let Some(g) = grant {
            this.done = true;
            return Poll::Ready(Ok(g));
        }
        let mut waker = this.waiter.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<B: 'static> Drop for WaitFor<B> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.host.waiters.borrow_mut().retain(|w| !Rc::ptr_eq(w, &self.waiter));
        let grant = self.waiter.grant.borrow_mut().take();
        if let Some(g) = grant {
            self.host.pass_on(g);
        }
    }
}

/// The request that opens the host's HTTP/2 connection. Dropped before
/// it finished (the request was dropped or cancelled), the first waiting
/// request takes over.
pub(crate) struct H2Connecting<B> {
    host: Rc<Host<B>>,
    armed: bool,
}

impl<B> H2Connecting<B> {
    pub(crate) fn ready(mut self, conn: &Rc<H2Conn<B>>) {
        self.armed = false;
        let old = self.host.h2.replace(H2State::Ready(conn.clone()));
        drop(old);
        self.host.retry_all();
    }

    pub(crate) fn failed(mut self, e: &ClientError) {
        self.armed = false;
        self.host.h2.replace(H2State::None);
        self.host.fail_all(e);
    }

    /// ALPN chose HTTP/1.1 after all: the host is an HTTP/1.1 host again.
    pub(crate) fn spoke_http1(mut self) -> Slot<B> {
        self.armed = false;
        self.host.h2_known.set(false);
        self.host.h2.replace(H2State::None);
        self.host.retry_all();
        self.host.force_slot()
    }
}

impl<B> Drop for H2Connecting<B> {
    fn drop(&mut self) {
        if self.armed {
            let was = self.host.h2.replace(H2State::None);
            if !matches!(was, H2State::Connecting) {
                // Someone else's connection came up meanwhile: keep it.
                drop(self.host.h2.replace(was));
            }
            self.host.retry_first();
        }
    }
}

/// An HTTP/1.1 connection, shared by its driver task, the pool and the
/// request using it.
pub(crate) struct H1Conn<B> {
    state: RefCell<H1State<B>>,
    driver: RefCell<Option<Waker>>,
    /// Bytes read from the socket so far.
    read: Rc<Cell<u64>>,
    /// Its place under the host's limit (see [`Lease::retire`]).
    slot: RefCell<Option<Slot<B>>>,
}

enum H1State<B> {
    /// A request holds the sender.
    InUse,
    /// The response head arrived; its body is still coming.
    Returning(H1Sender<B>),
    /// In the idle list, since then.
    Idle(H1Sender<B>, Instant),
    Closed,
}

impl<B> H1Conn<B> {
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.get()
    }

    fn wake_driver(&self) {
        let waker = self.driver.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Drops the sender: hyper closes the connection, its driver ends.
    fn close(&self) {
        let old = self.state.replace(H1State::Closed);
        drop(old);
        self.wake_driver();
    }
}

/// An HTTP/1.1 connection lent to one request.
pub(crate) struct Lease<B> {
    pub(crate) conn: Rc<H1Conn<B>>,
    pub(crate) sender: H1Sender<B>,
    /// It served a request before (it may have gone stale).
    pub(crate) reused: bool,
}

impl<B> Lease<B> {
    /// The connection failed under a request: it is closed, and its slot
    /// goes to the new connection that takes the request.
    pub(crate) fn retire(self) -> Option<Slot<B>> {
        let slot = self.conn.slot.borrow_mut().take();
        drop(self.sender);
        self.conn.close();
        slot
    }
}

/// The host's HTTP/2 connection.
pub(crate) struct H2Conn<B> {
    /// The pool's sender; `None` once evicted.
    sender: RefCell<Option<H2Sender<B>>>,
    /// Requests waiting for their response heads.
    active: Cell<usize>,
    last_used: Cell<Instant>,
    driver: RefCell<Option<Waker>>,
}

impl<B> H2Conn<B> {
    fn is_live(&self) -> bool {
        self.sender.borrow().as_ref().is_some_and(|s| !s.is_closed())
    }

    fn live_sender(&self) -> Option<H2Sender<B>> {
        self.sender.borrow().as_ref().filter(|s| !s.is_closed()).cloned()
    }
}

/// The HTTP/2 connection lent to one request (of many).
pub(crate) struct H2Lease<B> {
    pub(crate) conn: Rc<H2Conn<B>>,
    pub(crate) sender: H2Sender<B>,
    pub(crate) reused: bool,
}

impl<B> H2Lease<B> {
    pub(crate) fn new(conn: Rc<H2Conn<B>>, sender: H2Sender<B>, reused: bool) -> H2Lease<B> {
        conn.active.set(conn.active.get() + 1);
        conn.last_used.set(Instant::now());
        H2Lease { conn, sender, reused }
    }
}

impl<B> Drop for H2Lease<B> {
    fn drop(&mut self) {
        let c = &self.conn;
        c.active.set(c.active.get() - 1);
        c.last_used.set(Instant::now());
        if c.active.get() == 0 {
            // To arm its idle timer.
            let waker = c.driver.borrow_mut().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// [`Io`] counting the bytes hyper reads, to tell whether a response
/// began before a connection died.
pub(crate) struct CountingIo {
    io: Io,
    read: Rc<Cell<u64>>,
}

impl hyper::rt::Read for CountingIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = std::task::ready!(this.io.poll_read_counted(cx, buf))?;
        this.read.set(this.read.get() + n as u64);
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for CountingIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Starts an HTTP/1.1 connection on `io` under `slot`: its driver task
/// runs, and the returned lease sends the first request.
pub(crate) async fn start_http1<B>(host: &Rc<Host<B>>, io: Io, slot: Slot<B>) -> Result<Lease<B>, ClientError>
where
    B: hyper::body::Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let read = Rc::new(Cell::new(0));
    let io = CountingIo { io, read: read.clone() };
    let (sender, conn) = http1::Builder::new().handshake(io).await.map_err(ClientError::Http)?;
    let shared = Rc::new(H1Conn {
        state: RefCell::new(H1State::InUse),
        driver: RefCell::new(None),
        read,
        slot: RefCell::new(Some(slot)),
    });
    drop(aio_core::create_task(H1Driver {
        conn: Box::pin(conn),
        shared: shared.clone(),
        host: Rc::downgrade(host),
        idle_timeout: host.limits.idle_timeout,
        timer: None,
    }));
    Ok(Lease {
        conn: shared,
        sender,
        reused: false,
    })
}

/// Starts an HTTP/2 connection on `io`: its driver task runs, and the
/// returned lease sends the first request. The connection is not yet the
/// host's (see [`H2Connecting::ready`] and [`Host::adopt_h2`]).
pub(crate) async fn start_http2<B>(host: &Rc<Host<B>>, io: Io) -> Result<H2Lease<B>, ClientError>
where
    B: hyper::body::Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = http2::Builder::new(LocalExecutor)
        .timer(AioTimer)
        .handshake(io)
        .await
        .map_err(ClientError::Http)?;
    let shared = Rc::new(H2Conn {
        sender: RefCell::new(Some(sender.clone())),
        active: Cell::new(0),
        last_used: Cell::new(Instant::now()),
        driver: RefCell::new(None),
    });
    // Active before its driver first runs (an eager task runs at once).
    let lease = H2Lease::new(shared.clone(), sender, false);
    drop(aio_core::create_task(H2Driver {
        conn: Box::pin(conn),
        shared,
        host: Rc::downgrade(host),
        idle_timeout: host.limits.idle_timeout,
        timer: None,
    }));
    Ok(lease)
}

/// A timer for a deadline, re-made when the deadline moves.
type IdleTimer = Option<(Instant, Pin<Box<dyn hyper::rt::Sleep>>)>;

/// Whether `deadline` passed, arming `timer` for it otherwise.
fn expired(timer: &mut IdleTimer, deadline: Instant, cx: &mut Context<'_>) -> bool {
    if timer.as_ref().is_none_or(|(d, _)| *d != deadline) {
        *timer = Some((deadline, AioTimer.sleep_until(deadline)));
    }
    let Some((_, sleep)) = timer.as_mut() else {
        return false;
    };
    if sleep.as_mut().poll(cx).is_ready() {
        *timer = None;
        return true;
    }
    false
}

/// The task of an HTTP/1.1 connection: runs hyper's connection, returns
/// the connection to the pool when a response body has been read, closes
/// it when it has been idle too long. Ends with the connection; dropped
/// (the loop closing), it takes the connection out of the pool.
struct H1Driver<B: hyper::body::Body + Unpin + 'static> {
    conn: Pin<Box<http1::Connection<CountingIo, ReqBody<B>>>>,
    shared: Rc<H1Conn<B>>,
    host: Weak<Host<B>>,
    idle_timeout: Option<Duration>,
    timer: IdleTimer,
}

impl<B> Future for H1Driver<B>
where
    B: hyper::body::Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.shared.driver.replace(Some(cx.waker().clone()));
        // Its end (or failure) is the pool's business only: the request
        // in progress gets hyper's error.
        if this.conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        loop {
            let mut state = this.shared.state.borrow_mut();
            match &mut *state {
                H1State::Returning(sender) => match sender.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        // The body was read, in the step that woke its
                        // reader: the connection is idle before the reader
                        // runs and asks for one.
                        let H1State::Returning(sender) = std::mem::replace(&mut *state, H1State::InUse) else {
                            unreachable!("matched above");
                        };
                        drop(state);
                        match this.host.upgrade() {
                            Some(host) => host.offer(this.shared.clone(), sender),
                            None => drop(sender),
                        }
                    }
                    Poll::Ready(Err(_)) => {
                        let old = std::mem::replace(&mut *state, H1State::Closed);
                        drop(state);
                        drop(old);
                        return self_wake(cx);
                    }
                    Poll::Pending => return Poll::Pending,
                },
                H1State::Idle(_, since) => {
                    let since = *since;
                    drop(state);
                    let Some(t) = this.idle_timeout else {
                        return Poll::Pending;
                    };
                    if !expired(&mut this.timer, since + t, cx) {
                        return Poll::Pending;
                    }
                    if let Some(host) = this.host.upgrade() {
                        host.remove_idle(&this.shared);
                    }
                    this.shared.close();
                    return self_wake(cx);
                }
                H1State::InUse | H1State::Closed => return Poll::Pending,
            }
        }
    }
}

/// Polls again soon: hyper notices a dropped sender on its next poll.
fn self_wake(cx: &mut Context<'_>) -> Poll<()> {
    cx.waker().wake_by_ref();
    Poll::Pending
}

impl<B: hyper::body::Body + Unpin + 'static> Drop for H1Driver<B> {
    fn drop(&mut self) {
        if let Some(host) = self.host.upgrade() {
            host.remove_idle(&self.shared);
        }
        let old = self.shared.state.replace(H1State::Closed);
        drop(old);
    }
}

/// The task of an HTTP/2 connection: runs hyper's connection and takes
/// the connection out of the pool when no request has used it for the
/// idle timeout (streams in progress then finish, and hyper closes it).
struct H2Driver<B: hyper::body::Body + Unpin + 'static>
where
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    conn: Pin<Box<http2::Connection<Io, ReqBody<B>, LocalExecutor>>>,
    shared: Rc<H2Conn<B>>,
    host: Weak<Host<B>>,
    idle_timeout: Option<Duration>,
    timer: IdleTimer,
}

impl<B> Future for H2Driver<B>
where
    B: hyper::body::Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.shared.driver.replace(Some(cx.waker().clone()));
        if this.conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let Some(t) = this.idle_timeout else {
            return Poll::Pending;
        };
        if this.shared.active.get() > 0 || this.shared.sender.borrow().is_none() {
            this.timer = None;
            return Poll::Pending;
        }
        if !expired(&mut this.timer, this.shared.last_used.get() + t, cx) {
            return Poll::Pending;
        }
        if let Some(host) = this.host.upgrade() {
            host.forget_h2(&this.shared);
        }
        let old = this.shared.sender.borrow_mut().take();
        drop(old);
        self_wake(cx)
    }
}

impl<B> Drop for H2Driver<B>
where
    B: hyper::body::Body + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn drop(&mut self) {
        if let Some(host) = self.host.upgrade() {
            host.forget_h2(&self.shared);
        }
        let old = self.shared.sender.borrow_mut().take();
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;

    type B = Full<Bytes>;

    fn host(max_open: usize, http2_only: bool) -> Rc<Host<B>> {
        let key = Key {
            https: false,
            host: "example".into(),
            port: 80,
        };
        let limits = Limits {
            http2_only,
            max_idle: 4,
            max_open,
            idle_timeout: None,
        };
        Rc::new(Host::new(key, limits))
    }

    fn poll(w: &mut WaitFor<B>) -> Poll<Result<Grant<B>, Cancelled>> {
        Pin::new(w).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_freed_slot_goes_down_the_line() {
        let h = host(1, false);
        let Checkout::Connect(slot) = h.try_checkout() else {
            panic!("the first request connects");
        };
        assert!(matches!(h.try_checkout(), Checkout::Wait));
        let (mut first, mut second, mut third) = (h.wait(false), h.wait(false), h.wait(false));
        assert!(poll(&mut first).is_pending());
        drop(slot);
        // Given the slot, `first` leaves before it runs: `second` gets it.
        drop(first);
        assert!(poll(&mut third).is_pending());
        let Poll::Ready(Ok(Grant::Connect(slot))) = poll(&mut second) else {
            panic!("the slot passes to the next in line");
        };
        assert_eq!(h.open.get(), 1);
        drop(slot);
        assert!(matches!(poll(&mut third), Poll::Ready(Ok(Grant::Connect(_)))));
        // A waiter that leaves the line unserved takes nothing with it.
        let mut fourth = h.wait(false);
        drop(h.wait(false));
        assert!(poll(&mut fourth).is_pending());
        assert_eq!(h.waiters.borrow().len(), 1);
    }

    #[test]
    fn a_newcomer_does_not_pass_the_line() {
        let h = host(2, false);
        let Checkout::Connect(a) = h.try_checkout() else {
            panic!("room for two");
        };
        let Checkout::Connect(_b) = h.try_checkout() else {
            panic!("room for two");
        };
        let mut waiting = h.wait(false);
        drop(a);
        // The freed slot went to the waiter, not to whoever asks next.
        assert!(matches!(h.try_checkout(), Checkout::Wait));
        assert!(matches!(poll(&mut waiting), Poll::Ready(Ok(Grant::Connect(_)))));
    }

    #[test]
    fn an_abandoned_http2_opener_hands_over() {
        let h = host(usize::MAX, true);
        let Checkout::ConnectH2(opener) = h.try_checkout() else {
            panic!("the first request opens the connection");
        };
        assert!(matches!(h.try_checkout(), Checkout::Wait));
        let (first, mut second) = (h.wait(false), h.wait(false));
        drop(opener);
        // Told to look again, `first` leaves before it does: `second` is.
        drop(first);
        assert!(matches!(poll(&mut second), Poll::Ready(Ok(Grant::Retry))));
        let Checkout::ConnectH2(opener) = h.try_checkout() else {
            panic!("the next request opens it");
        };
        let mut third = h.wait(false);
        opener.failed(&ClientError::ConnectTimeout(Duration::from_secs(1)));
        assert!(matches!(
            poll(&mut third),
            Poll::Ready(Ok(Grant::Failed(ClientError::ConnectTimeout(_))))
        ));
        assert!(matches!(h.try_checkout(), Checkout::ConnectH2(_)));
    }
}
