//! `LoopPool`: shutdown drains and closes every loop, a `Send` task placed
//! on the pool runs exactly once (and an idle loop takes queued work from
//! a blocked one), a handler's panic leaves the pool serving, metrics are
//! readable from other threads while the loops run, connections are
//! spread evenly, and a stream server's `close_clients`/`abort_clients`
//! end the connections on every loop (against CPython's asyncio clients
//! too). Socket tests run on both backends. Every test runs
//! alone in this binary (`serial`): one counts the process's descriptors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use aio_test::{Backend, backend_tests, within};

/// A pool of `n` loops on `backend`, or `None` where io_uring cannot run
/// (a panic instead with `AIO_REQUIRE_URING=1`).
fn pool(backend: Backend, n: usize) -> Option<aio::LoopPool> {
    aio_test::new_loop(backend)?.close();
    let b = match backend {
        Backend::Poll => aio::Backend::Poll,
        Backend::Uring => aio::Backend::Uring,
    };
    Some(aio::Builder::new().backend(b).build_pool(n).expect("the pool starts"))
}

/// The echo handler: answers each line, until EOF.
async fn echo_lines(mut r: aio::StreamReader, w: aio::StreamWriter) -> std::io::Result<()> {
    loop {
        let line = r.readline().await?;
        if line.is_empty() {
            return Ok(());
        }
        w.write(&line);
        w.drain().await?;
    }
}

fn exchange(s: &mut BufReader<TcpStream>, line: &str) -> String {
    s.get_mut().write_all(line.as_bytes()).unwrap();
    let mut got = String::new();
    s.read_line(&mut got).unwrap();
    got
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(addr).unwrap())
}

/// Connections open when shutdown begins finish their exchange within
/// the grace period; then every loop closes, the threads end, and the
/// process holds no descriptor more than before the pool.
fn shutdown_drains_and_closes_every_loop(backend: Backend) {
    within(60, move || {
        let _one = aio_test::serial();
        let before = aio_test::fd_count();
        let Some(pool) = pool(backend, 2) else { return };
        let server = pool.start_server("127.0.0.1:0", echo_lines).unwrap();
        let addr = server.local_addr();
        let mut clients: Vec<_> = (0..6).map(|_| connect(addr)).collect();
        for c in &mut clients {
            assert_eq!(exchange(c, "hello\n"), "hello\n");
        }
        std::thread::scope(|s| {
            let shut = s.spawn(|| pool.shutdown(Duration::from_secs(30)));
            while !pool.is_shutting_down() {
                std::thread::yield_now();
            }
            // The server stopped accepting, but the connections go on.
            for c in &mut clients {
                assert_eq!(exchange(c, "still there\n"), "still there\n");
            }
            clients.clear(); // EOF: each handler ends
            assert_eq!(
                shut.join().unwrap(),
                0,
                "every connection finished within the grace period"
            );
        });
        assert!(pool.handles().iter().all(aio::LoopHandle::is_closed));
        assert!(!server.is_serving());
        assert_eq!(server.connections(), 0);
        assert!(TcpStream::connect(addr).is_err(), "nothing listens any more");
        // Handles keep each loop's wake-up descriptor: let them go too.
        drop((pool, server));
        let mut after = aio_test::fd_count();
        for _ in 0..1000 {
            if after <= before {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            after = aio_test::fd_count();
        }
        assert!(
            after <= before,
            "{} descriptors before, {after} after: {}",
            before,
            aio_test::open_fds()
        );
    });
}

/// A connection that does not finish within the grace period is
/// cancelled when its loop closes: its handler sees the cancellation.
fn shutdown_cancels_what_outlives_the_grace(backend: Backend) {
    within(60, move || {
        let _one = aio_test::serial();
        let Some(pool) = pool(backend, 2) else { return };
        let cancelled = Arc::new(AtomicUsize::new(0));
        let c2 = cancelled.clone();
        let server = pool
            .start_server("127.0.0.1:0", move |mut r: aio::StreamReader, w: aio::StreamWriter| {
                let cancelled = c2.clone();
                async move {
                    let line = r.readline().await?;
                    w.write(&line);
                    w.drain().await?;
                    // Then waits for a line that never comes.
                    if let Err(e) = r.readline().await {
                        if e.is_cancelled() {
                            cancelled.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok::<_, aio::StreamError>(())
                }
            })
            .unwrap();
        let mut c = connect(server.local_addr());
        assert_eq!(exchange(&mut c, "hi\n"), "hi\n");
        assert_eq!(
            pool.shutdown(Duration::from_millis(20)),
            1,
            "one connection outlived the grace"
        );
        assert_eq!(cancelled.load(Ordering::SeqCst), 1);
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "the connection was closed");
    });
}

/// Many `Send` futures placed on the pool each run exactly once, and their
/// results come back.
#[test]
fn a_send_task_placed_on_the_pool_runs_exactly_once() {
    within(60, || {
        let _one = aio_test::serial();
        let pool = aio::Builder::new().backend(aio::Backend::None).build_pool(2).unwrap();
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..2000).map(|_| AtomicUsize::new(0)).collect());
        let results: Vec<_> = (0..2000)
            .map(|i| {
                let runs = runs.clone();
                pool.spawn(async move {
                    runs[i].fetch_add(1, Ordering::SeqCst);
                    aio::sleep(0).await.unwrap();
                    i * 2
                })
            })
            .collect();
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(r.wait().unwrap(), i * 2);
        }
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
        pool.shutdown(Duration::ZERO);
    });
}

