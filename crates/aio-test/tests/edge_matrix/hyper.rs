//! An HTTP/1.1 request through `aio_hyper::Client` to a server run by
//! `Builder::serve_graceful`, whose handler answers only when the row lets
//! it, with the peer address its `ConnInfo` gives. The client reaches the
//! server through a relay, which can reset the client's connection as a
//! server (or a middlebox) that dies mid-request would.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use aio_core::{Task, create_task};
use aio_hyper::hyper::body::Incoming;
use aio_hyper::hyper::service::service_fn;
use aio_hyper::hyper::{Request, Response, Uri};
use aio_hyper::{BodyExt, Builder, Bytes, Client, ConnInfo, Empty, Full, GracefulShutdown};
use aio_net::{TcpListener, TcpStream};
use aio_sync::Event;

use crate::harness::{Case, Endings, Local, ensure};

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub struct HyperFx {
    client: RefCell<Option<Client<Empty<Bytes>>>>,
    uri: Uri,
    /// Opened by `feed`: the handler answers.
    gate: Arc<Event>,
    /// Set by the handler once a request reached it.
    entered: Arc<Event>,
    shutdown: GracefulShutdown,
    server: RefCell<Option<Task<io::Result<()>>>>,
    relay: Relay,
}

/// Relays each connection to the server; keeps the client's side of each,
/// and its copying tasks, so the row's peer can reset them.
struct Relay {
    accept: Task<io::Result<()>>,
    conns: Rc<RefCell<Vec<RelayedConn>>>,
}

struct RelayedConn {
    client_side: Rc<TcpStream>,
    copies: [Task<io::Result<()>>; 2],
}

impl Relay {
    async fn start(upstream: SocketAddr) -> io::Result<(Relay, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let conns: Rc<RefCell<Vec<RelayedConn>>> = Rc::default();
        let c = conns.clone();
        let accept = create_task(async move {
            loop {
                let (down, _) = listener.accept().await?;
                let (down, up) = (Rc::new(down), Rc::new(TcpStream::connect(upstream).await?));
                let copies = [
                    create_task(copy(down.clone(), up.clone())),
                    create_task(copy(up, down.clone())),
                ];
                c.borrow_mut().push(RelayedConn {
                    client_side: down,
                    copies,
                });
            }
        });
        Ok((Relay { accept, conns }, addr))
    }

    /// Resets the client's side of every connection (`SO_LINGER` 0, then
    /// close) and closes the server's side.
    fn reset_all(&self) -> io::Result<()> {
        for conn in self.conns.borrow_mut().drain(..) {
            conn.client_side.set_linger(Some(Duration::ZERO))?;
            for t in &conn.copies {
                t.cancel();
            }
        }
        Ok(())
    }

    /// Stops relaying; every relayed socket closes once its copies end.
    fn stop(&self) {
        self.accept.cancel();
        for conn in self.conns.borrow_mut().drain(..) {
            for t in &conn.copies {
                t.cancel();
            }
        }
    }
}

/// Copies `from` to `to` until EOF, which it passes on as a shutdown.
async fn copy(from: Rc<TcpStream>, to: Rc<TcpStream>) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 << 10);
    loop {
        // A read fills the vector up to its capacity and sets its length.
        let (n, b) = from.read(buf).await;
        if n? == 0 {
            return to.shutdown(Shutdown::Write).await;
        }
        let (r, mut b) = to.write_all(b).await;
        r?;
        b.clear();
        buf = b;
    }
}

impl HyperFx {
    fn client(&self) -> Client<Empty<Bytes>> {
        self.client
            .borrow()
            .clone()
            .expect("the client lives as long as the fixture")
    }
}

impl Drop for HyperFx {
    fn drop(&mut self) {
        // A cell that failed half-way: nothing outlives the fixture.
        if let Some(t) = self.server.borrow_mut().take() {
            t.cancel();
        }
        self.relay.stop();
        self.shutdown.shutdown();
    }
}

