//! aio-queue beside tokio's mpsc (current-thread runtime) and async-channel
//! (on smol's local executor, and on tokio's current-thread runtime), in
//! one run: ping-pong between two tasks, uncontended put/get, and MPMC
//! throughput between two loops on two threads.
//!
//! IDs are `<workload>/<runtime>`; throughput is per element (round trip,
//! item), so criterion prints the time per element.

mod common;

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;

use criterion::{Criterion, criterion_group, criterion_main};

use common::{group, tokio_ct};

const MPMC_CAP: usize = 1024;

/// Two tasks pass a number back and forth through two queues; one element
/// is one round trip (two puts, two gets, two task switches).
fn ping_pong(c: &mut Criterion) {
    const PING_PONG_N: u64 = 10_000;
    let mut g = group(c, "queue_ping_pong", PING_PONG_N, 100);

    let runner = aio::Runner::new();
    g.bench_function("aio", |b| {
        b.iter(|| {
            runner.run(async {
                let (ping, pong) = (Rc::new(aio::Queue::new()), Rc::new(aio::Queue::new()));
                let (ping2, pong2) = (ping.clone(), pong.clone());
                let echo = aio::create_task(async move {
                    for _ in 0..PING_PONG_N {
                        let v: u64 = ping2.get().await.unwrap();
                        pong2.put(v + 1).await.unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..PING_PONG_N {
                    ping.put(v).await.unwrap();
                    v = pong.get().await.unwrap();
                }
                echo.await.unwrap();
                black_box(v)
            })
        })
    });

    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::unbounded_channel();
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel();
                let echo = tokio::spawn(async move {
                    for _ in 0..PING_PONG_N {
                        let v: u64 = ping_rx.recv().await.unwrap();
                        pong_tx.send(v + 1).unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..PING_PONG_N {
                    ping_tx.send(v).unwrap();
                    v = pong_rx.recv().await.unwrap();
                }
                echo.await.unwrap();
                black_box(v)
            })
        })
    });

    g.bench_function("tokio-ct-bounded", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel(1);
                let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel(1);
                let echo = tokio::spawn(async move {
                    for _ in 0..PING_PONG_N {
                        let v: u64 = ping_rx.recv().await.unwrap();
                        pong_tx.send(v + 1).await.unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..PING_PONG_N {
                    ping_tx.send(v).await.unwrap();
                    v = pong_rx.recv().await.unwrap();
                }
                echo.await.unwrap();
                black_box(v)
            })
        })
    });

    let ex = smol::LocalExecutor::new();
    g.bench_function("async-channel-smol", |b| {
        b.iter(|| {
            smol::future::block_on(ex.run(async {
                let (ping_tx, ping_rx) = async_channel::unbounded();
                let (pong_tx, pong_rx) = async_channel::unbounded();
                let echo = ex.spawn(async move {
                    for _ in 0..PING_PONG_N {
                        let v: u64 = ping_rx.recv().await.unwrap();
                        pong_tx.send(v + 1).await.unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..PING_PONG_N {
                    ping_tx.send(v).await.unwrap();
                    v = pong_rx.recv().await.unwrap();
                }
                echo.await;
                black_box(v)
            }))
        })
    });

    g.bench_function("async-channel-tokio-ct", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (ping_tx, ping_rx) = async_channel::unbounded();
                let (pong_tx, pong_rx) = async_channel::unbounded();
                let echo = tokio::spawn(async move {
                    for _ in 0..PING_PONG_N {
                        let v: u64 = ping_rx.recv().await.unwrap();
                        pong_tx.send(v + 1).await.unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..PING_PONG_N {
                    ping_tx.send(v).await.unwrap();
                    v = pong_rx.recv().await.unwrap();
                }
                echo.await.unwrap();
                black_box(v)
            })
        })
    });
    g.finish();
}

