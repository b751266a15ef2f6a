//! `open_connection`, `start_server` and `Server`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use aio_core::{ExceptionContext, TaskRef, create_task, get_running_loop};

use super::{StreamReader, StreamWriter, Transport, pair, pair_rc};
use crate::addr::lookup_host;
use crate::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Opens a TCP connection to `(host, port)` and returns asyncio's reader
/// and writer on it: asyncio's `open_connection`.
///
/// # Cancellation
/// A cancelled connect closes the socket.
///
/// # Examples
/// ```no_run
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let (mut reader, writer) = aio_net::open_connection("127.0.0.1", 8888).await?;
/// writer.write(b"hello\n");
/// writer.drain().await?;
/// let line = reader.readline().await?;
/// writer.close();
/// writer.wait_closed().await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn open_connection(host: &str, port: u16) -> io::Result<(StreamReader, StreamWriter)> {
    let s = TcpStream::connect((host, port)).await?;
    Ok(pair(Transport::tcp(s)))
}

/// Opens a Unix stream connection: asyncio's `open_unix_connection`.
pub async fn open_unix_connection(path: impl AsRef<Path>) -> io::Result<(StreamReader, StreamWriter)> {
    let s = UnixStream::connect(path).await?;
    Ok(pair(Transport::unix(s)))
}

/// What a connection handler may return: any task output ([`TaskOutput`](aio_core::TaskOutput):
/// `()`, or a `Result` whose error is reported through the loop's
/// exception handler, as asyncio logs an exception raised by
/// `client_connected_cb`). The same trait as a task's: one notion of a
/// failed output.
pub use aio_core::TaskOutput as HandlerOutput;

/// How a handler's failure is reported (`None`: it did not fail).
pub(crate) fn failure(out: &impl HandlerOutput) -> Option<String> {
    out.is_failure().then(|| {
        out.describe_failure()
            .unwrap_or_else(|| "the handler failed".to_owned())
    })
}

struct Inner {
    addrs: Vec<String>,
    tcp_addrs: Vec<SocketAddr>,
    /// The listening sockets (the accept tasks hold them too), which
    /// `close` stops at once.
    listeners: RefCell<Vec<Rc<dyn Acceptor>>>,
    accept_tasks: RefCell<Vec<TaskRef>>,
    serving: Cell<bool>,
    active: Cell<usize>,
    waiters: RefCell<Vec<Waker>>,
    unix_socket: Option<UnixSocketFile>,
    /// Whether a `serve_forever` waits on the server.
    serving_forever: Cell<bool>,
    /// The accepted connections (asyncio's `Server._clients`), for
    /// `close_clients` and `abort_clients`: weak, so a connection ends
    /// when its handler and streams let it go.
    clients: RefCell<Vec<Weak<Transport>>>,
}

impl Inner {
    fn new(addrs: Vec<String>, tcp_addrs: Vec<SocketAddr>, unix_socket: Option<UnixSocketFile>) -> Inner {
        Inner {
            addrs,
            tcp_addrs,
            listeners: RefCell::new(Vec::new()),
            accept_tasks: RefCell::new(Vec::new()),
            serving: Cell::new(true),
            active: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            unix_socket,
            serving_forever: Cell::new(false),
            clients: RefCell::new(Vec::new()),
        }
    }

    /// Keeps a new connection where `close_clients` finds it, forgetting
    /// the ended ones once they are as many as the live ones.
    fn track(&self, t: &Rc<Transport>) {
        let mut clients = self.clients.borrow_mut();
        if clients.len() >= 16 && clients.len().is_power_of_two() {
            clients.retain(|c| c.strong_count() > 0);
        }
        clients.push(Rc::downgrade(t));
    }

    /// The connections still open.
    fn live_clients(&self) -> Vec<Rc<Transport>> {
        self.clients.borrow().iter().filter_map(Weak::upgrade).collect()
    }

    fn wake(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// A running server: asyncio's `Server`. It accepts connections until
/// [`close`](Server::close) and runs the handler for each in its own task.
#[derive(Clone)]
pub struct Server {
    inner: Rc<Inner>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("sockets", &self.inner.addrs)
            .field("serving", &self.is_serving())
            .field("connections", &self.inner.active.get())
            .finish()
    }
}

/// The file of a Unix server's socket, as its bind left it: the server
/// removes it when it closes only if it is still that file (asyncio 3.13
/// compares the inode), not one that replaced it, or nothing if it is
/// gone.
struct UnixSocketFile {
    path: PathBuf,
    /// The file's device and inode after the bind (`None`: not a file).
    id: Option<(u64, u64)>,
}

impl UnixSocketFile {
    fn bound(path: PathBuf) -> UnixSocketFile {
        let id = Self::id_of(&path);
        UnixSocketFile { path, id }
    }

