//! What the benches share: the runtimes measured beside aio and the
//! spawn-then-join every many-task workload does on each (so a bench
//! reads as its workload, not its scaffolding); on Linux, the
//! thread-per-core runtimes glommio and monoio ([`tpc`]); for the request/response
//! benches (`net_tls`, `net_http`), a server thread's CPU time, latency
//! quantiles, medians and the summary line.
#![allow(dead_code)]

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, BenchmarkId, measurement::WallTime};

/// A criterion group of wall-clock measurements.
pub type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// The group `name` of `c`: throughput `elements` per iteration, `samples`
/// samples (criterion's default is 100).
pub fn group<'a>(c: &'a mut criterion::Criterion, name: &str, elements: u64, samples: usize) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.throughput(criterion::Throughput::Elements(elements));
    g.sample_size(samples);
    g
}

/// tokio's current-thread runtime (timers and I/O enabled): the tokio
/// every bench measures aio beside.
pub fn tokio_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Benchmarks `name`: each iteration runs the future `body` makes to
/// completion on aio's `runner`.
pub fn on_aio<F: Future + 'static>(g: &mut Group<'_>, name: &str, runner: &aio::Runner, body: impl Fn() -> F) {
    g.bench_function(name, |b| b.iter(|| black_box(runner.run(body()))));
}

/// Benchmarks `name`: each iteration blocks on `body`'s future on tokio's
/// runtime `rt`.
pub fn on_tokio<F: Future>(g: &mut Group<'_>, name: &str, rt: &tokio::runtime::Runtime, body: impl Fn() -> F) {
    g.bench_function(name, |b| b.iter(|| black_box(rt.block_on(body()))));
}

/// Benchmarks `name`: each iteration runs `body`'s future on smol's local
/// executor `ex` (which `body` may spawn on), driven by `block_on`.
pub fn on_smol<'a, F: Future>(g: &mut Group<'_>, name: &str, ex: &smol::LocalExecutor<'a>, body: impl Fn() -> F) {
    g.bench_function(name, |b| b.iter(|| black_box(smol::future::block_on(ex.run(body())))));
}

/// Awaits `tasks` in order, keeping what `out` makes of each result.
async fn in_order<J: Future, T>(tasks: Vec<J>, out: impl Fn(J::Output) -> T) -> Vec<T> {
    let mut all = Vec::with_capacity(tasks.len());
    for t in tasks {
        all.push(out(t.await));
    }
    all
}

/// Spawns `n` tasks on the running aio loop, `task(i)` each, then awaits
/// them in spawn order.
pub async fn aio_join<T, F>(n: u64, mut task: impl FnMut(u64) -> F) -> Vec<T>
where
    T: aio::TaskOutput + 'static,
    F: Future<Output = T> + 'static,
{
    in_order((0..n).map(|i| aio::create_task(task(i))).collect(), |r| r.unwrap()).await
}

/// [`aio_join`] on tokio's runtime (`tokio::spawn`).
pub async fn tokio_join<T: Send + 'static, F>(n: u64, mut task: impl FnMut(u64) -> F) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
{
    in_order((0..n).map(|i| tokio::spawn(task(i))).collect(), |r| r.unwrap()).await
}

/// [`aio_join`] on tokio's `LocalSet` (`spawn_local`: tasks need not be `Send`).
pub async fn tokio_local_join<T: 'static, F: Future<Output = T> + 'static>(
    n: u64,
    mut task: impl FnMut(u64) -> F,
) -> Vec<T> {
    in_order((0..n).map(|i| tokio::task::spawn_local(task(i))).collect(), |r| {
        r.unwrap()
    })
    .await
}

/// Runs `tasks` concurrently on `rt`'s thread (tasks of a `LocalSet`,
/// which need not be `Send`); their outputs, in order.
pub fn on_local<T: 'static, F: Future<Output = T> + 'static>(
    rt: &tokio::runtime::Runtime,
    tasks: impl Iterator<Item = F>,
) -> Vec<T> {
    let tasks: Vec<F> = tasks.collect();
    rt.block_on(tokio::task::LocalSet::new().run_until(async move {
        in_order(tasks.into_iter().map(tokio::task::spawn_local).collect(), |r| {
            r.unwrap()
        })
        .await
    }))
}

