//! The loop's hot paths beside tokio (current-thread) and smol, in one run:
//! spawn+join, timers, yield storm, call_soon, cross-thread wake, to_thread.
//!
//! IDs are `<workload>/<runtime>`; throughput is per element (task, timer,
//! yield, callback, round trip), so criterion prints the time per element.

use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SPAWN_N: u64 = 100_000;
const TIMER_N: u64 = 100_000;
const YIELD_TASKS: u64 = 1_000;
const YIELDS: u64 = 1_000;
const CALL_SOON_N: u64 = 100_000;
const WAKE_N: u64 = 10_000;
const THREAD_N: u64 = 1_000;

fn tokio_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.throughput(Throughput::Elements(SPAWN_N));
    g.sample_size(20);

    let runner = aio::Runner::new();
    g.bench_function("aio", |b| {
        b.iter(|| {
            runner.run(async {
                let tasks: Vec<_> = (0..SPAWN_N).map(|i| aio::create_task(async move { i })).collect();
                let mut s = 0;
                for t in tasks {
                    s += t.await.unwrap();
                }
                black_box(s)
            })
        })
    });

    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..SPAWN_N).map(|i| tokio::spawn(async move { i })).collect();
                let mut s = 0;
                for t in tasks {
                    s += t.await.unwrap();
                }
                black_box(s)
            })
        })
    });

    let ex = smol::LocalExecutor::new();
    g.bench_function("smol", |b| {
        b.iter(|| {
            smol::future::block_on(ex.run(async {
                let tasks: Vec<_> = (0..SPAWN_N).map(|i| ex.spawn(async move { i })).collect();
                let mut s = 0;
                for t in tasks {
                    s += t.await;
                }
                black_box(s)
            }))
        })
    });
    g.finish();
}

/// Many tasks each sleeping a different short time: timer insert + fire.
fn timers(c: &mut Criterion) {
    let mut g = c.benchmark_group("timers_100k");
    g.throughput(Throughput::Elements(TIMER_N));
    g.sample_size(10);
    let delay = |i: u64| Duration::from_micros(1_000 + (i * 7919) % 1_000);

    let runner = aio::Runner::new();
    g.bench_function("aio", |b| {
        b.iter(|| {
            runner.run(async move {
                let tasks: Vec<_> = (0..TIMER_N).map(|i| aio::create_task(aio::sleep(delay(i)))).collect();
                for t in tasks {
                    t.await.unwrap().unwrap();
                }
            })
        })
    });

    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            rt.block_on(async move {
                let tasks: Vec<_> = (0..TIMER_N)
                    .map(|i| tokio::spawn(tokio::time::sleep(delay(i))))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });

    let ex = smol::LocalExecutor::new();
    g.bench_function("smol", |b| {
        b.iter(|| {
            // smol's timers live in async-io's reactor: `smol::block_on`
            // drives it on this thread, as a smol program does.
            smol::block_on(ex.run(async {
                let tasks: Vec<_> = (0..TIMER_N).map(|i| ex.spawn(smol::Timer::after(delay(i)))).collect();
                for t in tasks {
                    t.await;
                }
            }))
        })
    });
    g.finish();
}

/// Min, median and max of the lateness samples, in µs.
fn report(group: &str, name: &str, late: &mut Vec<f64>) {
    if late.is_empty() {
        return;
    }
    late.sort_by(f64::total_cmp);
    let early = late.iter().filter(|&&l| l < 0.0).count();
    println!(
        "{group}/{name}: signed lateness min {:+.1} µs, median {:+.1} µs, max {:+.1} µs; {early} of {} early",
        late[0],
        late[late.len() / 2],
        late[late.len() - 1],
        late.len()
    );
    late.clear();
}

