//! TCP echo on loopback: aio (poll and uring backends) beside tokio
//! (current-thread) and smol, with the same load generator for every
//! server.
//!
//! Each server runs on its own thread. The generator is a closed loop on
//! the bench thread: `C` persistent connections, each sending a message of
//! `S` bytes and waiting for its echo, again and again. Criterion reports
//! requests per second (`thrpt`); after each server the bench prints the
//! p50 and p99 latency of a request, the server thread's CPU time per
//! request (user and system, from `/proc`), the generator's, and how often
//! each went to sleep per 1,000 requests, because on two cores the
//! generator saturates before a fast server does: then throughput measures
//! the generator's cost per request, which depends on the server too (the
//! kernel work of waking the server's socket is done in the generator's
//! `send`).
//!
//! The `aio-*-streams` servers are the same echo written with asyncio's
//! streams (`start_server`, `StreamReader::read`, `StreamWriter::write` +
//! `drain`): on io_uring they receive through a multishot recv into a
//! provided-buffer ring and accept through a multishot accept, which is
//! what io_uring offers that epoll cannot.
//!
//! The `_p<D>` groups pipeline like `redis-benchmark -P D`: each
//! connection writes `D` requests at once and then reads their `D` echoes,
//! so the generator's work per request shrinks and the server's efficiency
//! shows.
//!
//! The `accept_<C>c_<S>b` group opens a connection per request: `C`
//! clients each connect, send one message, read its echo and close with
//! `SO_LINGER` 0 (a reset, so no TIME_WAIT piles up), again and again;
//! "requests" there are connections.
//!
//! IDs: `echo_<C>c_<S>b/<server>`, `echo_<C>c_<S>b_p<D>/<server>` and
//! `accept_<C>c_<S>b/<server>`.
//!
//! `NET_ECHO_SERVERS=tokio-ct,aio-uring` runs only the servers named, in
//! that order (servers measured later in a group can fare differently
//! than earlier ones, so compare orders before trusting a small ratio).
//! `NET_ECHO_PIN=1` pins the generator to CPU 0 and each server to CPU 1,
//! which takes the scheduler's placement out of the comparison.
//! `NET_ECHO_ROUNDS=3` measures every server of a group three times, the
//! servers alternating (IDs `echo_<C>c_<S>b/<server>/<round>`), and ends
//! each group with the medians over the rounds, including each server's
//! throughput as a ratio to tokio-ct's in the same round: the machine
//! drifts by a few percent over a group, and alternation pairs the
//! servers in time.

mod common;

use std::io;
use std::time::{Duration, Instant};

use common::{
    Ready, Running, aio_echo, announce, echo_until_eof, gettid, measure, median, nanos_since, on_aio_loop, on_local,
    rounds, serve_announced, start_thread, thread_sleeps, tokio_ct,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    AioPoll,
    AioUring,
    AioPollStreams,
    AioUringStreams,
    TokioCt,
    Smol,
}

impl Server {
    const ALL: [Server; 6] = [
        Server::AioPoll,
        Server::AioUring,
        Server::AioPollStreams,
        Server::AioUringStreams,
        Server::TokioCt,
        Server::Smol,
    ];

    /// The servers to run: `NET_ECHO_SERVERS` (names, comma-separated, in
    /// order), else all.
    fn chosen() -> Vec<Server> {
        let Ok(list) = std::env::var("NET_ECHO_SERVERS") else {
            return Server::ALL.to_vec();
        };
        list.split(',')
            .map(|name| {
                let name = name.trim();
                Server::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .unwrap_or_else(|| panic!("NET_ECHO_SERVERS: no server {name:?}"))
            })
            .collect()
    }

    fn name(self) -> &'static str {
        match self {
            Server::AioPoll => "aio-poll",
            Server::AioUring => "aio-uring",
            Server::AioPollStreams => "aio-poll-streams",
            Server::AioUringStreams => "aio-uring-streams",
            Server::TokioCt => "tokio-ct",
            Server::Smol => "smol",
        }
    }
}

/// User and system CPU time of a thread of this process.
fn thread_cpu(tid: i32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 (11 and 12 after the state).
    let to = |t: u64| Duration::from_micros(t * 1_000_000 / hz.max(1));
    (to(ticks(11)), to(ticks(12)))
}

