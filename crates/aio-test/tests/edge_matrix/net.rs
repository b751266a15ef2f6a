//! Sockets: TCP and Unix stream receive, send, accept, connect; UDP and
//! Unix datagram receive and send.

use std::cell::RefCell;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use aio_core::{create_task, timeout};
use aio_net::{
    Duplex, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use aio_test::{Dir, payload};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use crate::harness::{
    Case, Ending, Endings, Local, a_prefix, completed, ensure, invalid_input, ready, received, unless_cancelled,
};

const FED: usize = 100_000;

/// Reads from `s` until `want` bytes came (or EOF), appended to `got`.
async fn read_to(
    read: impl Fn(Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)>,
    got: &mut Vec<u8>,
    want: usize,
) -> io::Result<()> {
    while got.len() < want {
        let (n, buf) = match timeout(10.0, read(Vec::with_capacity(64 * 1024))).await {
            Ok(r) => r,
            Err(_) => return Err(io::Error::other(format!("only {} of {want} bytes came", got.len()))),
        };
        if n? == 0 {
            break;
        }
        got.extend_from_slice(&buf);
    }
    Ok(())
}

/// A connected pair of stream sockets of one family.
pub trait StreamKind: Sized + 'static {
    /// A receive into a buffer with no room is `InvalidInput` (aio's own
    /// calls); the futures-io and tokio traits define it as `Ok(0)`.
    const NO_ROOM_IS_INVALID: bool = true;
    fn pair() -> Local<'static, io::Result<(Self, Self)>>;
    fn read(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)>;
    fn write_all(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, io::Result<()>>;
    fn shutdown_write(s: &Self) -> Local<'_, io::Result<()>>;
    /// Makes closing `s` send a reset (`SO_LINGER` 0).
    fn linger_zero(s: &Self) -> io::Result<()>;
}

/// The calls both stream families spell the same way.
macro_rules! stream_calls {
    () => {
        fn read(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)> {
            let s = s.clone();
            Box::pin(async move { s.read(buf).await })
        }
        fn write_all(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, io::Result<()>> {
            let s = s.clone();
            Box::pin(async move { s.write_all(buf).await.0 })
        }
        fn shutdown_write(s: &Self) -> Local<'_, io::Result<()>> {
            Box::pin(s.shutdown(Shutdown::Write))
        }
    };
}

impl StreamKind for TcpStream {
    fn pair() -> Local<'static, io::Result<(Self, Self)>> {
        Box::pin(async {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let c = TcpStream::connect(l.local_addr()?).await?;
            let (s, _) = l.accept().await?;
            Ok((c, s))
        })
    }
    stream_calls!();
    fn linger_zero(s: &Self) -> io::Result<()> {
        s.set_linger(Some(Duration::ZERO))
    }
}

impl StreamKind for UnixStream {
    fn pair() -> Local<'static, io::Result<(Self, Self)>> {
        Box::pin(async { UnixStream::pair() })
    }
    stream_calls!();
    fn linger_zero(_: &Self) -> io::Result<()> {
        Ok(()) // Unix sockets have no reset: a close is all the peer sees.
    }
}

/// A TCP stream used the way crates that take a stream use it: split into
/// owned halves (`into_split`) and read and written through the
/// futures-io traits (tokio's run the same code). On io_uring that is the
/// adapter that tries each call on the caller's buffer and waits with a
/// ring poll; a call ended early leaves its wait with the half.
pub struct SplitTcp {
    r: RefCell<Option<OwnedReadHalf>>,
    w: RefCell<Option<OwnedWriteHalf>>,
    fd: RawFd,
}

impl SplitTcp {
    fn new(s: TcpStream) -> SplitTcp {
        let fd = s.as_raw_fd();
        let (r, w) = s.into_split();
        SplitTcp {
            r: RefCell::new(Some(r)),
            w: RefCell::new(Some(w)),
            fd,
        }
    }
}

