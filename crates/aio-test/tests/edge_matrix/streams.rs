//! asyncio's streams (`read`, `readline`, `readuntil`, `readuntil_any`,
//! `readexactly`, `write` + `drain`), the same over TLS, the TLS
//! handshake, sendfile, and a server's `serve_forever` and `wait_closed`.
#![allow(clippy::await_holding_refcell_ref)] // one operation at a time holds the reader

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use aio_core::create_task;
use aio_net::{
    StreamError, StreamReader, StreamWriter, TcpListener, TcpStream, TlsAcceptor, TlsConnector, start_tls,
    start_tls_server,
};
use aio_test::payload;

use crate::harness::{Case, Ending, Endings, Local, a_prefix, completed, ensure, failed, ready};

/// A connected pair of asyncio streams: ours, and the peer's.
pub trait Transport: 'static {
    fn pair() -> Local<'static, io::Result<Streams>>;
}

pub struct Streams {
    pub r: StreamReader,
    pub w: StreamWriter,
    pub peer_r: StreamReader,
    pub peer_w: StreamWriter,
    /// The peer's socket, to make its close a reset.
    pub peer_fd: RawFd,
}

async fn tcp_streams() -> io::Result<Streams> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let c = TcpStream::connect(l.local_addr()?).await?;
    let (s, _) = l.accept().await?;
    let peer_fd = s.as_raw_fd();
    let (r, w) = c.into_streams();
    let (peer_r, peer_w) = s.into_streams();
    Ok(Streams {
        r,
        w,
        peer_r,
        peer_w,
        peer_fd,
    })
}

pub struct Plain;

impl Transport for Plain {
    fn pair() -> Local<'static, io::Result<Streams>> {
        Box::pin(tcp_streams())
    }
}

/// A certificate for "localhost" (made once per thread: key generation
/// costs milliseconds) and the TLS ends that use it.
fn tls_ends() -> (TlsConnector, TlsAcceptor) {
    thread_local! {
        static PEM: (String, String) = {
            let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
            (c.cert.pem(), c.signing_key.serialize_pem())
        };
    }
    PEM.with(|(cert, key)| {
        (
            TlsConnector::from_pem(cert.as_bytes()).expect("the certificate parses"),
            TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes()).expect("the key parses"),
        )
    })
}

pub struct Tls;

impl Transport for Tls {
    fn pair() -> Local<'static, io::Result<Streams>> {
        Box::pin(async {
            let s = tcp_streams().await?;
            let peer_fd = s.peer_fd;
            let (connector, acceptor) = tls_ends();
            let ((r, w), (peer_r, peer_w)) = aio_core::gather!(
                start_tls(s.r, s.w, &connector, "localhost"),
                start_tls_server(s.peer_r, s.peer_w, &acceptor)
            )
            .await?;
            Ok(Streams {
                r,
                w,
                peer_r,
                peer_w,
                peer_fd,
            })
        })
    }
}

pub struct StreamFx {
    r: Rc<RefCell<StreamReader>>,
    w: StreamWriter,
    peer: RefCell<Option<(Rc<RefCell<StreamReader>>, StreamWriter)>>,
    peer_fd: RawFd,
    /// The peer's reading, once fed.
    reader: RefCell<Option<ReadAll>>,
}

/// A task reading a stream to its end.
type ReadAll = aio_core::Task<Result<Vec<u8>, StreamError>>;

impl StreamFx {
    fn new(s: Streams) -> StreamFx {
        StreamFx {
            r: Rc::new(RefCell::new(s.r)),
            w: s.w,
            peer: RefCell::new(Some((Rc::new(RefCell::new(s.peer_r)), s.peer_w))),
            peer_fd: s.peer_fd,
            reader: RefCell::new(None),
        }
    }

    /// The peer starts reading to the end (the feed of the rows that
    /// write).
    fn start_peer_reading(&self) -> Local<'_, io::Result<()>> {
        let r = self.peer.borrow().as_ref().expect("the peer is there").0.clone();
        *self.reader.borrow_mut() = Some(create_task(async move { r.borrow_mut().read(-1).await }));
        ready(Ok(()))
    }

    /// Closes our writer and returns all the peer read.
    async fn close_and_collect(&self) -> io::Result<Vec<u8>> {
        self.w.close();
        let reader = self.reader.borrow_mut().take().expect("fed");
        reader
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
            .map_err(|e| io::Error::other(format!("the peer's read: {e}")))
    }

    /// The peer goes: closes, or (`reset`) resets the connection.
    fn end_peer(&self, reset: bool) -> io::Result<()> {
        let peer = self.peer.borrow_mut().take().expect("the peer is there");
        if reset {
            // SAFETY: the peer's socket is open until `peer` is dropped below.
            let fd = unsafe { BorrowedFd::borrow_raw(self.peer_fd) };
            socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO))?;
        } else {
            peer.1.close();
        }
        drop(peer);
        Ok(())
    }
}