/// [`aio_join`] on smol's local executor `ex`.
pub async fn smol_join<'a, T: 'a, F>(ex: &smol::LocalExecutor<'a>, n: u64, mut task: impl FnMut(u64) -> F) -> Vec<T>
where
    F: Future<Output = T> + 'a,
{
    in_order((0..n).map(|i| ex.spawn(task(i))).collect(), |t| t).await
}

/// Counts how often a lock changes hands, so a contended-lock workload
/// can check that it measured hand-offs: a FIFO lock held across a yield
/// passes to the next waiter at every release.
#[derive(Default)]
pub struct Handoffs {
    holder: std::cell::Cell<u64>,
    n: std::cell::Cell<u64>,
}

impl Handoffs {
    /// Task `task` (numbered from 0) holds the lock now.
    pub fn held_by(&self, task: u64) {
        if self.holder.replace(task + 1) != task + 1 {
            self.n.set(self.n.get() + 1);
        }
    }

    /// Panics unless the lock changed hands at least `at_least` times.
    pub fn check(&self, who: &str, at_least: u64) {
        let n = self.n.get();
        assert!(
            n >= at_least,
            "{who}: the lock changed hands {n} times, fewer than {at_least}"
        );
    }

    /// How often the lock changed hands.
    pub fn count(&self) -> u64 {
        self.n.get()
    }
}

/// The thread-per-core runtimes (Linux, io_uring): glommio and monoio,
/// each built once per bench group. Either may be unable to run here (no
/// io_uring, too little locked memory for glommio's rings): its builder
/// then says why on stderr and the group measures the other runtimes
/// only; nothing is measured in its place.
#[cfg(target_os = "linux")]
pub mod tpc {
    use std::cell::{Cell, RefCell};
    use std::future::{Future, poll_fn};
    use std::hint::black_box;
    use std::rc::Rc;
    use std::task::{Poll, Waker};

    use super::{Group, in_order};

    /// glommio's executor, or `None` (said why) when it cannot run here.
    pub fn glommio() -> Option<glommio::LocalExecutor> {
        match glommio::LocalExecutorBuilder::default().make() {
            Ok(ex) => Some(ex),
            Err(e) => {
                eprintln!("glommio cannot run here, not measured: {e} (try `ulimit -l unlimited`)");
                None
            }
        }
    }

    /// monoio's runtime: io_uring, falling back to epoll (its `legacy`
    /// driver) where io_uring is not allowed. No timer: no workload using
    /// monoio sleeps.
    pub type Monoio = monoio::FusionRuntime<monoio::IoUringDriver, monoio::LegacyDriver>;

    /// monoio's runtime, or `None` (said why) when it cannot run here.
    pub fn monoio() -> Option<Monoio> {
        match monoio::RuntimeBuilder::<monoio::FusionDriver>::new().build() {
            Ok(rt) => Some(rt),
            Err(e) => {
                eprintln!("monoio cannot run here, not measured: {e}");
                None
            }
        }
    }

    /// Benchmarks `name` on glommio's executor `ex` (if it runs here): each
    /// iteration runs the future `body` makes to completion.
    pub fn on_glommio<F: Future>(
        g: &mut Group<'_>,
        name: &str,
        ex: &Option<glommio::LocalExecutor>,
        body: impl Fn() -> F,
    ) {
        if let Some(ex) = ex {
            g.bench_function(name, |b| b.iter(|| black_box(ex.run(body()))));
        }
    }

    /// Benchmarks `name` on monoio's runtime `rt` (if it runs here).
    pub fn on_monoio<F: Future>(g: &mut Group<'_>, name: &str, rt: &mut Option<Monoio>, body: impl Fn() -> F) {
        if let Some(rt) = rt {
            g.bench_function(name, |b| b.iter(|| black_box(rt.block_on(body()))));
        }
    }

    /// A yield for monoio that lets the other tasks run. monoio runs a
    /// task that woke itself during its poll again before anything else
    /// queued (its scheduler's `yield_now` puts it at the queue's front),
    /// so futures-lite's `yield_now` hands the thread to no one: 100 tasks
    /// that take a lock and yield inside it passed it on 100 times in
    /// 100k acquisitions ([`Handoffs`](super::Handoffs) counted). A task
    /// is queued at the back only when woken after its poll, so here a
    /// yielding task leaves its waker to a pump task, woken once per batch
    /// of yields, which wakes them in order: one extra poll (the pump's)
    /// per batch.
    #[derive(Default)]
    pub struct MonoioYield {
        yielded: RefCell<Vec<Waker>>,
        pump: RefCell<Option<Waker>>,
        done: Cell<bool>,
    }

    impl MonoioYield {
        /// Runs `body` with a pump task serving its yields.
        pub async fn run<F: Future>(body: impl FnOnce(Rc<MonoioYield>) -> F) -> F::Output {
            let y = Rc::new(MonoioYield::default());
            let pump = monoio::spawn({
                let y = y.clone();
                poll_fn(move |cx| {
                    for w in y.yielded.take() {
                        w.wake();
                    }
                    if y.done.get() {
                        return Poll::Ready(());
                    }
                    *y.pump.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                })
            });
            let out = body(y.clone()).await;
            y.done.set(true);
            if let Some(w) = y.pump.take() {
                w.wake();
            }
            pump.await;
            out
        }

        /// Yields: the task runs again after everything queued now.
        pub async fn yield_now(&self) {
            let mut yielded = false;
            poll_fn(|cx| {
                if yielded {
                    return Poll::Ready(());
                }
                yielded = true;
                self.yielded.borrow_mut().push(cx.waker().clone());
                if let Some(w) = self.pump.take() {
                    w.wake();
                }
                Poll::Pending
            })
            .await
        }
    }

    /// [`aio_join`](super::aio_join) on glommio (`spawn_local`).
    pub async fn glommio_join<T: 'static, F>(n: u64, mut task: impl FnMut(u64) -> F) -> Vec<T>
    where
        F: Future<Output = T> + 'static,
    {
        in_order((0..n).map(|i| glommio::spawn_local(task(i))).collect(), |t| t).await
    }

    /// [`aio_join`](super::aio_join) on monoio (`monoio::spawn`).
    pub async fn monoio_join<T: 'static, F>(n: u64, mut task: impl FnMut(u64) -> F) -> Vec<T>
    where
        F: Future<Output = T> + 'static,
    {
        in_order((0..n).map(|i| monoio::spawn(task(i))).collect(), |t| t).await
    }
}

/// A server thread: its address and kernel thread id (for CPU time).
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub tid: i32,
}

