//! Subprocesses on every backend: echo through the shell, 16 MiB through
//! `cat` with `communicate`, stderr merged into stdout, exit codes and
//! signals, `returncode` set by the loop (never by a look of its own),
//! 200 children 16 at a time with no zombie left, cancelled `wait` and
//! `communicate`, dropped processes reaped, spawn errors.

mod process_common;

use std::future::IntoFuture;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aio_core::{create_task, timeout, yield_now};
use aio_net::{ChildWatcher, Command, DEVNULL, PIPE, STDOUT, create_subprocess_exec, create_subprocess_shell};
use aio_test::{assert_reaped, backend_tests, child_state, is_unreaped_child, payload, until, wait_reaped};
use process_common::{cancelled_waits_then_kill, many_children};

/// A child that runs until killed, off the test's output (a leftover
/// after a failed test must not hold the harness's pipes open).
fn sleeper() -> Command {
    Command::new("sleep").arg("1000").stdout(DEVNULL).stderr(DEVNULL)
}

async fn echo_through_the_shell() -> io::Result<()> {
    let mut p = create_subprocess_shell("echo hello; echo world").stdout(PIPE).await?;
    let out = p.stdout.as_mut().unwrap();
    assert_eq!(out.readline().await?, b"hello\n");
    assert_eq!(out.readline().await?, b"world\n");
    assert_eq!(out.readline().await?, b"");
    assert_eq!(p.wait().await?, 0);
    assert_eq!(p.returncode(), Some(0));
    assert_reaped(p.pid());
    Ok(())
}

async fn cat_16_mib_through_communicate() -> io::Result<()> {
    let data = payload(16 << 20, 7);
    let mut p = create_subprocess_exec("cat", ["-"]).stdin(PIPE).stdout(PIPE).await?;
    let (out, err) = p.communicate(&data).await?;
    let out = out.expect("stdout is a pipe");
    assert_eq!(out.len(), data.len());
    assert!(out == data, "cat's output differs from its input");
    assert_eq!(err, None);
    assert!(p.stdin.is_none(), "communicate closes stdin");
    assert_eq!(p.returncode(), Some(0));
    assert_reaped(p.pid());
    Ok(())
}

/// Both output pipes fill before the child has read its input: a
/// sequential write-then-read would deadlock.
async fn communicate_with_both_pipes_full() -> io::Result<()> {
    let data = payload(4 << 20, 9);
    let script = "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; cat; cat >&2 </dev/null";
    let mut p = create_subprocess_shell(script)
        .stdin(PIPE)
        .stdout(PIPE)
        .stderr(PIPE)
        .await?;
    let (out, err) = p.communicate(&data).await?;
    let (out, err) = (out.unwrap(), err.unwrap());
    assert_eq!(out.len(), (1 << 20) + data.len());
    assert!(out[..1 << 20].iter().all(|&b| b == 0));
    assert!(out[1 << 20..] == data[..]);
    assert_eq!(err.len(), 1 << 20);
    assert_eq!(p.returncode(), Some(0));
    Ok(())
}

async fn communicate_without_pipes_and_empty_input() -> io::Result<()> {
    let mut p = Command::new("true").await?;
    assert_eq!(p.communicate(None).await?, (None, None));
    assert_eq!(p.returncode(), Some(0));
    // A child that exits without reading its input: not an error.
    let mut p = Command::new("true").stdin(PIPE).await?;
    let (out, err) = p.communicate(payload(1 << 20, 1)).await?;
    assert_eq!((out, err), (None, None));
    assert_eq!(p.returncode(), Some(0));
    Ok(())
}

async fn stderr_merged_into_stdout() -> io::Result<()> {
    let mut p = create_subprocess_shell("echo one; echo two >&2; echo three")
        .stdout(PIPE)
        .stderr(STDOUT)
        .await?;
    assert!(p.stderr.is_none());
    let (out, err) = p.communicate(b"").await?;
    assert_eq!(out.unwrap(), b"one\ntwo\nthree\n");
    assert_eq!(err, None);
    assert_eq!(p.returncode(), Some(0));
    // Merged into a stdout that goes to /dev/null: nothing to read, no error.
    let p = create_subprocess_shell("echo gone; echo gone >&2")
        .stdout(DEVNULL)
        .stderr(STDOUT)
        .await?;
    assert!(p.stdout.is_none() && p.stderr.is_none());
    assert_eq!(p.wait().await?, 0);
    Ok(())
}