/// A thread's CPU time and sleeps so far (or between two snapshots).
struct Usage {
    user: Duration,
    sys: Duration,
    sleeps: u64,
}

impl Usage {
    fn of(tid: i32) -> Usage {
        let (user, sys) = thread_cpu(tid);
        Usage {
            user,
            sys,
            sleeps: thread_sleeps(tid),
        }
    }

    fn since(&self, before: &Usage) -> Usage {
        Usage {
            user: self.user.saturating_sub(before.user),
            sys: self.sys.saturating_sub(before.sys),
            sleeps: self.sleeps.saturating_sub(before.sleeps),
        }
    }
}

/// With `NET_ECHO_PIN` set, pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    if std::env::var_os("NET_ECHO_PIN").is_none() {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // within it, and sched_setaffinity reads it for the calling thread.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if !ok {
        eprintln!("NET_ECHO_PIN: cannot pin to CPU {cpu}: {}", io::Error::last_os_error());
    }
}

fn start(server: Server) -> Option<Running> {
    start_thread(server.name(), move |tx| {
        pin(1);
        serve(server, tx)
    })
}

fn serve(server: Server, tx: Ready) {
    match server {
        Server::AioPoll => aio_server(aio::Backend::Poll, tx),
        Server::AioUring => aio_server(aio::Backend::Uring, tx),
        Server::AioPollStreams => aio_streams_server(aio::Backend::Poll, tx),
        Server::AioUringStreams => aio_streams_server(aio::Backend::Uring, tx),
        Server::TokioCt => tokio_server(tx),
        Server::Smol => smol_server(tx),
    }
}

fn aio_server(backend: aio::Backend, tx: Ready) {
    on_aio_loop(aio::Builder::new().backend(backend), tx, |tx| async move {
        let l = aio::TcpListener::bind("127.0.0.1:0").await?;
        announce(&tx, l.local_addr()?);
        loop {
            let (s, _) = l.accept().await?;
            s.set_nodelay(true)?;
            drop(aio::create_task(async move {
                let mut buf = Vec::with_capacity(64 * 1024);
                loop {
                    buf.clear();
                    let (r, b) = s.read(buf).await;
                    buf = b;
                    if r? == 0 {
                        return Ok::<_, io::Error>(());
                    }
                    let (r, b) = s.write_all(buf).await;
                    buf = b;
                    r?;
                }
            }));
        }
    });
}

/// End of file or an error (the accept groups' clients reset their
/// connections) ends a connection quietly, as the other servers do.
fn aio_streams_server(backend: aio::Backend, tx: Ready) {
    on_aio_loop(aio::Builder::new().backend(backend), tx, |tx| async move {
        serve_announced(aio::start_server(aio_echo, "127.0.0.1", 0).await?, &tx).await
    });
}

fn tokio_server(tx: Ready) {
    tokio_ct().block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        announce(&tx, l.local_addr().unwrap());
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move { echo_until_eof!(s) });
        }
    });
}

fn smol_server(tx: Ready) {
    use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ex = smol::LocalExecutor::new();
    // `smol::block_on` (async-io's) runs the reactor on this thread while
    // the executor is idle, as smol's documentation sets a server up;
    // futures-lite's `block_on` would leave the I/O to async-io's own
    // thread, outside the server CPU the bench measures.
    smol::block_on(ex.run(async {
        let l = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        announce(&tx, l.local_addr().unwrap());
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            ex.spawn(async move { echo_until_eof!(s) }).detach();
        }
    }));
}

/// The closed-loop load generator: `conns` connections, each with `depth`
/// requests in flight.
struct Generator {
    rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    /// Clients: each with a persistent connection (`Load::Echo`), or
    /// connecting anew for every request (`Load::Accept`).
    clients: usize,
    /// The persistent connections (none for `Load::Accept`).
    conns: Vec<tokio::net::TcpStream>,
    size: usize,
    load: Load,
    latencies: Vec<u32>,
}

/// What a group's clients do.
#[derive(Clone, Copy)]
enum Load {
    /// Persistent connections, `depth` requests in flight on each.
    Echo { depth: usize },
    /// A new connection per request: connect, one request and its echo,
    /// an abortive close.
    Accept,
}

