//! Children still running when their loop closes are reaped once they
//! exit, with no later spawn, no loop and no `Process` left to do it: a
//! zombie never outlives its exit by more than a moment while the test
//! process lives, and a child aio did not spawn is never reaped by it.
//! Both backends, both child watchers (the SIGCHLD one makes the
//! process-wide reaper look every few milliseconds instead of using
//! pidfds).
//!
//! Its own binary, and the tests take `LOCK`: a spawn anywhere reaps the
//! orphans that have exited, which would hide a missing reaper.

use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aio_core::{Loop, Runner};
use aio_net::{ChildWatcher, Command, DEVNULL};
use aio_test::{child_state, is_unreaped_child};

static LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const CHILDREN: usize = 20;

fn sleeper(secs: &str, watcher: ChildWatcher) -> Command {
    Command::new("sleep")
        .arg(secs)
        .stdout(DEVNULL)
        .stderr(DEVNULL)
        .child_watcher(watcher)
}

/// Spawns `CHILDREN` children of `sleep secs` on `lp`; `keep` keeps the
/// `Process` handles past the loop's close (dropped after it), otherwise
/// they are dropped while the loop runs. Returns the pids once the loop
/// is closed and every handle dropped.
fn spawn_and_close(lp: Loop, secs: &'static str, watcher: ChildWatcher, keep: bool) -> Vec<u32> {
    let r = Runner::with_loop(lp);
    let (pids, kept) = r
        .run(async move {
            let (mut pids, mut kept) = (Vec::new(), Vec::new());
            for _ in 0..CHILDREN {
                let p = sleeper(secs, watcher).await?;
                pids.push(p.pid());
                if keep {
                    kept.push(p);
                }
            }
            // Let the loop's reaper task take the dropped ones over.
            aio_core::sleep(0.01).await?;
            Ok::<_, io::Error>((pids, kept))
        })
        .unwrap();
    r.close();
    drop(kept);
    pids
}

/// Waits (5 s at most, no spawn and no loop) until every pid has been
/// reaped: gone from `/proc` or no longer our child.
fn all_reaped(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for &pid in pids {
        while is_unreaped_child(pid) {
            assert!(
                Instant::now() < deadline,
                "child {pid} not reaped 5 s after the loop closed (state {:?})",
                child_state(pid)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The repro: children that exit by themselves after the close.
fn short_children_reaped_after_close(lp: Loop, watcher: ChildWatcher) {
    let _g = serial();
    let t = Instant::now();
    let pids = spawn_and_close(lp, "0.3", watcher, false);
    all_reaped(&pids);
    assert!(t.elapsed() < Duration::from_secs(5));
}

/// Children running at the close (dropped before it), killed after it.
/// A child aio did not spawn is left for its owner to reap.
fn running_children_reaped_after_close(lp: Loop, watcher: ChildWatcher) {
    let _g = serial();
    let mut foreign = std::process::Command::new("true").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child_state(foreign.id()) != Some('Z') {
        assert!(Instant::now() < deadline, "`true` did not exit within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pids = spawn_and_close(lp, "1000", watcher, false);
    for &pid in &pids {
        assert!(is_unreaped_child(pid), "child {pid} still runs after the close");
        // SAFETY: `pid` is our unreaped child (the orphans hold it).
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    }
    all_reaped(&pids);
    assert_eq!(
        child_state(foreign.id()),
        Some('Z'),
        "aio reaped a child it does not own"
    );
    assert!(foreign.wait().unwrap().success());
}

/// `Process` handles that outlive their loop, dropped after the close.
fn handles_dropped_after_close(lp: Loop, watcher: ChildWatcher) {
    let _g = serial();
    let pids = spawn_and_close(lp, "1000", watcher, true);
    for &pid in &pids {
        assert!(is_unreaped_child(pid), "child {pid} still runs after the close");
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    }
    all_reaped(&pids);
}

macro_rules! orphan_tests {
    ($($name:ident),* $(,)?) => {
        mod poll {
            $(
                #[test]
                fn $name() {
                    super::$name(aio_test::poll_loop(), aio_net::ChildWatcher::Auto);
                }
            )*
        }
        mod uring {
            $(
                #[test]
                fn $name() {
                    if let Some(lp) = aio_test::uring_loop() {
                        super::$name(lp, aio_net::ChildWatcher::Auto);
                    }
                }
            )*
        }
        mod sigchld {
            $(
                #[test]
                fn $name() {
                    super::$name(aio_test::poll_loop(), aio_net::ChildWatcher::Sigchld);
                }
            )*
        }
    };
}

orphan_tests!(
    short_children_reaped_after_close,
    running_children_reaped_after_close,
    handles_dropped_after_close,
);
