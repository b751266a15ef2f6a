//! HTTP/1.1 on every core: hyper served by an `aio::LoopPool` of 1 and 2
//! loops beside hyper on tokio's multi-thread (work-stealing) runtime
//! with 1 and 2 workers, with the same service and one load generator
//! for every server, under two loads:
//!
//! - `uniform`: every request is `GET /` ("Hello, World!");
//! - `skewed`: one connection in ten asks for `GET /heavy`, whose
//!   response costs twenty times a plain one (the handler spins for 19×
//!   the server CPU a plain request takes, calibrated at start).
//!
//! The generator is written here (no wrk): `NET_POOL_CONNS` (100)
//! keep-alive connections on `NET_POOL_GEN_THREADS` (2) threads, each a
//! tokio current-thread runtime, closed loop, each request timed; the
//! connections of a thread share its quota of requests, so a slow
//! connection does fewer (as with wrk's fixed duration). Criterion reports
//! requests per second; after each server the bench prints p50, p99 and
//! the p99 of plain requests alone, how the server's connections sit on
//! its loops, and how long its threads waited on a run queue while
//! runnable (from `/proc/self/task/<tid>/schedstat`) per request: on two
//! cores shared with the generator, that is where a thread-per-core
//! server's tail comes from. After each load comes the side-by-side table
//! (medians over the rounds).
//!
//! Servers: `aio-1`, `aio-2` (the pool's defaults: loops pinned to CPUs,
//! connections balanced by load), and variants of `aio-2` that each
//! remove one mechanism: `aio-2-kernel` (connections left where the
//! kernel's `SO_REUSEPORT` hash put them, as thread-per-core runtimes
//! do), `aio-2-single` (one listener whose loop hands every connection
//! out), `aio-2-unpinned` (loops left to the scheduler),
//! `aio-2-longslice` (loop threads keep the scheduler's default time
//! slice instead of asking for the shortest); then
//! `tokio-mt-1`, `tokio-mt-2`. `NET_POOL_SERVERS=aio-2,tokio-mt-2` picks
//! them, `NET_POOL_ROUNDS=3` alternates them three times,
//! `NET_POOL_BACKEND=poll|uring` picks aio's driver (default: io_uring
//! where it runs). `NET_POOL_OFFLOAD=1` has aio's service hand each
//! `/heavy` computation to the pool (`PoolHandle::spawn`: the least busy
//! loop runs it) instead of running it on the connection's loop.
//!
//! After each load the side-by-side table also gives, per aio server, the
//! most connections one loop served as a multiple of its share (1.00 is
//! an even spread), and each aio server's req/s and p99 over tokio-mt's
//! with as many threads (the median of the per-round ratios, and their
//! range).
//!
//! For wrk: `NET_POOL_SERVE=aio-2 NET_POOL_PORT=3000 cargo bench -p
//! aio-benches --bench net_pool` serves on 127.0.0.1:3000 until killed
//! (the same servers, with `/heavy`), printing how the connections sit
//! every 5 s.

mod common;

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use common::{gettid, median, nanos_since, quantile, schedstat, status_counter};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVERS: [&str; 8] = [
    "aio-1",
    "aio-2",
    "aio-2-kernel",
    "aio-2-single",
    "aio-2-unpinned",
    "aio-2-longslice",
    "tokio-mt-1",
    "tokio-mt-2",
];
const HELLO: &[u8] = b"Hello, World!";
const HEAVY: &[u8] = b"Hello, heavy World!";
/// How much costlier a heavy response is than a plain one.
const SKEW: u32 = 20;
/// Server CPU of a plain request, µs (hyper and the kernel, loopback; see
/// the README's HTTP table): the heavy one spins for `SKEW - 1` times it.
const PLAIN_US: u64 = 8;

/// Spin iterations per microsecond, measured once.
fn iters_per_us() -> u64 {
    static IPU: OnceLock<u64> = OnceLock::new();
    *IPU.get_or_init(|| {
        let n = 2_000_000;
        let t = Instant::now();
        spin(n);
        (n as u128 * 1000 / t.elapsed().as_nanos().max(1)).max(1) as u64
    })
}

fn spin(n: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for i in 0..n {
        h = (h ^ i).wrapping_mul(0x1000_0000_01b3);
    }
    std::hint::black_box(h)
}

/// The service's work: `/heavy` spins, anything else answers at once.
fn respond(path: &str) -> &'static [u8] {
    if path == "/heavy" {
        spin(iters_per_us() * PLAIN_US * u64::from(SKEW - 1));
        HEAVY
    } else {
        HELLO
    }
}

