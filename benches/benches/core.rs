//! The loop's hot paths beside tokio (current-thread) and smol, in one run:
//! spawn+join, timers, yield storm, call_soon, cross-thread wake, to_thread;
//! spawn+join and the yield storm also beside the thread-per-core runtimes
//! glommio and monoio (Linux).
//!
//! IDs are `<workload>/<runtime>`; throughput is per element (task, timer,
//! yield, callback, round trip), so criterion prints the time per element.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

#[cfg(target_os = "linux")]
use common::tpc::{MonoioYield, glommio_join, monoio_join, on_glommio, on_monoio};
use common::{aio_join, group, on_aio, on_smol, on_tokio, smol_join, tokio_ct, tokio_join, tokio_local_join};

/// `n` tasks that return their index, joined and summed.
fn spawn_join(c: &mut Criterion) {
    const SPAWN_N: u64 = 100_000;
    let mut g = group(c, "spawn_join", SPAWN_N, 20);

    let sum = |v: Vec<u64>| black_box(v.into_iter().sum::<u64>());
    on_aio(&mut g, "aio", &aio::Runner::new(), || async move {
        sum(aio_join(SPAWN_N, |i| async move { i }).await)
    });
    on_tokio(&mut g, "tokio-ct", &tokio_ct(), || async move {
        sum(tokio_join(SPAWN_N, |i| async move { i }).await)
    });
    let ex = smol::LocalExecutor::new();
    on_smol(&mut g, "smol", &ex, || async {
        sum(smol_join(&ex, SPAWN_N, |i| async move { i }).await)
    });
    #[cfg(target_os = "linux")]
    {
        on_glommio(&mut g, "glommio", &common::tpc::glommio(), || async move {
            sum(glommio_join(SPAWN_N, |i| async move { i }).await)
        });
        on_monoio(&mut g, "monoio", &mut common::tpc::monoio(), || async move {
            sum(monoio_join(SPAWN_N, |i| async move { i }).await)
        });
    }
    g.finish();
}

/// Many tasks each sleeping a different short time: timer insert + fire.
fn timers(c: &mut Criterion) {
    const TIMER_N: u64 = 100_000;
    let mut g = group(c, "timers_100k", TIMER_N, 10);
    let delay = |i: u64| Duration::from_micros(1_000 + (i * 7919) % 1_000);

    on_aio(&mut g, "aio", &aio::Runner::new(), || async move {
        for r in aio_join(TIMER_N, |i| aio::sleep(delay(i))).await {
            r.unwrap();
        }
    });
    on_tokio(&mut g, "tokio-ct", &tokio_ct(), || {
        tokio_join(TIMER_N, |i| tokio::time::sleep(delay(i)))
    });
    // smol's timers live in async-io's reactor: `smol::block_on` drives it
    // on this thread, as a smol program does.
    let ex = smol::LocalExecutor::new();
    g.bench_function("smol", |b| {
        b.iter(|| smol::block_on(ex.run(smol_join(&ex, TIMER_N, |i| smol::Timer::after(delay(i))))))
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

/// Where the lateness samples (µs) of one group go.
type Late = Rc<RefCell<Vec<f64>>>;

/// Sleeps 1 ms (`sleep`) `n` times, one after the other, and records how
/// late each woke (negative: early).
async fn late_sleeps<F: Future>(late: Late, n: u64, sleep: impl Fn() -> F) {
    for _ in 0..n {
        let t0 = Instant::now();
        sleep().await;
        late.borrow_mut().push(t0.elapsed().as_secs_f64() * 1e6 - 1000.0);
    }
}

/// Lateness of a lightly loaded timer: one task sleeping 1 ms at a time.
/// Criterion's time per element minus 1 ms is how late the timer fires;
/// the line printed per runtime gives each sleep's signed lateness.
fn timer_lateness(c: &mut Criterion) {
    const N: u64 = 200;
    const GROUP: &str = "timer_lateness_1ms";
    let mut g = group(c, GROUP, N, 10);
    let d = Duration::from_millis(1);
    let late = Late::default();

    on_aio(&mut g, "aio", &aio::Runner::new(), || {
        late_sleeps(late.clone(), N, move || async move { aio::sleep(d).await.unwrap() })
    });
    report(GROUP, "aio", &mut late.borrow_mut());
    on_tokio(&mut g, "tokio-ct", &tokio_ct(), || {
        late_sleeps(late.clone(), N, || tokio::time::sleep(d))
    });
    report(GROUP, "tokio-ct", &mut late.borrow_mut());
    g.bench_function("smol", |b| {
        b.iter(|| smol::block_on(late_sleeps(late.clone(), N, || smol::Timer::after(d))))
    });
    report(GROUP, "smol", &mut late.borrow_mut());
    g.finish();
}

/// Signed lateness of 1 ms sleeps started late in a busy loop turn: 500
/// tasks run in one turn, each works 4 µs and then sleeps 1 ms. The time
/// is what the batch takes; the line printed per runtime is each sleep's
/// end minus (its call + 1 ms): negative means it woke early (a timer
/// that counts from a clock cached at the start of the turn does).
fn timer_lateness_busy(c: &mut Criterion) {
    const N: u64 = 500;
    const GROUP: &str = "timer_lateness_busy_turn";
    let mut g = group(c, GROUP, N, 10);
    let d = Duration::from_millis(1);
    /// Works 4 µs, then sleeps once (the sleep made after the work).
    async fn busy_then_sleep<F: Future>(late: Late, sleep: impl Fn() -> F) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(4) {
            std::hint::spin_loop();
        }
        late_sleeps(late, 1, sleep).await;
    }
    let late = Late::default();

    on_aio(&mut g, "aio", &aio::Runner::new(), || {
        let l = late.clone();
        async move {
            aio_join(N, |_| {
                busy_then_sleep(l.clone(), move || async move { aio::sleep(d).await.unwrap() })
            })
            .await
        }
    });
    report(GROUP, "aio", &mut late.borrow_mut());
    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let local = tokio::task::LocalSet::new();
            local.block_on(
                &rt,
                tokio_local_join(N, |_| busy_then_sleep(late.clone(), move || tokio::time::sleep(d))),
            )
        })
    });
    report(GROUP, "tokio-ct", &mut late.borrow_mut());
    g.bench_function("smol", |b| {
        b.iter(|| {
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(smol_join(&ex, N, |_| {
                busy_then_sleep(late.clone(), move || smol::Timer::after(d))
            })))
        })
    });
    report(GROUP, "smol", &mut late.borrow_mut());
    g.finish();
}