async fn exit_codes() -> io::Result<()> {
    for code in [0, 1, 2, 42, 255] {
        let p = create_subprocess_shell(format!("exit {code}")).await?;
        assert_eq!(p.wait().await?, code);
        assert_eq!(p.returncode(), Some(code));
        assert_eq!(p.exit_status().and_then(|s| s.code()), Some(code));
    }
    let p = Command::new("false").await?;
    assert_eq!(p.wait().await?, 1);
    // Waiting again returns the same code at once.
    assert_eq!(p.wait().await?, 1);
    Ok(())
}

async fn kill_gives_a_negative_returncode() -> io::Result<()> {
    let p = sleeper().await?;
    assert_eq!(p.returncode(), None);
    p.kill()?;
    assert_eq!(p.wait().await?, -libc::SIGKILL);
    assert_eq!(p.returncode(), Some(-9));
    // After reaping, signals are not sent (the pid may be reused): asyncio's
    // ProcessLookupError.
    for r in [p.kill(), p.terminate(), p.send_signal(libc::SIGUSR1)] {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ESRCH));
    }

    let p = sleeper().await?;
    p.terminate()?;
    assert_eq!(p.wait().await?, -libc::SIGTERM);

    let p = sleeper().await?;
    p.send_signal(libc::SIGUSR2)?;
    assert_eq!(p.wait().await?, -libc::SIGUSR2);

    let p = sleeper().await?;
    let e = p.send_signal(1000).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    p.kill()?;
    assert_eq!(p.wait().await?, -9);
    Ok(())
}