/// `GET /` and its body: the client's address as the server's `ConnInfo`
/// saw it.
async fn get(client: Client<Empty<Bytes>>, uri: Uri) -> io::Result<String> {
    let res = client.get(uri).await.map_err(io::Error::from)?;
    let body = res.into_body().collect().await.map_err(err)?.to_bytes();
    String::from_utf8(body.to_vec()).map_err(err)
}

/// A body that names a loopback peer (the server's `ConnInfo`).
fn check_body(body: &str) -> io::Result<()> {
    let peer: SocketAddr = body.parse().map_err(|e| err(format!("the body {body:?}: {e}")))?;
    ensure(peer.ip().is_loopback() && peer.port() != 0, || {
        format!("ConnInfo gave the peer as {peer}")
    })
}

/// A request in flight (sent, its handler waiting) ends every way; the
/// client and the server stay usable, a graceful shutdown lets the
/// response in progress finish, and every connection closes.
pub struct HyperRequest;

impl Case for HyperRequest {
    type Fx = HyperFx;
    type Out = io::Result<String>;
    const NAME: &'static str = "hyper request";
    const ENDINGS: Endings = Endings::WAITING
        .and(crate::harness::Ending::PeerCloses)
        .and(crate::harness::Ending::PeerResets);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let (relay, relay_addr) = Relay::start(listener.local_addr()?).await?;
            let uri: Uri = format!("http://{relay_addr}/").parse().map_err(err)?;
            let gate = Arc::new(Event::new());
            let entered = Arc::new(Event::new());
            let shutdown = GracefulShutdown::new();
            let (g, e, s) = (gate.clone(), entered.clone(), shutdown.clone());
            let server = create_task(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let (gate, entered) = (g.clone(), e.clone());
                    async move {
                        entered.set();
                        let peer = req.extensions().get::<ConnInfo>().map(|i| i.remote_addr.to_string());
                        let _ = gate.wait().await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(peer.unwrap_or_default()))))
                    }
                });
                Builder::new().serve_graceful(&listener, service, &s).await
            });
            Ok(HyperFx {
                client: RefCell::new(Some(Client::new())),
                uri,
                gate,
                entered,
                shutdown,
                server: RefCell::new(Some(server)),
                relay,
            })
        })
    }

    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        Box::pin(get(fx.client(), fx.uri.clone()))
    }

    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.gate.set();
        crate::harness::ready(Ok(()))
    }

    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            match got {
                Some(Ok(body)) => check_body(&body)?,
                Some(Err(e)) if crate::harness::is_cancel(&e) => {}
                Some(Err(e)) => return Err(e),
                None => {}
            }
            // Whatever happened to the request, the same client gets an
            // answer from the same server.
            check_body(&get(fx.client(), fx.uri.clone()).await?)?;
            // A graceful shutdown closes every connection, idle ones too,
            // and ends the server.
            fx.shutdown.shutdown();
            fx.shutdown.wait().await.map_err(err)?;
            drop(fx.client.borrow_mut().take());
            let server = fx.server.borrow_mut().take();
            match server {
                Some(t) => t.await.map_err(err)?,
                None => Ok(()),
            }
        })
    }

    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            fx.entered.wait().await.map_err(err)?;
            if reset {
                // The connection dies mid-request; the handler, let go
                // afterwards, answers into a closed connection.
                fx.relay.reset_all()?;
                aio_test::settle(3).await;
                fx.gate.set();
                return Ok(());
            }
            // The shutdown starts while the handler waits; the response in
            // progress still goes out.
            fx.shutdown.shutdown();
            aio_test::settle(3).await;
            fx.gate.set();
            Ok(())
        })
    }

    fn check_peer_end(out: Self::Out, reset: bool) -> io::Result<()> {
        if !reset {
            return check_body(&out?);
        }
        // The request fails, saying why.
        match out {
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            other => Err(err(format!("a request whose connection was reset gave {other:?}"))),
        }
    }
}
