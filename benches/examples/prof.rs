//! The local fast paths of issue 25 measured in thread CPU time, which
//! other processes on the machine disturb far less than wall time:
//!
//! ```sh
//! cargo build --release -p aio-benches --example prof
//! target/release/examples/prof cmp spawn 15   # spawn + join 100k tasks, ns/task
//! target/release/examples/prof cmp lock0 15   # 100k acquire + release of an uncontended lock, ns/lock
//! target/release/examples/prof cmp lock 15    # 100 tasks x 1000 increments under a lock held across a yield, ns/lock
//! target/release/examples/prof cmp queue 15   # ping-pong over two unbounded queues, ns/round trip
//! target/release/examples/prof cmp queue1 15  # the same with capacity 1
//! ```
//!
//! `cmp` runs each workload on aio, glommio and monoio alternately and
//! prints the median (and least) of the rounds. Without `cmp`, `prof
//! spawn|lock|lock0|queue|queue1 N` runs aio alone N times (for callgrind or
//! perf).
//!
//! monoio yields through the benches' `MonoioYield` (a task woken during
//! its own poll runs again first there, so futures-lite's `yield_now`
//! would let no other task run). glommio's `lock` row hands nothing over:
//! its semaphore is not FIFO, so each task keeps it for its 1000 rounds.

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("prof compares aio with glommio and monoio, which run on Linux only");
}

#[cfg(target_os = "linux")]
fn main() {
    imp::main()
}

#[cfg(target_os = "linux")]
#[path = "../benches/common/mod.rs"]
mod common;

#[cfg(target_os = "linux")]
mod imp {
    use super::common::tpc::MonoioYield;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;

    fn cpu_ns() -> u64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec for the call.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    fn stats(name: &str, per: u64, v: &mut [u64]) {
        v.sort();
        println!(
            "{name:>10}: min {:7.1} ns  med {:7.1} ns",
            v[0] as f64 / per as f64,
            v[v.len() / 2] as f64 / per as f64
        );
    }

    async fn join_all<T, J: std::future::Future<Output = T>>(v: Vec<J>) -> u64 {
        let mut n = 0;
        for j in v {
            std::hint::black_box(j.await);
            n += 1;
        }
        n
    }