/// 1k tasks each yielding 1k times.
fn yield_storm(c: &mut Criterion) {
    const YIELD_TASKS: u64 = 1_000;
    const YIELDS: u64 = 1_000;
    let mut g = group(c, "yield_storm", YIELD_TASKS * YIELDS, 10);

    on_aio(&mut g, "aio", &aio::Runner::new(), || {
        aio_join(YIELD_TASKS, |_| async {
            for _ in 0..YIELDS {
                aio::yield_now().await.unwrap();
            }
        })
    });
    on_tokio(&mut g, "tokio-ct", &tokio_ct(), || {
        tokio_join(YIELD_TASKS, |_| async {
            for _ in 0..YIELDS {
                tokio::task::yield_now().await;
            }
        })
    });
    let ex = smol::LocalExecutor::new();
    on_smol(&mut g, "smol", &ex, || {
        smol_join(&ex, YIELD_TASKS, |_| async {
            for _ in 0..YIELDS {
                smol::future::yield_now().await;
            }
        })
    });
    // glommio's `yield_now` is futures-lite's (wake, then pending once),
    // which queues the task behind the others. monoio has no yield of its
    // own, and runs a task that woke itself again first, so futures-lite's
    // would yield to no one there: monoio yields through `MonoioYield`.
    #[cfg(target_os = "linux")]
    {
        on_glommio(&mut g, "glommio", &common::tpc::glommio(), || {
            glommio_join(YIELD_TASKS, |_| async {
                for _ in 0..YIELDS {
                    glommio::executor().yield_now().await;
                }
            })
        });
        on_monoio(&mut g, "monoio", &mut common::tpc::monoio(), || {
            MonoioYield::run(|y| {
                monoio_join(YIELD_TASKS, move |_| {
                    let y = y.clone();
                    async move {
                        for _ in 0..YIELDS {
                            y.yield_now().await;
                        }
                    }
                })
            })
        });
    }
    g.finish();
}

/// asyncio's `call_soon`; the peers have no callbacks, so their nearest
/// equivalent is spawning a task that runs the closure.
fn call_soon(c: &mut Criterion) {
    const CALL_SOON_N: u64 = 100_000;
    let mut g = group(c, "call_soon", CALL_SOON_N, 20);

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
    const WAKE_N: u64 = 10_000;
    let mut g = group(c, "cross_thread_wake", WAKE_N, 10);

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
    const THREAD_N: u64 = 1_000;
    let mut g = group(c, "to_thread", THREAD_N, 10);

    on_aio(&mut g, "aio", &aio::Runner::new(), || async {
        for i in 0..THREAD_N {
            black_box(aio::to_thread(move || i + 1).await.unwrap());
        }
    });
    on_tokio(&mut g, "tokio-ct", &tokio_ct(), || async {
        for i in 0..THREAD_N {
            black_box(tokio::task::spawn_blocking(move || i + 1).await.unwrap());
        }
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
