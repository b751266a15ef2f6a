//! Sockets and asyncio streams, on every backend: echo of 0 B to 16 MiB,
//! 1,000 concurrent checksummed connections, resets, half-closes, EOF in
//! `readexactly`, `readuntil` over the limit, bounded `drain`, cancelled
//! reads that lose nothing, refused connects, IPv6, Unix sockets, UDP.

// The cancellation test shares one reader between tasks that take turns.
#![allow(clippy::await_holding_refcell_ref)]

mod servers;

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use aio_core::{TaskError, create_task, gather, sleep, timeout, yield_now};
use aio_net::{
    StreamError, StreamReader, StreamWriter, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
    open_connection, open_unix_connection, start_unix_server,
};
use aio_test::{backend_tests, payload};
use servers::{echo_round_trip, echo_server, local_server};

fn err(e: TaskError) -> io::Error {
    io::Error::other(e.to_string())
}

async fn echo_round_trips() -> io::Result<()> {
    let server = echo_server().await?;
    let port = server.sockets()[0].port();
    for (i, size) in [0usize, 1, 100, 64 * 1024, 1 << 20, 16 << 20].into_iter().enumerate() {
        let (mut r, w) = open_connection("127.0.0.1", port).await?;
        let w = echo_round_trip(&mut r, w, payload(size, i as u64), 256 * 1024).await?;
        w.close();
    }
    server.close();
    server.wait_closed().await?;
    Ok(())
}

async fn thousand_concurrent_connections() -> io::Result<()> {
    aio_test::raise_nofile();
    let server = echo_server().await?;
    let port = server.sockets()[0].port();
    let clients = (0..1000u64).map(|i| async move {
        let (mut r, w) = open_connection("127.0.0.1", port).await?;
        let data = payload(1000 + (i as usize * 37) % 9000, i);
        let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
        w.write(&data);
        w.write_eof();
        let back = r.read(-1).await.map_err(io::Error::from)?;
        let back_sum: u64 = back.iter().map(|&b| u64::from(b)).sum();
        assert_eq!((back.len(), back_sum), (data.len(), sum), "connection {i}");
        assert!(back == data);
        Ok::<_, io::Error>(back.len())
    });
    let total: usize = gather(clients).await?.into_iter().sum();
    assert!(total > 1000 * 1000);
    server.close();
    server.wait_closed().await?;
    Ok(())
}

