//! HTTP/1.1 on loopback: hyper served by aio-hyper (poll and uring
//! backends) beside hyper on tokio's current-thread runtime, with the same
//! service (a 13-byte "Hello, World!"), the same hyper-util auto builder
//! (HTTP/1.1 or HTTP/2), each with its runtime's timer, and one load
//! generator for every server.
//!
//! The generator is a small HTTP/1.1 keep-alive client written here (on
//! tokio, on the bench thread), so the bench needs no wrk: `C` persistent
//! connections each send a GET and read its response (the body length
//! from `content-length`), again and again. Criterion reports requests per
//! second; after each server the bench prints p50/p99 latency and the
//! server thread's CPU per request, and after each group the medians over
//! the rounds with ratios to tokio in the same round.
//!
//! `aio-poll-spin` and `aio-uring-spin` are the same aio servers on a
//! loop that spins 50 µs before it sleeps (`Builder::spin_before_park`,
//! off by default), beside the default ones.
//!
//! IDs: `http1_<C>c/<server>/<round>`. `NET_HTTP_ROUNDS=3` alternates the
//! servers three times; `NET_HTTP_SERVERS=tokio-ct,aio-poll` picks them.

mod common;

use std::convert::Infallible;
use std::io;
use std::time::{Duration, Instant};

use common::{Ready, Running, announce, nanos_since, on_aio_loop, start_thread, tokio_ct};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVERS: [&str; 5] = ["aio-poll", "aio-uring", "aio-poll-spin", "aio-uring-spin", "tokio-ct"];
const HELLO: &[u8] = b"Hello, World!";

fn start(server: &'static str) -> Option<Running> {
    start_thread(server, move |tx| match server {
        "tokio-ct" => tokio_server(tx),
        aio => aio_server(aio, tx),
    })
}

fn aio_server(name: &str, tx: Ready) {
    use aio::hyper::hyper::{Request, Response, body::Incoming, service::service_fn};
    use aio::hyper::{Bytes, Full};
    on_aio_loop(common::aio_builder(name), tx, |tx| async move {
        let listener = aio::TcpListener::bind("127.0.0.1:0").await?;
        announce(&tx, listener.local_addr()?);
        let hello = service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(HELLO))))
        });
        aio::hyper::serve(&listener, hello).await
    });
}

fn tokio_server(tx: Ready) {
    use hyper::{Request, Response, body::Incoming, service::service_fn};
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let rt = tokio_ct();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        announce(&tx, l.local_addr().unwrap());
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let builder = std::rc::Rc::new(builder);
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                loop {
                    let (s, _) = l.accept().await.unwrap();
                    s.set_nodelay(true).unwrap();
                    let builder = builder.clone();
                    tokio::task::spawn_local(async move {
                        let hello = service_fn(|_req: Request<Incoming>| async {
                            Ok::<_, Infallible>(Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
                                HELLO,
                            ))))
                        });
                        let _ = builder.serve_connection(TokioIo::new(s), hello).await;
                    });
                }
            })
            .await
    });
}

/// One keep-alive connection of the generator.
struct Conn {
    s: tokio::net::TcpStream,
    buf: Vec<u8>,
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

impl Conn {
    async fn new(addr: std::net::SocketAddr) -> Conn {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            s,
            buf: Vec::with_capacity(4096),
        }
    }

    /// One request and its whole response.
    async fn request(&mut self) -> io::Result<()> {
        self.s.write_all(REQUEST).await?;
        self.buf.clear();
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = &self.buf[..end];
                assert!(head.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(head));
                let len = content_length(head).expect("content-length");
                let need = end + 4 + len;
                while self.buf.len() < need {
                    self.fill().await?;
                }
                assert_eq!(&self.buf[end + 4..need], HELLO);
                return Ok(());
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        let n = self.s.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

struct Generator {
    rt: tokio::runtime::Runtime,
    conns: Vec<Conn>,
    latencies: Vec<u32>,
}

impl Generator {
    fn new(addr: std::net::SocketAddr, conns: usize) -> Generator {
        let rt = tokio_ct();
        let conns = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..conns {
                v.push(Conn::new(addr).await);
            }
            v
        });
        Generator {
            rt,
            conns,
            latencies: Vec::new(),
        }
    }
}

fn group(c: &mut Criterion, conns: usize) {
    let name = format!("http1_{conns}c");
    let per_iter = (conns as u64 * 20).max(2000);
    common::run_rounds(c, &name, per_iter, "NET_HTTP", &SERVERS, start, |addr| {
        Generator::new(addr, conns)
    });
}

impl common::Load for Generator {
    fn run(&mut self, total: u64) -> Duration {
        let per = total.div_ceil(self.conns.len() as u64);
        let conns = std::mem::take(&mut self.conns);
        let t0 = Instant::now();
        let done = self.rt.block_on(async move {
            tokio::task::LocalSet::new()
                .run_until(async move {
                    let handles: Vec<_> = conns
                        .into_iter()
                        .map(|mut c| {
                            tokio::task::spawn_local(async move {
                                let mut lats = Vec::with_capacity(per as usize);
                                for _ in 0..per {
                                    let t = Instant::now();
                                    c.request().await.unwrap();
                                    lats.push(nanos_since(t));
                                }
                                (c, lats)
                            })
                        })
                        .collect();
                    let mut out = Vec::new();
                    for h in handles {
                        out.push(h.await.unwrap());
                    }
                    out
                })
                .await
        });
        let d = t0.elapsed();
        for (c, lats) in done {
            self.conns.push(c);
            self.latencies.extend(lats);
        }
        d
    }

    fn latencies(&mut self) -> &mut Vec<u32> {
        &mut self.latencies
    }
}

fn benches(c: &mut Criterion) {
    group(c, 1);
    group(c, 50);
}

criterion_group!(net_http, benches);
criterion_main!(net_http);
