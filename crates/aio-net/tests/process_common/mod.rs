//! Helpers shared by the subprocess suites: `/proc` checks for zombies and
//! the many-children workload.
#![allow(dead_code)]

use std::io;
use std::time::{Duration, Instant};

use aio_core::{TaskError, create_task, sleep};
use aio_net::{ChildWatcher, Command};

/// Whether `pid` is still a child of ours that has not been reaped
/// (running, or a zombie): its `/proc` entry exists with us as parent.
pub fn is_unreaped_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')').expect("a /proc stat line") + 2..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next();
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    ppid == std::process::id()
}

/// The state letter of `pid` (`Z` for a zombie), if it exists.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

#[track_caller]
pub fn assert_reaped(pid: u32) {
    assert!(
        !is_unreaped_child(pid),
        "child {pid} was not reaped (state {:?})",
        state(pid)
    );
}

/// Waits (polling `/proc`, 10 s at most) until `pid` has been reaped.
pub async fn wait_reaped(pid: u32) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_unreaped_child(pid) {
        assert!(
            Instant::now() < deadline,
            "child {pid} not reaped after 10 s (state {:?})",
            state(pid)
        );
        sleep(0.005).await?;
    }
    Ok(())
}

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