/// Which reader call a row makes.
pub trait ReadCall: 'static {
    const NAME: &'static str;
    fn call(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>>;
    /// What the peer's closing after `partial` gives this call: asyncio's
    /// outcome (`IncompleteRead` carrying the partial data, or the data).
    fn at_eof(out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()>;
    /// A call with bad input, which fails with `InvalidInput` (asyncio's
    /// `ValueError`): an empty separator unless the call says otherwise.
    fn bad(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>> {
        Box::pin(async move { r.borrow_mut().readuntil(b"").await })
    }
}

pub struct ReadN;
pub struct Readline;
pub struct Readuntil;
pub struct ReaduntilAny;
pub struct Readexactly;

/// What the peer writes: lines, so every call finds its separator.
fn fed() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..2000 {
        v.extend_from_slice(format!("line {i:05} {}\n", "x".repeat(i % 50)).as_bytes());
    }
    v
}

/// `read(n)` and `readline` at EOF: what came, without an error.
fn the_rest_at_eof(name: &str, out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()> {
    let got = out.map_err(|e| io::Error::other(format!("{name} at EOF: {e}")))?;
    ensure(got == partial, || format!("{name} at EOF gave {got:?}"))
}

/// `readuntil` and `readuntil_any` at EOF: `IncompleteRead` with what came.
fn no_separator_at_eof(name: &str, out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()> {
    match out {
        Err(StreamError::IncompleteRead {
            partial: p,
            expected: None,
        }) if p == partial => Ok(()),
        r => Err(io::Error::other(format!("{name} at EOF: {r:?}"))),
    }
}

impl ReadCall for ReadN {
    const NAME: &'static str = "read(n)";
    fn call(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>> {
        Box::pin(async move { r.borrow_mut().read(1000).await })
    }
    fn at_eof(out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()> {
        the_rest_at_eof(Self::NAME, out, partial)
    }
}

impl ReadCall for Readline {
    const NAME: &'static str = "readline";
    fn call(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>> {
        Box::pin(async move { r.borrow_mut().readline().await })
    }
    fn at_eof(out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()> {
        the_rest_at_eof(Self::NAME, out, partial)
    }
}

impl ReadCall for Readuntil {
    const NAME: &'static str = "readuntil";
    fn call(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>> {
        Box::pin(async move { r.borrow_mut().readuntil(b"\n").await })
    }
    fn at_eof(out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()> {
        no_separator_at_eof(Self::NAME, out, partial)
    }
}

impl ReadCall for ReaduntilAny {
    const NAME: &'static str = "readuntil_any";
    fn call(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>> {
        Box::pin(async move { r.borrow_mut().readuntil_any(&[b"\r\n", b"\n"]).await })
    }
    fn at_eof(out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()> {
        no_separator_at_eof(Self::NAME, out, partial)
    }
    fn bad(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>> {
        Box::pin(async move { r.borrow_mut().readuntil_any(&[]).await })
    }
}

impl ReadCall for Readexactly {
    const NAME: &'static str = "readexactly";
    fn call(r: Rc<RefCell<StreamReader>>) -> Local<'static, Result<Vec<u8>, StreamError>> {
        Box::pin(async move { r.borrow_mut().readexactly(777).await })
    }
    fn at_eof(out: Result<Vec<u8>, StreamError>, partial: &[u8]) -> io::Result<()> {
        match out {
            Err(StreamError::IncompleteRead {
                partial: p,
                expected: Some(777),
            }) if p == partial => Ok(()),
            r => Err(io::Error::other(format!("readexactly at EOF: {r:?}"))),
        }
    }
}

/// A reader call: data a dropped, timed-out or cancelled call had
/// gathered stays buffered for the next one, so the calls that complete
/// get the stream whole.
pub struct StreamRead<T, C>(std::marker::PhantomData<(T, C)>);

impl<T: Transport, C: ReadCall> Case for StreamRead<T, C> {
    type Fx = StreamFx;
    type Out = Result<Vec<u8>, StreamError>;
    const NAME: &'static str = C::NAME;
    const ENDINGS: Endings = Endings::ALL;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async { Ok(StreamFx::new(T::pair().await?)) })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        C::call(fx.r.clone())
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let peer = fx.peer.borrow_mut().take().expect("the peer is there");
            peer.1.write(&fed());
            peer.1.drain().await?;
            peer.1.close();
            Ok(())
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let mut all = match got {
                Some(Ok(v)) => v,
                Some(Err(e)) if e.is_cancelled() => Vec::new(),
                Some(Err(e)) => return Err(io::Error::other(format!("the call failed: {e}"))),
                None => Vec::new(),
            };
            let rest =
                fx.r.borrow_mut()
                    .read(-1)
                    .await
                    .map_err(|e| io::Error::other(format!("reading the rest: {e}")))?;
            all.extend_from_slice(&rest);
            let want = fed();
            ensure(all.len() == want.len(), || {
                format!("{} of {} bytes read", all.len(), want.len())
            })?;
            ensure(all == want, || "bytes reordered or corrupted".into())
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if !reset {
                // Some data, then the end: asyncio's partial outcomes.
                let p = fx.peer.borrow();
                let w = &p.as_ref().expect("the peer is there").1;
                w.write(b"no end");
                w.drain().await?;
            }
            fx.end_peer(reset)
        })
    }
    fn check_peer_end(out: Self::Out, reset: bool) -> io::Result<()> {
        if reset {
            return match out {
                Err(StreamError::Io(_)) | Err(StreamError::IncompleteRead { .. }) | Ok(_) => Ok(()),
                Err(e) => Err(io::Error::other(format!("after a reset: {e}"))),
            };
        }
        C::at_eof(out, b"no end")
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let s = T::pair().await?;
            match C::bad(Rc::new(RefCell::new(s.r))).await {
                Err(StreamError::Io(e)) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
                r => Err(io::Error::other(format!("{} with bad input: {r:?}", C::NAME))),
            }
        })
    }
}

const BIG: usize = 8 << 20;

/// `write` + `drain`: the writer's buffer is flushed whatever happens to
/// `drain` (a dropped or cancelled drain loses nothing the program wrote).
pub struct WriteDrain<T>(std::marker::PhantomData<T>);

impl<T: Transport> Case for WriteDrain<T> {
    type Fx = StreamFx;
    type Out = io::Result<()>;
    const NAME: &'static str = "write + drain";
    const ENDINGS: Endings = Endings::ALL;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async { Ok(StreamFx::new(T::pair().await?)) })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move {
            fx.w.write(&payload(BIG, 3));
            fx.w.drain().await
        })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.start_peer_reading()
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            completed(got)?;
            let all = fx.close_and_collect().await?;
            fx.w.wait_closed().await?;
            // The write happened (it is synchronous): every byte arrives.
            ensure(all.len() == BIG, || {
                format!("the peer got {} of {BIG} bytes", all.len())
            })?;
            ensure(all == payload(BIG, 3), || "bytes reordered or corrupted".into())
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        ready(fx.end_peer(reset))
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        failed("a drain to a gone peer", out)
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            // A drain after close cannot deliver: it says so.
            let s = T::pair().await?;
            s.w.write(b"before close");
            s.w.close();
            s.w.write(b"after close");
            failed("a drain after close (the data cannot be delivered)", s.w.drain().await)
        })
    }
}

