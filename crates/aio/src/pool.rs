//! [`LoopPool`]: asyncio's loop on every core.
//!
//! `n` loops on `n` threads, each an ordinary aio loop whose tasks need
//! not be `Send` and never leave it. The pool owns the threads' lifetime
//! and spreads what may move:
//!
//! - connections, when they arrive ([`LoopPool::start_server`],
//!   [`LoopPool::serve`]): each goes to a loop that holds fewer
//!   connections than its siblings (see [`Spread`]), and stays there;
//! - `Send` futures submitted to the pool ([`LoopPool::spawn`]): each is
//!   queued on the least busy loop, and a loop that runs out of work takes
//!   queued ones from a busier sibling before they start. A task, once
//!   started, stays on its loop.
//!
//! What each loop does is visible from any thread ([`LoopPool::metrics`]),
//! and those figures are what the balancing reads.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aio_core::{ConcurrentFuture, Job, LoopHandle, LoopMetrics, TaskError};

use crate::backend::{Builder, SendBuilder};

/// Movable work queued on one loop, not started yet.
#[derive(Default)]
struct Jobs {
    queue: Mutex<VecDeque<Job>>,
    len: AtomicUsize,
    /// A drain callback is queued on the loop.
    scheduled: AtomicBool,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, job: Job) {
        let mut q = self.lock();
        q.push_back(job);
        self.len.store(q.len(), Ordering::Release);
    }

    fn pop(&self) -> Option<Job> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.lock();
        let job = q.pop_front();
        self.len.store(q.len(), Ordering::Release);
        job
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

struct Inner {
    handles: Vec<LoopHandle>,
    jobs: Vec<Jobs>,
    /// Set by `shutdown`: no new work is taken.
    stopping: AtomicBool,
    /// Where the search for the least busy loop starts (rotates, so ties
    /// spread).
    next: AtomicUsize,
    #[cfg(feature = "net")]
    spread: aio_net::Spread,
    #[cfg(feature = "net")]
    servers: Mutex<Vec<aio_net::PoolServer>>,
}

impl Inner {
    /// How busy loop `i` is for placing movable work: work waiting on it
    /// (its ready queue and its queued jobs), plus one if it is awake.
    fn load(&self, i: usize) -> usize {
        let m = self.handles[i].metrics();
        m.ready + self.jobs[i].len() + usize::from(!m.parked)
    }

    fn spawn<F>(self: &Arc<Self>, fut: F) -> ConcurrentFuture<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (job, result) = Job::new(fut);
        if !self.stopping.load(Ordering::Acquire) {
            let i = self.least_loaded();
            self.place(i, job);
        }
        result
    }

    fn least_loaded(&self) -> usize {
        let n = self.handles.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = (usize::MAX, start);
        for k in 0..n {
            let i = (start + k) % n;
            let l = self.load(i);
            if l < best.0 {
                best = (l, i);
                if l == 0 {
                    break;
                }
            }
        }
        best.1
    }

    /// Queues `job` on loop `i` and makes sure the loop will look at its
    /// queue.
    fn place(self: &Arc<Self>, i: usize, job: Job) {
        self.jobs[i].push(job);
        self.schedule_drain(i);
    }

    fn schedule_drain(self: &Arc<Self>, i: usize) {
        if self.jobs[i].scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        if self.handles[i].call_soon_threadsafe(move || inner.drain(i)).is_err() {
            // Closed: the jobs are dropped, their results cancelled.
            drop(std::mem::take(&mut *self.jobs[i].lock()));
        }
    }

    /// On loop `i`: starts one queued job, and comes back at the next turn
    /// while more wait — so jobs queued behind a busy turn stay in the
    /// queue, where an idle sibling can take them, instead of piling up
    /// as tasks here. Wakes a sleeping sibling when more than one waits.
    fn drain(self: Arc<Self>, i: usize) {
        if let Some(job) = self.jobs[i].pop() {
            job.start();
        }
        if self.jobs[i].len() > 0 {
            if self.jobs[i].len() > 1 {
                self.wake_idle_sibling(i);
            }
            let inner = self.clone();
            crate::get_running_loop().call_soon(move || inner.drain(i));
            return;
        }
        self.jobs[i].scheduled.store(false, Ordering::Release);
        // A job queued between the pop and the store.
        if self.jobs[i].len() > 0 {
            self.schedule_drain(i);
        }
    }

    fn wake_idle_sibling(&self, i: usize) {
        if let Some(h) = self
            .handles
            .iter()
            .enumerate()
            .find(|(j, h)| *j != i && h.metrics().parked)
        {
            h.1.wake();
        }
    }

    /// Loop `i`'s idle hook: it has nothing to run, so it takes the first
    /// job waiting in its own queue or, failing that, in the busiest
    /// sibling's.
    fn steal(&self, i: usize) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        if let Some(job) = self.jobs[i].pop() {
            return job.start();
        }
        let victim = (0..self.jobs.len())
            .filter(|&j| j != i)
            .max_by_key(|&j| self.jobs[j].len())
            .filter(|&j| self.jobs[j].len() > 0);
        if let Some(job) = victim.and_then(|j| self.jobs[j].pop()) {
            job.start();
        }
    }
}