/// This thread's kernel id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Where a server thread says it is up (`None`: its runtime cannot run
/// here).
pub type Ready = std::sync::mpsc::Sender<Option<Running>>;

/// Starts the server thread `name`, which runs `serve` and says on its
/// [`Ready`] when it listens; waits for that. With pinning on (see
/// [`run_rounds`]) the thread runs on CPU 1.
pub fn start_thread(name: &str, serve: impl FnOnce(Ready) + Send + 'static) -> Option<Running> {
    let (tx, rx) = std::sync::mpsc::channel();
    let pinned = PINNED.load(std::sync::atomic::Ordering::Relaxed);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if pinned {
                pin(1);
            }
            serve(tx)
        })
        .ok()?;
    rx.recv().ok().flatten()
}

/// Whether [`run_rounds`] pins the generator to CPU 0 and servers to CPU 1.
static PINNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // within it, and sched_setaffinity reads it for the calling thread.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if !ok {
        eprintln!("cannot pin to CPU {cpu}: {}", std::io::Error::last_os_error());
    }
}

/// How many times thread `tid` of this process has gone to sleep (its
/// voluntary context switches).
pub fn thread_sleeps(tid: i32) -> u64 {
    status_counter(tid, "voluntary_ctxt_switches")
}

/// The counter `name` of `/proc/self/task/<tid>/status`
/// (`voluntary_ctxt_switches`, `nonvoluntary_ctxt_switches`, ...); 0 when
/// it is missing.
pub fn status_counter(tid: i32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Thread `tid`'s `/proc/self/task/<tid>/schedstat`: nanoseconds on a
/// CPU, nanoseconds waited on a run queue while runnable, and how many
/// times it waited; `None` where the kernel has no schedstat.
pub fn schedstat(tid: i32) -> Option<[u64; 3]> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    let mut f = s.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some([f.next()??, f.next()??, f.next()??])
}

