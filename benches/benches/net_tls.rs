//! TLS echo on loopback: aio's TLS streams (`start_server_tls`, on the
//! poll and uring backends) beside tokio-rustls on tokio's current-thread
//! runtime, with one load generator (tokio-rustls clients) for every
//! server and the same rustls `ServerConfig` (ring) on both sides.
//!
//! Each server runs on its own thread. The generator is a closed loop on
//! the bench thread: `C` persistent TLS connections, each sending a
//! message of `S` bytes and waiting for its echo, again and again
//! (`tls_echo_<C>c_<S>b`); or `C` clients each opening a new connection
//! per request: TCP connect, a full TLS 1.3 handshake, one 64-byte echo,
//! an abortive close (`tls_handshake_<C>c`). Criterion reports requests
//! per second; after each server the bench prints p50/p99 latency and the
//! server thread's CPU time per request, and at the end of each group the
//! medians over the rounds with ratios to tokio in the same round.
//!
//! `aio-poll-spin` and `aio-uring-spin` are the same aio servers on a
//! loop that spins 50 µs before it sleeps (`Builder::spin_before_park`,
//! off by default), beside the default ones.
//!
//! `NET_TLS_ROUNDS=3` alternates the servers three times per group;
//! `NET_TLS_SERVERS=tokio-ct,aio-poll` picks servers and their order.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aio::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use aio::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use common::{
    Ready, Running, aio_echo, announce, echo_until_eof, nanos_since, on_aio_loop, on_local, serve_announced,
    start_thread, tokio_ct,
};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVERS: [&str; 5] = ["aio-poll", "aio-uring", "aio-poll-spin", "aio-uring-spin", "tokio-ct"];

/// A self-signed certificate for `localhost`, as both configs.
fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

fn start(server: &'static str, config: Arc<ServerConfig>) -> Option<Running> {
    start_thread(server, move |tx| match server {
        "tokio-ct" => tokio_server(config, tx),
        aio => aio_server(aio, config, tx),
    })
}

fn aio_server(name: &str, config: Arc<ServerConfig>, tx: Ready) {
    on_aio_loop(common::aio_builder(name), tx, |tx| async move {
        let tls = aio::TlsAcceptor::from_config(config);
        serve_announced(aio::start_server_tls(aio_echo, "127.0.0.1", 0, tls).await?, &tx).await
    });
}

fn tokio_server(config: Arc<ServerConfig>, tx: Ready) {
    let rt = tokio_ct();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        announce(&tx, l.local_addr().unwrap());
        loop {
            let (s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else { return };
                echo_until_eof!(s, flush)
            });
        }
    });
}

type Client = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(addr: std::net::SocketAddr, tls: &tokio_rustls::TlsConnector) -> Client {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    tls.connect(ServerName::try_from("localhost").unwrap(), s)
        .await
        .unwrap()
}

/// What a group's clients do.
#[derive(Clone, Copy)]
enum Load {
    /// Persistent connections.
    Echo,
    /// A new connection (and handshake) per request.
    Handshake,
}

struct Generator {
    rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    tls: tokio_rustls::TlsConnector,
    clients: usize,
    conns: Vec<Client>,
    size: usize,
    load: Load,
    latencies: Vec<u32>,
}

async fn echoes(s: &mut Client, size: usize, per: u64) -> Vec<u32> {
    let msg = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut lats = Vec::with_capacity(per as usize);
    for _ in 0..per {
        let t = Instant::now();
        s.write_all(&msg).await.unwrap();
        s.flush().await.unwrap();
        s.read_exact(&mut back).await.unwrap();
        lats.push(nanos_since(t));
    }
    lats
}

async fn handshakes(addr: std::net::SocketAddr, tls: tokio_rustls::TlsConnector, size: usize, per: u64) -> Vec<u32> {
    let msg = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut lats = Vec::with_capacity(per as usize);
    for _ in 0..per {
        let t = Instant::now();
        let mut s = connect(addr, &tls).await;
        s.write_all(&msg).await.unwrap();
        s.flush().await.unwrap();
        s.read_exact(&mut back).await.unwrap();
        // A reset: no TIME_WAIT piles up on the generator's ports.
        s.get_ref().0.set_zero_linger().unwrap();
        drop(s);
        lats.push(nanos_since(t));
    }
    lats
}

impl Generator {
    fn new(
        addr: std::net::SocketAddr,
        client: Arc<ClientConfig>,
        clients: usize,
        size: usize,
        load: Load,
    ) -> Generator {
        let rt = tokio_ct();
        let tls = tokio_rustls::TlsConnector::from(client);
        let conns = match load {
            Load::Echo => rt.block_on(async {
                let mut v = Vec::new();
                for _ in 0..clients {
                    v.push(connect(addr, &tls).await);
                }
                v
            }),
            Load::Handshake => Vec::new(),
        };
        Generator {
            rt,
            addr,
            tls,
            clients,
            conns,
            size,
            load,
            latencies: Vec::new(),
        }
    }
}

fn group(c: &mut Criterion, conns: usize, size: usize, load: Load) {
    let (name, per_iter) = match load {
        Load::Echo => (format!("tls_echo_{conns}c_{size}b"), (conns as u64 * 20).max(2000)),
        // A handshake costs about a millisecond of CPU on each side.
        Load::Handshake => (format!("tls_handshake_{conns}c"), (conns as u64 * 10).max(100)),
    };
    let (server_config, client_config) = configs();
    common::run_rounds(
        c,
        &name,
        per_iter,
        "NET_TLS",
        &SERVERS,
        |server| start(server, server_config.clone()),
        |addr| Generator::new(addr, client_config.clone(), conns, size, load),
    );
}

impl common::Load for Generator {
    fn run(&mut self, total: u64) -> Duration {
        let per = total.div_ceil(self.clients as u64);
        let size = self.size;
        let t0 = Instant::now();
        let lats: Vec<Vec<u32>> = match self.load {
            Load::Echo => {
                let conns = std::mem::take(&mut self.conns);
                let done = on_local(
                    &self.rt,
                    conns.into_iter().map(|mut s| async move {
                        let l = echoes(&mut s, size, per).await;
                        (s, l)
                    }),
                );
                let (conns, lats) = done.into_iter().unzip();
                self.conns = conns;
                lats
            }
            Load::Handshake => {
                let (addr, tls) = (self.addr, self.tls.clone());
                on_local(
                    &self.rt,
                    (0..self.clients).map(|_| handshakes(addr, tls.clone(), size, per)),
                )
            }
        };
        let d = t0.elapsed();
        self.latencies.extend(lats.into_iter().flatten());
        d
    }

    fn latencies(&mut self) -> &mut Vec<u32> {
        &mut self.latencies
    }
}

fn benches(c: &mut Criterion) {
    group(c, 1, 64, Load::Echo);
    group(c, 50, 4096, Load::Echo);
    group(c, 10, 64, Load::Handshake);
}

criterion_group!(net_tls, benches);
criterion_main!(net_tls);