/// Blocks the thread (the loop does not run) until `pid` is a zombie: it
/// has exited, and nobody has reaped it.
fn block_until_zombie(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while child_state(pid) != Some('Z') {
        assert!(Instant::now() < deadline, "{pid} not a zombie within 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// asyncio's `returncode`: `None` until the loop has handled the exit,
/// then the code, with nobody awaiting `wait()`. Reading it never reaps:
/// a child that exited while the loop did not run reads `None`.
async fn returncode_is_set_by_the_loop_without_wait() -> io::Result<()> {
    let p = create_subprocess_exec("true", []).await?;
    assert_eq!(p.returncode(), None);
    block_until_zombie(p.pid());
    assert_eq!(p.returncode(), None, "the loop has not run since the spawn");
    assert_eq!(p.exit_status(), None);
    assert!(is_unreaped_child(p.pid()), "returncode() reaped the child");
    until("the loop records the exit", || p.returncode().is_some()).await?;
    assert_eq!(p.returncode(), Some(0));
    assert_eq!(p.exit_status().and_then(|s| s.code()), Some(0));
    assert_reaped(p.pid());
    assert_eq!(p.wait().await?, 0);

    // Running when the loop first looks (it waits for its stdin to
    // close): watched, then recorded when it exits.
    let mut p = create_subprocess_shell("read x; exit 3").stdin(PIPE).await?;
    yield_now().await?;
    assert_eq!(p.returncode(), None);
    drop(p.stdin.take());
    until("the loop records the exit", || p.returncode().is_some()).await?;
    assert_eq!(p.returncode(), Some(3));
    Ok(())
}

/// Many children watched at once, exiting in another order than they
/// were spawned, in two waves (the reaper reuses its slots): each exit is
/// recorded, with nobody waiting.
async fn returncodes_of_many_children_without_wait() -> io::Result<()> {
    for _ in 0..2 {
        let mut ps = Vec::new();
        for _ in 0..40 {
            ps.push(Command::new("cat").stdin(PIPE).stdout(DEVNULL).await?);
        }
        yield_now().await?;
        assert!(ps.iter().all(|p| p.returncode().is_none()));
        for p in ps.iter_mut().rev() {
            drop(p.stdin.take());
        }
        until("every exit recorded", || ps.iter().all(|p| p.returncode().is_some())).await?;
        for p in &ps {
            assert_eq!(p.returncode(), Some(0));
            assert_reaped(p.pid());
        }
    }
    Ok(())
}

/// A child killed from outside (not through the `Process`): the loop
/// records minus the signal number, and the `Process` sends no signal
/// any more (its pid may be reused).
async fn killed_child_gives_a_negative_returncode_without_wait() -> io::Result<()> {
    let p = sleeper().await?;
    // Let the loop start watching it.
    yield_now().await?;
    yield_now().await?;
    assert_eq!(p.returncode(), None);
    // SAFETY: `p.pid()` is our unreaped child (the loop's reaper holds it).
    assert_eq!(unsafe { libc::kill(p.pid() as i32, libc::SIGTERM) }, 0);
    block_until_zombie(p.pid());
    assert_eq!(p.returncode(), None, "the loop has not run since the kill");
    until("the loop records the exit", || p.returncode().is_some()).await?;
    assert_eq!(p.returncode(), Some(-libc::SIGTERM));
    assert_eq!(p.exit_status().and_then(|s| s.signal()), Some(libc::SIGTERM));
    assert_reaped(p.pid());
    assert_eq!(p.kill().unwrap_err().raw_os_error(), Some(libc::ESRCH));
    assert_eq!(
        p.send_signal(libc::SIGUSR1).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );
    assert_eq!(p.wait().await?, -libc::SIGTERM);
    Ok(())
}

/// asyncio's `communicate()` (`input=None`): nothing is written and stdin
/// is closed all the same (Python 3.12+), so `cat` sees EOF and exits; the
/// same with `b""`.
async fn communicate_without_input_closes_stdin() -> io::Result<()> {
    let bound = 10.0; // catches a hang, never reached when stdin closes
    let mut p = Command::new("cat").stdin(PIPE).stdout(PIPE).await?;
    let r = timeout(bound, p.communicate(None)).await;
    let (out, err) = r.map_err(|_| io::Error::other("communicate(None) left cat waiting"))??;
    assert_eq!((out.as_deref(), err), (Some(&b""[..]), None));
    assert!(p.stdin.is_none(), "stdin was closed");
    assert_eq!(p.returncode(), Some(0));

    let mut p = Command::new("cat").stdin(PIPE).stdout(PIPE).await?;
    let r = timeout(bound, p.communicate(b"")).await;
    let (out, _) = r.map_err(|_| io::Error::other("communicate(b\"\") left cat waiting"))??;
    assert_eq!(out.as_deref(), Some(&b""[..]));
    assert_eq!(p.returncode(), Some(0));

    // A child that never reads its stdin: nothing written, no error.
    let mut p = create_subprocess_shell("echo out").stdin(PIPE).stdout(PIPE).await?;
    let (out, _) = p.communicate(None).await?;
    assert_eq!(out.as_deref(), Some(&b"out\n"[..]));
    assert_eq!(p.returncode(), Some(0));
    Ok(())
}

/// Every kind of input `communicate` takes reaches the child.
async fn communicate_takes_bytes_strings_and_none() -> io::Result<()> {
    async fn echo(input: impl aio_net::CommunicateInput) -> io::Result<Vec<u8>> {
        let mut p = Command::new("cat").stdin(PIPE).stdout(PIPE).await?;
        let (out, _) = p.communicate(input).await?;
        Ok(out.expect("stdout is a pipe"))
    }
    let v = b"vec".to_vec();
    let s = String::from("string");
    assert_eq!(echo(b"array").await?, b"array");
    assert_eq!(echo(&b"slice"[..]).await?, b"slice");
    assert_eq!(echo(&v).await?, b"vec");
    assert_eq!(echo(v.clone()).await?, b"vec");
    assert_eq!(echo("str").await?, b"str");
    assert_eq!(echo(&s).await?, b"string");
    assert_eq!(echo(s.clone()).await?, b"string");
    assert_eq!(echo(Some(&b"some"[..])).await?, b"some");
    assert_eq!(echo(None).await?, b"");
    Ok(())
}

async fn two_hundred_children_no_zombies() -> io::Result<()> {
    let pids = many_children(200, 16, ChildWatcher::Auto).await?;
    assert_eq!(pids.len(), 200);
    for pid in pids {
        assert_reaped(pid);
    }
    Ok(())
}

async fn several_tasks_wait_for_one_child() -> io::Result<()> {
    let mut p = Command::new("cat").stdin(PIPE).await?;
    let stdin = p.stdin.take().unwrap();
    let p = Rc::new(p);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            create_task(async move { p.wait().await })
        })
        .collect();
    yield_now().await?;
    stdin.close();
    for w in waiters {
        assert_eq!(w.await.map_err(|e| io::Error::other(e.to_string()))??, 0);
    }
    Ok(())
}

async fn cancelled_wait_leaves_the_child_killable() -> io::Result<()> {
    cancelled_waits_then_kill(sleeper().await?).await
}

async fn cancelled_communicate_keeps_output() -> io::Result<()> {
    // Writes a line, then holds stdout open forever.
    let mut p = create_subprocess_shell("echo early; exec sleep 1000")
        .stdin(PIPE)
        .stdout(PIPE)
        .stderr(PIPE)
        .await?;
    let r = timeout(0.2, p.communicate(payload(1 << 20, 3))).await;
    assert!(r.is_err(), "communicate cannot finish while the child runs");
    assert!(p.stdin.is_none(), "stdin was closed");
    assert_eq!(p.returncode(), None);
    p.kill()?;
    assert_eq!(p.wait().await?, -9);
    // What the child wrote before the cancellation is still there.
    let rest = p.stdout.as_mut().unwrap().read(-1).await?;
    assert_eq!(rest, b"early\n");
    assert_reaped(p.pid());
    Ok(())
}

async fn dropped_processes_are_reaped() -> io::Result<()> {
    let mut pids = Vec::new();
    for _ in 0..8 {
        // `cat` exits when its stdin (dropped with the Process) closes.
        let p = Command::new("cat").stdin(PIPE).stdout(DEVNULL).await?;
        pids.push(p.pid());
        drop(p);
    }
    for _ in 0..8 {
        // Still running when dropped; killed from outside later.
        let p = sleeper().await?;
        pids.push(p.pid());
    }
    for &pid in &pids[8..] {
        // SAFETY: `pid` is our unreaped child (the reaper holds it).
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    }
    for pid in pids {
        wait_reaped(pid).await?;
    }
    // Nothing left to reap and no `Process` alive: the reaper task ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while aio_core::all_tasks().iter().any(|t| t.name() == "aio-reaper") {
        assert!(std::time::Instant::now() < deadline, "the reaper task did not end");
        aio_core::sleep(0.001).await?;
    }
    Ok(())
}