/// Work queued on a loop that cannot run (blocked) is taken by its idle
/// sibling; the blocked loop's own tasks never move.
#[test]
fn an_idle_loop_takes_queued_work_from_a_blocked_sibling() {
    within(60, || {
        let _one = aio_test::serial();
        let pool = aio::Builder::new().backend(aio::Backend::None).build_pool(2).unwrap();
        let tids = pool.run(|_| async { std::thread::current().id() });
        // Block both loops, so `spawn` queues work on each.
        let (release0, blocked0) = mpsc::channel::<()>();
        let (release1, blocked1) = mpsc::channel::<()>();
        let blocked0 = std::sync::Mutex::new(blocked0);
        let blocked1 = std::sync::Mutex::new(blocked1);
        let (b0, b1) = (Arc::new(blocked0), Arc::new(blocked1));
        let (started0, started) = mpsc::channel();
        let started1 = started0.clone();
        let w0 = pool.spawn_on(0, async move {
            started0.send(()).unwrap();
            b0.lock().unwrap().recv().unwrap();
            std::thread::current().id()
        });
        let w1 = pool.spawn_on(1, async move {
            started1.send(()).unwrap();
            b1.lock().unwrap().recv().unwrap();
        });
        started.recv().unwrap();
        started.recv().unwrap();
        let jobs: Vec<_> = (0..20)
            .map(|_| pool.spawn(async { std::thread::current().id() }))
            .collect();
        let queued = pool.queued();
        assert_eq!(queued.iter().sum::<usize>(), 20);
        assert!(queued[0] > 0, "some work was queued on loop 0: {queued:?}");
        // Loop 1 runs again and finds its queue, then loop 0's.
        release1.send(()).unwrap();
        for j in jobs {
            assert_eq!(
                j.wait().unwrap(),
                tids[1],
                "loop 1 ran every job while loop 0 was blocked"
            );
        }
        release0.send(()).unwrap();
        assert_eq!(w0.wait().unwrap(), tids[0], "a started task stays on its loop");
        w1.wait().unwrap();
        pool.shutdown(Duration::ZERO);
    });
}

/// A handler that panics fails its own connection only: the panic is
/// reported through its loop's exception handler, and every loop goes on
/// serving.
fn a_panicking_handler_does_not_take_the_pool_down(backend: Backend) {
    within(60, move || {
        let _one = aio_test::serial();
        let Some(pool) = pool(backend, 2) else { return };
        let reported = Arc::new(AtomicUsize::new(0));
        let r2 = reported.clone();
        pool.run(move |_| {
            let reported = r2.clone();
            async move {
                aio::get_running_loop().set_exception_handler(Some(move |_: &aio::ExceptionContext| {
                    reported.fetch_add(1, Ordering::SeqCst);
                }));
            }
        });
        let server = pool
            .start_server(
                "127.0.0.1:0",
                |mut r: aio::StreamReader, w: aio::StreamWriter| async move {
                    let line = r.readline().await?;
                    assert!(line != b"boom\n", "the handler panics");
                    w.write(&line);
                    w.drain().await?;
                    Ok::<_, aio::StreamError>(())
                },
            )
            .unwrap();
        let addr = server.local_addr();
        // Hold connections so that boom lands on both loops.
        let held: Vec<_> = (0..4).map(|_| connect(addr)).collect();
        for _ in 0..4 {
            let mut c = connect(addr);
            c.get_mut().write_all(b"boom\n").unwrap();
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest); // closed or reset
            assert!(rest.is_empty());
        }
        while reported.load(Ordering::SeqCst) < 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        let served = server.served_per_loop();
        assert!(served.iter().all(|&n| n > 0), "both loops took connections: {served:?}");
        for _ in 0..8 {
            assert_eq!(exchange(&mut connect(addr), "fine\n"), "fine\n");
        }
        assert_eq!(pool.run(|i| async move { i }), [0, 1], "every loop still runs");
        pool.shutdown(Duration::from_secs(10));
    });
}

