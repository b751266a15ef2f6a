//! The crates that take a stream, on aio (poll and uring backends) beside
//! tokio's current-thread runtime, client and server on one thread each:
//!
//! - `postgres_16tasks/<runtime>`: tokio-postgres, 16 tasks sharing one
//!   connection (`connect_raw` on the runtime's socket), 64 prepared
//!   queries each, against a throwaway PostgreSQL (skipped when none is
//!   installed);
//! - `websocket_echo/<runtime>`: tokio-tungstenite, 64-byte text messages
//!   echoed one at a time (`client_async`/`accept_async`);
//! - `tonic_unary/<runtime>`: aio-ecosystem's hand-written `aio.Echo`
//!   service, 16 tasks of 16 unary calls on one HTTP/2 connection: served
//!   by `aio::hyper::serve` on aio and hyper-util's server on tokio, called
//!   by tonic's client over hyper's bare HTTP/2 connection on both;
//! - `tonic_unary_client/<aio backend>`: the same calls through
//!   `aio::hyper::Client` (aio-ecosystem's `EchoClient`).
//!
//! Throughput is operations per second. Setup (connections, handshakes)
//! happens before each sample's clock starts.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aio::hyper::TowerToHyperService;
use aio_ecosystem::grpc::{EchoClient, EchoReply, EchoRequest, EchoServer, ProstCodec, SAY};
use aio_ecosystem::servers::Postgres;
use common::{group, tokio_ct};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const RUNTIMES: [&str; 3] = ["aio-poll", "aio-uring", "tokio-ct"];

/// A runner on `name`'s backend, or `None` where it cannot run.
fn aio_runner(name: &str) -> Option<aio::Runner> {
    let backend = if name == "aio-poll" {
        aio::Backend::Poll
    } else {
        aio::Backend::Uring
    };
    match aio::Builder::new().backend(backend).build() {
        Ok(lp) => Some(aio::Runner::with_loop(lp)),
        Err(e) => {
            eprintln!("{name} unavailable: {e}");
            None
        }
    }
}

/// Benchmarks `workload` on each runtime: `aio(iters)` and `tokio(iters)`
/// return the time `iters` rounds took.
fn each_runtime<A, T>(c: &mut Criterion, name: &str, elements: u64, aio: impl Fn(u64) -> A, tokio: impl Fn(u64) -> T)
where
    A: Future<Output = Duration> + 'static,
    T: Future<Output = Duration>,
{
    let mut g = group(c, name, elements, 10);
    for rt in RUNTIMES {
        if rt == "tokio-ct" {
            let r = tokio_ct();
            g.bench_function(rt, |b| b.iter_custom(|iters| r.block_on(tokio(iters))));
        } else if let Some(runner) = aio_runner(rt) {
            g.bench_function(rt, |b| b.iter_custom(|iters| runner.run(aio(iters))));
        }
    }
    g.finish();
}

const PG_TASKS: u64 = 16;
const PG_QUERIES: u64 = 64;