    fn id_of(path: &Path) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }

    fn remove(&self) {
        if self.id.is_some() && Self::id_of(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the socket file a server that is gone left at `path`, as
/// asyncio's `create_unix_server` does before it binds (anything that is
/// not a socket stays, and the bind then fails with `AddrInUse`).
fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Counts a connection as active for as long as its handler runs.
struct Active(Rc<Inner>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
        self.0.wake();
    }
}

pub(crate) fn report(msg: String) {
    report_context(ExceptionContext {
        message: msg,
        task: None,
        panic: None,
        error: None,
    });
}

/// Reports a handler's failure as asyncio does: its message, with the
/// failure apart (asyncio's `exception` key).
pub(crate) fn report_failure(msg: &str, failure: String) {
    report_context(ExceptionContext {
        message: msg.to_owned(),
        task: None,
        panic: None,
        error: Some(failure),
    });
}

fn report_context(ctx: ExceptionContext) {
    if let Some(lp) = aio_core::try_get_running_loop() {
        lp.call_exception_handler(ctx);
    }
}

fn is_resource_limit(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// Accepts connections on one listener until cancelled. Running out of
/// descriptors does not spin: the loop backs off (10 ms, doubling up to
/// 1 s) and resumes once descriptors free up.
async fn accept_loop<H, Fut, L>(inner: Rc<Inner>, listener: Rc<L>, handler: Rc<H>)
where
    H: Fn(Rc<Transport>) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
    L: Listener + 'static,
{
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = listener.accept_one().await;
        if !inner.serving.get() {
            // Closed while the accept ran: the socket was shut down under
            // it (a connection it got is closed, as asyncio's closed
            // listening socket resets those it did not accept).
            return;
        }
        match accepted {
            Ok((s, peer)) => {
                backoff = Duration::from_millis(10);
                inner.active.set(inner.active.get() + 1);
                let active = Active(inner.clone());
                let held = get_running_loop().hold_connection();
                let mut t = s.into_transport();
                t.peer = peer;
                let t = Rc::new(t);
                inner.track(&t);
                let fut = handler(t);
                drop(create_task(async move {
                    let _active = active;
                    let _held = held;
                    let failure = failure(&fut.await);
                    // As asyncio: a handler ended by cancellation (the
                    // server or the loop closing) is not an error to report.
                    if aio_core::cancel::cancelling() > 0 {
                        return;
                    }
                    if let Some(f) = failure {
                        report_failure("Unhandled exception in client_connected_cb", f);
                    }
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) if is_resource_limit(&e) => {
                report(format!("accept failed ({e}); retrying in {} ms", backoff.as_millis()));
                if aio_core::sleep(backoff).await.is_err() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => match e.raw_os_error() {
                // The peer gave up before we accepted: not the server's problem.
                Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EPERM) | Some(libc::EINTR) => {}
                _ => {
                    report(format!("accept failed: {e}"));
                    if aio_core::sleep(backoff).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// A listener of either family, for the shared accept loop.
trait Listener: Acceptor {
    type Stream: IntoTransport;
    /// A connection, and the peer's TCP address when `accept` told it.
    fn accept_one(&self) -> impl Future<Output = io::Result<(Self::Stream, Option<std::net::SocketAddr>)>>;
}

/// What `Server::close` does to a listener of either family.
trait Acceptor {
    /// Stops listening now (see `sock::stop_listening`).
    fn stop(&self);
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    async fn accept_one(&self) -> io::Result<(TcpStream, Option<std::net::SocketAddr>)> {
        // Port 0: the peer reset before the accept, and `accept` could
        // not tell; the socket is asked when the address is wanted.
        self.accept().await.map(|(s, a)| (s, (a.port() != 0).then_some(a)))
    }
}

impl Acceptor for TcpListener {
    fn stop(&self) {
        self.stop_listening();
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn accept_one(&self) -> io::Result<(UnixStream, Option<std::net::SocketAddr>)> {
        self.accept().await.map(|(s, _)| (s, None))
    }
}

impl Acceptor for UnixListener {
    fn stop(&self) {
        self.stop_listening();
    }
}

trait IntoTransport {
    fn into_transport(self) -> Transport;
}

impl IntoTransport for TcpStream {
    fn into_transport(self) -> Transport {
        Transport::tcp(self)
    }
}

impl IntoTransport for UnixStream {
    fn into_transport(self) -> Transport {
        Transport::unix(self)
    }
}

/// Starts a TCP server: for each connection, `handler(reader, writer)` runs
/// in its own task. asyncio's `start_server(client_connected_cb, host,
/// port)`. The server listens on every address `host` resolves to (`""`
/// means every interface, IPv4 and IPv6); port 0 picks a free port (see
/// [`Server::sockets`]).
///
/// # Examples
/// ```
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let server = aio_net::start_server(
///     |mut r: aio_net::StreamReader, w: aio_net::StreamWriter| async move {
///         let line = r.readline().await?;
///         w.write(&line);
///         w.drain().await?;
///         Ok::<_, std::io::Error>(())
///     },
///     "127.0.0.1",
///     0,
/// )
/// .await?;
/// let port = server.sockets()[0].port();
/// let (mut r, w) = aio_net::open_connection("127.0.0.1", port).await?;
/// w.write(b"echo\n");
/// assert_eq!(r.readline().await?, b"echo\n");
/// server.close();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn start_server<H, Fut>(handler: H, host: &str, port: u16) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    start_server_with(
        move |t| {
            let (r, w) = pair_rc(t);
            handler(r, w)
        },
        host,
        port,
    )
    .await
}

/// [`start_server`] with a handler that receives the transport (the TLS
/// server runs its handshake there first).
pub(crate) async fn start_server_with<H, Fut>(handler: H, host: &str, port: u16) -> io::Result<Server>
where
    H: Fn(Rc<Transport>) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    let addrs: Vec<SocketAddr> = if host.is_empty() {
        vec![
            SocketAddr::from(([0, 0, 0, 0], port)),
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
        ]
    } else {
        let mut v = lookup_host((host, port)).await?;
        v.dedup();
        v
    };
    let mut listeners = Vec::new();
    let mut last_err = None;
    for a in addrs {
        match TcpListener::bind_addr(a, 1024, false) {
            Ok(l) => listeners.push(l),
            // IPv6 may be unavailable; asyncio skips such addresses too.
            Err(e) if host.is_empty() && a.is_ipv6() => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    if listeners.is_empty() {
        return Err(last_err.unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "nothing to listen on")));
    }
    let tcp_addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
    let inner = Rc::new(Inner::new(
        tcp_addrs.iter().map(SocketAddr::to_string).collect(),
        tcp_addrs,
        None,
    ));
    let handler = Rc::new(handler);
    for l in listeners {
        let l = Rc::new(l);
        inner.listeners.borrow_mut().push(l.clone());
        let t = create_task(accept_loop(inner.clone(), l, handler.clone()));
        inner.accept_tasks.borrow_mut().push(t.to_ref());
    }
    Ok(Server { inner })
}

/// Starts a Unix socket server at `path`: asyncio's `start_unix_server`.
/// A socket file left at `path` (by a server that is gone) is replaced, as
/// asyncio replaces it; the server's own socket file is removed when it
/// closes, if it is still there.
pub async fn start_unix_server<H, Fut>(handler: H, path: impl AsRef<Path>) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    let path = path.as_ref().to_path_buf();
    remove_stale_socket(&path);
    let l = UnixListener::bind(&path)?;
    let l = Rc::new(l);
    let socket = UnixSocketFile::bound(path.clone());
    let inner = Rc::new(Inner::new(vec![path.display().to_string()], Vec::new(), Some(socket)));
    inner.listeners.borrow_mut().push(l.clone());
    let handler = move |t| {
        let (r, w) = pair_rc(t);
        handler(r, w)
    };
    let t = create_task(accept_loop(inner.clone(), l, Rc::new(handler)));
    inner.accept_tasks.borrow_mut().push(t.to_ref());
    Ok(Server { inner })
}

impl Server {
    /// The addresses the server listens on (TCP); none once it is closed
    /// (asyncio's `sockets`, which is `()` then).
    pub fn sockets(&self) -> Vec<SocketAddr> {
        if self.is_serving() {
            self.inner.tcp_addrs.clone()
        } else {
            Vec::new()
        }
    }

    /// The listening addresses as text (TCP addresses or the Unix path);
    /// none once the server is closed.
    pub fn addresses(&self) -> &[String] {
        if self.is_serving() { &self.inner.addrs } else { &[] }
    }

    /// Whether the server accepts connections.
    pub fn is_serving(&self) -> bool {
        self.inner.serving.get()
    }

    /// The number of connections whose handler still runs.
    pub fn connections(&self) -> usize {
        self.inner.active.get()
    }

    /// Stops accepting connections and closes the listening sockets;
    /// connections in progress go on (asyncio's `Server.close`).
    ///
    /// The sockets stop listening before this returns: a connection
    /// attempted afterwards is refused (`ConnectionRefused`), and one that
    /// was waiting in the backlog, not yet accepted, is reset — as when
    /// asyncio closes them. (That is Linux's behaviour; on other systems a
    /// socket stops listening when its accept task next runs.) Their
    /// descriptors close when the accept tasks, cancelled here, end.
    pub fn close(&self) {
        if !self.inner.serving.replace(false) {
            return;
        }
        let listeners = std::mem::take(&mut *self.inner.listeners.borrow_mut());
        for l in listeners {
            l.stop();
        }
        let tasks = std::mem::take(&mut *self.inner.accept_tasks.borrow_mut());
        for t in tasks {
            t.cancel();
        }
        if let Some(socket) = &self.inner.unix_socket {
            socket.remove();
        }
        self.inner.wake();
    }

    /// Closes every connection the server accepted that is still open
    /// (asyncio 3.13's `Server.close_clients`): what a handler wrote goes
    /// out first, then the connection shuts down, and the handler's reads
    /// meet EOF. A connection whose handler has not made its streams yet
    /// (a TLS handshake under way) is shut down at once. Call
    /// [`close`](Server::close) first, so no new connection comes in
    /// meanwhile.
    pub fn close_clients(&self) {
        for t in self.inner.live_clients() {
            t.end(false);
        }
    }

    /// Ends every connection the server accepted that is still open, at
    /// once, discarding what is not sent (asyncio 3.13's
    /// `Server.abort_clients`: each writer's
    /// [`abort`](StreamWriter::abort)).
    pub fn abort_clients(&self) {
        for t in self.inner.live_clients() {
            t.end(true);
        }
    }

    /// Waits until the server is closed and every connection it accepted
    /// has ended: asyncio's `Server.wait_closed` (3.12.1 and later).
    ///
    /// A connection ends, as an asyncio transport detaches from its
    /// server, when its writer is closed (the close done, or aborted) or
    /// when its reader and writer are both dropped: not when its handler
    /// returns. A handler that keeps its writer somewhere else keeps the
    /// server waiting until that writer is closed; one that closes its
    /// writer and runs on does not.
    ///
    /// # Cancellation
    /// Returns `Err(Cancelled)`; the server is untouched.
    pub async fn wait_closed(&self) -> aio_core::Result<()> {
        poll_fn(|cx| {
            aio_core::cancel::check()?;
            if self.is_serving() {
                let mut waiters = self.inner.waiters.borrow_mut();
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                return Poll::Pending;
            }
            // Waits on the first connection still open; the next poll
            // looks again from there.
            let clients = self.inner.clients.borrow();
            let open = clients.iter().filter_map(Weak::upgrade).any(|t| !t.poll_ended(cx));
            if open { Poll::Pending } else { Poll::Ready(Ok(())) }
        })
        .await
    }

    /// Serves until the server is closed: asyncio's `serve_forever`.
    ///
    /// # Errors
    /// As asyncio's `RuntimeError`s, an error (`Other`) when the server is
    /// closed already ("... is closed"), or another `serve_forever` waits
    /// on it ("... is already being awaited on serve_forever()").
    ///
    /// # Cancellation
    /// A cancellation closes the server (as in asyncio) and returns
    /// `Interrupted` (a [`Cancelled`](aio_core::Cancelled) inside).
    /// asyncio then also waits for every connection to end; aio does not
    /// (a keep-alive client could hold it forever): call
    /// [`wait_closed`](Server::wait_closed) for that, after
    /// [`close_clients`](Server::close_clients) to hurry it.
    pub async fn serve_forever(&self) -> io::Result<()> {
        if !self.is_serving() {
            return Err(io::Error::other(format!("server {:?} is closed", self.inner.addrs)));
        }
        if self.inner.serving_forever.replace(true) {
            return Err(io::Error::other(format!(
                "server {:?} is already being awaited on serve_forever()",
                self.inner.addrs
            )));
        }
        struct Done<'a>(&'a Cell<bool>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _done = Done(&self.inner.serving_forever);
        let r: aio_core::Result<()> = poll_fn(|cx| {
            aio_core::cancel::check()?;
            if !self.is_serving() {
                return Poll::Ready(Ok(()));
            }
            self.inner.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        if r.is_err() {
            self.close();
        }
        Ok(r?)
    }

    /// The loop the server runs on.
    pub fn get_loop(&self) -> aio_core::Loop {
        get_running_loop()
    }
}