/// A `Send + Sync` handle to a [`LoopPool`] ([`LoopPool::handle`]), for
/// code on its loops (a service placing costly work on the least busy
/// loop) or on other threads: movable work, the loops' handles and
/// metrics. It does not keep the loops running: after the pool shut
/// down, what it spawns resolves as cancelled.
#[derive(Clone)]
pub struct PoolHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolHandle")
            .field("loops", &self.inner.handles.len())
            .finish()
    }
}

impl PoolHandle {
    /// [`LoopPool::spawn`].
    pub fn spawn<F>(&self, fut: F) -> ConcurrentFuture<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(fut)
    }

    /// [`LoopPool::handles`].
    pub fn handles(&self) -> &[LoopHandle] {
        &self.inner.handles
    }

    /// [`LoopPool::metrics`].
    pub fn metrics(&self) -> Vec<LoopMetrics> {
        self.inner.handles.iter().map(LoopHandle::metrics).collect()
    }
}

/// The scheduler slice a pool's loop threads ask for by default
/// ([`PoolBuilder::scheduler_slice`]).
const DEFAULT_SLICE: Duration = Duration::from_micros(100);

/// Configures a [`LoopPool`]: how many loops, how each is built, whether
/// threads are pinned, how connections are spread.
///
/// # Examples
/// ```
/// let pool = aio::LoopPool::builder(2)
///     .loop_builder(aio::Builder::new().backend(aio::Backend::Poll))
///     .build()
///     .unwrap();
/// assert_eq!(pool.len(), 2);
/// pool.shutdown(std::time::Duration::ZERO);
/// ```
#[derive(Debug)]
pub struct PoolBuilder {
    n: usize,
    builder: Builder,
    /// `None`: pin when there are CPUs enough.
    pin: Option<bool>,
    /// The scheduler slice each loop thread asks for.
    slice: Option<Duration>,
    #[cfg(feature = "net")]
    spread: aio_net::Spread,
}

impl PoolBuilder {
    /// Each loop is built from a copy of `builder` (backend, debug mode,
    /// eager tasks, thread pool, shutdown timeout, paused clock).
    pub fn loop_builder(mut self, builder: Builder) -> PoolBuilder {
        self.builder = builder;
        self
    }

    /// Pins loop `i`'s thread to the `i`-th CPU this process may use
    /// (modulo their number). By default loops are pinned when the pool
    /// has no more loops than the process has CPUs: unpinned, the
    /// scheduler sometimes puts two loops on one core while other work
    /// holds the second (each loop then gets half a core and every
    /// connection on both waits for it: the p99 of the pool's benchmark
    /// went from about 3 ms to 8 ms whenever that happened), and a
    /// thread-per-core loop cannot hand its connections to a sibling the
    /// way a work-stealing runtime does. Pass `false` where the pool
    /// shares its cores with work that may hold one of them for long.
    pub fn pin_cpus(mut self, on: bool) -> PoolBuilder {
        self.pin = Some(on);
        self
    }