/// The TLS handshake (client side): dropped or cancelled, it leaks no
/// socket; against a peer that resets, a clear error.
pub struct Handshake;

pub struct HandshakeFx {
    port: u16,
    server: Rc<RefCell<Vec<aio_core::Task<()>>>>,
    _l: Rc<TcpListener>,
}

impl Case for Handshake {
    type Fx = HandshakeFx;
    type Out = io::Result<(StreamReader, StreamWriter)>;
    const NAME: &'static str = "tls handshake";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerResets).and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let l = Rc::new(TcpListener::bind("127.0.0.1:0").await?);
            let port = l.local_addr()?.port();
            let server: Rc<RefCell<Vec<aio_core::Task<()>>>> = Rc::default();
            // The server answers only when fed (its accepts wait).
            Ok(HandshakeFx { port, server, _l: l })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let port = fx.port;
        Box::pin(async move {
            let (connector, _) = tls_ends();
            aio_net::open_connection_tls("localhost", port, &connector).await
        })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let l = fx._l.clone();
            let t = create_task(async move {
                let (_, acceptor) = tls_ends();
                // Serves every connection that came (a dropped client's
                // too): each handshake completes or fails, then closes.
                while let Ok((s, _)) = l.accept().await {
                    let (r, w) = s.into_streams();
                    match start_tls_server(r, w, &acceptor).await {
                        // Cancelled mid-handshake: stop (dropping the
                        // cancellation would handle it, and the next
                        // accept would wait forever).
                        Err(e) if crate::harness::is_cancel(&e) => break,
                        _ => {}
                    }
                }
            });
            fx.server.borrow_mut().push(t);
            Ok(())
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some((r, w)) = completed(got)? {
                w.close();
                drop(r);
            }
            for t in fx.server.borrow_mut().drain(..) {
                t.cancel();
            }
            Ok(())
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, _reset: bool) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let (s, _) = fx._l.accept().await?;
            s.set_linger(Some(std::time::Duration::ZERO))?;
            drop(s);
            Ok(())
        })
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        failed("a handshake with a peer that reset", out)
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            // A peer that speaks plain text.
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let port = l.local_addr()?.port();
            let srv = create_task(async move {
                if let Ok((s, _)) = l.accept().await {
                    let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n".to_vec()).await;
                }
            });
            let (connector, _) = tls_ends();
            let r = aio_net::open_connection_tls("localhost", port, &connector).await;
            let _ = srv.await;
            failed("a handshake with a plain-text peer", r)
        })
    }
}