async fn spawn_errors_are_values() -> io::Result<()> {
    let e = Command::new("/definitely/not/a/program").await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let e = Command::new("no-such-program-anywhere-on-path").spawn().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");

    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aio-process-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\necho hi\n")?;
    let e = Command::new(&file).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    let e = Command::new(&dir).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "a directory: {e}");

    let e = Command::new("true")
        .current_dir(dir.join("missing"))
        .stdout(PIPE)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    std::fs::remove_dir_all(&dir)?;

    let e = Command::new("true").stdout(STDOUT).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    let e = Command::new("true").stdin(STDOUT).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    // The failures left nothing behind: the next spawn works.
    assert_eq!(Command::new("true").await?.wait().await?, 0);
    Ok(())
}

/// As in asyncio, a spawn error about a file names it, keeping the kind
/// and, as its source, the OS error.
async fn spawn_errors_name_the_program() -> io::Result<()> {
    let e = create_subprocess_exec("nosuchprog", ["x"]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("No such file or directory") && msg.ends_with(": 'nosuchprog'"),
        "{msg}"
    );
    let os = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<io::Error>());
    assert_eq!(os.and_then(io::Error::raw_os_error), Some(libc::ENOENT), "{e:?}");

    let e = Command::new("/definitely/not/a/program").await.unwrap_err();
    assert!(e.to_string().ends_with(": '/definitely/not/a/program'"), "{e}");

    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aio-process-name-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\necho hi\n")?;
    let e = Command::new(&file).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().ends_with(&format!(": '{}'", file.display())), "{e}");
    // A missing working directory is what the error names, not the program.
    let missing = dir.join("missing");
    let e = Command::new("true").current_dir(&missing).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().ends_with(&format!(": '{}'", missing.display())), "{e}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn environment_directory_and_group() -> io::Result<()> {
    let mut p = create_subprocess_shell("echo \"$AIO_A|$AIO_B|$HOME\"; pwd; ps -o pgid= -p $$ || echo nops")
        .env("AIO_A", "one")
        .envs([("AIO_B", "two")])
        .env_remove("HOME")
        .current_dir("/")
        .process_group(0)
        .stdout(PIPE)
        .await?;
    let (out, _) = p.communicate(b"").await?;
    let out = String::from_utf8(out.unwrap()).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("one|two|"));
    assert_eq!(lines.next(), Some("/"));
    let pgid = lines.next().unwrap().trim();
    if pgid != "nops" {
        assert_eq!(pgid, p.pid().to_string(), "process_group(0) leads a new group");
    }
    let mut p = Command::new("/usr/bin/env")
        .env_clear()
        .env("ONLY", "this")
        .stdout(PIPE)
        .await?;
    let (out, _) = p.communicate(b"").await?;
    assert_eq!(out.unwrap(), b"ONLY=this\n");
    Ok(())
}