    /// The time slice each loop thread asks of the scheduler
    /// ([`aio::set_scheduler_slice`](crate::set_scheduler_slice); Linux
    /// 6.12 and later, elsewhere nothing changes): by default 0.1 ms, the
    /// shortest the kernel grants, against its default of 0.7–3 ms. A
    /// thread with a short slice is put back on its CPU sooner when it
    /// wakes, ahead of threads that ran longer, with no larger share of
    /// the CPU. On cores shared with other busy threads a loop otherwise
    /// waits out their slices while its connections wait for it: in the
    /// pool's benchmark on two cores shared with the load generator, the
    /// short slice gave a lower p99 in every round (by 6–24%), and took it
    /// from 1.20× to 1.03× tokio's work-stealing runtime's under skewed
    /// load. `None` keeps the scheduler's default.
    pub fn scheduler_slice(mut self, slice: Option<Duration>) -> PoolBuilder {
        self.slice = slice;
        self
    }

    /// How the pool's servers spread connections (default
    /// [`Spread::Balanced`](aio_net::Spread::Balanced)); the `net` feature.
    #[cfg(feature = "net")]
    pub fn spread(mut self, spread: aio_net::Spread) -> PoolBuilder {
        self.spread = spread;
        self
    }

    /// Starts the loops, each on its own thread (`aio-loop-<i>`), running
    /// until [`LoopPool::shutdown`].
    ///
    /// # Errors
    /// A loop cannot be built (its backend cannot run) or a thread cannot
    /// be spawned; the loops already started are shut down.
    pub fn build(self) -> io::Result<LoopPool> {
        let n = self.n.max(1);
        let jobs = (0..n).map(|_| Jobs::default()).collect();
        let (tx, rx) = std::sync::mpsc::channel::<(usize, io::Result<LoopHandle>)>();
        let (go_tx, go_rx): (Vec<_>, Vec<_>) = (0..n).map(|_| std::sync::mpsc::channel::<Option<Arc<Inner>>>()).unzip();
        let mut threads = Vec::with_capacity(n);
        let cpus = aio_core::allowed_cpus().unwrap_or_default();
        let pin = !cpus.is_empty() && self.pin.unwrap_or(n <= cpus.len());
        let slice = self.slice;
        for (i, go) in go_rx.into_iter().enumerate() {
            let builder = SendBuilder::new(&self.builder);
            let tx = tx.clone();
            let pin = pin.then(|| cpus[i % cpus.len()]);
            let t = std::thread::Builder::new()
                .name(format!("aio-loop-{i}"))
                .spawn(move || loop_thread(i, builder, pin, slice, tx, go));
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    drop(go_tx);
                    join_all(threads);
                    return Err(e);
                }
            }
        }
        drop(tx);
        let mut handles: Vec<Option<LoopHandle>> = vec![None; n];
        let mut failed = None;
        for (i, h) in rx.iter().take(n) {
            match h {
                Ok(h) => handles[i] = Some(h),
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed.or_else(|| {
            handles
                .iter()
                .any(Option::is_none)
                .then(|| io::Error::other("a loop thread ended before its loop started"))
        }) {
            drop(go_tx);
            join_all(threads);
            return Err(e);
        }
        let inner = Arc::new(Inner {
            handles: handles.into_iter().map(|h| h.expect("checked above")).collect(),
            jobs,
            stopping: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            #[cfg(feature = "net")]
            spread: self.spread,
            #[cfg(feature = "net")]
            servers: Mutex::new(Vec::new()),
        });
        for g in &go_tx {
            let _ = g.send(Some(inner.clone()));
        }
        Ok(LoopPool {
            inner,
            threads: Mutex::new(threads),
        })
    }
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    for t in threads {
        let _ = t.join();
    }
}

