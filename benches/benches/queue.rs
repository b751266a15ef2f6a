//! aio-queue beside tokio's mpsc (current-thread runtime) and async-channel
//! (on smol's local executor, and on tokio's current-thread runtime), in
//! one run: ping-pong between two tasks, uncontended put/get, and MPMC
//! throughput between two loops on two threads. On Linux the ping-pong
//! also runs on the thread-per-core runtimes, with their single-thread
//! channels: glommio's local channels, and on monoio local-sync's mpsc.
//! `-bounded` rows use queues of capacity 1 on both sides.
//!
//! IDs are `<workload>/<runtime>`; throughput is per element (round trip,
//! item), so criterion prints the time per element.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::thread;

use criterion::{Criterion, criterion_group, criterion_main};

#[cfg(target_os = "linux")]
use common::tpc::{on_glommio, on_monoio};
use common::{Group, aio_join, group, on_aio, on_smol, on_tokio, smol_join, tokio_ct, tokio_join};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

const MPMC_CAP: usize = 1024;

/// Where producers put: a queue or a channel's sending end.
trait Put: Clone + 'static {
    async fn put(&self, v: u64);
}

/// Where consumers get from.
trait Get: 'static {
    async fn get(&mut self) -> u64;
}

/// [`Put`] or [`Get`] for a type, as a program calls it.
macro_rules! ends {
    (Put for $t:ty: |$q:ident, $v:ident| $e:expr) => {
        impl Put for $t {
            async fn put(&self, $v: u64) {
                let $q = self;
                $e
            }
        }
    };
    (Now for $t:ty: |$q:ident, $v:ident| $put:expr, |$q2:ident| $get:expr) => {
        impl Now for $t {
            fn put_now(&mut self, $v: u64) {
                let $q = self;
                $put;
            }
            fn get_now(&mut self) -> u64 {
                let $q2 = self;
                $get
            }
        }
    };
    (Get for $t:ty: |$q:ident| $e:expr) => {
        impl Get for $t {
            async fn get(&mut self) -> u64 {
                let $q = self;
                $e
            }
        }
    };
}

ends!(Put for Arc<aio::Queue<u64>>: |q, v| aio::Queue::put(q, v).await.unwrap());
ends!(Get for Arc<aio::Queue<u64>>: |q| aio::Queue::get(q).await.unwrap());
ends!(Put for UnboundedSender<u64>: |q, v| q.send(v).unwrap());
ends!(Get for UnboundedReceiver<u64>: |q| q.recv().await.unwrap());
ends!(Put for tokio::sync::mpsc::Sender<u64>: |q, v| q.send(v).await.unwrap());
ends!(Get for tokio::sync::mpsc::Receiver<u64>: |q| q.recv().await.unwrap());
ends!(Put for async_channel::Sender<u64>: |q, v| q.send(v).await.unwrap());
ends!(Get for async_channel::Receiver<u64>: |q| q.recv().await.unwrap());
// glommio's sender is single-producer (not `Clone`): shared by `Rc`.
#[cfg(target_os = "linux")]
ends!(Put for std::rc::Rc<glommio::channels::local_channel::LocalSender<u64>>: |q, v| q.send(v).await.unwrap());
#[cfg(target_os = "linux")]
ends!(Get for glommio::channels::local_channel::LocalReceiver<u64>: |q| q.recv().await.unwrap());
#[cfg(target_os = "linux")]
ends!(Put for local_sync::mpsc::bounded::Tx<u64>: |q, v| q.send(v).await.unwrap());
#[cfg(target_os = "linux")]
ends!(Get for local_sync::mpsc::bounded::Rx<u64>: |q| q.recv().await.unwrap());
#[cfg(target_os = "linux")]
ends!(Put for local_sync::mpsc::unbounded::Tx<u64>: |q, v| q.send(v).unwrap());
#[cfg(target_os = "linux")]
ends!(Get for local_sync::mpsc::unbounded::Rx<u64>: |q| q.recv().await.unwrap());

const PING_PONG_N: u64 = 10_000;

/// The pinging side: sends, waits for the answer, `PING_PONG_N` times.
async fn ping((to, mut from): (impl Put, impl Get)) -> u64 {
    let mut v = 0;
    for _ in 0..PING_PONG_N {
        to.put(v).await;
        v = from.get().await;
    }
    black_box(v)
}