/// `per` requests of `size` bytes on `s`, pipelined as `redis-benchmark
/// -P depth` does: `depth` requests in one write, then their `depth`
/// echoes; each request's latency is its burst's round trip (with depth 1,
/// one request at a time).
async fn requests(s: &mut tokio::net::TcpStream, size: usize, per: u64, depth: usize) -> Vec<u32> {
    let burst = vec![7u8; size * depth];
    let mut back = vec![0u8; size * depth];
    let mut lats = Vec::with_capacity(per as usize);
    let mut left = per as usize;
    while left > 0 {
        let n = left.min(depth);
        let t = Instant::now();
        s.write_all(&burst[..n * size]).await.unwrap();
        s.read_exact(&mut back[..n * size]).await.unwrap();
        lats.extend(std::iter::repeat_n(nanos_since(t), n));
        left -= n;
    }
    lats
}

/// `per` connections to `addr`, one after another: connect, one request
/// of `size` bytes and its echo, then a close with `SO_LINGER` 0 (a
/// reset, so the generator's ports do not pile up in TIME_WAIT); each
/// latency is a whole connection's.
async fn connections(addr: std::net::SocketAddr, size: usize, per: u64) -> Vec<u32> {
    let msg = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut lats = Vec::with_capacity(per as usize);
    for _ in 0..per {
        let t = Instant::now();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(&msg).await.unwrap();
        s.read_exact(&mut back).await.unwrap();
        s.set_zero_linger().unwrap();
        drop(s);
        lats.push(nanos_since(t));
    }
    lats
}

impl Generator {
    fn new(addr: std::net::SocketAddr, clients: usize, size: usize, load: Load) -> Generator {
        let rt = tokio_ct();
        let persistent = match load {
            Load::Echo { .. } => clients,
            Load::Accept => 0,
        };
        let conns = rt.block_on(async {
            let mut v = Vec::with_capacity(persistent);
            for _ in 0..persistent {
                let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                v.push(s);
            }
            v
        });
        Generator {
            rt,
            addr,
            clients,
            conns,
            size,
            load,
            latencies: Vec::new(),
        }
    }

    /// Sends `total` requests spread over the clients; returns the time.
    fn run(&mut self, total: u64) -> Duration {
        let per = total.div_ceil(self.clients as u64);
        let (addr, size) = (self.addr, self.size);
        let t0 = Instant::now();
        let lats = match self.load {
            Load::Echo { depth } => {
                let conns = std::mem::take(&mut self.conns);
                let done = on_local(
                    &self.rt,
                    conns.into_iter().map(|mut s| async move {
                        let lats = requests(&mut s, size, per, depth).await;
                        (s, lats)
                    }),
                );
                let (conns, lats): (Vec<_>, Vec<_>) = done.into_iter().unzip();
                self.conns = conns;
                lats
            }
            Load::Accept => on_local(&self.rt, (0..self.clients).map(|_| connections(addr, size, per))),
        };
        let d = t0.elapsed();
        self.latencies.extend(lats.into_iter().flatten());
        d
    }

    /// The `per_mille`/1000 quantile of the request latencies.
    fn quantile(&mut self, per_mille: usize) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let i = (self.latencies.len() * per_mille / 1000).min(self.latencies.len() - 1);
        Duration::from_nanos(u64::from(self.latencies[i]))
    }
}

/// One server's figures from one round of a group.
struct Round {
    server: Server,
    round: usize,
    /// Requests per second over every request of the round (warm-up too).
    throughput: f64,
    p99: Duration,
    /// Server CPU per request, µs.
    server_cpu: f64,
    /// Generator CPU per request, µs.
    generator_cpu: f64,
}