/// A loop thread: builds its loop, says so, waits for the pool, then runs
/// until told to stop and closes the loop (cancelling what is left).
fn loop_thread(
    i: usize,
    builder: SendBuilder,
    pin: Option<usize>,
    slice: Option<Duration>,
    tx: std::sync::mpsc::Sender<(usize, io::Result<LoopHandle>)>,
    go: std::sync::mpsc::Receiver<Option<Arc<Inner>>>,
) {
    if let Some(cpu) = pin {
        if let Err(e) = aio_core::pin_current_thread(cpu) {
            log::warn!("aio: cannot pin loop {i} to CPU {cpu}: {e}");
        }
    }
    if let Some(slice) = slice {
        if let Err(e) = aio_core::set_scheduler_slice(slice) {
            log::debug!("aio: loop {i} keeps the scheduler's default slice: {e}");
        }
    }
    let lp = match builder.builder().build() {
        Ok(lp) => lp,
        Err(e) => {
            let _ = tx.send((i, Err(e)));
            return;
        }
    };
    let _ = tx.send((i, Ok(lp.handle())));
    drop(tx);
    let Ok(Some(inner)) = go.recv() else {
        lp.close();
        return;
    };
    let hook = {
        let inner = Arc::downgrade(&inner);
        move || {
            if let Some(inner) = inner.upgrade() {
                inner.steal(i);
            }
        }
    };
    drop(inner);
    lp.on_idle(Some(hook));
    lp.run_forever();
    lp.close();
}

/// `n` asyncio loops on `n` threads, for servers that want every core,
/// each loop still asyncio's: its tasks need not be `Send` and never move.
/// The pool starts the threads, spreads connections and movable work over
/// them, shows their load, and stops them all together.
///
/// - [`run`](LoopPool::run): runs `make(i)` on loop `i`, for every loop,
///   and returns the outputs (what [`run_per_core`](crate::run_per_core)
///   does);
/// - [`start_server`](LoopPool::start_server) and, with the `hyper`
///   feature, [`serve`](LoopPool::serve): one server over every loop, each
///   connection handled on the loop with room for it ([`Spread`](aio_net::Spread));
/// - [`spawn`](LoopPool::spawn): a `Send` future, placed on the least
///   busy loop (and taken by an idle one if it waits);
/// - [`handles`](LoopPool::handles): a [`LoopHandle`] per loop, for
///   `call_soon_threadsafe` and `run_coroutine_threadsafe`;
/// - [`metrics`](LoopPool::metrics): each loop's [`LoopMetrics`];
/// - [`shutdown`](LoopPool::shutdown): stop accepting, let connections
///   finish within a grace period, cancel the rest, close every loop.
///   Dropping the pool shuts it down with no grace.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// let pool = aio::LoopPool::new(2).unwrap();
/// let server = pool
///     .start_server("127.0.0.1:0", |mut r: aio::StreamReader, w: aio::StreamWriter| async move {
///         let line = r.readline().await?;
///         w.write(&line);
///         w.drain().await?;
///         Ok::<_, std::io::Error>(())
///     })
///     .unwrap();
/// let addr = server.local_addr();
/// let echoed = aio::run(async move {
///     let (mut r, w) = aio::open_connection("127.0.0.1", addr.port()).await?;
///     w.write(b"hi\n");
///     r.readline().await
/// });
/// assert_eq!(echoed.unwrap(), b"hi\n");
/// let doubled = pool.spawn(async { 21 * 2 }).wait().unwrap();
/// assert_eq!(doubled, 42);
/// pool.shutdown(Duration::from_secs(5));
/// ```
pub struct LoopPool {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for LoopPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopPool")
            .field("loops", &self.len())
            .field("stopping", &self.inner.stopping.load(Ordering::Relaxed))
            .finish()
    }
}

