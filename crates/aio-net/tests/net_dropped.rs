//! What users do that drops I/O midway, on every backend: `select`-style
//! races that drop a read, a read dropped after its data arrived, a
//! datagram receive dropped the same way, a listener nobody accepts from,
//! a line with no end, and natural buffers (`vec![0; n]`). Nothing received
//! may be lost, nothing may grow without bound, and no read may pretend to
//! be the end of the stream.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use aio_core::{create_task, sleep, yield_now};
use aio_net::{StreamError, TcpListener, TcpStream, UdpSocket};
use aio_test::{backend_tests, payload};

/// `futures_lite::future::or`: the first of two futures to finish; the
/// other is dropped. `a` is polled first.
async fn or<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx: &mut Context<'_>| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        b.as_mut().poll(cx)
    })
    .await
}

/// `f`, or a clear failure after 10 s (lost data shows as a read that
/// never completes).
async fn within<T>(what: &str, f: impl Future<Output = T>) -> io::Result<T> {
    aio_core::timeout(10, f)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{what}: nothing within 10 s")))
}

/// Polls `f` exactly once (it is left pending, its operation started).
async fn poll_once<F: Future>(mut f: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await
}

async fn pair() -> io::Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let c = create_task(async move { TcpStream::connect(addr).await });
    let (s, _) = l.accept().await?;
    let c = c.await.map_err(|e| io::Error::other(e.to_string()))??;
    Ok((s, c))
}

/// Where `got` first differs from `want`, for a failure message.
fn first_gap(got: &[u8], want: &[u8]) -> Option<usize> {
    got.iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .or_else(|| (got.len() != want.len()).then(|| got.len().min(want.len())))
}

/// A reader that races every read against a short timer (the timer often
/// wins, dropping the read with its receive in the kernel) still gets
/// every byte, in order.
async fn raced_reads_lose_no_byte() -> io::Result<()> {
    const SIZE: usize = 16 << 20;
    let (rx, tx) = pair().await?;
    let data = payload(SIZE, 7);
    let sent = data.clone();
    let sender = create_task(async move {
        for chunk in sent.chunks(256 * 1024) {
            tx.write_all(chunk.to_vec()).await.0?;
        }
        tx.shutdown(std::net::Shutdown::Write).await
    });
    let mut got = Vec::with_capacity(SIZE);
    let mut dropped = 0u32;
    let mut rounds = 0u64;
    loop {
        rounds += 1;
        assert!(rounds < 50_000_000, "no end of stream after {} bytes", got.len());
        let read = async { Some(rx.read(Vec::with_capacity(64 * 1024)).await) };
        let timer = async {
            let _ = sleep(0.00002).await;
            None
        };
        match within("a raced read", or(read, timer)).await? {
            Some((res, buf)) => {
                if res? == 0 {
                    break;
                }
                got.extend_from_slice(&buf);
            }
            None => dropped += 1,
        }
    }
    sender.await.map_err(|e| io::Error::other(e.to_string()))??;
    assert!(
        got == data,
        "received {} of {} bytes, first gap at byte {:?} ({dropped} reads dropped)",
        got.len(),
        data.len(),
        first_gap(&got, &data)
    );
    Ok(())
}

/// A read whose data arrived while its task was busy elsewhere, then
/// dropped without being polled again: the next read returns that data.
async fn a_read_dropped_after_its_data_came_loses_nothing() -> io::Result<()> {
    let (rx, tx) = pair().await?;
    for round in 0..20u8 {
        {
            // Initialised buffers: valgrind cannot see the kernel write.
            let mut read = pin!(rx.read(vec![0u8; 100]));
            assert!(poll_once(read.as_mut()).await.is_pending());
            tx.write_all(vec![round; 10]).await.0?;
            // The kernel completes the receive meanwhile (or, if it has not
            // yet, the dropped read is cancelled with it in flight).
            sleep(0.002).await?;
        }
        let (res, buf) = within("the read after a dropped one", rx.read(vec![0u8; 100])).await?;
        assert_eq!(res?, 10, "round {round}");
        assert_eq!(buf[..10], vec![round; 10], "round {round}");
    }
    Ok(())
}