/// A stream (or half) lent out of its slot for one call; it goes back when
/// the call ends, or is dropped mid-flight.
struct Lent<O: 'static, T: 'static> {
    owner: Rc<O>,
    slot: fn(&O) -> &RefCell<Option<T>>,
    half: Option<T>,
}

impl<O: 'static, T: 'static> Lent<O, T> {
    fn take(owner: &Rc<O>, slot: fn(&O) -> &RefCell<Option<T>>) -> io::Result<Lent<O, T>> {
        let half = slot(owner).borrow_mut().take();
        match half {
            Some(h) => Ok(Lent {
                owner: owner.clone(),
                slot,
                half: Some(h),
            }),
            None => Err(io::Error::other("that half is busy with another call")),
        }
    }
    fn half(&mut self) -> &mut T {
        self.half.as_mut().expect("lent until dropped")
    }
}

impl<O: 'static, T: 'static> Drop for Lent<O, T> {
    fn drop(&mut self) {
        *(self.slot)(&self.owner).borrow_mut() = self.half.take();
    }
}

/// A read through the futures-io trait on the stream in `slot` of `owner`,
/// lent for the call.
fn trait_read<O: 'static, T: futures_util::AsyncRead + Unpin + 'static>(
    owner: &Rc<O>,
    slot: fn(&O) -> &RefCell<Option<T>>,
    mut buf: Vec<u8>,
) -> Local<'static, (io::Result<usize>, Vec<u8>)> {
    let owner = owner.clone();
    Box::pin(async move {
        let mut s = match Lent::take(&owner, slot) {
            Ok(s) => s,
            Err(e) => return (Err(e), buf),
        };
        buf.resize(buf.capacity(), 0);
        let res = s.half().read(&mut buf).await;
        buf.truncate(*res.as_ref().unwrap_or(&0));
        (res, buf)
    })
}

/// `write_all` then `flush` through the futures-io trait on the stream in
/// `slot` of `owner`, lent for the call.
fn trait_write_all<O: 'static, T: futures_util::AsyncWrite + Unpin + 'static>(
    owner: &Rc<O>,
    slot: fn(&O) -> &RefCell<Option<T>>,
    buf: Vec<u8>,
) -> Local<'static, io::Result<()>> {
    let owner = owner.clone();
    Box::pin(async move {
        let mut s = Lent::take(&owner, slot)?;
        s.half().write_all(&buf).await?;
        s.half().flush().await
    })
}

/// Closes (shuts the sending side of) the stream in `slot`.
fn trait_close<T: futures_util::AsyncWrite + Unpin>(slot: &RefCell<Option<T>>) -> Local<'_, io::Result<()>> {
    Box::pin(async move {
        let mut w = slot
            .borrow_mut()
            .take()
            .ok_or_else(|| io::Error::other("the stream is busy"))?;
        let r = w.close().await;
        *slot.borrow_mut() = Some(w);
        r
    })
}

/// Resets on close: `SO_LINGER` 0 on the socket `fd`.
fn linger_zero_fd(fd: RawFd) -> io::Result<()> {
    // SAFETY: the caller's stream holds `fd` open for this call, which the
    // borrow does not outlast.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO))
}

impl StreamKind for SplitTcp {
    const NO_ROOM_IS_INVALID: bool = false;
    fn pair() -> Local<'static, io::Result<(Self, Self)>> {
        Box::pin(async {
            let (c, s) = <TcpStream as StreamKind>::pair().await?;
            Ok((SplitTcp::new(c), SplitTcp::new(s)))
        })
    }
    fn read(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)> {
        trait_read(s, |s| &s.r, buf)
    }
    fn write_all(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, io::Result<()>> {
        trait_write_all(s, |s| &s.w, buf)
    }
    fn shutdown_write(s: &Self) -> Local<'_, io::Result<()>> {
        trait_close(&s.w)
    }
    fn linger_zero(s: &Self) -> io::Result<()> {
        linger_zero_fd(s.fd)
    }
}