/// The echoing side: answers each number with the next.
async fn echo((to, mut from): (impl Put, impl Get)) {
    for _ in 0..PING_PONG_N {
        let v = from.get().await;
        to.put(v + 1).await;
    }
}

/// Two tasks pass a number back and forth through two queues; one element
/// is one round trip (two puts, two gets, two task switches).
fn ping_pong(c: &mut Criterion) {
    let mut g = group(c, "queue_ping_pong", PING_PONG_N, 100);

    let runner = aio::Runner::new();
    let aio_pair = |maxsize| async move {
        let (a, b) = (
            Arc::new(aio::Queue::with_maxsize(maxsize)),
            Arc::new(aio::Queue::with_maxsize(maxsize)),
        );
        let echo = aio::create_task(echo((b.clone(), a.clone())));
        let v = ping((a, b)).await;
        echo.await.unwrap();
        v
    };
    on_aio(&mut g, "aio", &runner, || aio_pair(0));
    on_aio(&mut g, "aio-bounded", &runner, || aio_pair(1));
    let rt = tokio_ct();
    on_tokio(&mut g, "tokio-ct", &rt, || async {
        let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (unbounded_channel(), unbounded_channel());
        let echo = tokio::spawn(echo((pong_tx, ping_rx)));
        let v = ping((ping_tx, pong_rx)).await;
        echo.await.unwrap();
        v
    });
    on_tokio(&mut g, "tokio-ct-bounded", &rt, || async {
        let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (tokio::sync::mpsc::channel(1), tokio::sync::mpsc::channel(1));
        let echo = tokio::spawn(echo((pong_tx, ping_rx)));
        let v = ping((ping_tx, pong_rx)).await;
        echo.await.unwrap();
        v
    });
    let ex = smol::LocalExecutor::new();
    on_smol(&mut g, "async-channel-smol", &ex, || async {
        let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (async_channel::unbounded(), async_channel::unbounded());
        let echo = ex.spawn(echo((pong_tx, ping_rx)));
        let v = ping((ping_tx, pong_rx)).await;
        echo.await;
        v
    });
    on_tokio(&mut g, "async-channel-tokio-ct", &rt, || async {
        let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (async_channel::unbounded(), async_channel::unbounded());
        let echo = tokio::spawn(echo((pong_tx, ping_rx)));
        let v = ping((ping_tx, pong_rx)).await;
        echo.await.unwrap();
        v
    });
    #[cfg(target_os = "linux")]
    tpc_ping_pong(&mut g);
    g.finish();
}

/// The ping-pong on glommio and monoio, with their single-thread channels.
#[cfg(target_os = "linux")]
fn tpc_ping_pong(g: &mut Group<'_>) {
    use glommio::channels::local_channel::{LocalReceiver, LocalSender, new_bounded, new_unbounded};
    use std::rc::Rc;

    let ex = common::tpc::glommio();
    let glommio_pair = |(ping_tx, ping_rx): (LocalSender<u64>, LocalReceiver<u64>),
                        (pong_tx, pong_rx): (LocalSender<u64>, LocalReceiver<u64>)| async move {
        let echo = glommio::spawn_local(echo((Rc::new(pong_tx), ping_rx)));
        let v = ping((Rc::new(ping_tx), pong_rx)).await;
        echo.await;
        v
    };
    on_glommio(g, "glommio", &ex, || glommio_pair(new_unbounded(), new_unbounded()));
    on_glommio(g, "glommio-bounded", &ex, || {
        glommio_pair(new_bounded(1), new_bounded(1))
    });
    drop(ex);

    let mut rt = common::tpc::monoio();
    on_monoio(g, "monoio", &mut rt, || async {
        use local_sync::mpsc::unbounded::channel;
        let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (channel(), channel());
        let echo = monoio::spawn(echo((pong_tx, ping_rx)));
        let v = ping((ping_tx, pong_rx)).await;
        echo.await;
        v
    });
    on_monoio(g, "monoio-bounded", &mut rt, || async {
        use local_sync::mpsc::bounded::channel;
        let ((ping_tx, ping_rx), (pong_tx, pong_rx)) = (channel(1), channel(1));
        let echo = monoio::spawn(echo((pong_tx, ping_rx)));
        let v = ping((ping_tx, pong_rx)).await;
        echo.await;
        v
    });
}

/// The paths that never wait: a put, then a get, on an empty queue.
trait Now {
    fn put_now(&mut self, v: u64);
    fn get_now(&mut self) -> u64;
}