impl LoopPool {
    /// A pool of `n` loops (at least one) with the default backend.
    ///
    /// # Errors
    /// As [`PoolBuilder::build`].
    pub fn new(n: usize) -> io::Result<LoopPool> {
        LoopPool::builder(n).build()
    }

    /// A [`PoolBuilder`] for `n` loops.
    pub fn builder(n: usize) -> PoolBuilder {
        PoolBuilder {
            n,
            builder: Builder::new(),
            pin: None,
            slice: Some(DEFAULT_SLICE),
            #[cfg(feature = "net")]
            spread: aio_net::Spread::default(),
        }
    }

    /// How many loops the pool runs.
    pub fn len(&self) -> usize {
        self.inner.handles.len()
    }

    /// Always `false`: a pool has at least one loop.
    pub fn is_empty(&self) -> bool {
        self.inner.handles.is_empty()
    }

    /// A handle per loop, in order.
    pub fn handles(&self) -> &[LoopHandle] {
        &self.inner.handles
    }

    /// Each loop's load, in order ([`LoopHandle::metrics`]).
    pub fn metrics(&self) -> Vec<LoopMetrics> {
        self.inner.handles.iter().map(LoopHandle::metrics).collect()
    }

    /// Movable work queued on each loop and not started yet.
    pub fn queued(&self) -> Vec<usize> {
        self.inner.jobs.iter().map(Jobs::len).collect()
    }

    /// Runs `make(i)` as a task on loop `i`, for every loop, blocks until
    /// all have finished and returns their outputs in order. The futures
    /// need not be `Send` (each is made on its loop's thread). Other tasks
    /// those futures started go on running on their loops.
    ///
    /// # Panics
    /// When called on one of the pool's own loops (it would wait for
    /// itself), or when one of the futures panicked or was cancelled (the
    /// panic continues here once all have finished). See
    /// [`try_run`](LoopPool::try_run).
    #[track_caller]
    pub fn run<M, F>(&self, make: M) -> Vec<F::Output>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let results = self.try_run(make);
        let mut out = Vec::with_capacity(results.len());
        let mut failure = None;
        for r in results {
            match r {
                Ok(v) => out.push(v),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            None => out,
            Some(TaskError::Panicked(p)) => p.resume(),
            Some(e) => panic!("aio: a loop's future did not complete: {e}"),
        }
    }