/// Lateness of a lightly loaded timer: one task sleeping 1 ms at a time.
/// Criterion's time per element minus 1 ms is how late the timer fires;
/// the line printed per runtime gives each sleep's signed lateness.
fn timer_lateness(c: &mut Criterion) {
    const N: u64 = 200;
    let mut g = c.benchmark_group("timer_lateness_1ms");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    let d = Duration::from_millis(1);

    let late = Rc::new(std::cell::RefCell::new(Vec::new()));
    let runner = aio::Runner::new();
    let l = late.clone();
    g.bench_function("aio", |b| {
        b.iter(|| {
            let l = l.clone();
            runner.run(async move {
                for _ in 0..N {
                    let t0 = std::time::Instant::now();
                    aio::sleep(d).await.unwrap();
                    l.borrow_mut().push(t0.elapsed().as_secs_f64() * 1e6 - 1000.0);
                }
            })
        })
    });
    report("timer_lateness_1ms", "aio", &mut late.borrow_mut());

    let rt = tokio_ct();
    let l = late.clone();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let l = l.clone();
            rt.block_on(async move {
                for _ in 0..N {
                    let t0 = std::time::Instant::now();
                    tokio::time::sleep(d).await;
                    l.borrow_mut().push(t0.elapsed().as_secs_f64() * 1e6 - 1000.0);
                }
            })
        })
    });
    report("timer_lateness_1ms", "tokio-ct", &mut late.borrow_mut());

    let l = late.clone();
    g.bench_function("smol", |b| {
        b.iter(|| {
            let l = l.clone();
            smol::block_on(async move {
                for _ in 0..N {
                    let t0 = std::time::Instant::now();
                    smol::Timer::after(d).await;
                    l.borrow_mut().push(t0.elapsed().as_secs_f64() * 1e6 - 1000.0);
                }
            })
        })
    });
    report("timer_lateness_1ms", "smol", &mut late.borrow_mut());
    g.finish();
}