/// The child's session and process group, as `ps` sees them
/// (`None` where there is no `ps`).
async fn session_and_group(cmd: aio_net::Command) -> io::Result<Option<(String, String, String)>> {
    let mut p = cmd.stdout(PIPE).await?;
    let (out, _) = p.communicate(b"").await?;
    let out = String::from_utf8(out.unwrap()).unwrap();
    let v: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(p.wait().await?, 0);
    Ok(match v[..] {
        [sid, pgid] => Some((p.pid().to_string(), sid.to_string(), pgid.to_string())),
        _ => None,
    })
}

async fn start_new_session_and_process_group() -> io::Result<()> {
    const PS: &str = "ps -o sid= -o pgid= -p $$ || echo";
    // A new session: the child leads it and a group of its own.
    if let Some((pid, sid, pgid)) = session_and_group(create_subprocess_shell(PS).start_new_session(true)).await? {
        assert_eq!((sid.as_str(), pgid.as_str()), (pid.as_str(), pid.as_str()));
    }
    // Without: the child stays in ours.
    let ours = std::process::id().to_string();
    if let Some((pid, sid, _)) = session_and_group(create_subprocess_shell(PS)).await? {
        assert_ne!(sid, pid, "no new session unless asked ({ours})");
    }
    // Turned off again before the spawn: no new session either.
    let cmd = create_subprocess_shell(PS)
        .start_new_session(true)
        .start_new_session(false);
    if let Some((pid, sid, _)) = session_and_group(cmd).await? {
        assert_ne!(sid, pid, "start_new_session(false) wins");
    }
    // Both: the session first, then `setpgid`, which the kernel refuses
    // to a session leader, so the spawn fails with EPERM as CPython's
    // `_posixsubprocess` does (same calls, same order); no child is left.
    let e = create_subprocess_shell("exit 0")
        .start_new_session(true)
        .process_group(0)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    let os = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<io::Error>());
    assert_eq!(os.and_then(io::Error::raw_os_error), Some(libc::EPERM), "{e}");
    Ok(())
}

async fn readers_use_the_limit() -> io::Result<()> {
    let mut p = create_subprocess_shell("head -c 100 /dev/zero; echo")
        .stdout(PIPE)
        .limit(10)
        .await?;
    let r = p.stdout.as_mut().unwrap();
    assert_eq!(r.limit(), 10);
    let e = r.readline().await.unwrap_err();
    assert!(matches!(e, aio_net::StreamError::LimitOverrun { .. }), "{e}");
    p.wait().await?;
    // asyncio's `limit=0` is a `ValueError`; here the spawn is refused
    // before a child exists.
    let e = create_subprocess_shell("echo never")
        .stdout(PIPE)
        .limit(0)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("Limit cannot be <= 0"), "{e}");
    Ok(())
}

