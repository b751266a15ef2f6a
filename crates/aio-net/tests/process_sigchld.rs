//! The SIGCHLD child watcher (the fallback where pidfds are missing),
//! forced on Linux so CI runs it: echo, exit codes and signals,
//! `returncode` recorded without a `wait`, 200
//! children 16 at a time with no zombie left, a cancelled wait, dropped
//! processes reaped, and the SIGCHLD disposition restored afterwards.
//!
//! Its own binary: the watcher installs a process-wide SIGCHLD handler,
//! and each test checks it is restored, so the tests take `LOCK`;
//! `two_loops_at_once` runs two loops on two threads sharing the handler.

// The lock serializes whole tests, awaits included.
#![allow(clippy::await_holding_lock)]

mod process_common;

use std::io;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aio_core::{create_task, yield_now};
use aio_net::{ChildWatcher, Command, DEVNULL, PIPE};
use aio_test::{assert_reaped, backend_tests, child_state, wait_reaped};
use process_common::{cancelled_waits_then_kill, many_children};

static LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn cmd(program: &str) -> Command {
    Command::new(program).child_watcher(ChildWatcher::Sigchld)
}

fn sigchld_disposition() -> usize {
    // SAFETY: an all-zero sigaction is valid; a null new action only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

async fn echo_and_exit_codes() -> io::Result<()> {
    let _g = serial();
    // The watch starts when a wait blocks: `cat` runs until its stdin closes.
    let mut p = cmd("cat").stdin(PIPE).await?;
    let stdin = p.stdin.take().unwrap();
    let p = Rc::new(p);
    let p2 = p.clone();
    let waiter = create_task(async move { p2.wait().await });
    yield_now().await?;
    assert!(aio_net::signal::is_handled_by_aio(libc::SIGCHLD)?);
    drop(stdin);
    assert_eq!(waiter.await.map_err(|e| io::Error::other(e.to_string()))??, 0);
    drop(p);
    assert_eq!(sigchld_disposition(), libc::SIG_DFL);

    let mut p = cmd("/bin/sh").args(["-c", "echo hello; exit 7"]).stdout(PIPE).await?;
    let (out, err) = p.communicate(b"").await?;
    assert_eq!(out.unwrap(), b"hello\n");
    assert_eq!(err, None);
    assert_eq!(p.returncode(), Some(7));
    assert_reaped(p.pid());
    drop(p);
    let data = aio_test::payload(1 << 20, 5);
    let mut p = cmd("cat").stdin(PIPE).stdout(PIPE).await?;
    let (out, _) = p.communicate(&data).await?;
    assert!(out.unwrap() == data);
    drop(p);
    assert_eq!(
        sigchld_disposition(),
        libc::SIG_DFL,
        "restored once no child is watched"
    );
    Ok(())
}

async fn kill_and_cancelled_wait() -> io::Result<()> {
    let _g = serial();
    cancelled_waits_then_kill(cmd("sleep").arg("1000").stdout(DEVNULL).stderr(DEVNULL).await?).await
}

/// The loop records the exit with nobody awaiting `wait()`; reading
/// `returncode` never reaps.
async fn returncode_without_wait() -> io::Result<()> {
    let _g = serial();
    let mut p = cmd("/bin/sh").args(["-c", "read x; exit 6"]).stdin(PIPE).await?;
    yield_now().await?;
    assert!(
        aio_net::signal::is_handled_by_aio(libc::SIGCHLD)?,
        "watched from the spawn on"
    );
    assert_eq!(p.returncode(), None);
    drop(p.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while child_state(p.pid()) != Some('Z') {
        assert!(Instant::now() < deadline, "the child did not exit within 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(p.returncode(), None, "the loop has not run since the exit");
    aio_test::until("the loop records the exit", || p.returncode().is_some()).await?;
    assert_eq!(p.returncode(), Some(6));
    assert_reaped(p.pid());
    drop(p);
    assert_eq!(sigchld_disposition(), libc::SIG_DFL);
    Ok(())
}

async fn two_hundred_children_no_zombies() -> io::Result<()> {
    let _g = serial();
    let pids = many_children(200, 16, ChildWatcher::Sigchld).await?;
    for pid in pids {
        assert_reaped(pid);
    }
    Ok(())
}

async fn dropped_processes_are_reaped() -> io::Result<()> {
    let _g = serial();
    let mut pids = Vec::new();
    for _ in 0..8 {
        let p = cmd("cat").stdin(PIPE).await?;
        pids.push(p.pid());
    }
    for pid in pids {
        wait_reaped(pid).await?;
    }
    // The reaper let go of the watches: SIGCHLD is back to its default.
    yield_now().await?;
    assert_eq!(sigchld_disposition(), libc::SIG_DFL);
    Ok(())
}

/// Two loops on two threads watch children at once: every SIGCHLD reaches
/// both, whichever thread the kernel runs the handler on.
async fn two_loops_at_once() -> io::Result<()> {
    let _g = serial();
    let other = std::thread::spawn(|| {
        aio_test::run_poll(async {
            many_children(100, 16, ChildWatcher::Sigchld).await?;
            Ok::<_, io::Error>(())
        })
    });
    let pids = many_children(100, 16, ChildWatcher::Sigchld).await?;
    aio_core::to_thread(move || other.join())
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
        .expect("the other loop's children");
    for pid in pids {
        assert_reaped(pid);
    }
    assert_eq!(sigchld_disposition(), libc::SIG_DFL);
    Ok(())
}

backend_tests!(
    echo_and_exit_codes,
    kill_and_cancelled_wait,
    returncode_without_wait,
    two_hundred_children_no_zombies,
    dropped_processes_are_reaped,
    two_loops_at_once,
);
