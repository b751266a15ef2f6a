//! A loop that spins before it parks (`Builder::spin_before_park`) takes
//! I/O and other threads' wake-ups without going to sleep, still fires its
//! timers on time, and a paused clock turns the spin off. Each test gives
//! the loop a window far longer than any of its waits, so "did not sleep"
//! is exact, and a spin that missed its work (or its timer) would hold the
//! loop for the whole window, far past the tests' loose bounds.

use std::io::{Read, Write};

use std::time::{Duration, Instant};

mod servers;

use aio_core::{Loop, sleep};
use aio_net::{TcpListener, TcpStream};
use aio_test::{Backend, backend_tests};

/// A spin window no wait of these tests comes near.
const WINDOW: Duration = Duration::from_secs(30);

/// A bound that a missed spin (a whole [`WINDOW`]) exceeds.
const BOUND: Duration = Duration::from_secs(10);

fn spinning(b: Backend, window: Duration) -> Option<Loop> {
    aio_test::build_loop(b, Loop::builder().spin_before_park(window))
}

/// 200 request/reply exchanges with a blocking peer on another thread: the
/// loop waits for each reply, and finds it while spinning.
fn a_spinning_loop_takes_io_without_sleeping(b: Backend) {
    let Some(lp) = spinning(b, WINDOW) else { return };
    let started = Instant::now();
    let parks = lp
        .run_until_complete(async {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let addr = l.local_addr()?;
            let peer = std::thread::spawn(move || -> std::io::Result<()> {
                let mut s = std::net::TcpStream::connect(addr)?;
                let mut buf = [0u8; 8];
                for _ in 0..200 {
                    s.read_exact(&mut buf)?;
                    s.write_all(&buf)?;
                }
                Ok(())
            });
            let (s, _) = l.accept().await?;
            let (mut r, w) = s.into_streams();
            let before = aio_core::get_running_loop().metrics().parks;
            for i in 0..200u64 {
                w.write(&i.to_le_bytes());
                w.drain().await?;
                let reply = r.readexactly(8).await.map_err(std::io::Error::other)?;
                assert_eq!(reply, i.to_le_bytes(), "replies come back in order, whole");
            }
            let parks = aio_core::get_running_loop().metrics().parks - before;
            drop((r, w));
            peer.join().expect("the peer thread")?;
            Ok::<_, std::io::Error>(parks)
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        parks, 0,
        "every reply came within the spin window: the loop never slept"
    );
    assert!(
        started.elapsed() < BOUND,
        "a spin missed its I/O: {:?}",
        started.elapsed()
    );
}

/// The loop waits for values that pool threads (`to_thread`) and a plain
/// thread (`call_soon_threadsafe`) send: the spin sees them without
/// sleeping.
fn a_spin_takes_wake_ups_from_other_threads(b: Backend) {
    thread_local! {
        static WAITING: std::cell::RefCell<Option<aio_core::Future<u32>>> = const { std::cell::RefCell::new(None) };
    }
    let Some(lp) = spinning(b, WINDOW) else { return };
    let h = lp.handle();
    let started = Instant::now();
    let (got, parks) = lp
        .run_until_complete(async move {
            // The pool's first thread starts outside the measured part.
            aio_core::to_thread(|| ()).await.expect("the pool");
            let before = aio_core::get_running_loop().metrics().parks;
            let mut sum = 0;
            for i in 0..20u32 {
                sum += aio_core::to_thread(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    i
                })
                .await
                .expect("the value");
                // The callback runs on the loop's thread, where it finds
                // the future to complete.
                let fut = aio_core::Future::<u32>::new();
                WAITING.with(|w| *w.borrow_mut() = Some(fut.clone()));
                let h = h.clone();
                let sender = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    h.call_soon_threadsafe(move || {
                        if let Some(f) = WAITING.with(|w| w.borrow_mut().take()) {
                            let _ = f.set_result(i);
                        }
                    })
                    .expect("the loop is open");
                });
                sum += fut.await.expect("the value");
                assert!(
                    started.elapsed() < BOUND,
                    "a spin missed a wake-up: {:?}",
                    started.elapsed()
                );
                sender.join().expect("the sender thread");
            }
            (sum, aio_core::get_running_loop().metrics().parks - before)
        })
        .unwrap();
    assert_eq!(got, 2 * (0..20).sum::<u32>());
    assert_eq!(
        parks, 0,
        "each wake-up came within the spin window: the loop never slept"
    );
    assert!(
        started.elapsed() < BOUND,
        "a spin missed a wake-up: {:?}",
        started.elapsed()
    );
}

/// A timer due inside the spin window ends the spin when it is due: not
/// earlier, and not at the end of the window.
fn a_spin_ends_at_the_next_timer(b: Backend) {
    let Some(lp) = spinning(b, WINDOW) else { return };
    for _ in 0..5 {
        let t0 = Instant::now();
        lp.run_until_complete(sleep(0.01)).unwrap().unwrap();
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(10), "a timer fired early: {took:?}");
        assert!(took < BOUND, "a spin ran past its timer: {took:?}");
    }
}