/// `sendfile` over a connection whose peer does not read yet: the peer
/// gets a prefix of the file, all of it when the call completed.
pub struct Sendfile;

pub struct SendfileFx {
    s: Rc<StreamFx>,
    file: std::fs::File,
    _dir: aio_test::Dir,
}

const FILE: usize = 12 << 20;

impl Case for Sendfile {
    type Fx = SendfileFx;
    type Out = io::Result<u64>;
    const NAME: &'static str = "sendfile";
    const ENDINGS: Endings = Endings::ALL;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let dir = crate::net::fresh_dir("sendfile");
            let p = dir.join("file");
            std::fs::write(&p, payload(FILE, 4))?;
            Ok(SendfileFx {
                s: Rc::new(StreamFx::new(Plain::pair().await?)),
                file: std::fs::File::open(&p)?,
                _dir: dir,
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move { fx.s.w.sendfile(&fx.file, 0, None).await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.s.start_peer_reading()
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let done = match completed(got)? {
                Some(n) => {
                    ensure(n == FILE as u64, || format!("sendfile said {n} of {FILE}"))?;
                    true
                }
                None => false,
            };
            let all = fx.s.close_and_collect().await?;
            a_prefix(&all, &payload(FILE, 4), done)
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        ready(fx.s.end_peer(reset))
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        failed("sendfile to a gone peer", out)
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let dir = crate::net::fresh_dir("sendfile-bad");
            let p = dir.join("file");
            std::fs::write(&p, b"0123456789")?;
            let f = std::fs::File::open(&p)?;
            let s = Plain::pair().await?;
            // An offset no file has.
            match s.w.sendfile(&f, u64::MAX, None).await {
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
                Ok(0) => {} // past the end: nothing to send
                r => return Err(io::Error::other(format!("sendfile at u64::MAX: {r:?}"))),
            }
            // A directory is not a file to send.
            let d = std::fs::File::open(dir.path())?;
            failed("sendfile of a directory", s.w.sendfile(&d, 0, Some(10)).await)
        })
    }
}

/// A failure as an `io::Error` (by its text).
fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub struct ServerFx {
    server: aio_net::Server,
    addr: std::net::SocketAddr,
}

/// asyncio's `serve_forever`: it returns when the server is closed; a
/// cancellation (or a timeout) closes the server, as in asyncio; a dropped
/// one leaves it serving, and another `serve_forever` may then run. Either
/// way, once closed the port refuses connections and a `serve_forever`
/// fails ("is closed"). Bad input: `serve_forever` on a closed server, and
/// a second one while the first runs.
pub struct ServeForever;

impl ServeForever {
    async fn start() -> io::Result<aio_net::Server> {
        aio_net::start_server(|_r: StreamReader, _w: StreamWriter| async {}, "127.0.0.1", 0).await
    }
}