    fn cmp(what: &str, rounds: usize) {
        let runner = aio::Runner::new();
        let gl = glommio::LocalExecutorBuilder::default().make().unwrap();
        let mut mo = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().build().unwrap();
        let (mut a, mut g, mut m) = (vec![], vec![], vec![]);
        const N: u64 = 100_000;
        for _ in 0..rounds {
            match what {
                "spawn" => {
                    if std::env::var("ONLY_MONOIO").is_ok() {
                        mo.block_on(async {
                            join_all((0..N).map(|i| monoio::spawn(async move { i })).collect()).await
                        });
                        continue;
                    }
                    if std::env::var("ONLY_GLOMMIO").is_ok() {
                        gl.run(async {
                            join_all((0..N).map(|i| glommio::spawn_local(async move { i })).collect()).await
                        });
                        continue;
                    }
                    let t = cpu_ns();
                    runner.run(async { join_all((0..N).map(|i| aio::create_task(async move { i })).collect()).await });
                    a.push(cpu_ns() - t);
                    if std::env::var("ONLY_AIO").is_ok() {
                        continue;
                    }
                    let t = cpu_ns();
                    gl.run(async { join_all((0..N).map(|i| glommio::spawn_local(async move { i })).collect()).await });
                    g.push(cpu_ns() - t);
                    let t = cpu_ns();
                    mo.block_on(async { join_all((0..N).map(|i| monoio::spawn(async move { i })).collect()).await });
                    m.push(cpu_ns() - t);
                }
                "yield" => {
                    let t = cpu_ns();
                    runner.run(async {
                        join_all(
                            (0..1000)
                                .map(|_| {
                                    aio::create_task(async {
                                        for _ in 0..100 {
                                            aio::yield_now().await.unwrap();
                                        }
                                    })
                                })
                                .collect(),
                        )
                        .await
                    });
                    a.push(cpu_ns() - t);
                    let t = cpu_ns();
                    gl.run(async {
                        join_all(
                            (0..1000)
                                .map(|_| {
                                    glommio::spawn_local(async {
                                        for _ in 0..100 {
                                            glommio::executor().yield_now().await;
                                        }
                                    })
                                })
                                .collect(),
                        )
                        .await
                    });
                    g.push(cpu_ns() - t);
                    let t = cpu_ns();
                    mo.block_on(MonoioYield::run(|y| {
                        join_all(
                            (0..1000)
                                .map(|_| {
                                    let y = y.clone();
                                    monoio::spawn(async move {
                                        for _ in 0..100 {
                                            y.yield_now().await;
                                        }
                                    })
                                })
                                .collect(),
                        )
                    }));
                    m.push(cpu_ns() - t);
                }
                "lock0" => {
                    let t = cpu_ns();
                    runner.run(async {
                        let lock = aio::Lock::new();
                        for _ in 0..N {
                            drop(std::hint::black_box(lock.acquire().await.unwrap()));
                        }
                    });
                    a.push(cpu_ns() - t);
                    let t = cpu_ns();
                    gl.run(async {
                        let lock = glommio::sync::Semaphore::new(1);
                        for _ in 0..N {
                            drop(std::hint::black_box(lock.acquire_permit(1).await.unwrap()));
                        }
                    });
                    g.push(cpu_ns() - t);
                    let t = cpu_ns();
                    mo.block_on(async {
                        let lock = local_sync::semaphore::Semaphore::new(1);
                        for _ in 0..N {
                            drop(std::hint::black_box(lock.acquire().await.unwrap()));
                        }
                    });
                    m.push(cpu_ns() - t);
                }
                "lock" => {
                    const T: u64 = 100;
                    const R: u64 = 1000;
                    let t = cpu_ns();
                    runner.run(async {
                        let lock = Rc::new(aio::Lock::new());
                        let c = Rc::new(Cell::new(0u64));
                        join_all(
                            (0..T)
                                .map(|_| {
                                    let (lock, c) = (lock.clone(), c.clone());
                                    aio::create_task(async move {
                                        for _ in 0..R {
                                            let _g = lock.acquire().await.unwrap();
                                            let v = c.get();
                                            aio::yield_now().await.unwrap();
                                            c.set(v + 1);
                                        }
                                    })
                                })
                                .collect(),
                        )
                        .await
                    });
                    a.push(cpu_ns() - t);
                    let t = cpu_ns();
                    gl.run(async {
                        let lock = Rc::new(glommio::sync::Semaphore::new(1));
                        let c = Rc::new(Cell::new(0u64));
                        join_all(
                            (0..T)
                                .map(|_| {
                                    let (lock, c) = (lock.clone(), c.clone());
                                    glommio::spawn_local(async move {
                                        for _ in 0..R {
                                            let _g = lock.acquire_permit(1).await.unwrap();
                                            let v = c.get();
                                            glommio::executor().yield_now().await;
                                            c.set(v + 1);
                                        }
                                    })
                                })
                                .collect(),
                        )
                        .await
                    });
                    g.push(cpu_ns() - t);
                    let t = cpu_ns();
                    mo.block_on(MonoioYield::run(|y| async move {
                        let lock = Rc::new(local_sync::semaphore::Semaphore::new(1));
                        let c = Rc::new(Cell::new(0u64));
                        join_all(
                            (0..T)
                                .map(|_| {
                                    let (lock, c, y) = (lock.clone(), c.clone(), y.clone());
                                    monoio::spawn(async move {
                                        for _ in 0..R {
                                            let _g = lock.acquire().await.unwrap();
                                            let v = c.get();
                                            y.yield_now().await;
                                            c.set(v + 1);
                                        }
                                    })
                                })
                                .collect(),
                        )
                        .await
                    }));
                    m.push(cpu_ns() - t);
                }
                "queue" | "queue1" => {
                    let cap = if what == "queue1" { 1 } else { 0 };
                    const R: u64 = 10_000;
                    let t = cpu_ns();
                    runner.run(async move {
                        let (a, b) = (
                            Arc::new(aio::Queue::with_maxsize(cap)),
                            Arc::new(aio::Queue::with_maxsize(cap)),
                        );
                        let (a2, b2) = (a.clone(), b.clone());
                        let e = aio::create_task(async move {
                            for _ in 0..R {
                                let v: u64 = a2.get().await.unwrap();
                                b2.put(v + 1).await.unwrap();
                            }
                        });
                        let mut v = 0;
                        for _ in 0..R {
                            a.put(v).await.unwrap();
                            v = b.get().await.unwrap();
                        }
                        e.await.unwrap();
                        v
                    });
                    a.push(cpu_ns() - t);
                    let t = cpu_ns();
                    gl.run(async move {
                        use glommio::channels::local_channel::*;
                        let ((at, ar), (bt, br)) = if cap == 1 {
                            (new_bounded(1), new_bounded(1))
                        } else {
                            (new_unbounded(), new_unbounded())
                        };
                        let e = glommio::spawn_local(async move {
                            for _ in 0..R {
                                let v: u64 = ar.recv().await.unwrap();
                                bt.send(v + 1).await.unwrap();
                            }
                        });
                        let mut v = 0;
                        for _ in 0..R {
                            at.send(v).await.unwrap();
                            v = br.recv().await.unwrap();
                        }
                        e.await;
                        v
                    });
                    g.push(cpu_ns() - t);
                    let t = cpu_ns();
                    mo.block_on(async move {
                        use local_sync::mpsc::bounded::channel;
                        let ((at, mut ar), (bt, mut br)) = (channel(1), channel(1));
                        let e = monoio::spawn(async move {
                            for _ in 0..R {
                                let v: u64 = ar.recv().await.unwrap();
                                bt.send(v + 1).await.unwrap();
                            }
                        });
                        let mut v = 0;
                        for _ in 0..R {
                            at.send(v).await.unwrap();
                            v = br.recv().await.unwrap();
                        }
                        e.await;
                        v
                    });
                    m.push(cpu_ns() - t);
                }
                _ => panic!(),
            }
        }
        let per = match what {
            "spawn" | "lock0" => N,
            "lock" => 100_000,
            _ => 10_000,
        };
        stats("aio", per, &mut a);
        if g.is_empty() {
            return;
        }
        stats("glommio", per, &mut g);
        stats("monoio", per, &mut m);
    }