/// The same for a stream reader made from the socket afterwards: it sees
/// the dropped read's data first, then the rest, in order.
async fn a_stream_reader_sees_what_a_dropped_read_got() -> io::Result<()> {
    let (rx, tx) = pair().await?;
    {
        let mut read = pin!(rx.read(vec![0u8; 100]));
        assert!(poll_once(read.as_mut()).await.is_pending());
        tx.write_all(b"first\n".to_vec()).await.0?;
        sleep(0.002).await?;
    }
    tx.write_all(b"second\n".to_vec()).await.0?;
    let (mut r, _w) = rx.into_streams();
    assert_eq!(
        within("readline", r.readline()).await?.map_err(io::Error::other)?,
        b"first\n"
    );
    assert_eq!(r.readline().await.map_err(io::Error::other)?, b"second\n");
    Ok(())
}

/// A datagram receive dropped after (or while) its datagram came: the next
/// receive gets that datagram, with its source address.
async fn a_dropped_datagram_receive_loses_nothing() -> io::Result<()> {
    let a = UdpSocket::bind("127.0.0.1:0").await?;
    let b = UdpSocket::bind("127.0.0.1:0").await?;
    let b_addr = b.local_addr()?;
    for round in 0..20u8 {
        {
            let mut recv = pin!(a.recv_from(vec![0u8; 64]));
            assert!(poll_once(recv.as_mut()).await.is_pending());
            b.send_to(vec![round; 5 + round as usize], a.local_addr()?).await.0?;
            sleep(0.002).await?;
        }
        let (res, buf) = within("the receive after a dropped one", a.recv_from(vec![0u8; 64])).await?;
        let (n, from) = res?;
        assert_eq!(n, 5 + round as usize, "round {round}");
        assert_eq!(buf[..n], vec![round; n]);
        assert_eq!(from, b_addr);
    }
    Ok(())
}

/// Accepts raced against a timer lose no connection.
async fn raced_accepts_lose_no_connection() -> io::Result<()> {
    const N: usize = 40;
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let clients = create_task(async move {
        let mut v = Vec::new();
        for i in 0..N {
            let c = TcpStream::connect(addr).await?;
            c.write_all(vec![i as u8]).await.0?;
            v.push(c);
        }
        Ok::<_, io::Error>(v)
    });
    let mut seen = Vec::new();
    let mut rounds = 0;
    while seen.len() < N {
        rounds += 1;
        assert!(rounds < 1_000_000, "accepted {} of {N}", seen.len());
        let acc = async { Some(l.accept().await) };
        let timer = async {
            let _ = sleep(0.00002).await;
            None
        };
        if let Some(r) = or(acc, timer).await {
            let (s, _) = r?;
            let (res, buf) = s.read(Vec::with_capacity(1)).await;
            res?;
            seen.push(buf[0]);
        }
    }
    let _clients = clients.await.map_err(|e| io::Error::other(e.to_string()))??;
    seen.sort_unstable();
    assert_eq!(seen, (0..N as u8).collect::<Vec<_>>());
    Ok(())
}

/// Connections to local `port` that this process holds a descriptor of
/// (accepted ones: their local port is the listener's), read from
/// `/proc/net/tcp` and this process's descriptor table, so other tests
/// running meanwhile do not count.
fn accepted_on(port: u16) -> usize {
    let ours: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            let established = f.get(3) == Some(&"01");
            let inode = f.get(9).and_then(|i| i.parse::<u64>().ok());
            local_port == Some(port) && established && inode.is_some_and(|i| ours.contains(&i))
        })
        .count()
}