async fn peer_reset_mid_stream() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = create_task(async move {
        let s = TcpStream::connect(addr).await?;
        s.write_all(b"partial".to_vec()).await.0?;
        // Abortive close: RST instead of FIN.
        s.set_linger(Some(Duration::ZERO))?;
        drop(s);
        Ok::<_, io::Error>(())
    });
    let (s, _) = listener.accept().await?;
    client.await.map_err(err)??;
    let (mut r, w) = s.into_streams();
    // Whatever arrived before the reset may be read; then an error or EOF,
    // never a hang.
    let res = timeout(10, async {
        loop {
            match r.read(1024).await {
                Ok(d) if d.is_empty() => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the read hung after a reset");
    if let Err(e) = res {
        assert!(
            matches!(e, StreamError::Io(ref e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{e:?}"
        );
    }
    // Writing to a reset connection fails in drain, not with a panic.
    let mut failed = false;
    for _ in 0..100 {
        w.write(&[0u8; 4096]);
        if w.drain().await.is_err() {
            failed = true;
            break;
        }
        sleep(0.001).await?;
    }
    assert!(failed, "writes to a reset connection kept succeeding");
    Ok(())
}

async fn half_close_both_ways() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = create_task(async move {
        let (mut r, w) = open_connection("127.0.0.1", addr.port()).await?;
        w.write(b"from client");
        w.write_eof(); // the server reads EOF, and can still answer
        let reply = r.read(-1).await.map_err(io::Error::from)?;
        Ok::<_, io::Error>(reply)
    });
    let (s, _) = listener.accept().await?;
    let (mut r, w) = s.into_streams();
    let got = r.read(-1).await.map_err(io::Error::from)?;
    assert_eq!(got, b"from client");
    assert!(r.at_eof());
    w.write(b"from server");
    w.write_eof();
    let reply = client.await.map_err(err)??;
    assert_eq!(reply, b"from server");
    w.close();
    w.wait_closed().await?;
    Ok(())
}

/// Data and the peer's end of file that arrive together (one readiness
/// event): the short read that drains the data must not hide the EOF behind
/// it. A regression test for aio-poll's readiness cache.
async fn short_read_then_eof_in_one_event() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = TcpStream::connect(addr).await?;
    let (server, _) = listener.accept().await?;
    let (a, b) = UnixStream::pair()?;
    // Wait for the first byte so the readiness event has been seen, then
    // send the rest and close while the reader is not looking.
    client.write_all(b"x".to_vec()).await.0?;
    a.write_all(b"x".to_vec()).await.0?;
    let (n, _) = server.read(Vec::with_capacity(1)).await;
    assert_eq!(n?, 1);
    let (n, _) = b.read(Vec::with_capacity(1)).await;
    assert_eq!(n?, 1);
    client.write_all(vec![7u8; 1000]).await.0?;
    client.shutdown(std::net::Shutdown::Write).await?;
    a.write_all(vec![7u8; 1000]).await.0?;
    a.shutdown(std::net::Shutdown::Write).await?;
    // Let the loop poll the driver, so the events that carry both data and
    // end of file are consumed before the reads (the case under test).
    sleep(0.001).await?;
    for (name, total) in [
        (
            "tcp",
            read_to_eof_in_600s(async || server.read(Vec::with_capacity(600)).await.0).await?,
        ),
        (
            "unix",
            read_to_eof_in_600s(async || b.read(Vec::with_capacity(600)).await.0).await?,
        ),
    ] {
        assert_eq!(total, 1000, "{name}");
    }
    Ok(())
}

/// Raw reads after a short read (which tells the drivers that the socket
/// is empty, so the next read waits for data before trying): data that
/// comes later, data already there, a read cancelled while it waits, a new
/// socket that reuses a closed one's descriptor number, and end of file and
/// a reset while a read waits.
async fn reads_after_a_short_read() -> io::Result<()> {
    async fn pair() -> io::Result<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let client = TcpStream::connect(listener.local_addr()?).await?;
        let (server, _) = listener.accept().await?;
        Ok((client, server))
    }
    async fn read(s: &TcpStream) -> io::Result<Vec<u8>> {
        let (n, buf) = timeout(Duration::from_secs(20), s.read(Vec::with_capacity(4096)))
            .await
            .map_err(|_| io::Error::other("read hung"))?;
        n?;
        Ok(buf)
    }
    /// A read in its own task, already waiting for data.
    async fn waiting_read(s: &Rc<TcpStream>) -> io::Result<aio_core::Task<io::Result<Vec<u8>>>> {
        let s = s.clone();
        let t = create_task(async move { read(&s).await });
        yield_now().await?;
        assert!(!t.done(), "the read did not wait");
        Ok(t)
    }
    let (client, server) = pair().await?;
    let server = Rc::new(server);
    client.write_all(b"one".to_vec()).await.0?;
    assert_eq!(read(&server).await?, b"one");
    // Data that comes after the read started.
    let late = waiting_read(&server).await?;
    client.write_all(b"two".to_vec()).await.0?;
    assert_eq!(late.await.map_err(err)??, b"two");
    // Data already there when the read starts.
    client.write_all(b"three".to_vec()).await.0?;
    sleep(0.001).await?;
    assert_eq!(read(&server).await?, b"three");
    // A read cancelled while it waits loses nothing.
    let r = timeout(Duration::from_millis(1), server.read(Vec::with_capacity(64))).await;
    assert!(r.is_err(), "nothing was sent, so the read must time out");
    client.write_all(b"four".to_vec()).await.0?;
    assert_eq!(read(&server).await?, b"four");
    // A new socket, usually with the closed one's descriptor number (other
    // tests open descriptors too), with data waiting.
    drop(server);
    drop(client);
    let (client, server) = pair().await?;
    client.write_all(b"five".to_vec()).await.0?;
    sleep(0.001).await?;
    assert_eq!(read(&server).await?, b"five");
    // End of file while a read waits.
    let server = Rc::new(server);
    let eof = waiting_read(&server).await?;
    client.shutdown(std::net::Shutdown::Write).await?;
    assert_eq!(eof.await.map_err(err)??, b"");
    // A reset while a read waits: an error, not a hang.
    let (client, server) = pair().await?;
    let server = Rc::new(server);
    client.write_all(b"six".to_vec()).await.0?;
    assert_eq!(read(&server).await?, b"six");
    let reset = waiting_read(&server).await?;
    client.set_linger(Some(Duration::ZERO))?;
    drop(client);
    let e = reset.await.map_err(err)?.expect_err("a read after a reset");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    Ok(())
}

/// Raw reads cancelled at random points while a writer sends a numbered
/// byte stream in random pieces: the reader gets every byte once, in order
/// (a cancelled read loses nothing, a waiting read misses no data), on
/// 20 connections at once. Seeded, so every run takes the same choices.
async fn raw_reads_cancelled_at_random_lose_nothing() -> io::Result<()> {
    const TOTAL: usize = 200_000;
    fn next(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut tasks = Vec::new();
    for c in 0..20u64 {
        let client = TcpStream::connect(addr).await?;
        let (server, _) = listener.accept().await?;
        let writer = create_task(async move {
            let mut seed = c * 7 + 1;
            let mut sent = 0;
            while sent < TOTAL {
                let n = (1 + next(&mut seed) as usize % 3000).min(TOTAL - sent);
                let piece: Vec<u8> = (sent..sent + n).map(|i| (i % 251) as u8).collect();
                client.write_all(piece).await.0?;
                sent += n;
                for _ in 0..next(&mut seed) % 3 {
                    yield_now().await?;
                }
            }
            client.shutdown(std::net::Shutdown::Write).await?;
            Ok::<_, io::Error>(client)
        });
        let reader = create_task(async move {
            let mut seed = c * 13 + 5;
            let mut got = 0;
            for _ in 0..1_000_000 {
                let cap = 1 + next(&mut seed) as usize % 4096;
                let read = server.read(Vec::with_capacity(cap));
                let buf = if next(&mut seed) % 3 == 0 {
                    // Cancelled before it starts (a zero timeout) or at the
                    // next loop turn, waiting or in flight.
                    let d = Duration::from_micros(next(&mut seed) % 2);
                    match timeout(d, read).await {
                        Ok((n, buf)) => {
                            n?;
                            buf
                        }
                        Err(_) => continue,
                    }
                } else {
                    let (n, buf) = timeout(Duration::from_secs(20), read)
                        .await
                        .map_err(|_| io::Error::other(format!("read {c} hung at byte {got}")))?;
                    n?;
                    buf
                };
                if buf.is_empty() {
                    return Ok::<_, io::Error>(got);
                }
                for &b in &buf {
                    assert_eq!(b, (got % 251) as u8, "byte {got} lost, repeated or out of order");
                    got += 1;
                }
            }
            Err(io::Error::other("no EOF after a million reads"))
        });
        tasks.push((writer, reader));
    }
    for (writer, reader) in tasks {
        assert_eq!(reader.await.map_err(err)??, TOTAL);
        drop(writer.await.map_err(err)??);
    }
    Ok(())
}

/// Reads 600 bytes at a time with `read` until end of file; a hang is a
/// failure.
async fn read_to_eof_in_600s(mut read: impl AsyncFnMut() -> io::Result<usize>) -> io::Result<usize> {
    let mut total = 0;
    for _ in 0..100 {
        let n = timeout(Duration::from_secs(20), read())
            .await
            .map_err(|_| io::Error::other("read hung: EOF hidden by a short read"))??;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
    Err(io::Error::other("no EOF after 100 reads"))
}

/// A handler ended by cancellation is not reported to the exception
/// handler (asyncio's `client_connected_cb` callback ignores a cancelled
/// task); a handler that fails is.
async fn cancelled_handler_is_not_reported() -> io::Result<()> {
    use std::cell::RefCell;
    let reports = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = reports.clone();
    aio_core::get_running_loop().set_exception_handler(Some(move |ctx: &aio_core::ExceptionContext| {
        seen.borrow_mut().push(ctx.to_string())
    }));
    let slot: Rc<RefCell<Option<aio_core::TaskRef>>> = Rc::default();
    let fill = slot.clone();
    let server = local_server(move |mut r: StreamReader, _w: StreamWriter| {
        let fill = fill.clone();
        async move {
            *fill.borrow_mut() = aio_core::current_task();
            let first = r.read(1).await?;
            if first == b"f" {
                return Err(StreamError::Io(io::Error::other("handler failed")));
            }
            r.read(-1).await?; // until cancelled
            Ok(())
        }
    })
    .await?;
    let port = server.sockets()[0].port();
    let (_r1, w1) = open_connection("127.0.0.1", port).await?;
    w1.write(b"w");
    w1.drain().await?;
    aio_test::until("the handler starts", || slot.borrow().is_some()).await?;
    let handler = slot.borrow_mut().take().expect("checked above");
    handler.cancel();
    aio_test::until("the cancelled handler ends", || handler.done()).await?;
    assert!(handler.done());
    assert!(reports.borrow().is_empty(), "reported: {:?}", reports.borrow());

    // The control: a failing handler is reported.
    let (_r2, w2) = open_connection("127.0.0.1", port).await?;
    w2.write(b"f");
    w2.drain().await?;
    aio_test::until("the failure is reported", || !reports.borrow().is_empty()).await?;
    let got = reports.borrow().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("handler failed"), "{got:?}");
    server.close();
    Ok(())
}

async fn readexactly_at_early_eof() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let (mut r, _w) = b.into_streams();
    a.write_all(b"12345".to_vec()).await.0?;
    drop(a);
    assert_eq!(r.readexactly(2).await.map_err(io::Error::from)?, b"12");
    // (Bounded: a peer whose close never arrives is a failure, not a hang.)
    match timeout(10, r.readexactly(10)).await.expect("no end of file") {
        Err(StreamError::IncompleteRead { partial, expected }) => {
            assert_eq!(partial, b"345");
            assert_eq!(expected, Some(10));
        }
        other => panic!("{other:?}"),
    }
    assert!(r.at_eof());
    Ok(())
}

async fn readuntil_over_the_limit() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let (mut r, _w) = b.into_streams();
    r.set_limit(16)?;
    a.write_all(b"short\nthis line is much longer than sixteen bytes\nok\n".to_vec())
        .await
        .0?;
    assert_eq!(r.readline().await.map_err(io::Error::from)?, b"short\n");
    match r.readline().await {
        Err(StreamError::LimitOverrun { .. }) => {}
        other => panic!("{other:?}"),
    }
    // As asyncio, the over-long line was discarded; the stream goes on.
    assert_eq!(r.readline().await.map_err(io::Error::from)?, b"ok\n");
    // readuntil keeps the data when the limit is hit.
    a.write_all(b"0123456789abcdefghijXYZ".to_vec()).await.0?;
    match r.readuntil(b"XYZ").await {
        Err(StreamError::LimitOverrun { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(r.buffered(), 23);
    Ok(())
}

/// `readuntil_any` ends at the match that ends first, not the one that
/// starts first; of two ending at the same byte the shorter separator is
/// the match (its start is what the limit is checked against), as
/// asyncio 3.13 sorts its separators by length.
async fn readuntil_any_takes_the_earliest_end() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let (mut r, _w) = b.into_streams();
    a.write_all(b"xABCDyBC".to_vec()).await.0?;
    // b"ABCD" starts first (1), b"C" ends first (4).
    assert_eq!(
        r.readuntil_any(&[b"ABCD", b"C"]).await.map_err(io::Error::from)?,
        b"xABC"
    );
    // b"Dy" and b"y" both end at 2 of b"DyBC": the data is the same.
    assert_eq!(r.readuntil_any(&[b"Dy", b"y"]).await.map_err(io::Error::from)?, b"Dy");
    // b"BC" and b"C" end together; with limit 1 the shorter one, at 1, is
    // within it; the longer one's start (0) would have been too.
    r.set_limit(1)?;
    assert_eq!(r.readuntil_any(&[b"BC", b"C"]).await.map_err(io::Error::from)?, b"BC");
    // b"yz" and b"z" end together in b"xyz": the shorter one matched, and
    // its start (2) is past the limit of 1, where b"yz"'s (1) is not.
    a.write_all(b"xyz".to_vec()).await.0?;
    match r.readuntil_any(&[b"yz", b"z"]).await {
        Err(StreamError::LimitOverrun { consumed, message }) => {
            assert_eq!(consumed, 2, "the shorter separator matched");
            assert!(message.contains("is found"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.buffered(), 3, "the data stays for the next read");
    // No separator, or an empty one, is refused without touching the data.
    for seps in [&[][..], &[&b""[..], b"z"][..]] {
        match r.readuntil_any(seps).await {
            Err(StreamError::Io(e)) if e.kind() == io::ErrorKind::InvalidInput => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(r.buffered(), 3);
    Ok(())
}

async fn drain_against_a_stalled_reader_stays_bounded() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let (_r, w) = a.into_streams();
    w.set_write_buffer_limits(64 * 1024, None);
    let written = Rc::new(Cell::new(0usize));
    let wr = written.clone();
    let max_buffered = Rc::new(Cell::new(0usize));
    let mb = max_buffered.clone();
    let writer = create_task(async move {
        let chunk = vec![7u8; 16 * 1024];
        loop {
            w.write(&chunk);
            wr.set(wr.get() + chunk.len());
            mb.set(mb.get().max(w.write_buffer_size()));
            w.drain().await?;
        }
        #[allow(unreachable_code)]
        Ok::<_, io::Error>(())
    });
    // Nobody reads `b`: the writer must stop, not grow its buffer.
    for _ in 0..50 {
        yield_now().await?;
        sleep(0.001).await?;
    }
    let stalled_at = written.get();
    for _ in 0..20 {
        sleep(0.001).await?;
    }
    assert_eq!(written.get(), stalled_at, "the writer did not wait in drain");
    assert!(
        max_buffered.get() <= 64 * 1024 + 16 * 1024,
        "buffered {}",
        max_buffered.get()
    );
    // Reading unblocks it.
    let reader = create_task(async move {
        let mut total = 0;
        loop {
            let (n, buf) = b.read(Vec::with_capacity(65536)).await;
            total += n?;
            drop(buf);
            if total > stalled_at + 1_000_000 {
                return Ok::<_, io::Error>(total);
            }
        }
    });
    reader.await.map_err(err)??;
    assert!(written.get() > stalled_at);
    writer.cancel();
    let _ = writer.await;
    Ok(())
}

async fn cancelled_read_loses_no_bytes() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    let (r, _w) = b.into_streams();
    let r = Rc::new(std::cell::RefCell::new(r));
    // A read that waits, cancelled.
    let r2 = r.clone();
    let t = create_task(async move { r2.borrow_mut().readexactly(6).await });
    yield_now().await?;
    a.write_all(b"abc".to_vec()).await.0?;
    yield_now().await?;
    yield_now().await?;
    t.cancel();
    match t.await {
        Err(e) if e.is_cancelled() => {}
        Ok(Err(StreamError::Cancelled(_))) => {}
        other => panic!("{other:?}"),
    }
    a.write_all(b"def".to_vec()).await.0?;
    let got = r.borrow_mut().readexactly(6).await.map_err(io::Error::from)?;
    assert_eq!(got, b"abcdef", "bytes were lost to the cancelled read");
    // A timeout around a read: the same.
    let r3 = r.clone();
    let res = timeout(0.01, async move { r3.borrow_mut().readexactly(4).await }).await;
    assert!(res.is_err());
    a.write_all(b"wxyz".to_vec()).await.0?;
    assert_eq!(r.borrow_mut().readexactly(4).await.map_err(io::Error::from)?, b"wxyz");
    Ok(())
}

async fn connect_refused() -> io::Result<()> {
    // Bind then drop to find a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    match open_connection("127.0.0.1", port).await {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
        Ok(_) => panic!("connected to a closed port"),
    }
    Ok(())
}

/// A failed name lookup names the host. `.invalid` never resolves (RFC
/// 6761); with no network the resolver may fail in other ways, so only
/// the name in the message is asserted.
async fn lookup_failure_names_the_host() -> io::Result<()> {
    let host = "no.such.host.invalid";
    let named = |r: io::Result<()>| {
        let e = r.expect_err("a .invalid name resolved");
        assert!(e.to_string().contains("'no.such.host.invalid'"), "{e}");
    };
    named(aio_net::lookup_host((host, 80)).await.map(drop));
    named(open_connection(host, 80).await.map(drop));
    named(TcpStream::connect((host, 80)).await.map(drop));
    named(TcpStream::connect("no.such.host.invalid:80").await.map(drop));
    Ok(())
}

/// The address `accept` reports is the client's, whichever accept ran
/// (multishot on io_uring, one-shot with the kernel's address on poll).
async fn accept_reports_the_peer_address() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    for _ in 0..3 {
        let c = create_task(async move { TcpStream::connect(addr).await });
        let (s, peer) = listener.accept().await?;
        let c = c.await.map_err(err)??;
        assert_eq!(peer, c.local_addr()?);
        assert_eq!(s.peer_addr()?, peer);
    }
    Ok(())
}

/// A server's connection knows its peer's address from `accept`, and
/// keeps it once the peer is gone (asyncio's transport keeps `peername`
/// from its start; `getpeername` would fail after the reset).
async fn server_writer_keeps_the_peer_address_after_a_reset() -> io::Result<()> {
    let seen: Rc<std::cell::RefCell<Vec<io::Result<std::net::SocketAddr>>>> = Rc::default();
    let s2 = seen.clone();
    let server = local_server(move |mut r: StreamReader, w: StreamWriter| {
        let s2 = s2.clone();
        async move {
            s2.borrow_mut().push(w.peer_addr());
            // Until the reset (or EOF).
            while matches!(r.read(1024).await, Ok(d) if !d.is_empty()) {}
            s2.borrow_mut().push(w.peer_addr());
        }
    })
    .await?;
    let port = server.sockets()[0].port();
    let c = TcpStream::connect(("127.0.0.1", port)).await?;
    let local = c.local_addr()?;
    c.set_linger(Some(Duration::ZERO))?;
    aio_test::until("the handler starts", || !seen.borrow().is_empty()).await?;
    drop(c);
    aio_test::until("the handler sees the reset", || seen.borrow().len() == 2).await?;
    for a in seen.borrow_mut().drain(..) {
        assert_eq!(a?, local);
    }
    server.close();
    Ok(())
}

async fn ipv6_loopback() -> io::Result<()> {
    let listener = match TcpListener::bind("[::1]:0").await {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
            eprintln!("IPv6 loopback unavailable here: skipped");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let addr = listener.local_addr()?;
    assert!(addr.is_ipv6());
    let c = create_task(async move { TcpStream::connect(addr).await });
    let (s, peer) = listener.accept().await?;
    assert!(peer.is_ipv6());
    let c = c.await.map_err(err)??;
    assert_eq!(peer, c.local_addr()?, "accept reports the client's address");
    c.write_all(b"v6".to_vec()).await.0?;
    let (n, buf) = s.read(Vec::with_capacity(8)).await;
    assert_eq!(&buf[..n?], b"v6");
    Ok(())
}

async fn unix_sockets() -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("aio-net-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("echo.sock");
    let server = start_unix_server(
        |mut r: StreamReader, w: StreamWriter| async move {
            let line = r.readline().await?;
            w.write(&line);
            w.drain().await?;
            Ok::<_, StreamError>(())
        },
        &path,
    )
    .await?;
    let (mut r, w) = open_unix_connection(&path).await?;
    w.write(b"over unix\n");
    assert_eq!(r.readline().await.map_err(io::Error::from)?, b"over unix\n");
    server.close();
    assert!(!path.exists(), "the socket file is removed on close");
    // Plain listener and datagrams.
    let l = UnixListener::bind(dir.join("l.sock"))?;
    let c = create_task({
        let p = dir.join("l.sock");
        async move { UnixStream::connect(p).await }
    });
    let (s, peer) = l.accept().await?;
    assert!(peer.is_unnamed(), "an unbound client's address is unnamed: {peer:?}");
    let c = c.await.map_err(err)??;
    c.write_all(b"x".to_vec()).await.0?;
    assert_eq!(s.read(Vec::with_capacity(1)).await.1, b"x");
    let d1 = UnixDatagram::bind(dir.join("d1.sock"))?;
    let d2 = UnixDatagram::unbound()?;
    d2.send_to(b"dgram".to_vec(), dir.join("d1.sock")).await.0?;
    let (res, buf) = d1.recv_from(Vec::with_capacity(16)).await;
    assert_eq!(&buf[..res?.0], b"dgram");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn udp_round_trip() -> io::Result<()> {
    let a = UdpSocket::bind("127.0.0.1:0").await?;
    let b = UdpSocket::bind("127.0.0.1:0").await?;
    for i in 0..100u8 {
        a.send_to(vec![i; 100], b.local_addr()?).await.0?;
        let (res, buf) = b.recv_from(Vec::with_capacity(200)).await;
        let (n, from) = res?;
        assert_eq!((n, from, buf[0]), (100, a.local_addr()?, i));
    }
    b.connect(a.local_addr()?).await?;
    b.send(b"back".to_vec()).await.0?;
    let (n, buf) = a.recv(Vec::with_capacity(8)).await;
    assert_eq!(&buf[..n?], b"back");
    Ok(())
}

async fn server_close_and_wait_closed() -> io::Result<()> {
    let server = echo_server().await?;
    let port = server.sockets()[0].port();
    assert!(server.is_serving());
    let (mut r, w) = open_connection("127.0.0.1", port).await?;
    w.write(b"ping");
    assert_eq!(r.readexactly(4).await.map_err(io::Error::from)?, b"ping");
    server.close();
    assert!(!server.is_serving());
    // The connection in progress goes on until the client closes it.
    w.write(b"more");
    assert_eq!(r.readexactly(4).await.map_err(io::Error::from)?, b"more");
    w.close();
    timeout(10, server.wait_closed()).await.expect("wait_closed hung")?;
    assert!(open_connection("127.0.0.1", port).await.is_err());
    Ok(())
}

/// asyncio 3.12.1's `wait_closed` waits for the connections, not the
/// handlers: a handler that hands its writer out and returns keeps the
/// server waiting until that writer is closed.
async fn wait_closed_waits_for_a_connection_its_handler_left_open() -> io::Result<()> {
    let kept: Rc<std::cell::RefCell<Vec<StreamWriter>>> = Rc::default();
    let k = kept.clone();
    let server = local_server(move |_r: StreamReader, w: StreamWriter| {
        let k = k.clone();
        async move {
            w.write(b"hi\n");
            k.borrow_mut().push(w);
        }
    })
    .await?;
    let port = server.sockets()[0].port();
    let (mut r, _w) = open_connection("127.0.0.1", port).await?;
    assert_eq!(r.readline().await.map_err(io::Error::from)?, b"hi\n");
    aio_test::until("the handler returns", || server.connections() == 0).await?;
    server.close();
    let waiting = {
        let s = server.clone();
        create_task(async move { s.wait_closed().await })
    };
    for _ in 0..5 {
        yield_now().await.ok();
    }
    assert!(!waiting.done(), "wait_closed returned with a connection open");
    let w = kept.borrow_mut().pop().expect("the handler kept its writer");
    w.close();
    timeout(10, waiting)
        .await
        .expect("wait_closed hung")
        .expect("the task")?;
    // The client sees the close.
    assert_eq!(r.read(-1).await.map_err(io::Error::from)?, b"");
    Ok(())
}

/// ... and a handler that closed its connection and runs on does not keep
/// it waiting (asyncio's transport detached at `connection_lost`).
async fn wait_closed_does_not_wait_for_a_handler_past_its_close() -> io::Result<()> {
    let release: aio_core::Future<()> = aio_core::Future::new();
    let r2 = release.clone();
    let server = local_server(move |_r: StreamReader, w: StreamWriter| {
        let release = r2.clone();
        async move {
            w.close();
            let _ = w.wait_closed().await;
            // Runs on after its connection ended.
            let _ = (&release).await;
        }
    })
    .await?;
    let port = server.sockets()[0].port();
    let (mut r, _w) = open_connection("127.0.0.1", port).await?;
    assert_eq!(r.read(-1).await.map_err(io::Error::from)?, b"");
    server.close();
    timeout(10, server.wait_closed()).await.expect("wait_closed hung")?;
    assert_eq!(server.connections(), 1, "the handler still runs");
    release.set_result(()).expect("not set before");
    aio_test::until("the handler ends", || server.connections() == 0).await?;
    Ok(())
}

/// What a `close_clients` test's handler saw: its readline's outcome
/// once the server ended the connection.
type Ends = Rc<std::cell::RefCell<Vec<String>>>;

/// A server whose handler writes a greeting and `tail` bytes (not
/// drained), then reads lines until the connection ends, recording how.
async fn greeting_server(tail: usize, drain: bool, ends: Ends) -> io::Result<aio_net::Server> {
    local_server(move |mut r: StreamReader, w: StreamWriter| {
        let ends = ends.clone();
        async move {
            w.write(b"hello\n");
            w.write(&payload(tail, 7));
            let drained = if drain { Some(w.drain().await) } else { None };
            let line = r.readline().await;
            ends.borrow_mut().push(format!("{drained:?} {line:?}"));
        }
    })
    .await
}

/// asyncio 3.13's `Server.close_clients`: every open connection is closed
/// as `writer.close()` closes it: what the handler wrote goes out first,
/// then EOF, and the handler's read meets EOF, so `wait_closed` returns.
async fn close_clients_flushes_then_ends_each_connection() -> io::Result<()> {
    const TAIL: usize = 256 * 1024;
    let ends: Ends = Rc::default();
    let server = greeting_server(TAIL, false, ends.clone()).await?;
    let port = server.sockets()[0].port();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (mut r, w) = open_connection("127.0.0.1", port).await?;
        assert_eq!(r.readline().await.map_err(io::Error::from)?, b"hello\n");
        clients.push((r, w));
    }
    // A client gone before: nothing to close there.
    let (mut r, w) = open_connection("127.0.0.1", port).await?;
    assert_eq!(r.readline().await.map_err(io::Error::from)?, b"hello\n");
    drop((r, w));
    aio_test::until("the handlers run", || server.connections() == 4).await?;
    // (Gone with unread bytes: its handler's read may meet a reset.)
    aio_test::until("the gone client's handler ends", || ends.borrow().len() == 1).await?;
    ends.borrow_mut().clear();

    server.close();
    server.close_clients();
    for (mut r, _w) in clients {
        // Every byte written before the close, then EOF.
        let rest = timeout(10, r.read(-1))
            .await
            .expect("the client's read hung")
            .map_err(io::Error::from)?;
        assert_eq!(rest, payload(TAIL, 7));
    }
    timeout(10, server.wait_closed()).await.expect("wait_closed hung")?;
    let ends = ends.borrow();
    assert_eq!(*ends, ["None Ok([])"; 3], "each handler read EOF");
    // Nothing left to close: a second call is a no-op.
    server.close_clients();
    Ok(())
}

/// asyncio 3.13's `Server.abort_clients`: each connection ends at once,
/// what was not sent is dropped, and a handler blocked in `drain` fails
/// ("Connection lost"); the client reads what had reached it, then EOF.
async fn abort_clients_ends_each_connection_at_once() -> io::Result<()> {
    const TAIL: usize = 16 << 20;
    let ends: Ends = Rc::default();
    let server = greeting_server(TAIL, true, ends.clone()).await?;
    let port = server.sockets()[0].port();
    let (mut r, _w) = open_connection("127.0.0.1", port).await?;
    assert_eq!(r.readline().await.map_err(io::Error::from)?, b"hello\n");
    aio_test::until("the handler waits in drain", || server.connections() == 1).await?;
    yield_now().await.ok();

    server.close();
    server.abort_clients();
    timeout(10, server.wait_closed()).await.expect("wait_closed hung")?;
    // The connection ended with the abort; its handler sees it when it
    // next runs (wait_closed waits for connections, not handlers).
    aio_test::until("the handler ends", || !ends.borrow().is_empty()).await?;
    let ends = ends.borrow().clone();
    assert_eq!(ends.len(), 1);
    assert!(ends[0].starts_with("Some(Err("), "the drain failed: {ends:?}");
    let got = timeout(10, r.read(-1))
        .await
        .expect("the client's read hung")
        .map_err(io::Error::from)?;
    assert!(
        got.len() < TAIL,
        "the unsent tail was dropped ({} bytes came)",
        got.len()
    );
    assert_eq!(
        got,
        payload(TAIL, 7)[..got.len()],
        "what came is the start of what was written"
    );
    Ok(())
}

/// More connections hold unread data than io_uring has provided buffers:
/// receives that run out wait for buffers to come back, then resume, and
/// every byte arrives.
async fn more_readers_than_buffers() -> io::Result<()> {
    aio_test::raise_nofile();
    let n = 400;
    let mut pairs = Vec::new();
    for _ in 0..n {
        let (a, b) = UnixStream::pair()?;
        let (r, w) = b.into_streams();
        pairs.push((a, r, w));
    }
    // Arm every reader's receive (a read that times out at once), then
    // send to all of them while nobody reads.
    for (_, r, _) in pairs.iter_mut() {
        assert!(timeout(0.001, r.read(1)).await.is_err());
    }
    for (i, (a, _, _)) in pairs.iter().enumerate() {
        a.write_all(payload(3000, i as u64)).await.0?;
    }
    // Give the kernel time to fill (and run out of) buffers.
    sleep(0.02).await?;
    for (i, (_, r, _)) in pairs.iter_mut().enumerate() {
        let got = timeout(10, r.readexactly(3000))
            .await
            .expect("a starved receive never resumed")
            .map_err(io::Error::from)?;
        assert!(got == payload(3000, i as u64), "connection {i}");
    }
    Ok(())
}

/// Connections whose readers stop reading while their peers keep sending
/// hold at most a bounded share of io_uring's provided buffers: other
/// connections still receive (streams and raw reads), and the stalled
/// ones, read later, get every byte in order.
async fn stalled_readers_starve_no_one() -> io::Result<()> {
    const BIG: usize = 6 << 20;
    // A stalled asyncio-streams reader whose receive is armed.
    let (a1, b1) = UnixStream::pair()?;
    let (mut r1, _w1) = b1.into_streams();
    assert!(timeout(0.001, r1.read(1)).await.is_err());
    // A stalled raw reader whose socket was emptied by a short read.
    let (a2, b2) = UnixStream::pair()?;
    let b2 = Rc::new(b2);
    a2.write_all(b"x".to_vec()).await.0?;
    let (n, _) = b2.read(Vec::with_capacity(64)).await;
    assert_eq!(n?, 1);
    let parked = {
        let b2 = b2.clone();
        create_task(async move { b2.read(Vec::with_capacity(1)).await })
    };
    yield_now().await?;
    // Their peers send more than all provided buffers hold, until the
    // receivers stop taking data (the socket buffers are full).
    let sent = Rc::new(Cell::new(0));
    let send = |s: UnixStream, seed: u64| {
        let sent = sent.clone();
        create_task(async move {
            let data = payload(BIG, seed);
            for chunk in data.chunks(64 * 1024) {
                s.write_all(chunk.to_vec()).await.0?;
                sent.set(sent.get() + chunk.len());
            }
            Ok::<_, io::Error>(())
        })
    };
    let (w1, w2) = (send(a1, 1), send(a2, 2));
    let mut still = 0;
    for _ in 0..1000 {
        let before = sent.get();
        sleep(0.01).await?;
        still = if sent.get() == before { still + 1 } else { 0 };
        if still == 5 {
            break;
        }
    }
    assert_eq!(still, 5, "the writers never stalled");
    // Others still receive: a streams reader and a raw reader.
    for _ in 0..3 {
        let (a, b) = UnixStream::pair()?;
        let (mut r, _w) = b.into_streams();
        a.write_all(b"hello\n".to_vec()).await.0?;
        let line = timeout(10, r.readline()).await.expect("a streams reader starved");
        assert_eq!(line.map_err(io::Error::from)?, b"hello\n");
        let (a, b) = UnixStream::pair()?;
        a.write_all(b"hi".to_vec()).await.0?;
        let (n, buf) = timeout(10, b.read(Vec::with_capacity(8)))
            .await
            .expect("a raw reader starved");
        assert_eq!((n?, &buf[..]), (2, &b"hi"[..]));
    }
    // The stalled ones, read now, get everything in order.
    let got = timeout(60, r1.readexactly(BIG))
        .await
        .expect("stalled streams reader")
        .map_err(io::Error::from)?;
    assert!(got == payload(BIG, 1), "the streams reader's bytes differ");
    let mut got = Vec::with_capacity(BIG);
    let (n, first) = timeout(10, parked).await.expect("parked raw read").map_err(err)?;
    assert_eq!(n?, 1);
    got.extend_from_slice(&first);
    while got.len() < BIG {
        let (n, buf) = timeout(10, b2.read(Vec::with_capacity(100_000)))
            .await
            .expect("stalled raw reader");
        assert!(n? > 0, "early EOF");
        got.extend_from_slice(&buf);
    }
    assert!(got == payload(BIG, 2), "the raw reader's bytes differ");
    timeout(10, w1).await.expect("writer 1").map_err(err)??;
    timeout(10, w2).await.expect("writer 2").map_err(err)??;
    Ok(())
}

/// Bytes that arrived after raw reads and were not read yet (on io_uring,
/// already received ahead by the driver) are the first the asyncio streams
/// made from the socket read.
async fn streams_after_raw_reads_start_where_they_stopped() -> io::Result<()> {
    let (a, b) = UnixStream::pair()?;
    a.write_all(b"x".to_vec()).await.0?;
    let (n, _) = b.read(Vec::with_capacity(64)).await;
    assert_eq!(n?, 1);
    let b = Rc::new(b);
    let t = {
        let b = b.clone();
        create_task(async move { b.read(Vec::with_capacity(64)).await })
    };
    yield_now().await?;
    a.write_all(b"one".to_vec()).await.0?;
    let (n, buf) = timeout(10, t).await.expect("read").map_err(err)?;
    assert_eq!((n?, &buf[..]), (3, &b"one"[..]));
    a.write_all(b"two\nthree\n".to_vec()).await.0?;
    sleep(0.01).await?;
    let b = Rc::try_unwrap(b).expect("one owner");
    let (mut r, _w) = b.into_streams();
    for want in [&b"two\n"[..], b"three\n"] {
        let line = timeout(10, r.readline()).await.expect("readline");
        assert_eq!(line.map_err(io::Error::from)?, want);
    }
    Ok(())
}

/// Dropping a listener with connections accepted but not yet taken closes
/// them (no descriptor leaks, no hang).
async fn listener_dropped_with_accepted_connections() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (s, _) = {
        let c = create_task(async move { TcpStream::connect(addr).await });
        let r = listener.accept().await?;
        c.await.map_err(err)??;
        r
    };
    drop(s);
    // Now connections arrive while nobody accepts.
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(TcpStream::connect(addr).await?);
    }
    sleep(0.01).await?;
    drop(listener);
    // The clients see their connections closed, not a hang.
    for c in clients {
        let (n, _) = timeout(10, c.read(Vec::with_capacity(8))).await.expect("no close seen");
        match n {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("{other:?}"),
        }
    }
    Ok(())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) * 1000 + u64::from(std::process::id() % 1000)
}

backend_tests!(
    echo_round_trips,
    accept_reports_the_peer_address,
    server_writer_keeps_the_peer_address_after_a_reset,
    thousand_concurrent_connections,
    peer_reset_mid_stream,
    half_close_both_ways,
    short_read_then_eof_in_one_event,
    reads_after_a_short_read,
    raw_reads_cancelled_at_random_lose_nothing,
    cancelled_handler_is_not_reported,
    readexactly_at_early_eof,
    readuntil_over_the_limit,
    readuntil_any_takes_the_earliest_end,
    drain_against_a_stalled_reader_stays_bounded,
    cancelled_read_loses_no_bytes,
    connect_refused,
    lookup_failure_names_the_host,
    ipv6_loopback,
    unix_sockets,
    udp_round_trip,
    server_close_and_wait_closed,
    wait_closed_waits_for_a_connection_its_handler_left_open,
    wait_closed_does_not_wait_for_a_handler_past_its_close,
    close_clients_flushes_then_ends_each_connection,
    abort_clients_ends_each_connection_at_once,
    more_readers_than_buffers,
    stalled_readers_starve_no_one,
    streams_after_raw_reads_start_where_they_stopped,
    listener_dropped_with_accepted_connections,
);
