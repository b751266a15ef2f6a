//! The subprocess suites' workload that needs aio-net (which aio-test,
//! a dev-dependency of aio-net, cannot depend on): many children at once.
//! The `/proc` checks for zombies are in aio-test.
#![allow(dead_code)]

use std::io;

use aio_core::{TaskError, create_task};
use aio_net::{ChildWatcher, Command};

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