impl Case for ServeForever {
    type Fx = ServerFx;
    type Out = io::Result<()>;
    const NAME: &'static str = "serve_forever";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let server = ServeForever::start().await?;
            let addr = server.sockets()[0];
            Ok(ServerFx { server, addr })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let server = fx.server.clone();
        Box::pin(async move { server.serve_forever().await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.server.close();
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let server = &fx.server;
            match got {
                Some(Ok(())) => ensure(!server.is_serving(), || "returned while serving".into())?,
                // Cancelled (it closes the server), or started after the
                // close (it refuses a closed server).
                Some(Err(e)) => {
                    let refused = e.to_string().contains("is closed");
                    ensure(e.kind() == io::ErrorKind::Interrupted || refused, || {
                        format!("serve_forever: {e}")
                    })?;
                    ensure(!server.is_serving(), || "it ended with the server serving".into())?;
                }
                None => {}
            }
            if server.is_serving() {
                // Dropped: nothing was closed, and another may serve.
                let s = server.clone();
                let again = create_task(async move { s.serve_forever().await });
                aio_test::settle(1).await;
                server.close();
                aio_core::timeout(10.0, again).await.map_err(err)?.map_err(err)??;
            }
            let e = server
                .serve_forever()
                .await
                .expect_err("serve_forever on a closed server");
            ensure(e.to_string().contains("is closed"), || {
                format!("on a closed server: {e}")
            })?;
            ensure(aio_net::TcpStream::connect(fx.addr).await.is_err(), || {
                "the closed server's port still accepts".into()
            })?;
            aio_core::timeout(10.0, server.wait_closed())
                .await
                .map_err(err)?
                .map_err(err)
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let server = ServeForever::start().await?;
            let s = server.clone();
            let first = create_task(async move { s.serve_forever().await });
            aio_test::settle(1).await;
            let second = server.serve_forever().await;
            ensure(
                second
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("already being awaited")),
                || format!("a second serve_forever: {second:?}"),
            )?;
            server.close();
            aio_core::timeout(10.0, first).await.map_err(err)?.map_err(err)??;
            let closed = server.serve_forever().await;
            ensure(
                closed.as_ref().is_err_and(|e| e.to_string().contains("is closed")),
                || format!("serve_forever on a closed server: {closed:?}"),
            )
        })
    }
}

pub struct WaitClosedFx {
    server: aio_net::Server,
    /// The writer the handler kept: the connection stays open until it
    /// is closed.
    kept: Rc<RefCell<Vec<StreamWriter>>>,
    client: RefCell<StreamReader>,
    _client_w: StreamWriter,
}

/// asyncio 3.12.1's `Server.wait_closed` on a closed server with one
/// connection open (its handler returned, keeping its writer): it waits
/// for the connection, not the handler, and returns once that writer is
/// closed. Dropped, timed out or cancelled, it leaves the server as it
/// was: a later `wait_closed` still waits, then returns on the close.
pub struct WaitClosed;

impl Case for WaitClosed {
    type Fx = WaitClosedFx;
    type Out = aio_core::Result<()>;
    const NAME: &'static str = "server_wait_closed";

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let kept: Rc<RefCell<Vec<StreamWriter>>> = Rc::default();
            let k = kept.clone();
            let server = aio_net::start_server(
                move |_r: StreamReader, w: StreamWriter| {
                    let k = k.clone();
                    async move {
                        w.write(b"hi\n");
                        k.borrow_mut().push(w);
                    }
                },
                "127.0.0.1",
                0,
            )
            .await?;
            let addr = server.sockets()[0];
            let (mut client, client_w) = aio_net::open_connection("127.0.0.1", addr.port()).await?;
            let hi = client.readline().await.map_err(err)?;
            ensure(hi == b"hi\n", || format!("greeting {hi:?}"))?;
            server.close();
            Ok(WaitClosedFx {
                server,
                kept,
                client: RefCell::new(client),
                _client_w: client_w,
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let server = fx.server.clone();
        Box::pin(async move { server.wait_closed().await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        for w in fx.kept.borrow().iter() {
            w.close();
        }
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let open = fx.kept.borrow().iter().any(|w| !w.is_closing());
            // (Cancelled is the only way it fails.)
            if let Some(Ok(())) = got {
                ensure(!open, || "returned with the connection open".into())?;
            }
            if open {
                // Ended early: the server still waits for the connection.
                let s = fx.server.clone();
                let again = create_task(async move { s.wait_closed().await });
                aio_test::settle(2).await;
                ensure(!again.done(), || {
                    "a later wait_closed returned with the connection open".into()
                })?;
                Self::feed(fx).await?;
                aio_core::timeout(10.0, again)
                    .await
                    .map_err(err)?
                    .map_err(err)?
                    .map_err(err)?;
            }
            // The client saw the close: its greeting, then EOF.
            let rest = fx.client.borrow_mut().read(-1).await.map_err(err)?;
            ensure(rest.is_empty(), || format!("after the close: {rest:?}"))?;
            aio_core::timeout(10.0, fx.server.wait_closed())
                .await
                .map_err(err)?
                .map_err(err)
        })
    }
}