/// Another thread reads each loop's metrics while the loops serve.
fn metrics_are_readable_from_another_thread(backend: Backend) {
    within(60, move || {
        let _one = aio_test::serial();
        let Some(pool) = pool(backend, 2) else { return };
        let server = pool.start_server("127.0.0.1:0", echo_lines).unwrap();
        let mut clients: Vec<_> = (0..10).map(|_| connect(server.local_addr())).collect();
        for c in &mut clients {
            assert_eq!(exchange(c, "x\n"), "x\n");
        }
        let handles = pool.handles().to_vec();
        let seen = std::thread::spawn(move || {
            loop {
                let m: Vec<aio::LoopMetrics> = handles.iter().map(aio::LoopHandle::metrics).collect();
                // Published at each loop's next turn.
                if m.iter().map(|m| m.connections).sum::<usize>() == 10 && m.iter().all(|m| m.ops_in_flight >= 5) {
                    return m;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .join()
        .unwrap();
        for m in &seen {
            assert_eq!(m.connections, 5, "balanced: {seen:?}");
            // The accept task and five handlers, each waiting for a read.
            assert!(m.tasks >= 6, "{m:?}");
            assert!(m.turns > 0 && (0.0..=1.0).contains(&m.busy), "{m:?}");
        }
        assert_eq!(pool.metrics().len(), 2);
        drop(clients);
        pool.shutdown(Duration::from_secs(10));
    });
}

/// 100 connections on two loops: each loop holds at most 1.2× its share
/// (the kernel's hash alone often puts 57 on one).
fn connections_are_spread_evenly(backend: Backend) {
    within(60, move || {
        let _one = aio_test::serial();
        let Some(pool) = pool(backend, 2) else { return };
        let server = pool.start_server("127.0.0.1:0", echo_lines).unwrap();
        let mut clients: Vec<_> = (0..100).map(|_| connect(server.local_addr())).collect();
        for c in &mut clients {
            assert_eq!(exchange(c, "x\n"), "x\n");
        }
        let per_loop = server.connections_per_loop();
        assert_eq!(per_loop.iter().sum::<usize>(), 100);
        assert!(per_loop.iter().all(|&n| n <= 60), "{per_loop:?}");
        drop(clients);
        pool.shutdown(Duration::from_secs(10));
    });
}

/// asyncio 3.13's `close_clients`, over a pool: every open connection on
/// every loop gets what its handler wrote, then EOF; each handler's read
/// meets EOF; the server's connections end. A raw-stream pool server
/// says it cannot (`Unsupported`).
fn close_clients_ends_the_connections_on_every_loop(backend: Backend) {
    within(60, move || {
        let _one = aio_test::serial();
        let Some(pool) = pool(backend, 2) else { return };
        let ends = Arc::new(AtomicUsize::new(0));
        let e2 = ends.clone();
        let server = pool
            .start_server("127.0.0.1:0", move |mut r: aio::StreamReader, w: aio::StreamWriter| {
                let ends = e2.clone();
                async move {
                    w.write(b"hello\n");
                    w.write(&aio_test::payload(100_000, 3));
                    let line = r.readline().await;
                    if matches!(line.as_deref(), Ok(b"")) {
                        ends.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .unwrap();
        let addr = server.local_addr();
        let mut clients: Vec<_> = (0..6).map(|_| connect(addr)).collect();
        for c in &mut clients {
            let mut line = String::new();
            c.read_line(&mut line).unwrap();
            assert_eq!(line, "hello\n");
        }
        assert!(server.connections_per_loop().iter().all(|&n| n > 0), "both loops serve");
        server.close();
        server.close_clients().unwrap();
        for c in &mut clients {
            c.get_mut().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).expect("EOF after the data");
            assert_eq!(rest, aio_test::payload(100_000, 3));
        }
        assert!(
            server.wait_closed_timeout(Duration::from_secs(20)),
            "the handlers ended"
        );
        assert_eq!(ends.load(Ordering::SeqCst), 6, "every handler read EOF");

        let raw = pool
            .start_tcp_server("127.0.0.1:0", |_s: aio::TcpStream| async {})
            .unwrap();
        let e = raw.close_clients().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        raw.close();
        pool.shutdown(Duration::from_secs(10));
    });
}

/// `abort_clients` over a pool: handlers blocked in `drain` (their clients
/// read nothing) fail with a lost connection at once; the clients read
/// what had reached them, then EOF.
fn abort_clients_ends_the_connections_at_once(backend: Backend) {
    within(60, move || {
        let _one = aio_test::serial();
        let Some(pool) = pool(backend, 2) else { return };
        let failed = Arc::new(AtomicUsize::new(0));
        let f2 = failed.clone();
        let (tx, rx) = mpsc::channel::<()>();
        let tx = Arc::new(std::sync::Mutex::new(tx));
        let server = pool
            .start_server("127.0.0.1:0", move |_r: aio::StreamReader, w: aio::StreamWriter| {
                let (failed, tx) = (f2.clone(), tx.clone());
                async move {
                    w.write(b"hello\n");
                    // Far more than the socket buffers hold: drain waits.
                    w.write(&aio_test::payload(16 << 20, 5));
                    let _ = tx.lock().unwrap().send(());
                    if w.drain().await.is_err() {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .unwrap();
        let addr = server.local_addr();
        let mut clients: Vec<_> = (0..4).map(|_| connect(addr)).collect();
        for _ in 0..4 {
            rx.recv_timeout(Duration::from_secs(20))
                .expect("a handler waits in drain");
        }
        server.close();
        server.abort_clients().unwrap();
        assert!(
            server.wait_closed_timeout(Duration::from_secs(20)),
            "the handlers ended"
        );
        assert_eq!(failed.load(Ordering::SeqCst), 4, "every drain failed");
        for c in &mut clients {
            c.get_mut().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).expect("EOF after what had arrived");
            assert!(got.starts_with(b"hello\n"));
            assert!(got.len() < 6 + (16 << 20), "the rest was discarded");
        }
        pool.shutdown(Duration::from_secs(10));
    });
}

/// A real peer for the pool's `close_clients`: four CPython asyncio
/// clients connect at once and read to EOF; after the server's close and
/// `close_clients`, each has received everything its handler wrote, then
/// a clean end of stream. Without `python3` the test says so and passes
/// (unless `AIO_REQUIRE_PEERS` is set).
fn python_clients_see_close_clients_as_a_clean_end(backend: Backend) {
    const PY: &str = r#"
import asyncio, sys
async def one(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    hello = await r.readline()
    print("ready", flush=True)
    rest = await r.read()  # to EOF
    w.close()
    await w.wait_closed()
    return hello == b"hello\n" and len(rest)
async def main(port):
    got = await asyncio.gather(*(one(port) for _ in range(4)))
    print("got", " ".join(str(g) for g in got), flush=True)
asyncio.run(main(int(sys.argv[1])))
"#;
    within(60, move || {
        let _one = aio_test::serial();
        if !aio_test::have_peer("python3") {
            return;
        }
        let Some(pool) = pool(backend, 2) else { return };
        let server = pool
            .start_server(
                "127.0.0.1:0",
                |mut r: aio::StreamReader, w: aio::StreamWriter| async move {
                    w.write(b"hello\n");
                    w.write(&aio_test::payload(50_000, 9));
                    let _ = r.readline().await;
                },
            )
            .unwrap();
        let mut child = std::process::Command::new("python3")
            .args(["-c", PY, &server.local_addr().port().to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        for _ in 0..4 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert_eq!(line, "ready\n");
        }
        server.close();
        server.close_clients().unwrap();
        let mut last = String::new();
        out.read_to_string(&mut last).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(last, "got 50000 50000 50000 50000\n");
        assert!(server.wait_closed_timeout(Duration::from_secs(20)));
        pool.shutdown(Duration::from_secs(10));
    });
}

backend_tests!(each:
    shutdown_drains_and_closes_every_loop,
    shutdown_cancels_what_outlives_the_grace,
    a_panicking_handler_does_not_take_the_pool_down,
    metrics_are_readable_from_another_thread,
    connections_are_spread_evenly,
    close_clients_ends_the_connections_on_every_loop,
    abort_clients_ends_the_connections_at_once,
    python_clients_see_close_clients_as_a_clean_end,
);