backend_tests!(
    echo_through_the_shell,
    start_new_session_and_process_group,
    cat_16_mib_through_communicate,
    communicate_with_both_pipes_full,
    communicate_without_pipes_and_empty_input,
    stderr_merged_into_stdout,
    exit_codes,
    kill_gives_a_negative_returncode,
    returncode_is_set_by_the_loop_without_wait,
    killed_child_gives_a_negative_returncode_without_wait,
    returncodes_of_many_children_without_wait,
    communicate_without_input_closes_stdin,
    communicate_takes_bytes_strings_and_none,
    two_hundred_children_no_zombies,
    several_tasks_wait_for_one_child,
    cancelled_wait_leaves_the_child_killable,
    cancelled_communicate_keeps_output,
    dropped_processes_are_reaped,
    spawn_errors_are_values,
    spawn_errors_name_the_program,
    environment_directory_and_group,
    readers_use_the_limit,
);

/// Loop 2 of a thread, the other backend when there is one.
fn second_loop() -> aio_core::Loop {
    aio_test::uring_loop().unwrap_or_else(aio_test::poll_loop)
}

/// A `Process` outlives the loop that spawned it: it is awaited on another
/// loop of the same thread, before and after the first one closed.
#[test]
fn process_awaited_on_another_loop() {
    let r1 = aio_core::Runner::with_loop(aio_test::poll_loop());
    let (a, b) = r1
        .run(async {
            let a = create_subprocess_shell("read x; exit 4").stdin(PIPE).await?;
            let b = create_subprocess_shell("read x; exit 5").stdin(PIPE).await?;
            // `b` starts waiting here: its watch belongs to this loop.
            assert!(timeout(0.01, b.wait()).await.is_err());
            Ok::<_, io::Error>((a, b))
        })
        .unwrap();
    let r2 = aio_core::Runner::with_loop(second_loop());
    let (a, b) = r2
        .run(async move {
            let (mut a, mut b) = (a, b);
            drop(a.stdin.take());
            drop(b.stdin.take());
            assert_eq!(a.wait().await?, 4);
            assert_eq!(b.wait().await?, 5);
            Ok::<_, io::Error>((a, b))
        })
        .unwrap();
    r1.close();
    assert_eq!((a.returncode(), b.returncode()), (Some(4), Some(5)));
    assert_reaped(a.pid());
    assert_reaped(b.pid());
}

/// A child still running when its loop has closed goes to the orphan list,
/// and a later spawn (on any loop) reaps it once it has exited.
#[test]
fn orphans_of_a_closed_loop_are_reaped() {
    let r1 = aio_core::Runner::with_loop(aio_test::poll_loop());
    let p = r1.run(sleeper().into_future()).unwrap();
    let pid = p.pid();
    r1.close();
    drop(p); // no loop runs: an orphan
    assert!(is_unreaped_child(pid));
    // SAFETY: `pid` is our unreaped child (on the orphan list).
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let r2 = aio_core::Runner::with_loop(second_loop());
    r2.run(async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while is_unreaped_child(pid) {
            assert!(std::time::Instant::now() < deadline, "orphan {pid} not reaped");
            // Every spawn reaps the orphans that have exited.
            Command::new("true").await?.wait().await?;
        }
        Ok::<_, io::Error>(())
    })
    .unwrap();
}

/// asyncio's `create_subprocess_exec(prog)`: no arguments, written `[]`.
#[test]
fn exec_with_no_arguments_type_checks() {
    // The point is that this compiles; building a Command needs no loop.
    let _cmd = aio_net::create_subprocess_exec("true", []);
    let owned = vec![String::from("-n"), String::from("x")];
    let _cmd = aio_net::create_subprocess_exec("echo", &owned);
    let _cmd = aio_net::create_subprocess_exec("echo", owned);
}