/// A TCP stream as an [`aio_net::Duplex`] (asyncio's reader and writer
/// joined into one stream, what a TLS connection is handed to crates as),
/// read and written through the futures-io traits: reads come from the
/// reader's buffer, writes go through the writer's flow control.
pub struct DuplexTcp {
    d: RefCell<Option<Duplex>>,
    fd: RawFd,
}

impl StreamKind for DuplexTcp {
    const NO_ROOM_IS_INVALID: bool = false;
    fn pair() -> Local<'static, io::Result<(Self, Self)>> {
        Box::pin(async {
            let (c, s) = <TcpStream as StreamKind>::pair().await?;
            let duplex = |t: TcpStream| DuplexTcp {
                fd: t.as_raw_fd(),
                d: RefCell::new(Some(Duplex::from(t))),
            };
            Ok((duplex(c), duplex(s)))
        })
    }
    fn read(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)> {
        trait_read(s, |s| &s.d, buf)
    }
    fn write_all(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, io::Result<()>> {
        trait_write_all(s, |s| &s.d, buf)
    }
    fn shutdown_write(s: &Self) -> Local<'_, io::Result<()>> {
        trait_close(&s.d)
    }
    fn linger_zero(s: &Self) -> io::Result<()> {
        linger_zero_fd(s.fd)
    }
}

pub struct StreamFx<S> {
    s: Rc<S>,
    peer: RefCell<Option<Rc<S>>>,
}

impl<S: StreamKind> StreamFx<S> {
    fn peer(&self) -> Rc<S> {
        self.peer.borrow().clone().expect("the peer is there")
    }
}

/// The peer goes: closes, or (`reset`) resets the connection.
fn end_peer<S: StreamKind>(peer: &RefCell<Option<Rc<S>>>, reset: bool) -> Local<'_, io::Result<()>> {
    let peer = peer.borrow_mut().take().expect("the peer is there");
    ready(if reset { S::linger_zero(&peer) } else { Ok(()) })
}

/// A receive on a stream socket: what a dropped receive got goes to the
/// next one, first and in order.
pub struct StreamRecv<S>(std::marker::PhantomData<S>);

impl<S: StreamKind> Case for StreamRecv<S> {
    type Fx = StreamFx<S>;
    type Out = (io::Result<usize>, Vec<u8>);
    const NAME: &'static str = "stream socket receive";
    const ENDINGS: Endings = if S::NO_ROOM_IS_INVALID {
        Endings::ALL
    } else {
        Endings::ALL.but(Ending::BadInput)
    };

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let (s, peer) = S::pair().await?;
            Ok(StreamFx {
                s: Rc::new(s),
                peer: RefCell::new(Some(Rc::new(peer))),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        S::read(&fx.s, Vec::with_capacity(64 * 1024))
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move { S::write_all(&fx.peer(), payload(FED, 1)).await })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let mut all = received(got)?;
            let s = fx.s.clone();
            read_to(move |b| S::read(&s, b), &mut all, FED).await?;
            ensure(all.len() == FED, || format!("{} of {FED} bytes received", all.len()))?;
            ensure(all == payload(FED, 1), || "bytes reordered or corrupted".into())
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        end_peer(&fx.peer, reset)
    }
    fn check_peer_end(out: Self::Out, reset: bool) -> io::Result<()> {
        match (out.0, reset) {
            (Ok(0), _) => Ok(()),
            (Err(e), true) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            (r, _) => Err(io::Error::other(format!("peer closed (reset: {reset}): got {r:?}"))),
        }
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let (s, _peer) = S::pair().await?;
            invalid_input("a receive into no room", S::read(&Rc::new(s), Vec::new()).await.0)
        })
    }
}

const BIG: usize = 16 << 20;