/// A running server: where it listens, its threads (for schedstat), how
/// to read its connection spread, how to stop it.
struct Server {
    addr: SocketAddr,
    tids: Vec<i32>,
    kind: Kind,
}

enum Kind {
    Aio(aio::LoopPool, aio::PoolServer),
    Tokio(tokio::runtime::Runtime),
}

impl Server {
    fn spread(&self) -> Option<Vec<u64>> {
        match &self.kind {
            Kind::Aio(_, s) => Some(s.served_per_loop()),
            Kind::Tokio(_) => None,
        }
    }

    fn stop(self) {
        match self.kind {
            Kind::Aio(pool, _) => {
                pool.shutdown(Duration::ZERO);
            }
            Kind::Tokio(rt) => rt.shutdown_timeout(Duration::from_secs(1)),
        }
    }
}

fn backend() -> aio::Backend {
    match std::env::var("NET_POOL_BACKEND").as_deref() {
        Ok("poll") => aio::Backend::Poll,
        Ok("uring") => aio::Backend::Uring,
        _ => aio::Backend::Auto,
    }
}

fn start(name: &str, port: u16) -> Option<Server> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match name {
        "aio-1" => aio_server(1, aio::Spread::Balanced, true, true, addr),
        "aio-2" => aio_server(2, aio::Spread::Balanced, true, true, addr),
        "aio-2-kernel" => aio_server(2, aio::Spread::Kernel, true, true, addr),
        "aio-2-single" => aio_server(2, aio::Spread::Single, true, true, addr),
        "aio-2-unpinned" => aio_server(2, aio::Spread::Balanced, false, true, addr),
        "aio-2-longslice" => aio_server(2, aio::Spread::Balanced, true, false, addr),
        "tokio-mt-1" => Some(tokio_server(1, addr)),
        "tokio-mt-2" => Some(tokio_server(2, addr)),
        _ => panic!("no server {name}"),
    }
}

fn aio_server(loops: usize, spread: aio::Spread, pin: bool, short_slice: bool, addr: SocketAddr) -> Option<Server> {
    use aio::hyper::hyper::{Request, Response, body::Incoming, service::service_fn};
    use aio::hyper::{Bytes, Full};
    let offload = std::env::var_os("NET_POOL_OFFLOAD").is_some();
    let pool = aio::LoopPool::builder(loops)
        .loop_builder(aio::Builder::new().backend(backend()))
        .spread(spread)
        .pin_cpus(pin);
    let pool = if short_slice { pool } else { pool.scheduler_slice(None) };
    let pool = match pool.build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("aio pool unavailable: {e}");
            return None;
        }
    };
    let tids = pool.run(|_| async { gettid() }).into_iter().collect::<Vec<_>>();
    // `/heavy`'s work is movable: it goes to the least busy loop.
    let spawner = offload.then(|| pool.handle());
    let server = pool
        .serve(addr, move || {
            let spawner = spawner.clone();
            service_fn(move |req: Request<Incoming>| {
                let spawner = spawner.clone();
                async move {
                    let body = match spawner {
                        Some(p) if req.uri().path() == "/heavy" => p.spawn(async { respond("/heavy") }).await.unwrap(),
                        _ => respond(req.uri().path()),
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(body))))
                }
            })
        })
        .unwrap();
    Some(Server {
        addr: server.local_addr(),
        tids,
        kind: Kind::Aio(pool, server),
    })
}

fn tokio_server(workers: usize, addr: SocketAddr) -> Server {
    use hyper::{Request, Response, body::Incoming, service::service_fn};
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let tids = Arc::new(Mutex::new(Vec::new()));
    let t2 = tids.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .on_thread_start(move || t2.lock().unwrap().push(gettid()))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    rt.spawn(async move {
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        tx.send(l.local_addr().unwrap()).unwrap();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        loop {
            let Ok((s, _)) = l.accept().await else { continue };
            s.set_nodelay(true).unwrap();
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
                        respond(req.uri().path()),
                    ))))
                });
                let _ = builder.serve_connection(TokioIo::new(s), service).await;
            });
        }
    });
    let addr = rx.recv().unwrap();
    // Every worker says it started (the blocking pool has no thread yet).
    let t0 = Instant::now();
    while tids.lock().unwrap().len() < workers && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let tids = tids.lock().unwrap().clone();
    Server {
        addr,
        tids,
        kind: Kind::Tokio(rt),
    }
}