    /// [`run`](LoopPool::run), with each future's panic or cancellation
    /// as its result.
    ///
    /// # Panics
    /// When called on one of the pool's own loops.
    #[track_caller]
    pub fn try_run<M, F>(&self, make: M) -> Vec<Result<F::Output, TaskError>>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.assert_outside();
        let make = Arc::new(make);
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, h) in self.inner.handles.iter().enumerate() {
            let (make, tx) = (make.clone(), tx.clone());
            let tx_closed = tx.clone();
            let sent = h.call_soon_threadsafe(move || {
                // Made in the task: a `make` that panics fails this task only.
                let task = crate::create_task(async move { Output(make(i).await) });
                drop(crate::create_task(async move {
                    let _ = tx.send((i, task.await.map(|o| o.0)));
                }));
            });
            if sent.is_err() {
                let _ = tx_closed.send((
                    i,
                    Err(TaskError::Cancelled(crate::Cancelled::with_message(
                        "the loop is closed",
                    ))),
                ));
            }
        }
        drop(tx);
        let mut out: Vec<Option<Result<F::Output, TaskError>>> = (0..self.len()).map(|_| None).collect();
        for (i, r) in rx.iter() {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(TaskError::Cancelled(crate::Cancelled::with_message(
                        "the loop closed before the future completed",
                    )))
                })
            })
            .collect()
    }

    #[track_caller]
    fn assert_outside(&self) {
        if let Some(lp) = crate::try_get_running_loop() {
            let me = lp.handle();
            assert!(
                !self.inner.handles.iter().any(|h| h.same_loop(&me)),
                "LoopPool: this call blocks, and cannot run on one of the pool's own loops"
            );
        }
    }

    /// Runs the `Send` future `fut` as a task on the pool: it is queued on
    /// the least busy loop (work waiting there, whether it sleeps), which
    /// starts it at its next turn — unless a sibling that runs out of work
    /// takes it first. Once started it stays on its loop. The result is a
    /// [`ConcurrentFuture`]: await it from any loop, or
    /// [`wait`](ConcurrentFuture::wait) for it from a plain thread. After
    /// [`shutdown`](LoopPool::shutdown) began, it resolves as cancelled.
    pub fn spawn<F>(&self, fut: F) -> ConcurrentFuture<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(fut)
    }

    /// A `Send + Sync` handle to the pool, for its loops' code and other
    /// threads: [`spawn`](PoolHandle::spawn), handles and metrics.
    pub fn handle(&self) -> PoolHandle {
        PoolHandle {
            inner: self.inner.clone(),
        }
    }

    /// Runs the `Send` future `fut` on loop `i` (it may not move):
    /// [`LoopHandle::run_coroutine_threadsafe`] on that loop.
    ///
    /// # Panics
    /// When `i` is not below [`len`](LoopPool::len).
    pub fn spawn_on<F>(&self, i: usize, fut: F) -> ConcurrentFuture<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.handles[i].run_coroutine_threadsafe(fut)
    }

    /// Starts asyncio's `start_server` over every loop of the pool:
    /// `handler(reader, writer)` runs for each connection as a task on the
    /// loop that got it — one that holds fewer connections than its
    /// siblings, see [`Spread`](aio_net::Spread) — and need not be `Send`
    /// (the handler itself is shared by the loops, so it is `Send + Sync`).
    /// `addr` is resolved here; port 0 picks a free port
    /// ([`PoolServer::local_addr`](aio_net::PoolServer::local_addr)).
    /// [`shutdown`](LoopPool::shutdown) closes it.
    ///
    /// # Errors
    /// `addr` does not resolve, binding fails, or the pool is shutting
    /// down.
    #[cfg(feature = "net")]
    pub fn start_server<H, Fut>(
        &self,
        addr: impl std::net::ToSocketAddrs,
        handler: H,
    ) -> io::Result<aio_net::PoolServer>
    where
        H: Fn(aio_net::StreamReader, aio_net::StreamWriter) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: aio_net::HandlerOutput,
    {
        let addr = first_addr(addr)?;
        self.add_server(|| aio_net::start_server_pool(self.handles(), addr, self.inner.spread, handler))
    }

    /// Like [`start_server`](LoopPool::start_server), with a handler of the
    /// connection's [`TcpStream`](aio_net::TcpStream).
    ///
    /// # Errors
    /// As [`start_server`](LoopPool::start_server).
    #[cfg(feature = "net")]
    pub fn start_tcp_server<H, Fut>(
        &self,
        addr: impl std::net::ToSocketAddrs,
        handler: H,
    ) -> io::Result<aio_net::PoolServer>
    where
        H: Fn(aio_net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: aio_net::HandlerOutput,
    {
        let addr = first_addr(addr)?;
        self.add_server(|| aio_net::start_pool_server(self.handles(), addr, self.inner.spread, handler))
    }

    /// Serves HTTP/1.1 and HTTP/2 with hyper over every loop of the pool
    /// ([`aio::hyper::serve_pool`](aio_hyper::serve_pool)): each
    /// connection is served on the loop that got it, by a service
    /// `make_service()` made there (it need not be `Send`).
    /// [`shutdown`](LoopPool::shutdown) closes it.
    ///
    /// # Errors
    /// As [`start_server`](LoopPool::start_server).
    #[cfg(feature = "hyper")]
    pub fn serve<M, S, B>(&self, addr: impl std::net::ToSocketAddrs, make_service: M) -> io::Result<aio_net::PoolServer>
    where
        M: Fn() -> S + Send + Sync + 'static,
        S: aio_hyper::hyper::service::Service<
                aio_hyper::hyper::Request<aio_hyper::hyper::body::Incoming>,
                Response = aio_hyper::hyper::Response<B>,
            > + 'static,
        S::Future: 'static,
        S::Error: Into<aio_hyper::BoxError>,
        B: aio_hyper::hyper::body::Body + 'static,
        B::Error: Into<aio_hyper::BoxError>,
    {
        let addr = first_addr(addr)?;
        self.add_server(|| aio_hyper::serve_pool(self.handles(), addr, self.inner.spread, make_service))
    }

    #[cfg(feature = "net")]
    fn add_server(&self, start: impl FnOnce() -> io::Result<aio_net::PoolServer>) -> io::Result<aio_net::PoolServer> {
        let mut servers = self.inner.servers.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.stopping.load(Ordering::Acquire) {
            return Err(io::Error::other("the loop pool is shutting down"));
        }
        let s = start()?;
        servers.push(s.clone());
        Ok(s)
    }

    /// Whether [`shutdown`](LoopPool::shutdown) began.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// Shuts the pool down: its servers stop accepting (connections
    /// waiting in their backlogs are reset) and queued movable work is
    /// dropped (its results resolve as cancelled); connections in progress
    /// — counted in every loop's [`LoopMetrics::connections`], so those of
    /// servers started with aio-net's own `start_server` too — get up to
    /// `grace` to finish; then every loop is stopped and closed, which
    /// cancels the tasks still running (each loop lets them clean up for
    /// up to its shutdown timeout), and the threads are joined. Returns
    /// the connections still open when the grace period ended. A second
    /// call returns 0 at once.
    ///
    /// # Panics
    /// When called on one of the pool's own loops.
    #[track_caller]
    pub fn shutdown(&self, grace: Duration) -> usize {
        self.assert_outside();
        if self.inner.stopping.swap(true, Ordering::AcqRel) {
            return 0;
        }
        #[cfg(feature = "net")]
        {
            let servers = std::mem::take(&mut *self.inner.servers.lock().unwrap_or_else(|e| e.into_inner()));
            for s in &servers {
                s.close();
            }
        }
        for j in &self.inner.jobs {
            drop(std::mem::take(&mut *j.lock()));
            j.len.store(0, Ordering::Release);
        }
        let deadline = Instant::now() + grace;
        let open = || self.metrics().iter().map(|m| m.connections).sum::<usize>();
        let mut left = open();
        while left > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1).min(deadline.saturating_duration_since(Instant::now())));
            left = open();
        }
        for h in &self.inner.handles {
            let _ = h.call_soon_threadsafe(|| crate::get_running_loop().stop());
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            if t.join().is_err() {
                log::error!("aio: a loop thread of the pool panicked");
            }
        }
        left
    }
}

impl Drop for LoopPool {
    fn drop(&mut self) {
        let on_own_loop = crate::try_get_running_loop().is_some_and(|lp| {
            let me = lp.handle();
            self.inner.handles.iter().any(|h| h.same_loop(&me))
        });
        if on_own_loop {
            // Dropped on one of its own loops, which cannot wait for
            // itself: tell every loop to stop; the threads end by
            // themselves.
            self.inner.stopping.store(true, Ordering::Release);
            for h in &self.inner.handles {
                let _ = h.call_soon_threadsafe(|| crate::get_running_loop().stop());
            }
            return;
        }
        self.shutdown(Duration::ZERO);
    }
}

/// A loop future's output, which `run` hands back rather than reports.
struct Output<T>(T);

impl<T> aio_core::TaskOutput for Output<T> {}

#[cfg(feature = "net")]
fn first_addr(addr: impl std::net::ToSocketAddrs) -> io::Result<std::net::SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))
}