/// A send that waits for room (the peer does not read): the peer gets a
/// prefix of what was sent, all of it when the send completed.
pub struct StreamSend<S>(std::marker::PhantomData<S>);

pub struct SendFx<S> {
    s: Rc<S>,
    peer: RefCell<Option<Rc<S>>>,
    received: Rc<RefCell<Vec<u8>>>,
    reader: RefCell<Option<aio_core::Task<io::Result<()>>>>,
}

impl<S: StreamKind> Case for StreamSend<S> {
    type Fx = SendFx<S>;
    type Out = io::Result<()>;
    const NAME: &'static str = "stream socket send";
    const ENDINGS: Endings = Endings::ALL;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let (s, peer) = S::pair().await?;
            Ok(SendFx {
                s: Rc::new(s),
                peer: RefCell::new(Some(Rc::new(peer))),
                received: Rc::default(),
                reader: RefCell::new(None),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        S::write_all(&fx.s, payload(BIG, 2))
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let peer = fx.peer.borrow().clone().expect("the peer is there");
            let received = fx.received.clone();
            *fx.reader.borrow_mut() = Some(create_task(async move {
                loop {
                    let (n, buf) = S::read(&peer, Vec::with_capacity(256 * 1024)).await;
                    if n? == 0 {
                        return Ok(());
                    }
                    received.borrow_mut().extend_from_slice(&buf);
                }
            }));
            Ok(())
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let done = completed(got)?.is_some();
            S::shutdown_write(&fx.s).await?;
            let reader = fx.reader.borrow_mut().take().expect("fed");
            reader.await.map_err(|e| io::Error::other(e.to_string()))??;
            a_prefix(&fx.received.borrow(), &payload(BIG, 2), done)
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        end_peer(&fx.peer, reset)
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        match out {
            Err(e) if matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) => Ok(()),
            r => Err(io::Error::other(format!("a send to a gone peer: {r:?}"))),
        }
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            // A send after this side shut its writing down.
            let (s, _peer) = S::pair().await?;
            let s = Rc::new(s);
            S::shutdown_write(&s).await?;
            match S::write_all(&s, b"late".to_vec()).await {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                r => Err(io::Error::other(format!("a send after shutdown: {r:?}"))),
            }
        })
    }
}

/// A listening socket of one family.
pub trait ListenKind: Sized + 'static {
    type Conn: 'static;
    fn listen(dir: &Dir) -> io::Result<(Self, Target)>;
    fn accept(l: &Rc<Self>) -> Local<'static, io::Result<Self::Conn>>;
    fn connect(t: &Target) -> Local<'static, io::Result<Self::Conn>>;
}

#[derive(Clone)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

impl ListenKind for TcpListener {
    type Conn = TcpStream;
    fn listen(_: &Dir) -> io::Result<(Self, Target)> {
        let l = TcpListener::bind_addr("127.0.0.1:0".parse().unwrap(), 64, false)?;
        let a = l.local_addr()?;
        Ok((l, Target::Tcp(a)))
    }
    fn accept(l: &Rc<Self>) -> Local<'static, io::Result<TcpStream>> {
        let l = l.clone();
        Box::pin(async move { l.accept().await.map(|(s, _)| s) })
    }
    fn connect(t: &Target) -> Local<'static, io::Result<TcpStream>> {
        let Target::Tcp(a) = t.clone() else { unreachable!() };
        Box::pin(TcpStream::connect(a))
    }
}

impl ListenKind for UnixListener {
    type Conn = UnixStream;
    fn listen(dir: &Dir) -> io::Result<(Self, Target)> {
        let p = dir.join("sock");
        Ok((UnixListener::bind(&p)?, Target::Unix(p)))
    }
    fn accept(l: &Rc<Self>) -> Local<'static, io::Result<UnixStream>> {
        let l = l.clone();
        Box::pin(async move { l.accept().await.map(|(s, _)| s) })
    }
    fn connect(t: &Target) -> Local<'static, io::Result<UnixStream>> {
        let Target::Unix(p) = t.clone() else { unreachable!() };
        Box::pin(UnixStream::connect(p))
    }
}