/// What the scheduler did to a thread: run-queue wait, waits, and how
/// often it was taken off the CPU while runnable.
#[derive(Clone, Copy, Default)]
struct Sched {
    /// Nanoseconds waited on a run queue while runnable.
    delay: u64,
    /// Times it waited on a run queue (schedstat's timeslices).
    waits: u64,
    /// Times it was preempted (`nonvoluntary_ctxt_switches`).
    preempted: u64,
}

impl Sched {
    fn since(self, before: Sched) -> Sched {
        Sched {
            delay: self.delay.saturating_sub(before.delay),
            waits: self.waits.saturating_sub(before.waits),
            preempted: self.preempted.saturating_sub(before.preempted),
        }
    }
}

fn sched(tid: i32) -> Sched {
    let [_, delay, waits] = schedstat(tid).unwrap_or_default();
    Sched {
        delay,
        waits,
        preempted: status_counter(tid, "nonvoluntary_ctxt_switches"),
    }
}

fn scheds(tids: &[i32]) -> Sched {
    tids.iter().map(|&t| sched(t)).fold(Sched::default(), |a, b| Sched {
        delay: a.delay + b.delay,
        waits: a.waits + b.waits,
        preempted: a.preempted + b.preempted,
    })
}

// ---------------------------------------------------------------------
// The load generator.

/// One keep-alive connection of the generator.
struct Conn {
    s: tokio::net::TcpStream,
    buf: Vec<u8>,
    request: &'static [u8],
    heavy: bool,
}

impl Conn {
    async fn new(addr: SocketAddr, heavy: bool) -> Conn {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            s,
            buf: Vec::with_capacity(4096),
            request: if heavy {
                b"GET /heavy HTTP/1.1\r\nHost: bench\r\n\r\n"
            } else {
                b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
            },
            heavy,
        }
    }

    /// One request and its whole response.
    async fn request(&mut self) -> io::Result<()> {
        self.s.write_all(self.request).await?;
        self.buf.clear();
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = &self.buf[..end];
                assert!(head.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(head));
                let need = end + 4 + content_length(head).expect("content-length");
                while self.buf.len() < need {
                    self.fill().await?;
                }
                return Ok(());
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.s.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
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

/// What a generator thread measured in one run: latencies of plain and
/// of heavy requests (ns).
type Measured = (Vec<u32>, Vec<u32>);

/// A generator thread: its connections live on its own tokio
/// current-thread runtime; it runs `n` requests when told.
struct GenThread {
    go: mpsc::Sender<u64>,
    done: mpsc::Receiver<Measured>,
}

impl GenThread {
    fn start(addr: SocketAddr, conns: Vec<bool>) -> GenThread {
        let (go, go_rx) = mpsc::channel::<u64>();
        let (done_tx, done) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut conns: Vec<Conn> = rt.block_on(async {
                let mut v = Vec::new();
                for heavy in conns {
                    v.push(Conn::new(addr, heavy).await);
                }
                v
            });
            ready_tx.send(()).unwrap();
            for n in go_rx {
                let left = Rc::new(Cell::new(n));
                let taken = std::mem::take(&mut conns);
                let out = rt.block_on(tokio::task::LocalSet::new().run_until(async {
                    let tasks: Vec<_> = taken
                        .into_iter()
                        .map(|mut c| {
                            let left = left.clone();
                            tokio::task::spawn_local(async move {
                                let mut lat = Vec::new();
                                while left.get() > 0 {
                                    left.set(left.get() - 1);
                                    let t = Instant::now();
                                    c.request().await.unwrap();
                                    lat.push(nanos_since(t));
                                }
                                (c, lat)
                            })
                        })
                        .collect();
                    let mut out = Vec::new();
                    for t in tasks {
                        out.push(t.await.unwrap());
                    }
                    out
                }));
                let (mut plain, mut heavy) = (Vec::new(), Vec::new());
                for (c, lat) in out {
                    if c.heavy { &mut heavy } else { &mut plain }.extend(lat);
                    conns.push(c);
                }
                if done_tx.send((plain, heavy)).is_err() {
                    return;
                }
            }
        });
        ready_rx.recv().unwrap();
        GenThread { go, done }
    }
}

struct Generator {
    threads: Vec<GenThread>,
    plain: Vec<u32>,
    heavy: Vec<u32>,
}