/// The medians over the rounds of a group, per server; each throughput
/// ratio pairs a server with tokio-ct in the same round.
fn summarize(group: &str, rounds: &[Round]) {
    let mut servers: Vec<Server> = Vec::new();
    for r in rounds {
        if !servers.contains(&r.server) {
            servers.push(r.server);
        }
    }
    let tokio = |round: usize| rounds.iter().find(|r| r.round == round && r.server == Server::TokioCt);
    for s in servers {
        let mine: Vec<&Round> = rounds.iter().filter(|r| r.server == s).collect();
        let ratios: Vec<f64> = mine
            .iter()
            .filter_map(|r| tokio(r.round).map(|t| r.throughput / t.throughput))
            .collect();
        let ratio = match ratios.len() {
            0 => "    -".to_string(),
            _ => format!(
                "{:.3} ({:.3}–{:.3})",
                median(ratios.clone()),
                ratios.iter().copied().fold(f64::INFINITY, f64::min),
                ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            ),
        };
        eprintln!(
            "{group}/{:<10} median of {} rounds: {:>7.1}k req/s   vs tokio-ct {}   p99 {:>8.1} µs   server CPU {:.2} µs/request   generator CPU {:.2} µs/request",
            s.name(),
            mine.len(),
            median(mine.iter().map(|r| r.throughput).collect()) / 1000.0,
            ratio,
            median(mine.iter().map(|r| r.p99.as_secs_f64() * 1e6).collect()),
            median(mine.iter().map(|r| r.server_cpu).collect()),
            median(mine.iter().map(|r| r.generator_cpu).collect()),
        );
    }
}

fn echo(c: &mut Criterion, conns: usize, size: usize, load: Load) {
    let (group, depth) = match load {
        Load::Echo { depth: 1 } => (format!("echo_{conns}c_{size}b"), 1),
        Load::Echo { depth } => (format!("echo_{conns}c_{size}b_p{depth}"), depth),
        Load::Accept => (format!("accept_{conns}c_{size}b"), 1),
    };
    let mut g = c.benchmark_group(&group);
    // Requests per iteration: enough to keep every connection busy.
    let per_iter = (conns as u64 * depth as u64 * 20).max(2000);
    g.throughput(Throughput::Elements(per_iter));
    g.sample_size(10);
    pin(0);
    let rounds = rounds("NET_ECHO_ROUNDS");
    let mut done = Vec::new();
    for (round, server) in (1..=rounds).flat_map(|r| Server::chosen().into_iter().map(move |s| (r, s))) {
        let Some(srv) = start(server) else { continue };
        let mut gen_ = Generator::new(srv.addr, conns, size, load);
        let (server0, gen0) = (Usage::of(srv.tid), Usage::of(gettid()));
        let id = match rounds {
            1 => BenchmarkId::from_parameter(server.name()),
            _ => BenchmarkId::new(server.name(), round),
        };
        let (requests, elapsed) = measure(&mut g, id, per_iter, |n| gen_.run(n));
        if requests == 0 {
            continue; // filtered out
        }
        let srv_use = Usage::of(srv.tid).since(&server0);
        let gen_use = Usage::of(gettid()).since(&gen0);
        let per_req = |d: Duration| d.as_nanos() as f64 / requests as f64 / 1000.0;
        let per_1k = |n: u64| n as f64 * 1000.0 / requests as f64;
        let cpu = srv_use.user + srv_use.sys;
        let share = if cpu.is_zero() {
            0.0
        } else {
            srv_use.user.as_secs_f64() / cpu.as_secs_f64() * 100.0
        };
        let (p50, p99) = (gen_.quantile(500), gen_.quantile(990));
        let label = match rounds {
            1 => server.name().to_string(),
            _ => format!("{}/{round}", server.name()),
        };
        eprintln!(
            "{group}/{:<10} p50 {:>8.1} µs   p99 {:>8.1} µs   server CPU {:>6.2} µs/request ({:.0}% user)   {} requests   generator CPU {:.2} µs/request   sleeps/1k requests: server {:.1}, generator {:.1}",
            label,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            per_req(cpu),
            share,
            requests,
            per_req(gen_use.user + gen_use.sys),
            per_1k(srv_use.sleeps),
            per_1k(gen_use.sleeps),
        );
        done.push(Round {
            server,
            round,
            throughput: requests as f64 / elapsed.as_secs_f64(),
            p99,
            server_cpu: per_req(cpu),
            generator_cpu: per_req(gen_use.user + gen_use.sys),
        });
    }
    g.finish();
    if rounds > 1 {
        summarize(&group, &done);
    }
}

fn benches(c: &mut Criterion) {
    for conns in [1, 50, 500] {
        for size in [64, 4096] {
            echo(c, conns, size, Load::Echo { depth: 1 });
        }
    }
    echo(c, 50, 64, Load::Echo { depth: 16 });
    echo(c, 50, 64, Load::Accept);
}

criterion_group!(net, benches);
criterion_main!(net);