/// A listener that accepted once and then stops accepting ("take a
/// permit, then accept") holds a small, bounded number of connections
/// nobody asked for; the rest wait in the kernel, and every one is still
/// accepted later.
async fn a_listener_nobody_accepts_from_holds_few_connections() -> io::Result<()> {
    const N: usize = 200;
    aio_test::raise_nofile();
    let l = TcpListener::bind_addr("127.0.0.1:0".parse().unwrap(), 1024, false)?;
    let addr = l.local_addr()?;
    let first = create_task(async move { TcpStream::connect(addr).await });
    let (s0, _) = l.accept().await?;
    let _c0 = first.await.map_err(|e| io::Error::other(e.to_string()))??;
    drop(s0);
    let mut clients = Vec::new();
    for _ in 0..N {
        clients.push(TcpStream::connect(addr).await?);
    }
    // Let whatever the driver does in the background happen.
    for _ in 0..20 {
        sleep(0.002).await?;
    }
    let held = accepted_on(addr.port());
    eprintln!("connections held unasked: {held}");
    assert!(held <= 40, "{held} connections accepted that nobody asked for");
    for (i, c) in clients.iter().enumerate() {
        c.write_all(vec![i as u8]).await.0?;
    }
    let mut seen = Vec::new();
    for _ in 0..N {
        let (s, _) = l.accept().await?;
        let (res, buf) = s.read(Vec::with_capacity(1)).await;
        res?;
        seen.push(buf[0]);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..N).map(|i| i as u8).collect::<Vec<_>>());
    Ok(())
}

/// `readuntil` on a line that never ends, from a peer that sends fast:
/// what the reader buffers stays within about twice its limit.
async fn a_line_with_no_end_stays_within_twice_the_limit() -> io::Result<()> {
    const LIMIT: usize = 64 * 1024;
    let (rx, tx) = pair().await?;
    let sender = create_task(async move {
        let chunk = vec![b'x'; 256 * 1024];
        for _ in 0..16 {
            if tx.write_all(chunk.clone()).await.0.is_err() {
                break;
            }
        }
    });
    // Let the peer fill every buffer on the way first.
    for _ in 0..10 {
        sleep(0.002).await?;
    }
    let (mut r, _w) = rx.into_streams();
    r.set_limit(LIMIT)?;
    let mut largest = 0;
    let mut overruns = 0;
    for _ in 0..8 {
        match r.readuntil(b"\n").await {
            Err(StreamError::LimitOverrun { .. }) => overruns += 1,
            // The peer sent everything and closed.
            Err(StreamError::IncompleteRead { .. }) => break,
            other => panic!("expected LimitOverrun, got {other:?}"),
        }
        largest = largest.max(r.buffered());
        // Throw the buffered part away, as a server refusing the line would.
        let n = r.buffered();
        r.read(n as isize).await.map_err(io::Error::other)?;
    }
    eprintln!("largest buffered: {largest}");
    assert!(
        largest <= 2 * LIMIT + 1,
        "buffered {largest} bytes against a limit of {LIMIT}"
    );
    assert!(overruns > 0);
    sender.cancel();
    let _ = sender.await;
    Ok(())
}

/// `read(vec![0; n])`, the natural buffer, fills it from the start, as
/// `std::io::Read::read` does; a buffer with no capacity is an error, never
/// a false end of stream.
async fn a_full_buffer_is_filled_from_its_start() -> io::Result<()> {
    let (rx, tx) = pair().await?;
    tx.write_all(b"hello".to_vec()).await.0?;
    let (res, buf) = rx.read(vec![0u8; 1024]).await;
    let n = res?;
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(buf.len(), 1024);
    // With spare capacity, data is appended after what the buffer holds.
    tx.write_all(b"!".to_vec()).await.0?;
    // (Spare capacity that was zeroed once: valgrind cannot see the
    // kernel's write into never-initialised memory.)
    let mut b = vec![0u8; 16];
    b.truncate(0);
    b.extend_from_slice(b"ab");
    let (res, b) = rx.read(b).await;
    assert_eq!(res?, 1);
    assert_eq!(b, b"ab!");
    let (res, _) = rx.read(Vec::new()).await;
    assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);

    let a = UdpSocket::bind("127.0.0.1:0").await?;
    let b = UdpSocket::bind("127.0.0.1:0").await?;
    b.send_to(b"datagram".to_vec(), a.local_addr()?).await.0?;
    let (res, buf) = a.recv_from(vec![0u8; 64]).await;
    let (n, from) = res?;
    assert_eq!(&buf[..n], b"datagram");
    assert_eq!(from, b.local_addr()?);
    yield_now().await?;
    Ok(())
}

