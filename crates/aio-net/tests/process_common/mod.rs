//! What the subprocess suites (`process_basic`, `process_sigchld`: one
//! per child watcher) share and aio-test cannot hold, as it needs aio-net
//! (whose dev-dependency aio-test is): many children at once, and a
//! child's cancelled waits. The `/proc` checks for zombies are in
//! aio-test.
#![allow(dead_code)]

use std::io;
use std::rc::Rc;

use aio_core::{TaskError, TimeoutError, create_task, timeout, yield_now};
use aio_net::{ChildWatcher, Command, Process};
use aio_test::{assert_cancelled, assert_reaped, is_unreaped_child, spawn_on};

fn err(e: TaskError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Spawns `n` children of `true`, `at_once` at a time, each awaited by its
/// own task; returns their pids (all reaped).
pub async fn many_children(n: usize, at_once: usize, watcher: ChildWatcher) -> io::Result<Vec<u32>> {
    let mut pids = Vec::with_capacity(n);
    while pids.len() < n {
        let batch = at_once.min(n - pids.len());
        let mut tasks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let p = Command::new("true").child_watcher(watcher).await?;
            pids.push(p.pid());
            tasks.push(create_task(async move { p.wait().await }));
        }
        for t in tasks {
            assert_eq!(t.await.map_err(err)??, 0);
        }
    }
    Ok(pids)
}

/// `p`, a child that runs until killed: a `wait` that times out and a
/// task's `wait` cancelled while it waits leave it running and unreaped;
/// killed, it is reaped.
pub async fn cancelled_waits_then_kill(p: Process) -> io::Result<()> {
    assert_eq!(timeout(0.05, p.wait()).await.unwrap_err(), TimeoutError::new());
    assert_eq!(p.returncode(), None, "still running after the cancelled wait");
    assert!(is_unreaped_child(p.pid()));
    let p = Rc::new(p);
    let t = spawn_on(&p, |p| async move { p.wait().await });
    yield_now().await?;
    t.cancel();
    assert_cancelled(t).await;
    assert!(is_unreaped_child(p.pid()));
    p.kill()?;
    assert_eq!(p.wait().await?, -9);
    assert_reaped(p.pid());
    Ok(())
}
