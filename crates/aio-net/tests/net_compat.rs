//! The ecosystem on aio sockets: futures-io's traits on every backend, and
//! (with the `tokio-io` feature) an HTTP/1.1 server through hyper.

use std::io;

use aio_core::create_task;
use aio_net::{TcpListener, TcpStream, UnixStream};
use aio_test::backend_tests;
use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn futures_io_traits() -> io::Result<()> {
    let (mut a, mut b) = UnixStream::pair()?;
    let data = aio_test::payload(300_000, 9);
    let expect = data.clone();
    let writer = create_task(async move {
        // The owned-buffer inherent methods shadow the trait's: name the trait.
        AsyncWriteExt::write_all(&mut a, &data).await?;
        AsyncWriteExt::close(&mut a).await?;
        Ok::<_, io::Error>(())
    });
    let mut got = Vec::new();
    b.read_to_end(&mut got).await?;
    writer.await.map_err(|e| io::Error::other(e.to_string()))??;
    assert!(got == expect);

    // AsyncBufRead on the stream reader.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client = create_task(async move {
        let mut s = TcpStream::connect(addr).await?;
        AsyncWriteExt::write_all(&mut s, b"line one\nline two\n").await?;
        AsyncWriteExt::close(&mut s).await
    });
    let (s, _) = listener.accept().await?;
    let (r, _w) = s.into_streams();
    let mut lines = BufReader::new(r).lines();
    use futures_util::StreamExt;
    let mut v = Vec::new();
    while let Some(l) = lines.next().await {
        v.push(l?);
    }
    assert_eq!(v, ["line one", "line two"]);
    client.await.map_err(|e| io::Error::other(e.to_string()))??;
    Ok(())
}

/// futures-io's AsyncWrite on asyncio's StreamWriter: writes wait at the
/// high-water mark (so 4 MiB never sits in the buffer at once), flush is
/// drain, close sends EOF.
async fn stream_writer_async_write() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let data = aio_test::payload(4 << 20, 11);
    let expect = data.clone();
    let writer = create_task(async move {
        let (_r, mut w) = TcpStream::connect(addr).await?.into_streams();
        w.set_write_buffer_limits(64 * 1024, None);
        let mut most = 0;
        for chunk in data.chunks(100_000) {
            AsyncWriteExt::write_all(&mut w, chunk).await?;
            most = most.max(w.write_buffer_size());
        }
        AsyncWriteExt::flush(&mut w).await?;
        AsyncWriteExt::close(&mut w).await?;
        assert!(w.is_closing());
        // A closed writer refuses more.
        assert!(AsyncWriteExt::write_all(&mut w, b"late").await.is_err());
        Ok::<_, io::Error>(most)
    });
    let (s, _) = listener.accept().await?;
    let (mut r, _w) = s.into_streams();
    let got = r.read(-1).await.map_err(io::Error::from)?;
    let most = writer.await.map_err(|e| io::Error::other(e.to_string()))??;
    assert!(got == expect);
    assert!(most <= 64 * 1024 + 100_000, "buffered {most} bytes");
    Ok(())
}

/// A connected pair of TCP streams.
async fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let client = TcpStream::connect(listener.local_addr()?).await?;
    let (server, _) = listener.accept().await?;
    Ok((client, server))
}

/// Polls `fut` once: its first answer.
async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

/// Lets the loop wait once (and reap what the kernel reported); the
/// outcomes checked do not depend on how long.
async fn tick() {
    aio_core::sleep(std::time::Duration::from_millis(1))
        .await
        .expect("a valid delay");
}

/// Fails a read that hangs instead of waiting forever.
async fn bounded<T>(f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    aio_core::wait_for(f, std::time::Duration::from_secs(20))
        .await
        .map_err(|_| io::Error::other("the read hung"))?
}

/// The trait read after one that came back short (the socket's queue ran
/// dry) waits for readiness without trying the call first (on io_uring,
/// for the socket's armed watch). Data that comes, and is seen by the
/// loop, between the short read and the next one is not missed; nor is
/// data that comes while it waits, nor the peer's end of stream.
async fn trait_read_after_short_read_misses_nothing() -> io::Result<()> {
    let (mut a, mut b) = tcp_pair().await?;
    let mut buf = [0u8; 1024];
    AsyncWriteExt::write_all(&mut a, b"short").await?;
    assert_eq!(bounded(AsyncReadExt::read(&mut b, &mut buf)).await?, 5);
    // More data, and a wait of the loop (which reaps the watch's event)
    // before the next read asks.
    AsyncWriteExt::write_all(&mut a, b"between").await?;
    tick().await;
    assert_eq!(bounded(AsyncReadExt::read(&mut b, &mut buf)).await?, 7);
    assert_eq!(&buf[..7], b"between");
    // A read that waits, then data.
    let writer = create_task(async move {
        tick().await;
        AsyncWriteExt::write_all(&mut a, b"later").await?;
        tick().await;
        AsyncWriteExt::close(&mut a).await?;
        Ok::<_, io::Error>(a)
    });
    assert_eq!(bounded(AsyncReadExt::read(&mut b, &mut buf)).await?, 5);
    assert_eq!(&buf[..5], b"later");
    // Waiting when the peer shuts its side: end of stream.
    assert_eq!(bounded(AsyncReadExt::read(&mut b, &mut buf)).await?, 0);
    assert_eq!(bounded(AsyncReadExt::read(&mut b, &mut buf)).await?, 0);
    drop(writer.await.map_err(|e| io::Error::other(e.to_string()))??);
    Ok(())
}

/// A trait read dropped while it waits loses nothing: the next read gets
/// what came meanwhile. A peer's reset ends a waiting read with an error.
async fn trait_read_dropped_while_waiting_then_reset() -> io::Result<()> {
    let (mut a, mut b) = tcp_pair().await?;
    let mut buf = [0u8; 64];
    {
        let mut read = AsyncReadExt::read(&mut b, &mut buf);
        assert!(poll_once(&mut read).await.is_pending());
    }
    AsyncWriteExt::write_all(&mut a, b"kept").await?;
    assert_eq!(bounded(AsyncReadExt::read(&mut b, &mut buf)).await?, 4);
    assert_eq!(&buf[..4], b"kept");
    let resetter = create_task(async move {
        tick().await;
        a.set_linger(Some(std::time::Duration::ZERO))?;
        drop(a);
        Ok::<_, io::Error>(())
    });
    let err = bounded(AsyncReadExt::read(&mut b, &mut buf)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    resetter.await.map_err(|e| io::Error::other(e.to_string()))??;
    Ok(())
}

#[cfg(feature = "tokio-io")]
async fn hyper_http1_server() -> io::Result<()> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use std::io::{Read, Write};

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // A plain client on a plain thread: no aio, no hyper.
    let client = std::thread::spawn(move || -> io::Result<String> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    });
    let (stream, _) = listener.accept().await?;
    let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
        let body = format!("hello from aio: {}", req.uri().path());
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await
        .map_err(io::Error::other)?;
    let response = aio_core::to_thread(move || client.join().unwrap())
        .await
        .map_err(io::Error::from)??;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("hello from aio: /hello"), "{response}");
    Ok(())
}

backend_tests!(
    futures_io_traits,
    stream_writer_async_write,
    trait_read_after_short_read_misses_nothing,
    trait_read_dropped_while_waiting_then_reset,
    #[cfg(feature = "tokio-io")]
    hyper_http1_server,
);