impl Generator {
    fn new(addr: SocketAddr, conns: usize, threads: usize, skewed: bool) -> Generator {
        let threads = (0..threads)
            .map(|t| {
                let mine: Vec<bool> = (0..conns)
                    .filter(|c| c % threads == t)
                    .map(|c| skewed && c % 10 == 0)
                    .collect();
                GenThread::start(addr, mine)
            })
            .collect();
        Generator {
            threads,
            plain: Vec::new(),
            heavy: Vec::new(),
        }
    }

    fn run(&mut self, total: u64) -> Duration {
        let per = total.div_ceil(self.threads.len() as u64);
        let t0 = Instant::now();
        for t in &self.threads {
            t.go.send(per).unwrap();
        }
        for t in &self.threads {
            let (p, h) = t.done.recv().unwrap();
            self.plain.extend(p);
            self.heavy.extend(h);
        }
        t0.elapsed()
    }
}

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One server's figures in one round of a load.
struct Row {
    server: &'static str,
    throughput: f64,
    p50: Duration,
    p99: Duration,
    p99_plain: Duration,
    /// Run-queue wait of the server's threads, µs per request.
    queued_us: f64,
    /// Times a server thread was preempted, per 1000 requests.
    preempted_per_k: f64,
    /// The mean run-queue wait of a server thread once runnable, µs.
    wait_us: f64,
    /// The most connections a loop served, over its share (aio only).
    max_share: Option<f64>,
}

fn load(c: &mut Criterion, name: &str, skewed: bool) {
    let conns = env_usize("NET_POOL_CONNS", 100);
    let gen_threads = env_usize("NET_POOL_GEN_THREADS", 2).max(1);
    let per_iter = 4000;
    let mut g = common::group(c, &format!("http_pool_{name}"), per_iter, 10);
    let rounds = common::rounds("NET_POOL_ROUNDS");
    let servers = common::chosen("NET_POOL_SERVERS", &SERVERS);
    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=rounds {
        for &server in &servers {
            let Some(srv) = start(server, 0) else { continue };
            let mut gen_ = Generator::new(srv.addr, conns, gen_threads, skewed);
            let sched0 = scheds(&srv.tids);
            let (requests, elapsed) =
                common::measure(&mut g, BenchmarkId::new(server, round), per_iter, |n| gen_.run(n));
            if requests == 0 {
                srv.stop();
                continue; // filtered out
            }
            let sched = scheds(&srv.tids).since(sched0);
            let delay = sched.delay;
            let spread = srv.spread();
            let mut all: Vec<u32> = gen_.plain.iter().chain(&gen_.heavy).copied().collect();
            let row = Row {
                server,
                throughput: requests as f64 / elapsed.as_secs_f64(),
                p50: quantile(&mut all, 500),
                p99: quantile(&mut all, 990),
                p99_plain: quantile(&mut gen_.plain, 990),
                queued_us: delay as f64 / 1000.0 / requests as f64,
                preempted_per_k: sched.preempted as f64 * 1000.0 / requests as f64,
                wait_us: delay as f64 / 1000.0 / sched.waits.max(1) as f64,
                max_share: spread.as_ref().map(|s| {
                    let total: u64 = s.iter().sum();
                    *s.iter().max().unwrap_or(&0) as f64 * s.len() as f64 / total.max(1) as f64
                }),
            };
            eprintln!(
                "http_pool_{name}/{server}/{round}: {:>7.1}k req/s   p50 {:>7.0} µs   p99 {:>7.0} µs   p99 of plain {:>7.0} µs   \
                 server threads queued {:>5.2} µs/request, preempted {:>5.1}/1k requests, {:>6.1} µs a wait{}",
                row.throughput / 1000.0,
                row.p50.as_secs_f64() * 1e6,
                row.p99.as_secs_f64() * 1e6,
                row.p99_plain.as_secs_f64() * 1e6,
                row.queued_us,
                row.preempted_per_k,
                row.wait_us,
                spread.map_or(String::new(), |s| format!("   connections per loop {s:?}")),
            );
            rows.push(row);
            drop(gen_);
            srv.stop();
        }
    }
    g.finish();
    if !rows.is_empty() {
        table(name, &rows, &servers);
    }
}