pub struct ListenFx<L: ListenKind> {
    l: Rc<L>,
    target: Target,
    clients: RefCell<Vec<L::Conn>>,
    _dir: Dir,
}

pub fn fresh_dir(what: &str) -> Dir {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    Dir::new(&format!("matrix-{what}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

/// An accept: a connection a dropped accept took goes to the next one.
pub struct Accept<L>(std::marker::PhantomData<L>);

impl<L: ListenKind> Case for Accept<L> {
    type Fx = ListenFx<L>;
    type Out = io::Result<L::Conn>;
    const NAME: &'static str = "accept";

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let dir = fresh_dir("accept");
            let (l, target) = L::listen(&dir)?;
            Ok(ListenFx {
                l: Rc::new(l),
                target,
                clients: RefCell::default(),
                _dir: dir,
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        L::accept(&fx.l)
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let c = L::connect(&fx.target).await?;
            fx.clients.borrow_mut().push(c);
            Ok(())
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            match completed(got)? {
                Some(c) => drop(c),
                None => match timeout(10.0, L::accept(&fx.l)).await {
                    Ok(c) => drop(c?),
                    Err(_) => return Err(io::Error::other("the connection a dropped accept took was lost")),
                },
            }
            Ok(())
        })
    }
}

/// A connect: dropped, timed out or cancelled, it leaks no socket.
pub struct Connect<L>(std::marker::PhantomData<L>);

impl<L: ListenKind> Case for Connect<L> {
    type Fx = ListenFx<L>;
    type Out = io::Result<L::Conn>;
    const NAME: &'static str = "connect";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerResets);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        <Accept<L> as Case>::setup()
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        L::connect(&fx.target)
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some(c) = completed(got)? {
                // The listener has it.
                let s = timeout(10.0, L::accept(&fx.l))
                    .await
                    .map_err(|_| io::Error::other("a connection that completed never reached the listener"))??;
                drop((c, s));
            }
            Ok(())
        })
    }
    fn peer_end(_: &Rc<Self::Fx>, _reset: bool) -> Local<'_, io::Result<()>> {
        // Nothing listens any more: the connect is refused. (It ran
        // already, against the listener, in the harness's task: this
        // starts a second one after the listener is gone.)
        Box::pin(async move {
            let dir = fresh_dir("refused");
            let (l, target) = L::listen(&dir)?;
            drop(l);
            match L::connect(&target).await {
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => Ok(()),
                Err(e) => Err(io::Error::other(format!("a connect to nobody: {e}"))),
                Ok(_) => Err(io::Error::other("a connect to nobody succeeded")),
            }
        })
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        drop(out);
        Ok(())
    }
}

/// A datagram socket pair.
pub trait DgramKind: Sized + 'static {
    fn pair() -> io::Result<(Self, Self)>;
    fn recv(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)>;
    fn send(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)>;
}

/// `send`, spelled the same by both datagram families.
macro_rules! dgram_send {
    () => {
        fn send(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)> {
            let s = s.clone();
            Box::pin(async move { s.send(buf).await })
        }
    };
}

impl DgramKind for UdpSocket {
    fn pair() -> io::Result<(Self, Self)> {
        let a = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap())?;
        let b = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap())?;
        let (aa, ba) = (a.local_addr()?, b.local_addr()?);
        let (a, b) = (a.into_std(), b.into_std());
        a.connect(ba)?;
        b.connect(aa)?;
        Ok((UdpSocket::from_std(a)?, UdpSocket::from_std(b)?))
    }
    fn recv(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)> {
        let s = s.clone();
        Box::pin(async move {
            let (r, b) = s.recv_from(buf).await;
            (r.map(|(n, _)| n), b)
        })
    }
    dgram_send!();
}

