//! Subprocesses: aio (on the poll and io_uring backends) beside
//! tokio::process (current-thread runtime) and async-process (on smol),
//! in one run: spawn `/bin/true` 16 at a time and wait for all 16.
//!
//! IDs are `spawn_wait/<runtime>`; throughput is per process, so criterion
//! prints the time of one spawn + wait. Most of it is the kernel's
//! (fork/exec of a new process); the runtimes differ in how they learn
//! that a child exited (aio and tokio: a pidfd on Linux; async-process:
//! SIGCHLD and a helper thread).

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

use common::{group, tokio_ct};

const AT_ONCE: usize = 16;
const PROGRAM: &str = "/bin/true";

/// One iteration on aio: 16 children spawned, then each awaited.
async fn aio_batch() {
    let procs: Vec<aio::Process> = (0..AT_ONCE)
        .map(|_| aio::Command::new(PROGRAM).spawn().unwrap())
        .collect();
    for p in &procs {
        assert_eq!(p.wait().await.unwrap(), 0);
    }
}

fn spawn_wait(c: &mut Criterion) {
    let mut g = group(c, "spawn_wait", AT_ONCE as u64, 100);

    let poll = aio::Builder::new().backend(aio::Backend::Poll).build().unwrap();
    let runner = aio::Runner::with_loop(poll);
    g.bench_function("aio-poll", |b| b.iter(|| runner.run(aio_batch())));
    drop(runner);

    match aio_uring::UringDriver::new() {
        Ok(d) => {
            let runner = aio::Runner::with_loop(aio::Loop::builder().driver(d).build());
            g.bench_function("aio-uring", |b| b.iter(|| runner.run(aio_batch())));
        }
        Err(e) => eprintln!("io_uring unavailable ({e}): spawn_wait/aio-uring skipped"),
    }

    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut children: Vec<_> = (0..AT_ONCE)
                    .map(|_| tokio::process::Command::new(PROGRAM).spawn().unwrap())
                    .collect();
                for child in &mut children {
                    assert!(child.wait().await.unwrap().success());
                }
            })
        })
    });

    g.bench_function("async-process", |b| {
        b.iter(|| {
            smol::block_on(async {
                let mut children: Vec<_> = (0..AT_ONCE)
                    .map(|_| async_process::Command::new(PROGRAM).spawn().unwrap())
                    .collect();
                for child in &mut children {
                    assert!(child.status().await.unwrap().success());
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, spawn_wait);
criterion_main!(benches);