/// The side-by-side table of a load: medians over the rounds, and each
/// aio server's ratios to tokio-mt with as many threads, the median of
/// the ratios within each round (rounds drift together on a shared
/// machine).
fn table(name: &str, rows: &[Row], servers: &[&'static str]) {
    let med = |s: &str, f: &dyn Fn(&Row) -> f64| median(rows.iter().filter(|r| r.server == s).map(f).collect());
    let rounds = rows.iter().filter(|r| r.server == rows[0].server).count();
    eprintln!("\n{name} load, medians of {rounds} round(s):");
    eprintln!(
        "| server | req/s | p50 | p99 | p99 of plain requests | most connections on a loop (× share) | server threads queued µs/req | preempted /1k req | µs a wait | req/s vs tokio-mt | p99 vs tokio-mt |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &s in servers {
        let mine: Vec<(usize, &Row)> = rows.iter().enumerate().filter(|(_, r)| r.server == s).collect();
        if mine.is_empty() {
            continue;
        }
        let peer = if s == "aio-1" { "tokio-mt-1" } else { "tokio-mt-2" };
        // The peer's row of the same round: rounds run the servers in order.
        let ratio = |f: fn(&Row) -> f64| {
            if s.starts_with("tokio") {
                return "-".to_string();
            }
            let per_round: Vec<f64> = mine
                .iter()
                .filter_map(|&(i, r)| {
                    let round = rows[..i].iter().filter(|x| x.server == s).count();
                    rows.iter().filter(|x| x.server == peer).nth(round).map(|p| f(r) / f(p))
                })
                .collect();
            if per_round.is_empty() {
                "-".to_string()
            } else {
                let lo = per_round.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = per_round.iter().copied().fold(0.0, f64::max);
                format!("{:.2} ({lo:.2}–{hi:.2})", median(per_round))
            }
        };
        eprintln!(
            "| {s} | {:.1}k | {:.0} µs | {:.0} µs | {:.0} µs | {} | {:.2} | {:.1} | {:.1} | {} | {} |",
            med(s, &|r| r.throughput) / 1000.0,
            med(s, &|r| r.p50.as_secs_f64() * 1e6),
            med(s, &|r| r.p99.as_secs_f64() * 1e6),
            med(s, &|r| r.p99_plain.as_secs_f64() * 1e6),
            if s.starts_with("aio") {
                format!("{:.2}", med(s, &|r| r.max_share.unwrap_or(f64::NAN)))
            } else {
                "-".to_string()
            },
            med(s, &|r| r.queued_us),
            med(s, &|r| r.preempted_per_k),
            med(s, &|r| r.wait_us),
            ratio(|r| r.throughput),
            ratio(|r| r.p99.as_secs_f64()),
        );
    }
    eprintln!();
}

fn benches(c: &mut Criterion) {
    if let Ok(server) = std::env::var("NET_POOL_SERVE") {
        return serve_for_wrk(&server);
    }
    load(c, "uniform", false);
    load(c, "skewed", true);
}

/// The CPU time (ns) and the CPU it last ran on, of thread `tid`.
fn cpu_of(tid: i32) -> (u64, i64) {
    let [run, ..] = schedstat(tid).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    // `processor` is field 39, the 37th after the command.
    let cpu = rest
        .split_whitespace()
        .nth(36)
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    (run, cpu)
}

/// `NET_POOL_SERVE=<server>`: serves until killed, for wrk; every second
/// prints, per server thread, its CPU use, its wait on a run queue (both
/// as a share of the second) and the CPU it last ran on.
fn serve_for_wrk(server: &str) {
    let port = env_usize("NET_POOL_PORT", 3000) as u16;
    let srv = start(server, port).expect("server");
    eprintln!("{server} serving on http://{} (threads {:?})", srv.addr, srv.tids);
    let sample = |tids: &[i32]| tids.iter().map(|&t| (cpu_of(t).0, sched(t).delay)).collect::<Vec<_>>();
    let mut last = (sample(&srv.tids), Instant::now());
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sample(&srv.tids);
        let dt = last.1.elapsed().as_nanos() as f64 / 100.0;
        let per: Vec<String> = srv
            .tids
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                format!(
                    "ran {:.0}% queued {:.0}% on cpu {}",
                    (now[i].0 - last.0[i].0) as f64 / dt,
                    (now[i].1 - last.0[i].1) as f64 / dt,
                    cpu_of(t).1
                )
            })
            .collect();
        eprintln!(
            "connections per loop {:?}; threads: {}",
            srv.spread().unwrap_or_default(),
            per.join(" | ")
        );
        last = (now, Instant::now());
    }
}

criterion_group!(net_pool, benches);
criterion_main!(net_pool);