/// Echoes what stream `$s` reads back to it until EOF or an error: the
/// connection loop of the peers measured beside aio (`$s` a tokio or a
/// futures-io stream, its `AsyncReadExt` and `AsyncWriteExt` in scope;
/// `flush` after each write where the stream buffers, as TLS does).
/// Returns from the enclosing task.
#[allow(unused_macros)]
macro_rules! echo_until_eof {
    ($s:ident $(, $flush:ident)?) => {{
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match $s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if $s.write_all(&buf[..n]).await.is_err() $(|| $s.$flush().await.is_err())? {
                return;
            }
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use echo_until_eof;

/// aio's echo handler on its streams: copies until EOF; EOF, a reset or
/// an error ends the connection quietly, as in the peers' servers.
pub async fn aio_echo(mut r: aio::StreamReader, w: aio::StreamWriter) {
    loop {
        let data = match r.read(64 * 1024).await {
            Ok(data) if !data.is_empty() => data,
            _ => return,
        };
        w.write(&data);
        if w.drain().await.is_err() {
            return;
        }
    }
}

/// Says the aio `server` is up (on [`Ready`]), then serves until the
/// process ends.
pub async fn serve_announced(server: aio::Server, tx: &Ready) -> std::io::Result<()> {
    announce(tx, server.sockets()[0]);
    server.serve_forever().await?;
    Ok(())
}

/// Says, from the server's thread, that it listens on `addr`.
pub fn announce(tx: &Ready, addr: std::net::SocketAddr) {
    let _ = tx.send(Some(Running { addr, tid: gettid() }));
}

/// The spin window of the `-spin` aio servers
/// ([`aio::Builder::spin_before_park`]).
pub const SPIN: Duration = Duration::from_micros(50);

/// The loop builder of aio server `name`: `aio-poll` or `aio-uring`, with
/// a `-spin` suffix for a loop that spins [`SPIN`] before it sleeps.
#[allow(dead_code)]
pub fn aio_builder(name: &str) -> aio::Builder {
    let (backend, spin) = match name.strip_suffix("-spin") {
        Some(base) => (base, SPIN),
        None => (name, Duration::ZERO),
    };
    let backend = match backend {
        "aio-poll" => aio::Backend::Poll,
        "aio-uring" => aio::Backend::Uring,
        _ => panic!("no aio server {name:?}"),
    };
    aio::Builder::new().backend(backend).spin_before_park(spin)
}

/// Runs `serve(tx)` on a loop built by `builder` on this thread; tells the
/// bench `None` when its backend cannot run here.
pub fn on_aio_loop<F: Future<Output = std::io::Result<()>> + 'static>(
    builder: aio::Builder,
    tx: Ready,
    serve: impl FnOnce(Ready) -> F,
) {
    let name = format!("{builder:?}");
    let lp = match builder.build() {
        Ok(lp) => lp,
        Err(e) => {
            eprintln!("{name} unavailable: {e}");
            let _ = tx.send(None);
            return;
        }
    };
    aio::Runner::with_loop(lp).run(serve(tx)).unwrap();
}

/// The CPU time of a thread of this process (user plus system), in
/// nanoseconds from `/proc/.../schedstat`, or in clock ticks from
/// `/proc/.../stat` where there is no schedstat.
pub fn thread_cpu(tid: i32) -> Duration {
    if let Some([ns, ..]) = schedstat(tid) {
        return Duration::from_nanos(ns);
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 (11 and 12 after the state).
    Duration::from_micros((ticks(11) + ticks(12)) * 1_000_000 / hz.max(1))
}

/// Nanoseconds since `t`, saturated to fit a `u32`.
pub fn nanos_since(t: Instant) -> u32 {
    t.elapsed().as_nanos().min(u32::MAX as u128) as u32
}

/// The `per_mille`/1000 quantile of `lat` (nanoseconds), sorting it.
pub fn quantile(lat: &mut [u32], per_mille: usize) -> Duration {
    if lat.is_empty() {
        return Duration::ZERO;
    }
    lat.sort_unstable();
    let i = (lat.len() * per_mille / 1000).min(lat.len() - 1);
    Duration::from_nanos(u64::from(lat[i]))
}

/// The median of `v` (NaN if empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The servers the variable `var` names (comma-separated, in that order),
/// else all of `all`.
pub fn chosen(var: &str, all: &[&'static str]) -> Vec<&'static str> {
    let Ok(list) = std::env::var(var) else {
        return all.to_vec();
    };
    list.split(',')
        .map(|n| {
            all.iter()
                .copied()
                .find(|s| *s == n.trim())
                .unwrap_or_else(|| panic!("{var}: no server {n:?}"))
        })
        .collect()
}

/// `<PREFIX>_ROUNDS`, else 1.
pub fn rounds(var: &str) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

/// One server's figures from one round of a group.
pub struct Round {
    pub server: &'static str,
    pub round: usize,
    /// Requests per second over every request of the round.
    pub throughput: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Server CPU per request, µs.
    pub server_cpu: f64,
    /// The server thread's sleeps per 1,000 requests.
    pub server_sleeps: f64,
    /// The generator's (the bench thread's) CPU per request, µs.
    pub gen_cpu: f64,
}

impl Round {
    pub fn print(&self, group: &str, requests: u64) {
        eprintln!(
            "{group}/{:<16} {:>8.1}k req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   server CPU {:>6.2} µs/request   sleeps/1k {:>6.1}   generator CPU {:>6.2} µs/request   ({requests} requests)",
            format!("{}/{}", self.server, self.round),
            self.throughput / 1000.0,
            self.p50.as_secs_f64() * 1e6,
            self.p99.as_secs_f64() * 1e6,
            self.server_cpu,
            self.server_sleeps,
            self.gen_cpu,
        );
    }
}

/// The medians over the rounds of a group, per server, with throughput
/// and server CPU as ratios to `base` (tokio's) in the same round.
pub fn summarize(group: &str, rounds: &[Round], base: &str) {
    let mut servers: Vec<&str> = Vec::new();
    for r in rounds {
        if !servers.contains(&r.server) {
            servers.push(r.server);
        }
    }
    let base_of = |round: usize| rounds.iter().find(|r| r.round == round && r.server == base);
    for s in servers {
        let mine: Vec<&Round> = rounds.iter().filter(|r| r.server == s).collect();
        let ratio = |f: fn(&Round) -> f64| {
            let v: Vec<f64> = mine
                .iter()
                .filter_map(|r| base_of(r.round).map(|b| f(r) / f(b)))
                .collect();
            if v.is_empty() {
                "    -".to_string()
            } else {
                format!("{:.2}", median(v))
            }
        };
        eprintln!(
            "{group}/{s:<12} median of {}: {:>8.1}k req/s (x{} {base})   p99 {:>8.1} µs   server CPU {:>6.2} µs/request (x{} {base})   sleeps/1k {:>6.1}   generator CPU {:>6.2} µs/request",
            mine.len(),
            median(mine.iter().map(|r| r.throughput).collect()) / 1000.0,
            ratio(|r| r.throughput),
            median(mine.iter().map(|r| r.p99.as_secs_f64() * 1e6).collect()),
            median(mine.iter().map(|r| r.server_cpu).collect()),
            ratio(|r| r.server_cpu),
            median(mine.iter().map(|r| r.server_sleeps).collect()),
            median(mine.iter().map(|r| r.gen_cpu).collect()),
        );
    }
}

/// Benchmarks `id`, each iteration `per_iter` requests that `run` sends
/// (returning how long they took); returns how many requests ran and
/// their time, over every sample.
pub fn measure(
    g: &mut Group<'_>,
    id: BenchmarkId,
    per_iter: u64,
    mut run: impl FnMut(u64) -> Duration,
) -> (u64, Duration) {
    let (mut requests, mut elapsed) = (0u64, Duration::ZERO);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            requests += iters * per_iter;
            let d = run(iters * per_iter);
            elapsed += d;
            black_box(d)
        })
    });
    (requests, elapsed)
}

/// A closed-loop load generator of a group: runs `n` requests against one
/// server and keeps their latencies (nanoseconds).
pub trait Load {
    /// Runs `n` requests; returns how long they took.
    fn run(&mut self, n: u64) -> Duration;
    /// The latencies of the requests run so far.
    fn latencies(&mut self) -> &mut Vec<u32>;
}

/// The rounds of group `name`, `per_iter` requests an iteration (10
/// samples): each server of `all` (or those `<prefix>_SERVERS` names),
/// started by `start`, loaded by the generator `load` makes for its
/// address, `<prefix>_ROUNDS` times (1 by default) alternating; prints
/// each round and the summary against tokio-ct. With `<prefix>_PIN` set
/// the generator runs on CPU 0 and the servers on CPU 1.
pub fn run_rounds<L: Load>(
    c: &mut criterion::Criterion,
    name: &str,
    per_iter: u64,
    prefix: &str,
    all: &[&'static str],
    mut start: impl FnMut(&'static str) -> Option<Running>,
    mut load: impl FnMut(std::net::SocketAddr) -> L,
) {
    let mut g = group(c, name, per_iter, 10);
    let rounds = rounds(&format!("{prefix}_ROUNDS"));
    let servers = chosen(&format!("{prefix}_SERVERS"), all);
    if std::env::var_os(format!("{prefix}_PIN")).is_some() {
        PINNED.store(true, std::sync::atomic::Ordering::Relaxed);
        pin(0);
    }
    let me = gettid();
    let mut done = Vec::new();
    for (round, server) in (1..=rounds).flat_map(|r| servers.iter().map(move |&s| (r, s))) {
        let Some(srv) = start(server) else { continue };
        let mut gen_ = load(srv.addr);
        let (cpu0, sleeps0, gen0) = (thread_cpu(srv.tid), thread_sleeps(srv.tid), thread_cpu(me));
        let (requests, elapsed) = measure(&mut g, BenchmarkId::new(server, round), per_iter, |n| gen_.run(n));
        if requests == 0 {
            continue; // filtered out
        }
        let cpu = thread_cpu(srv.tid).saturating_sub(cpu0);
        let per_req = |d: Duration| d.as_nanos() as f64 / requests as f64 / 1000.0;
        let r = Round {
            server,
            round,
            throughput: requests as f64 / elapsed.as_secs_f64(),
            p50: quantile(gen_.latencies(), 500),
            p99: quantile(gen_.latencies(), 990),
            server_cpu: per_req(cpu),
            server_sleeps: thread_sleeps(srv.tid).saturating_sub(sleeps0) as f64 * 1000.0 / requests as f64,
            gen_cpu: per_req(thread_cpu(me).saturating_sub(gen0)),
        };
        r.print(name, requests);
        done.push(r);
    }
    summarize(name, &done, "tokio-ct");
    g.finish();
}