    pub(super) fn main() {
        let args: Vec<String> = std::env::args().collect();
        if args.get(1).map(String::as_str) == Some("cmp") {
            return cmp(
                args.get(2).map_or("spawn", String::as_str),
                args.get(3).and_then(|s| s.parse().ok()).unwrap_or(30),
            );
        }
        let what = args.get(1).map(String::as_str).unwrap_or("spawn");
        let reps: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
        let runner = aio::Runner::new();
        for _ in 0..reps {
            match what {
                "spawn" => {
                    let s = runner.run(async {
                        let v: Vec<_> = (0..100_000u64).map(|i| aio::create_task(async move { i })).collect();
                        let mut s = 0;
                        for t in v {
                            s += t.await.unwrap();
                        }
                        s
                    });
                    std::hint::black_box(s);
                }
                "lock" => runner.run(async {
                    let lock = Rc::new(aio::Lock::new());
                    let counter = Rc::new(Cell::new(0u64));
                    let v: Vec<_> = (0..100)
                        .map(|_| {
                            let (lock, counter) = (lock.clone(), counter.clone());
                            aio::create_task(async move {
                                for _ in 0..1000 {
                                    let _g = lock.acquire().await.unwrap();
                                    let v = counter.get();
                                    aio::yield_now().await.unwrap();
                                    counter.set(v + 1);
                                }
                            })
                        })
                        .collect();
                    for t in v {
                        t.await.unwrap();
                    }
                }),
                "lock0" => runner.run(async {
                    let lock = aio::Lock::new();
                    for _ in 0..1_000_000 {
                        drop(std::hint::black_box(lock.acquire().await.unwrap()));
                    }
                }),
                "queue" | "queue1" => {
                    let m = if what == "queue1" { 1 } else { 0 };
                    runner.run(async move {
                        let (a, b) = (
                            Arc::new(aio::Queue::with_maxsize(m)),
                            Arc::new(aio::Queue::with_maxsize(m)),
                        );
                        let (a2, b2) = (a.clone(), b.clone());
                        let echo = aio::create_task(async move {
                            for _ in 0..100_000 {
                                let v: u64 = a2.get().await.unwrap();
                                b2.put(v + 1).await.unwrap();
                            }
                        });
                        let mut v = 0;
                        for _ in 0..100_000 {
                            a.put(v).await.unwrap();
                            v = b.get().await.unwrap();
                        }
                        echo.await.unwrap();
                        std::hint::black_box(v);
                    })
                }
                other => {
                    eprintln!("unknown workload {other:?}: spawn, lock, lock0, queue or queue1");
                    std::process::exit(2);
                }
            }
        }
    }
}