fn postgres(c: &mut Criterion) {
    let Some(pg) = Postgres::start() else { return };
    let pg = &pg;
    each_runtime(
        c,
        "postgres_16tasks",
        PG_TASKS * PG_QUERIES,
        |iters| {
            let (addr, config) = (pg.addr(), pg.config());
            async move {
                let tcp = aio::TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let (client, conn) = config.connect_raw(tcp, tokio_postgres::NoTls).await.unwrap();
                let conn = aio::create_task(conn);
                let client = Rc::new(client);
                let stmt = client.prepare("SELECT $1::int").await.unwrap();
                let t = Instant::now();
                for _ in 0..iters {
                    let tasks: Vec<_> = (0..PG_TASKS)
                        .map(|i| {
                            let (client, stmt) = (client.clone(), stmt.clone());
                            aio::create_task(async move {
                                for j in 0..PG_QUERIES {
                                    let v = (i * PG_QUERIES + j) as i32;
                                    let got: i32 = client.query_one(&stmt, &[&v]).await.unwrap().get(0);
                                    assert_eq!(got, v);
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                let took = t.elapsed();
                drop((client, stmt));
                let _ = conn.await;
                took
            }
        },
        |iters| {
            let (addr, config) = (pg.addr(), pg.config());
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let (client, conn) = config.connect_raw(tcp, tokio_postgres::NoTls).await.unwrap();
                let conn = tokio::spawn(conn);
                let client = Arc::new(client);
                let stmt = client.prepare("SELECT $1::int").await.unwrap();
                let t = Instant::now();
                for _ in 0..iters {
                    let tasks: Vec<_> = (0..PG_TASKS)
                        .map(|i| {
                            let (client, stmt) = (client.clone(), stmt.clone());
                            tokio::spawn(async move {
                                for j in 0..PG_QUERIES {
                                    let v = (i * PG_QUERIES + j) as i32;
                                    let got: i32 = client.query_one(&stmt, &[&v]).await.unwrap().get(0);
                                    assert_eq!(got, v);
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                let took = t.elapsed();
                drop((client, stmt));
                let _ = conn.await;
                took
            }
        },
    );
}

const WS_MESSAGES: u64 = 256;

/// Echoes messages until the peer closes.
async fn ws_echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: S) {
    let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
    while let Some(Ok(m)) = ws.next().await {
        if m.is_text() && ws.send(m).await.is_err() {
            break;
        }
    }
}

/// `iters` rounds of `WS_MESSAGES` one-at-a-time echoes; then closes.
async fn ws_talk<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: S, iters: u64) -> Duration {
    let (mut ws, _) = tokio_tungstenite::client_async("ws://localhost/", s).await.unwrap();
    let msg = "x".repeat(64);
    let t = Instant::now();
    for _ in 0..iters * WS_MESSAGES {
        ws.send(Message::text(msg.clone())).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.len(), 64);
    }
    let took = t.elapsed();
    ws.close(None).await.unwrap();
    took
}

fn websocket(c: &mut Criterion) {
    each_runtime(
        c,
        "websocket_echo",
        WS_MESSAGES,
        |iters| async move {
            let l = aio::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = aio::create_task(async move {
                let (s, _) = l.accept().await.unwrap();
                s.set_nodelay(true).unwrap();
                ws_echo(s).await;
            });
            let s = aio::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let took = ws_talk(s, iters).await;
            server.await.unwrap();
            took
        },
        |iters| async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (s, _) = l.accept().await.unwrap();
                s.set_nodelay(true).unwrap();
                ws_echo(s).await;
            });
            let s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let took = ws_talk(s, iters).await;
            server.await.unwrap();
            took
        },
    );
}

const GRPC_TASKS: u64 = 16;
const GRPC_CALLS: u64 = 16;

/// hyper's HTTP/2 connection as the tower service tonic's client takes
/// (tokio's side of the tonic bench).
#[derive(Clone)]
struct H2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

type H2Future = Pin<Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = H2Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> H2Future {
        Box::pin(self.0.send_request(req))
    }
}

fn tonic_unary(c: &mut Criterion) {
    each_runtime(
        c,
        "tonic_unary",
        GRPC_TASKS * GRPC_CALLS,
        |iters| async move {
            let l = aio::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server =
                aio::create_task(async move { aio::hyper::serve(&l, TowerToHyperService::new(EchoServer)).await });
            // hyper's bare HTTP/2 connection, as on tokio's side below
            // (`tonic_unary_client` measures aio::hyper::Client).
            let s = aio::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let (send, conn) = hyper::client::conn::http2::Builder::new(aio::hyper::LocalExecutor)
                .timer(aio::hyper::AioTimer)
                .handshake(aio::hyper::Io::tcp(s))
                .await
                .unwrap();
            aio::create_task(conn);
            let origin: http::Uri = format!("http://{addr}").parse().unwrap();
            let grpc = tonic::client::Grpc::with_origin(H2(send), origin);
            let t = Instant::now();
            for _ in 0..iters {
                let tasks: Vec<_> = (0..GRPC_TASKS)
                    .map(|_| {
                        let mut grpc = grpc.clone();
                        aio::create_task(async move {
                            for _ in 0..GRPC_CALLS {
                                grpc.ready().await.unwrap();
                                let req = tonic::Request::new(EchoRequest {
                                    message: "hi".into(),
                                    count: 0,
                                });
                                let codec = ProstCodec::<EchoRequest, EchoReply>::default();
                                let path = http::uri::PathAndQuery::from_static(SAY);
                                let reply = grpc.unary(req, path, codec).await.unwrap().into_inner();
                                assert_eq!(reply.message, "HI");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            }
            let took = t.elapsed();
            server.cancel();
            took
        },
        |iters| async move {
            use hyper_util::rt::{TokioExecutor, TokioIo};
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    s.set_nodelay(true).unwrap();
                    tokio::spawn(async move {
                        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        let _ = builder
                            .serve_connection(TokioIo::new(s), TowerToHyperService::new(EchoServer))
                            .await;
                    });
                }
            });
            let s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                .await
                .unwrap();
            tokio::spawn(conn);
            let origin: http::Uri = format!("http://{addr}").parse().unwrap();
            let grpc = tonic::client::Grpc::with_origin(H2(send), origin);
            let t = Instant::now();
            for _ in 0..iters {
                let tasks: Vec<_> = (0..GRPC_TASKS)
                    .map(|_| {
                        let mut grpc = grpc.clone();
                        tokio::spawn(async move {
                            for _ in 0..GRPC_CALLS {
                                grpc.ready().await.unwrap();
                                let req = tonic::Request::new(EchoRequest {
                                    message: "hi".into(),
                                    count: 0,
                                });
                                let codec = ProstCodec::<EchoRequest, EchoReply>::default();
                                let path = http::uri::PathAndQuery::from_static(SAY);
                                let reply = grpc.unary(req, path, codec).await.unwrap().into_inner();
                                assert_eq!(reply.message, "HI");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            }
            let took = t.elapsed();
            server.abort();
            took
        },
    );
}

/// The same calls through `aio::hyper::Client` (its pool, a boxed future
/// per request): what a user of `EchoClient` gets, beside the bare
/// connection above.
fn tonic_unary_client(c: &mut Criterion) {
    let mut g = group(c, "tonic_unary_client", GRPC_TASKS * GRPC_CALLS, 10);
    for rt in ["aio-poll", "aio-uring"] {
        let Some(runner) = aio_runner(rt) else { continue };
        g.bench_function(rt, |b| {
            b.iter_custom(|iters| {
                runner.run(async move {
                    let l = aio::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = l.local_addr().unwrap();
                    let server =
                        aio::create_task(
                            async move { aio::hyper::serve(&l, TowerToHyperService::new(EchoServer)).await },
                        );
                    let client = EchoClient::new(addr);
                    client.clone().say("warm").await.unwrap();
                    let t = Instant::now();
                    for _ in 0..iters {
                        let tasks: Vec<_> = (0..GRPC_TASKS)
                            .map(|_| {
                                let mut client = client.clone();
                                aio::create_task(async move {
                                    for _ in 0..GRPC_CALLS {
                                        assert_eq!(client.say("hi").await.unwrap().message, "HI");
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    }
                    let took = t.elapsed();
                    server.cancel();
                    took
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, postgres, websocket, tonic_unary, tonic_unary_client);
criterion_main!(benches);
