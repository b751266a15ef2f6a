//! One stream for crates that take one: `Duplex` (a reader and a writer
//! joined, plain and TLS) with futures-io's and tokio's traits, and
//! `TcpStream::split` / `into_split` — on every backend. Also the socket
//! adapters' behaviour on io_uring, which tries the call first and waits
//! with a readiness poll: large transfers both ways, dropped reads that
//! lose nothing, a peer's reset.

use std::io;
use std::time::Duration;

use aio_core::{create_task, sleep, timeout};
use aio_net::{Duplex, TcpListener, TcpStream};
use aio_test::{backend_tests, payload};
use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

fn task_err(e: aio_core::TaskError) -> io::Error {
    io::Error::other(e.to_string())
}

/// A connected pair of TCP streams on 127.0.0.1.
async fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = create_task(async move { TcpStream::connect(addr).await });
    let (server, _) = listener.accept().await?;
    Ok((client.await.map_err(task_err)??, server))
}

/// A duplex over plain streams: 1 MiB each way at once, `AsyncBufRead`
/// in place, then a half-close: the peer reads EOF and still answers.
async fn duplex_plain() -> io::Result<()> {
    let (a, b) = tcp_pair().await?;
    let mut a = Duplex::from(a);
    let b = Duplex::from(b);
    assert_eq!(a.peer_addr()?, b.local_addr()?);
    let up = payload(1 << 20, 1);
    let down = payload(1 << 20, 2);
    let (up2, down2) = (up.clone(), down.clone());
    let peer = create_task(async move {
        let (mut r, mut w) = AsyncReadExt::split(b);
        let send = async {
            AsyncWriteExt::write_all(&mut w, &down2).await?;
            AsyncWriteExt::flush(&mut w).await
        };
        let mut all = Vec::new();
        let (sent, read) = futures_util::future::join(send, r.read_to_end(&mut all)).await;
        sent?;
        read?;
        // After a's half-close, b can still answer.
        AsyncWriteExt::write_all(&mut w, b"bye\n").await?;
        AsyncWriteExt::close(&mut w).await?;
        Ok::<_, io::Error>(all)
    });
    AsyncWriteExt::write_all(&mut a, &up).await?;
    AsyncWriteExt::close(&mut a).await?;
    let mut got = vec![0u8; down.len()];
    a.read_exact(&mut got).await?;
    assert!(got == down);
    let mut line = String::new();
    a.read_line(&mut line).await?;
    assert_eq!(line, "bye\n");
    assert_eq!(a.read(&mut [0u8; 8]).await?, 0);
    let echoed = peer.await.map_err(task_err)??;
    assert!(echoed == up2);
    Ok(())
}

/// Borrowed halves: one task reads and writes at once (4 MiB through an
/// echo, more than the socket buffers hold, so neither side may wait on
/// the other).
async fn split_borrowed() -> io::Result<()> {
    let (mut a, b) = tcp_pair().await?;
    let echo = create_task(async move {
        let (mut r, mut w) = b.into_split();
        futures_util::io::copy(&mut r, &mut w).await?;
        AsyncWriteExt::close(&mut w).await
    });
    let data = payload(4 << 20, 3);
    // (futures-util's by-value `split` would shadow the inherent method.)
    let (mut r, mut w) = TcpStream::split(&mut a);
    assert_eq!(r.peer_addr()?, w.peer_addr()?);
    let send = async {
        AsyncWriteExt::write_all(&mut w, &data).await?;
        AsyncWriteExt::close(&mut w).await
    };
    let mut got = Vec::new();
    let recv = r.read_to_end(&mut got);
    let (s, n) = futures_util::future::join(send, recv).await;
    s?;
    assert_eq!(n?, data.len());
    assert!(got == data);
    echo.await.map_err(task_err)??;
    Ok(())
}

/// Owned halves in two tasks; `reunite` gives the stream back (and
/// refuses halves of two streams); dropping the write half sends EOF,
/// `forget` does not.
async fn split_owned() -> io::Result<()> {
    let (a, b) = tcp_pair().await?;
    let (mut ar, mut aw) = a.into_split();
    let (mut br, bw) = b.into_split();
    let writer = create_task(async move {
        AsyncWriteExt::write_all(&mut aw, b"ping").await?;
        Ok::<_, io::Error>(aw)
    });
    let mut buf = [0u8; 4];
    br.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    let aw = writer.await.map_err(task_err)??;

    // Mismatched halves come back whole.
    let (c, d) = tcp_pair().await?;
    let (cr, cw) = c.into_split();
    let back = ar.reunite(cw).unwrap_err();
    let (ar2, cw) = (back.0, back.1);
    ar = ar2;
    let c = cr.reunite(cw).expect("halves of one stream");
    drop((c, d));

    let mut a = aw.reunite(ar).expect("halves of one stream");
    AsyncWriteExt::write_all(&mut a, b"pong").await?;
    br.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"pong");

    // forget: no EOF; the socket closes with the read half.
    bw.forget();
    let (mut ar, aw) = a.into_split();
    let read = timeout(Duration::from_millis(50), ar.read(&mut buf)).await;
    assert!(read.is_err(), "forget sent EOF: {read:?}");
    // Dropping the write half: the peer reads EOF while we can still read.
    drop(aw);
    assert_eq!(br.read(&mut buf).await?, 0);
    drop(br);
    assert_eq!(ar.read(&mut buf).await?, 0);
    Ok(())
}

/// The socket adapters: 8 MiB one way in small writes against a slow
/// reader (writes wait for room), a read dropped while waiting loses
/// nothing, and a peer's reset is an error, not a hang.
async fn socket_adapters_edges() -> io::Result<()> {
    let (mut a, mut b) = tcp_pair().await?;
    let data = payload(8 << 20, 4);
    let expect = data.clone();
    let reader = create_task(async move {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = AsyncReadExt::read(&mut b, &mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() % (1 << 20) < 4096 {
                sleep(0.001).await?;
            }
        }
        Ok::<_, io::Error>((got, b))
    });
    for chunk in data.chunks(1000) {
        AsyncWriteExt::write_all(&mut a, chunk).await?;
    }
    AsyncWriteExt::close(&mut a).await?;
    let (got, mut b) = reader.await.map_err(task_err)??;
    assert!(got == expect);

    // A read that waited, then was dropped, takes nothing with it.
    let mut buf = [0u8; 16];
    assert!(
        timeout(Duration::from_millis(20), AsyncReadExt::read(&mut a, &mut buf))
            .await
            .is_err()
    );
    AsyncWriteExt::write_all(&mut b, b"after").await?;
    let n = AsyncReadExt::read(&mut a, &mut buf).await?;
    assert_eq!(&buf[..n], b"after");

    // A reset peer: the reader sees an error or EOF at once.
    b.set_linger(Some(Duration::ZERO))?;
    drop(b);
    let r = AsyncReadExt::read(&mut a, &mut buf).await;
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    Ok(())
}

backend_tests!(duplex_plain, split_borrowed, split_owned, socket_adapters_edges);