/// Signed lateness of 1 ms sleeps started late in a busy loop turn: 500
/// tasks run in one turn, each works 4 µs and then sleeps 1 ms. The time
/// is what the batch takes; the line printed per runtime is each sleep's
/// end minus (its call + 1 ms): negative means it woke early (a timer
/// that counts from a clock cached at the start of the turn does).
fn timer_lateness_busy(c: &mut Criterion) {
    const N: usize = 500;
    let mut g = c.benchmark_group("timer_lateness_busy_turn");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    let d = Duration::from_millis(1);
    let work = Duration::from_micros(4);
    let busy = move || {
        let t = std::time::Instant::now();
        while t.elapsed() < work {
            std::hint::spin_loop();
        }
    };

    let runner = aio::Runner::new();
    let late = Rc::new(std::cell::RefCell::new(Vec::new()));
    let l = late.clone();
    g.bench_function("aio", |b| {
        b.iter(|| {
            let l = l.clone();
            runner.run(async move {
                let tasks: Vec<_> = (0..N)
                    .map(|_| {
                        let l = l.clone();
                        aio::create_task(async move {
                            busy();
                            let t0 = std::time::Instant::now();
                            aio::sleep(d).await.unwrap();
                            l.borrow_mut().push(t0.elapsed().as_secs_f64() * 1e6 - 1000.0);
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    report("timer_lateness_busy_turn", "aio", &mut late.borrow_mut());

    let rt = tokio_ct();
    let l = late.clone();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let l = l.clone();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let tasks: Vec<_> = (0..N)
                    .map(|_| {
                        let l = l.clone();
                        tokio::task::spawn_local(async move {
                            busy();
                            let t0 = std::time::Instant::now();
                            tokio::time::sleep(d).await;
                            l.borrow_mut().push(t0.elapsed().as_secs_f64() * 1e6 - 1000.0);
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    report("timer_lateness_busy_turn", "tokio-ct", &mut late.borrow_mut());

    let l = late.clone();
    g.bench_function("smol", |b| {
        b.iter(|| {
            let l = l.clone();
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(async {
                let tasks: Vec<_> = (0..N)
                    .map(|_| {
                        let l = l.clone();
                        ex.spawn(async move {
                            busy();
                            let t0 = std::time::Instant::now();
                            smol::Timer::after(d).await;
                            l.borrow_mut().push(t0.elapsed().as_secs_f64() * 1e6 - 1000.0);
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await;
                }
            }))
        })
    });
    report("timer_lateness_busy_turn", "smol", &mut late.borrow_mut());
    g.finish();
}

/// 1k tasks each yielding 1k times.
fn yield_storm(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_storm");
    g.throughput(Throughput::Elements(YIELD_TASKS * YIELDS));
    g.sample_size(10);

    let runner = aio::Runner::new();
    g.bench_function("aio", |b| {
        b.iter(|| {
            runner.run(async {
                let tasks: Vec<_> = (0..YIELD_TASKS)
                    .map(|_| {
                        aio::create_task(async {
                            for _ in 0..YIELDS {
                                aio::yield_now().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });

    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..YIELD_TASKS)
                    .map(|_| {
                        tokio::spawn(async {
                            for _ in 0..YIELDS {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });

    let ex = smol::LocalExecutor::new();
    g.bench_function("smol", |b| {
        b.iter(|| {
            smol::future::block_on(ex.run(async {
                let tasks: Vec<_> = (0..YIELD_TASKS)
                    .map(|_| {
                        ex.spawn(async {
                            for _ in 0..YIELDS {
                                smol::future::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await;
                }
            }))
        })
    });
    g.finish();
}

/// asyncio's `call_soon`; the peers have no callbacks, so their nearest
/// equivalent is spawning a task that runs the closure.
fn call_soon(c: &mut Criterion) {
    let mut g = c.benchmark_group("call_soon");
    g.throughput(Throughput::Elements(CALL_SOON_N));
    g.sample_size(20);

    let lp = aio::Loop::new();
    g.bench_function("aio", |b| {
        b.iter(|| {
            let n = Rc::new(std::cell::Cell::new(0u64));
            for _ in 0..CALL_SOON_N {
                let n = n.clone();
                lp.call_soon(move || n.set(n.get() + 1));
            }
            let l2 = lp.clone();
            lp.call_soon(move || l2.stop());
            lp.run_forever();
            black_box(n.get())
        })
    });

    let rt = tokio_ct();
    let local = tokio::task::LocalSet::new();
    g.bench_function("tokio-ct-spawn_local", |b| {
        b.iter(|| {
            local.block_on(&rt, async {
                let n = Rc::new(std::cell::Cell::new(0u64));
                for _ in 0..CALL_SOON_N {
                    let n = n.clone();
                    tokio::task::spawn_local(async move { n.set(n.get() + 1) });
                }
                tokio::task::yield_now().await;
                black_box(n.get())
            })
        })
    });
    g.finish();
}

/// A task on the loop and a plain thread ping-pong through the same
/// channel (async-channel), so the difference is the runtime's
/// cross-thread wake and unpark path.
fn cross_thread_wake(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_wake");
    g.throughput(Throughput::Elements(WAKE_N));
    g.sample_size(10);

    fn echo_thread(
        n: u64,
    ) -> (
        async_channel::Sender<u64>,
        async_channel::Receiver<u64>,
        std::thread::JoinHandle<()>,
    ) {
        let (to_thread, from_loop) = async_channel::bounded::<u64>(1);
        let (to_loop, from_thread) = async_channel::bounded::<u64>(1);
        let th = std::thread::spawn(move || {
            for _ in 0..n {
                let v = from_loop.recv_blocking().unwrap();
                to_loop.send_blocking(v + 1).unwrap();
            }
        });
        (to_thread, from_thread, th)
    }

    /// One round of `WAKE_N` ping-pongs with a fresh echo thread, the loop
    /// side driven by `block_on` (the one boxing per round is the same for
    /// every runtime).
    fn round<R>(block_on: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()>>>) -> R) {
        let (tx, rx, th) = echo_thread(WAKE_N);
        block_on(Box::pin(async move {
            for i in 0..WAKE_N {
                tx.send(i).await.unwrap();
                black_box(rx.recv().await.unwrap());
            }
        }));
        th.join().unwrap();
    }

    // `aio` is the default backend (io_uring here: the wake is an eventfd
    // read completing in the ring); `aio-poll` wakes epoll through an
    // eventfd like tokio's enabled I/O driver; `aio-none` is the loop with
    // no I/O driver, parked on a futex like smol's `block_on`.
    for (name, backend) in [
        ("aio", aio::Backend::Auto),
        ("aio-poll", aio::Backend::Poll),
        ("aio-none", aio::Backend::None),
    ] {
        let runner = aio::Runner::with_loop(aio::Builder::new().backend(backend).build().unwrap());
        g.bench_function(name, |b| b.iter(|| round(|f| runner.run(f))));
    }

    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| b.iter(|| round(|f| rt.block_on(f))));

    let ex = smol::LocalExecutor::new();
    g.bench_function("smol", |b| b.iter(|| round(|f| smol::future::block_on(ex.run(f)))));
    g.finish();
}

fn to_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("to_thread");
    g.throughput(Throughput::Elements(THREAD_N));
    g.sample_size(10);

    let runner = aio::Runner::new();
    g.bench_function("aio", |b| {
        b.iter(|| {
            runner.run(async {
                for i in 0..THREAD_N {
                    black_box(aio::to_thread(move || i + 1).await.unwrap());
                }
            })
        })
    });

    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..THREAD_N {
                    black_box(tokio::task::spawn_blocking(move || i + 1).await.unwrap());
                }
            })
        })
    });

    g.bench_function("smol", |b| {
        b.iter(|| {
            smol::future::block_on(async {
                for i in 0..THREAD_N {
                    black_box(smol::unblock(move || i + 1).await);
                }
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    spawn_join,
    timers,
    timer_lateness,
    timer_lateness_busy,
    yield_storm,
    call_soon,
    cross_thread_wake,
    to_thread
);
criterion_main!(benches);
