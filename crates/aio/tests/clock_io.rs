//! The paused clock with real I/O, on every backend: a TCP echo between
//! two tasks inside a 30 s timeout completes (time never jumps while I/O is
//! ready), sleeps between the exchanges take virtual time only, and
//! `#[aio::test(start_paused = true)]` starts the facade's loop paused.

use std::io;
use std::time::{Duration, Instant};

use aio::{Backend, Builder, TcpListener, TcpStream, create_task, monotonic, sleep, timeout};

/// Virtual seconds since `t0`, to the microsecond.
fn since(t0: f64, t: f64) -> f64 {
    ((t - t0) * 1e6).round() / 1e6
}

/// An echo server task and a client that sends `rounds` messages, sleeping
/// `pause` seconds of loop time before each; returns the replies and the
/// loop time it took.
async fn echo(rounds: usize, pause: f64) -> io::Result<(Vec<String>, f64)> {
    let t0 = monotonic();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = create_task(async move {
        let (conn, _) = listener.accept().await?;
        loop {
            let (n, buf) = conn.read(Vec::with_capacity(1024)).await;
            let n = n?;
            if n == 0 {
                return Ok::<_, io::Error>(());
            }
            conn.write_all(buf).await.0?;
        }
    });
    let client = TcpStream::connect(addr).await?;
    let mut replies = Vec::new();
    for i in 0..rounds {
        sleep(pause).await?;
        client.write_all(format!("ping {i}").into_bytes()).await.0?;
        let (n, buf) = client.read(Vec::with_capacity(1024)).await;
        n?;
        replies.push(String::from_utf8(buf).unwrap());
    }
    client.shutdown(std::net::Shutdown::Write).await?;
    server.await.map_err(|e| io::Error::other(e.to_string()))??;
    Ok((replies, since(t0, monotonic())))
}

fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Poll];
    if cfg!(feature = "uring") && Builder::new().backend(Backend::Uring).build().is_ok() {
        v.push(Backend::Uring);
    }
    v
}

#[test]
fn tcp_echo_inside_a_timeout_on_a_paused_clock() {
    for backend in backends() {
        let lp = Builder::new().backend(backend).paused_clock().build().unwrap();
        let real = Instant::now();
        let r = lp
            .run_until_complete(async { timeout(30, echo(50, 0.0)).await })
            .unwrap();
        let (replies, took) = r
            .unwrap_or_else(|_| panic!("{backend}: the echo timed out: the clock jumped over ready I/O"))
            .unwrap();
        assert_eq!(replies.len(), 50, "{backend}");
        assert_eq!(replies[49], "ping 49", "{backend}");
        assert_eq!(took, 0.0, "{backend}: no timer was due, the clock stood still");
        assert!(real.elapsed() < Duration::from_secs(10), "{backend}");
        lp.close();
    }
}

#[test]
fn sleeps_between_exchanges_take_virtual_time_only() {
    for backend in backends() {
        let lp = Builder::new().backend(backend).paused_clock().build().unwrap();
        let real = Instant::now();
        let r = lp
            .run_until_complete(async { timeout(3600, echo(10, 60.0)).await })
            .unwrap();
        let (replies, took) = r
            .unwrap_or_else(|_| panic!("{backend}: the echo timed out: the clock jumped over ready I/O"))
            .unwrap();
        assert_eq!(replies[9], "ping 9", "{backend}");
        assert_eq!(took, 600.0, "{backend}: ten one-minute sleeps");
        assert!(real.elapsed() < Duration::from_secs(10), "{backend}");
        lp.close();
    }
}

#[aio::test(start_paused = true)]
async fn the_facade_test_macro_starts_paused() {
    assert!(aio::time::is_paused());
    let t0 = monotonic();
    assert_eq!(aio::wait_for(sleep(86_400), 30).await, Err(aio::TimeoutError));
    assert_eq!(since(t0, monotonic()), 30.0);
    let (replies, _) = echo(3, 1.0).await.unwrap();
    assert_eq!(replies, ["ping 0", "ping 1", "ping 2"]);
}

#[aio::test(start_paused = true)]
async fn advance_through_the_facade() {
    let t0 = monotonic();
    let t = create_task(sleep(10));
    aio::yield_now().await.unwrap(); // the task arms its timer
    aio::time::advance(Duration::from_secs(10)).await.unwrap();
    assert!(t.done());
    assert_eq!(since(t0, monotonic()), 10.0);
}