impl DgramKind for UnixDatagram {
    fn pair() -> io::Result<(Self, Self)> {
        UnixDatagram::pair()
    }
    fn recv(s: &Rc<Self>, buf: Vec<u8>) -> Local<'static, (io::Result<usize>, Vec<u8>)> {
        let s = s.clone();
        Box::pin(async move { s.recv(buf).await })
    }
    dgram_send!();
}

pub struct DgramFx<D> {
    a: Rc<D>,
    b: Rc<D>,
}

fn datagram(i: u64) -> Vec<u8> {
    payload(100 + i as usize * 37, i)
}

/// A datagram receive: datagrams a dropped receive took go to the next
/// ones, whole and in order.
pub struct DgramRecv<D>(std::marker::PhantomData<D>);

impl<D: DgramKind> Case for DgramRecv<D> {
    type Fx = DgramFx<D>;
    type Out = (io::Result<usize>, Vec<u8>);
    const NAME: &'static str = "datagram receive";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let (a, b) = D::pair()?;
            Ok(DgramFx {
                a: Rc::new(a),
                b: Rc::new(b),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        D::recv(&fx.a, Vec::with_capacity(2048))
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            for i in 0..3 {
                D::send(&fx.b, datagram(i)).await.0?;
            }
            Ok(())
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let mut all = Vec::new();
            if let Some((n, buf)) = got {
                if unless_cancelled(n)?.is_some() {
                    all.push(buf);
                }
            }
            while all.len() < 3 {
                let (n, buf) = timeout(10.0, D::recv(&fx.a, Vec::with_capacity(2048)))
                    .await
                    .map_err(|_| io::Error::other(format!("{} of 3 datagrams came", all.len())))?;
                n?;
                all.push(buf);
            }
            for (i, d) in all.iter().enumerate() {
                ensure(*d == datagram(i as u64), || {
                    format!("datagram {i} lost, cut or out of order")
                })?;
            }
            Ok(())
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let (a, _b) = D::pair()?;
            invalid_input("a receive into no room", D::recv(&Rc::new(a), Vec::new()).await.0)
        })
    }
}

/// A datagram send: completes at once; dropped, the datagram went whole
/// or not at all.
pub struct DgramSend<D>(std::marker::PhantomData<D>);

impl<D: DgramKind> Case for DgramSend<D> {
    type Fx = DgramFx<D>;
    type Out = (io::Result<usize>, Vec<u8>);
    const NAME: &'static str = "datagram send";
    const ENDINGS: Endings = Endings::WAITING.but(Ending::Dropped).and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        <DgramRecv<D> as Case>::setup()
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        D::send(&fx.a, datagram(5))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let sent = match got {
                Some((n, _)) => unless_cancelled(n)?,
                None => None,
            };
            // A marker after it: whatever came before the marker is the
            // datagram, whole.
            D::send(&fx.a, b"marker".to_vec()).await.0?;
            let mut seen = Vec::new();
            loop {
                let (n, buf) = timeout(10.0, D::recv(&fx.b, Vec::with_capacity(2048)))
                    .await
                    .map_err(|_| io::Error::other("the marker never came"))?;
                n?;
                if buf == b"marker" {
                    break;
                }
                seen.push(buf);
            }
            ensure(seen.iter().all(|d| *d == datagram(5)) && seen.len() <= 1, || {
                "a datagram arrived cut, twice or wrong".into()
            })?;
            ensure(sent.is_none() || seen.len() == 1, || {
                "a datagram that was sent never came".into()
            })
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let (a, _b) = D::pair()?;
            // Larger than any datagram can be.
            match D::send(&Rc::new(a), vec![0u8; 300_000]).await.0 {
                Err(_) => Ok(()),
                Ok(n) => Err(io::Error::other(format!("a 300 kB datagram was sent ({n})"))),
            }
        })
    }
}