ends!(Now for aio::Queue<u64>: |q, v| q.put_nowait(v).unwrap(), |q| q.get_nowait().unwrap());
ends!(Now for (UnboundedSender<u64>, UnboundedReceiver<u64>): |q, v| q.0.send(v).unwrap(), |q| q.1.try_recv().unwrap());
ends!(Now for (async_channel::Sender<u64>, async_channel::Receiver<u64>): |q, v| q.0.try_send(v).unwrap(), |q| q.1.try_recv().unwrap());

const NOWAIT_N: u64 = 100_000;

/// Benchmarks `name`: `NOWAIT_N` times a put then a get on `q`.
fn put_get(g: &mut Group<'_>, name: &str, mut q: impl Now) {
    g.bench_function(name, |b| {
        b.iter(|| {
            for i in 0..NOWAIT_N {
                q.put_now(i);
                black_box(q.get_now());
            }
        })
    });
}

/// put_nowait then get_nowait on an empty queue: the uncontended paths,
/// with no task switch.
fn nowait(c: &mut Criterion) {
    let mut g = group(c, "queue_nowait", NOWAIT_N, 100);
    put_get(&mut g, "aio", aio::Queue::new());
    // A bounded queue takes the capacity semaphore on both paths.
    put_get(&mut g, "aio-bounded", aio::Queue::with_maxsize(MPMC_CAP));
    put_get(&mut g, "tokio", unbounded_channel());
    put_get(&mut g, "async-channel", async_channel::unbounded());
    g.finish();
}

/// A producer task: puts `0..n`.
async fn produce(q: impl Put, n: u64) {
    for i in 0..n {
        q.put(i).await;
    }
}

/// A consumer task: gets `n` items; their sum.
async fn consume(mut q: impl Get, n: u64) -> u64 {
    let mut s = 0;
    for _ in 0..n {
        s += q.get().await;
    }
    s
}

/// Runs `producer` and `consumer` on two threads at once; what the
/// consumer returns.
fn two_threads(producer: impl FnOnce() + Send + 'static, consumer: impl FnOnce() -> u64 + Send + 'static) -> u64 {
    let producer = thread::spawn(producer);
    let consumer = thread::spawn(consumer);
    producer.join().unwrap();
    black_box(consumer.join().unwrap())
}

/// 4 producer tasks on one loop thread, 4 consumer tasks on another, a
/// bounded queue (1024) between them; 100k items. tokio's mpsc has one
/// receiver, so its variant runs a single consumer task.
fn mpmc_threads(c: &mut Criterion) {
    const MPMC_N: u64 = 100_000;
    const MPMC_TASKS: u64 = 4;
    let mut g = group(c, "queue_mpmc_2_loops", MPMC_N, 20);
    let per = MPMC_N / MPMC_TASKS;
    let sum = |v: Vec<u64>| v.into_iter().sum::<u64>();

    g.bench_function("aio", |b| {
        b.iter(|| {
            let q = Arc::new(aio::Queue::with_maxsize(MPMC_CAP));
            let qc = q.clone();
            two_threads(
                move || drop(aio::run(aio_join(MPMC_TASKS, move |_| produce(q.clone(), per)))),
                move || sum(aio::run(aio_join(MPMC_TASKS, move |_| consume(qc.clone(), per)))),
            )
        })
    });
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(MPMC_CAP);
            two_threads(
                move || drop(tokio_ct().block_on(tokio_join(MPMC_TASKS, move |_| produce(tx.clone(), per)))),
                move || tokio_ct().block_on(consume(rx, MPMC_N)),
            )
        })
    });
    g.bench_function("async-channel-smol", |b| {
        b.iter(|| {
            let (tx, rx) = async_channel::bounded(MPMC_CAP);
            two_threads(
                move || {
                    let ex = smol::LocalExecutor::new();
                    smol::future::block_on(ex.run(smol_join(&ex, MPMC_TASKS, |_| produce(tx.clone(), per))));
                },
                move || {
                    let ex = smol::LocalExecutor::new();
                    sum(smol::future::block_on(
                        ex.run(smol_join(&ex, MPMC_TASKS, |_| consume(rx.clone(), per))),
                    ))
                },
            )
        })
    });
    g.finish();
}

criterion_group!(benches, ping_pong, nowait, mpmc_threads);
criterion_main!(benches);