/// put_nowait then get_nowait on an empty queue: the uncontended paths,
/// with no task switch.
fn nowait(c: &mut Criterion) {
    const NOWAIT_N: u64 = 100_000;
    let mut g = group(c, "queue_nowait", NOWAIT_N, 100);

    g.bench_function("aio", |b| {
        let q = aio::Queue::new();
        b.iter(|| {
            for i in 0..NOWAIT_N {
                q.put_nowait(i).unwrap();
                black_box(q.get_nowait().unwrap());
            }
        })
    });

    // A bounded queue takes the capacity semaphore on both paths.
    g.bench_function("aio-bounded", |b| {
        let q = aio::Queue::with_maxsize(MPMC_CAP);
        b.iter(|| {
            for i in 0..NOWAIT_N {
                q.put_nowait(i).unwrap();
                black_box(q.get_nowait().unwrap());
            }
        })
    });

    g.bench_function("tokio", |b| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        b.iter(|| {
            for i in 0..NOWAIT_N {
                tx.send(i).unwrap();
                black_box(rx.try_recv().unwrap());
            }
        })
    });

    g.bench_function("async-channel", |b| {
        let (tx, rx) = async_channel::unbounded();
        b.iter(|| {
            for i in 0..NOWAIT_N {
                tx.try_send(i).unwrap();
                black_box(rx.try_recv().unwrap());
            }
        })
    });
    g.finish();
}

/// 4 producer tasks on one loop thread, 4 consumer tasks on another, a
/// bounded queue (1024) between them; 100k items. tokio's mpsc has one
/// receiver, so its variant runs a single consumer task.
fn mpmc_threads(c: &mut Criterion) {
    const MPMC_N: u64 = 100_000;
    const MPMC_TASKS: u64 = 4;
    let mut g = group(c, "queue_mpmc_2_loops", MPMC_N, 20);
    let per = MPMC_N / MPMC_TASKS;

    g.bench_function("aio", |b| {
        b.iter(|| {
            let q = Arc::new(aio::Queue::with_maxsize(MPMC_CAP));
            let qp = q.clone();
            let producer = thread::spawn(move || {
                aio::run(async move {
                    let tasks: Vec<_> = (0..MPMC_TASKS)
                        .map(|_| {
                            let q = qp.clone();
                            aio::create_task(async move {
                                for i in 0..per {
                                    q.put(i).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            });
            let consumer = thread::spawn(move || {
                aio::run(async move {
                    let tasks: Vec<_> = (0..MPMC_TASKS)
                        .map(|_| {
                            let q = q.clone();
                            aio::create_task(async move {
                                let mut s = 0;
                                for _ in 0..per {
                                    s += q.get().await.unwrap();
                                }
                                s
                            })
                        })
                        .collect();
                    let mut s = 0;
                    for t in tasks {
                        s += t.await.unwrap();
                    }
                    s
                })
            });
            producer.join().unwrap();
            black_box(consumer.join().unwrap())
        })
    });

    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel(MPMC_CAP);
            let producer = thread::spawn(move || {
                tokio_ct().block_on(async move {
                    let tasks: Vec<_> = (0..MPMC_TASKS)
                        .map(|_| {
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                for i in 0..per {
                                    tx.send(i).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            });
            let consumer = thread::spawn(move || {
                tokio_ct().block_on(async move {
                    let mut s = 0;
                    for _ in 0..MPMC_N {
                        s += rx.recv().await.unwrap();
                    }
                    s
                })
            });
            producer.join().unwrap();
            black_box(consumer.join().unwrap())
        })
    });

    g.bench_function("async-channel-smol", |b| {
        b.iter(|| {
            let (tx, rx) = async_channel::bounded(MPMC_CAP);
            let producer = thread::spawn(move || {
                let ex = smol::LocalExecutor::new();
                smol::future::block_on(ex.run(async {
                    let tasks: Vec<_> = (0..MPMC_TASKS)
                        .map(|_| {
                            let tx = tx.clone();
                            ex.spawn(async move {
                                for i in 0..per {
                                    tx.send(i).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await;
                    }
                }))
            });
            let consumer = thread::spawn(move || {
                let ex = smol::LocalExecutor::new();
                smol::future::block_on(ex.run(async {
                    let tasks: Vec<_> = (0..MPMC_TASKS)
                        .map(|_| {
                            let rx = rx.clone();
                            ex.spawn(async move {
                                let mut s = 0;
                                for _ in 0..per {
                                    s += rx.recv().await.unwrap();
                                }
                                s
                            })
                        })
                        .collect();
                    let mut s = 0;
                    for t in tasks {
                        s += t.await;
                    }
                    s
                }))
            });
            producer.join().unwrap();
            black_box(consumer.join().unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, ping_pong, nowait, mpmc_threads);
criterion_main!(benches);