/// CPU time the calling thread has used so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How long the loop's thread spends on CPU while it waits 300 ms for a
/// connection that a thread opens then, and the loop's parks meanwhile.
async fn cpu_while_waiting() -> std::io::Result<(Duration, u64)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let (cpu0, parks0) = (thread_cpu(), aio_core::get_running_loop().metrics().parks);
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::net::TcpStream::connect(addr).map(drop)
    });
    let (s, _) = l.accept().await?;
    let waited = (
        thread_cpu() - cpu0,
        aio_core::get_running_loop().metrics().parks - parks0,
    );
    drop(s);
    peer.join().expect("the peer thread")?;
    Ok(waited)
}

/// A loop with nothing to do spins for its window only, then sleeps.
fn a_spin_gives_up_after_its_window(b: Backend) {
    let Some(lp) = spinning(b, Duration::from_millis(1)) else {
        return;
    };
    let (cpu, parks) = lp.run_until_complete(cpu_while_waiting()).unwrap().unwrap();
    assert!(parks >= 1, "the loop slept once its window was over");
    assert!(
        cpu < Duration::from_millis(150),
        "the loop spun {cpu:?} of a 300 ms wait"
    );
}

/// With a paused clock (tests) the loop does not spin at all: it jumps
/// to its timers (an hour of loop time passes at once), and a wait for
/// I/O sleeps.
fn a_paused_clock_does_not_spin(b: Backend) {
    let Some(lp) = aio_test::build_loop(b, Loop::builder().paused_clock().spin_before_park(WINDOW)) else {
        return;
    };
    let started = Instant::now();
    lp.run_until_complete(sleep(3600)).unwrap().unwrap();
    let (cpu, parks) = lp.run_until_complete(cpu_while_waiting()).unwrap().unwrap();
    assert!(parks >= 1, "the loop slept for the connection");
    assert!(
        cpu < Duration::from_millis(150),
        "a paused loop spun {cpu:?} of a 300 ms wait"
    );
    assert!(started.elapsed() < BOUND, "a paused loop spun: {:?}", started.elapsed());
}

/// A stream opened on a spinning loop works both ways end to end (the
/// spin's looks at the driver neither lose nor repeat a completion).
async fn spin_stream_round_trip() -> std::io::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let c = TcpStream::connect(l.local_addr()?).await?;
    let (s, _) = l.accept().await?;
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let writer = aio_core::create_task({
        let data = data.clone();
        async move {
            let (_r, w) = c.into_streams();
            w.write(&data);
            w.drain().await?;
            w.write_eof();
            w.drain().await
        }
    });
    let (mut r, _w) = s.into_streams();
    let mut got = Vec::new();
    loop {
        let chunk = r.read(64 * 1024).await.map_err(std::io::Error::other)?;
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    writer.await.map_err(|e| std::io::Error::other(e.to_string()))??;
    assert!(
        got == data,
        "1 MiB came through whole and in order ({} bytes)",
        got.len()
    );
    Ok(())
}

fn a_spinning_loop_moves_a_stream_whole(b: Backend) {
    // A short window: the writer and reader are on the same loop, so the
    // loop spins only while the kernel moves the bytes.
    let Some(lp) = spinning(b, Duration::from_micros(50)) else {
        return;
    };
    lp.run_until_complete(spin_stream_round_trip()).unwrap().unwrap();
}

/// CPython's asyncio client: 200 lines, each echoed before the next goes
/// out, then its end of stream; prints how many came back intact.
const PY_CLIENT: &str = r#"
import asyncio, sys
async def main(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    ok = 0
    for i in range(200):
        line = f"line {i}\n".encode()
        w.write(line)
        await w.drain()
        ok += await r.readline() == line
    w.write_eof()
    print(ok, await r.read() == b"", flush=True)
    w.close()
    await w.wait_closed()
asyncio.run(main(int(sys.argv[1])))
"#;

/// A peer that is not aio (CPython's asyncio, in a child process) against
/// an aio line echo server on a spinning loop: every line comes back, in
/// order, and the ends of stream cross.
fn python_client_against_a_spinning_server(b: Backend) {
    if !aio_test::have_peer("python3") {
        return;
    }
    let Some(lp) = spinning(b, Duration::from_micros(50)) else {
        return;
    };
    lp.run_until_complete(async {
        let server = servers::local_server(|mut r, w| async move {
            loop {
                let line = r.readline().await?;
                if line.is_empty() {
                    break;
                }
                w.write(&line);
                w.drain().await?;
            }
            w.close();
            w.wait_closed().await
        })
        .await?;
        let port = server.sockets()[0].port();
        let (stdout, stderr) = servers::python(&["-c", PY_CLIENT, &port.to_string()]).await?;
        assert_eq!(stdout, "200 True\n", "python said: {stderr}");
        server.close();
        server.wait_closed().await?;
        Ok::<_, std::io::Error>(())
    })
    .unwrap()
    .unwrap();
}

backend_tests!(
    each: a_spinning_loop_takes_io_without_sleeping,
    a_spin_takes_wake_ups_from_other_threads,
    a_spin_ends_at_the_next_timer,
    a_spin_gives_up_after_its_window,
    a_paused_clock_does_not_spin,
    a_spinning_loop_moves_a_stream_whole,
    python_client_against_a_spinning_server
);