/// A foreign waker the driver wakes may drop aio sockets and a pending
/// read there: the sockets close as they would anywhere else (the
/// descriptor numbers they free work for the next sockets), the read is
/// cancelled, and the loop goes on.
async fn a_foreign_waker_may_drop_sockets_when_woken() -> io::Result<()> {
    for round in 0..3u8 {
        let (b_rx, b_tx) = within("a pair", pair()).await??;
        let b_rx = std::rc::Rc::new(b_rx);
        let reader = b_rx.clone();
        let mut pending = Box::pin(async move { reader.read(vec![0u8; 64]).await });
        assert!(aio_test::poll_once(pending.as_mut()).is_pending());
        aio_test::drop_inside_driver(Box::new((b_rx, b_tx, pending))).await?;

        // The next sockets likely reuse the closed ones' numbers.
        let (c_rx, c_tx) = within("a pair made after", pair()).await??;
        c_tx.write_all(vec![round; 5]).await.0?;
        let (res, buf) = within("a socket made after", c_rx.read(vec![0u8; 64])).await?;
        assert_eq!(&buf[..res?], &[round; 5]);
    }
    Ok(())
}

/// The same with a real foreign executor: async-task's tasks (smol's),
/// scheduled through a channel as its documentation shows. Once the
/// executor's receiving end is gone, waking a task drops its runnable and
/// with it the task's future, with its aio sockets and its read in flight:
/// here inside aio's driver, which does the waking.
async fn an_async_task_executor_gone_drops_its_tasks_inside_the_driver() -> io::Result<()> {
    struct Dropped(std::rc::Rc<std::cell::Cell<bool>>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    for round in 0..3u8 {
        let (a_rx, a_tx) = within("a pair", pair()).await??;
        let (b_rx, b_tx) = within("a pair", pair()).await??;
        let dropped = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = Dropped(dropped.clone());
        let (send, recv) = std::sync::mpsc::channel::<async_task::Runnable>();
        let (runnable, task) = async_task::spawn_local(
            async move {
                let _owned = (flag, b_rx, b_tx);
                a_rx.read(vec![0u8; 16]).await
            },
            move |r| {
                // The executor is gone: the runnable is dropped.
                let _ = send.send(r);
            },
        );
        task.detach();
        runnable.run(); // its first step, on the loop's thread: the read waits
        drop(recv);
        a_tx.write_all(vec![round; 4]).await.0?;
        aio_test::until("the foreign task dropped by its waker", || dropped.get()).await?;

        // The next sockets likely reuse the dropped ones' numbers.
        let (c_rx, c_tx) = within("a pair made after", pair()).await??;
        c_tx.write_all(b"after".to_vec()).await.0?;
        let (res, buf) = within("a socket made after", c_rx.read(vec![0u8; 64])).await?;
        assert_eq!(&buf[..res?], b"after");
    }
    Ok(())
}

backend_tests!(
    a_foreign_waker_may_drop_sockets_when_woken,
    an_async_task_executor_gone_drops_its_tasks_inside_the_driver,
    raced_reads_lose_no_byte,
    a_read_dropped_after_its_data_came_loses_nothing,
    a_stream_reader_sees_what_a_dropped_read_got,
    a_dropped_datagram_receive_loses_nothing,
    raced_accepts_lose_no_connection,
    a_listener_nobody_accepts_from_holds_few_connections,
    a_line_with_no_end_stays_within_twice_the_limit,
    a_full_buffer_is_filled_from_its_start,
);
