//! How streams and servers end, on every backend, with asyncio's outcomes
//! (programs taken from CPython's test_streams and test_server): a closed
//! server refuses at once, a drain that cannot deliver says so, a write
//! after `write_eof` is an error, and `abort` closes at once. Nothing a
//! program writes may vanish without an error, and no descriptor is left
//! open.

mod servers;

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use aio_core::{TaskError, create_task, yield_now};
use aio_net::{
    PIPE, StreamError, StreamReader, StreamWriter, TcpListener, TcpStream, create_subprocess_exec, open_connection,
};
use aio_test::{Backend, backend_tests, payload};
use servers::{echo_server, local_server, python};

fn err(e: TaskError) -> io::Error {
    io::Error::other(e.to_string())
}

/// More than any loopback socket (or pipe) buffers, so that most of it is
/// still in the writer's buffer right after `write`.
const BIG: usize = 32 << 20;

#[track_caller]
fn assert_refused(r: io::Result<(StreamReader, StreamWriter)>) {
    match r {
        Ok(_) => panic!("a connection to a closed server succeeded"),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
    }
}

/// test_server's `test_start_server_1`'s ending: after `close()` returns,
/// the port refuses — right after `start_server` (no accept has run) and
/// once connections are being accepted. A connection in progress goes on.
async fn closed_server_refuses_at_once() -> io::Result<()> {
    let server = echo_server().await?;
    let port = server.sockets()[0].port();
    server.close();
    assert!(!server.is_serving());
    assert_refused(open_connection("127.0.0.1", port).await);
    server.wait_closed().await?;

    let server = echo_server().await?;
    let port = server.sockets()[0].port();
    let (mut r, w) = open_connection("127.0.0.1", port).await?;
    w.write(b"before\n");
    assert_eq!(r.readline().await?, b"before\n");
    server.close();
    assert_refused(open_connection("127.0.0.1", port).await);
    // The accept tasks ran their cancellation: still refused.
    yield_now().await?;
    assert_refused(open_connection("127.0.0.1", port).await);
    // The connection accepted before the close is still served.
    w.write(b"after\n");
    assert_eq!(r.readline().await?, b"after\n");
    w.close();
    assert_eq!(r.read(-1).await?, b"");
    server.wait_closed().await?;
    assert_eq!(server.connections(), 0);
    Ok(())
}

/// test_streams' `test_async_writer_api_exception_after_close`: the peer
/// answered and closed; we close, write, drain: `ConnectionResetError`.
async fn drain_after_close_is_connection_lost() -> io::Result<()> {
    let server = local_server(|mut r: StreamReader, w: StreamWriter| async move {
        r.readline().await?;
        w.write(b"HTTP/1.0 200 OK\r\n\r\nTest message");
        w.close();
        w.wait_closed().await?;
        Ok::<_, StreamError>(())
    })
    .await?;
    let port = server.sockets()[0].port();

    let (mut r, w) = open_connection("127.0.0.1", port).await?;
    w.write(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.readline().await?, b"HTTP/1.0 200 OK\r\n");
    assert_eq!(r.read(-1).await?, b"\r\nTest message");
    // The peer closed: nothing was lost yet, so drain has nothing to say.
    w.drain().await?;
    w.close();
    w.write(b"data");
    let e = w.drain().await.expect_err("a drain after close succeeded");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(e.to_string(), "Connection lost");
    w.wait_closed().await?;
    // Still so once the close has finished.
    assert_eq!(w.drain().await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);

    // close() then drain() at once, as asyncio's `writer.close(); await
    // writer.drain()`.
    let (_r, w) = open_connection("127.0.0.1", port).await?;
    w.close();
    assert_eq!(w.drain().await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    w.wait_closed().await?;
    server.close();
    server.wait_closed().await?;
    Ok(())
}

/// A drain waiting for room when another task closes the writer: the close
/// sends everything, and the drain ends without error (asyncio's drain
/// waiter is woken by a clean `connection_lost`).
async fn drain_waiting_when_closed_sees_the_close_through() -> io::Result<()> {
    let go = aio_core::Future::<()>::new();
    let received = aio_core::Future::<usize>::new();
    let (go2, received2) = (go.clone(), received.clone());
    let server = local_server(move |mut r: StreamReader, _w: StreamWriter| {
        let (go, received) = (go2.clone(), received2.clone());
        async move {
            (&go).await.map_err(|e| io::Error::other(e.to_string()))?;
            let got = r.read(-1).await?;
            let _ = received.set_result(got.len());
            Ok::<_, StreamError>(())
        }
    })
    .await?;
    let port = server.sockets()[0].port();
    let (_r, w) = open_connection("127.0.0.1", port).await?;
    let w = Rc::new(w);
    w.write(&payload(BIG, 3));
    let w2 = w.clone();
    let drain = create_task(async move { w2.drain().await });
    yield_now().await?;
    assert!(!drain.done(), "the buffer is above the high-water mark");
    w.close();
    go.set_result(()).unwrap();
    drain.await.map_err(err)??;
    w.wait_closed().await?;
    assert_eq!(
        (&received).await.map_err(|e| io::Error::other(e.to_string()))?,
        BIG,
        "everything was delivered"
    );
    server.close();
    server.wait_closed().await?;
    Ok(())
}

/// asyncio: `writer.write_eof(); writer.write(b"x")` raises `RuntimeError:
/// Cannot call write() after write_eof()`. Here the data is dropped (it
/// could never arrive) and every later `drain` and `wait_closed` fails
/// with that error, so the loss is never silent; the peer sees EOF after
/// what came before.
async fn write_after_write_eof_is_an_error() -> io::Result<()> {
    let server = echo_server().await?;
    let port = server.sockets()[0].port();
    let (mut r, w) = open_connection("127.0.0.1", port).await?;
    w.write(b"kept");
    w.write_eof();
    // An empty write loses nothing.
    w.write(b"");
    w.drain().await?;
    w.write(b"lost");
    let e = w.drain().await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert!(e.to_string().contains("Cannot call write() after write_eof()"), "{e}");
    // It stays reported, writelines too.
    w.writelines([b"a"]);
    assert_eq!(w.drain().await.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    // Nor may a file follow: sendfile says so.
    let path = std::env::temp_dir().join(format!("aio-closing-{}-{}", std::process::id(), w.local_addr()?.port()));
    std::fs::write(&path, b"file")?;
    let file = std::fs::File::open(&path)?;
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        w.sendfile(&file, 0, None).await.unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
    assert_eq!(r.read(-1).await?, b"kept");
    w.close();
    assert_eq!(w.wait_closed().await.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    server.close();
    server.wait_closed().await?;
    Ok(())
}

fn fd_target(fd: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// asyncio's `writer.transport.abort()`: the buffer is discarded, the
/// connection closes at once (the peer reads what the kernel already had,
/// then EOF), a drain waiting for room and every later drain say
/// "Connection lost", `wait_closed` is fine, our reader reads EOF, and the
/// descriptor closes with the last handle.
async fn abort_closes_at_once() -> io::Result<()> {
    let go = aio_core::Future::<()>::new();
    let received = aio_core::Future::<usize>::new();
    let (go2, received2) = (go.clone(), received.clone());
    let server = local_server(move |mut r: StreamReader, w: StreamWriter| {
        let (go, received) = (go2.clone(), received2.clone());
        async move {
            w.write(b"from the server\n");
            (&go).await.map_err(|e| io::Error::other(e.to_string()))?;
            let mut got = 0;
            loop {
                match r.read(1 << 20).await {
                    Ok(d) if d.is_empty() => break,
                    Ok(d) => got += d.len(),
                    Err(_) => break,
                }
            }
            let _ = received.set_result(got);
            Ok::<_, StreamError>(())
        }
    })
    .await?;
    let port = server.sockets()[0].port();
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    let fd = s.as_raw_fd();
    let target = fd_target(fd).expect("the socket is open");
    let (mut r, w) = s.into_streams();
    assert_eq!(r.readline().await?, b"from the server\n");
    let w = Rc::new(w);
    w.write(&payload(BIG, 5));
    let w2 = w.clone();
    let drain = create_task(async move { w2.drain().await });
    yield_now().await?;
    assert!(!drain.done(), "the buffer is above the high-water mark");

    w.abort();
    assert!(w.is_closing());
    assert_eq!(w.write_buffer_size(), 0, "the buffer was discarded");
    let e = drain
        .await
        .map_err(err)?
        .expect_err("a drain waiting at the abort succeeded");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    w.write(b"dropped, and drain says so");
    assert_eq!(w.drain().await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    w.wait_closed().await?;
    w.abort(); // twice: nothing more
    assert_eq!(r.read(-1).await?, b"", "our reader reads EOF");

    go.set_result(()).unwrap();
    let got = (&received).await.map_err(|e| io::Error::other(e.to_string()))?;
    assert!(got < BIG, "the peer got all {got} bytes: nothing was discarded");

    drop((r, w));
    yield_now().await?;
    assert_ne!(fd_target(fd), Some(target), "the socket's descriptor is still open");
    server.close();
    server.wait_closed().await?;
    Ok(())
}

/// `abort` on a subprocess's stdin closes the pipe at once, though a write
/// is in flight: `cat` reads EOF (not all of the data) and exits.
async fn abort_closes_a_pipe_at_once() -> io::Result<()> {
    let mut p = create_subprocess_exec("cat", ["-"]).stdin(PIPE).stdout(PIPE).await?;
    let stdin = p.stdin.take().expect("stdin is a pipe");
    stdin.write(&payload(BIG, 8));
    yield_now().await?;
    stdin.abort();
    assert_eq!(stdin.drain().await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    stdin.wait_closed().await?;
    let out = p.stdout.as_mut().unwrap().read(-1).await?;
    assert!(out.len() < BIG, "cat got all of it: nothing was discarded");
    assert_eq!(p.wait().await?, 0);
    drop(stdin);
    Ok(())
}

/// asyncio's abortive close, `SO_LINGER` 0 on the writer's socket then
/// `abort()`: the peer gets a reset (not EOF, which would pass for a
/// complete answer), while our own reader reads EOF at once. The option
/// needs a socket: a pipe says `Unsupported`, an aborted writer
/// `NotConnected`.
async fn abort_with_linger_zero_resets_the_peer() -> io::Result<()> {
    let server = local_server(|mut r: StreamReader, w: StreamWriter| async move {
        assert_eq!(r.readline().await?, b"hello\n");
        w.write(b"never sent: the abort discards it\n");
        w.set_linger(Some(std::time::Duration::ZERO))?;
        w.abort();
        assert_eq!(r.read(-1).await?, b"", "the aborting side reads EOF");
        assert_eq!(
            w.set_linger(None).unwrap_err().kind(),
            io::ErrorKind::NotConnected,
            "an aborted writer has no socket"
        );
        Ok::<_, StreamError>(())
    })
    .await?;
    let port = server.sockets()[0].port();
    let (mut r, w) = open_connection("127.0.0.1", port).await?;
    w.write(b"hello\n");
    w.drain().await?;
    let e = io::Error::from(
        r.read(-1)
            .await
            .expect_err("the peer reset the connection, yet we read EOF"),
    );
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    assert_eq!(w.drain().await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    server.close();
    server.wait_closed().await?;

    let mut p = create_subprocess_exec("cat", ["-"]).stdin(PIPE).await?;
    let stdin = p.stdin.take().expect("stdin is a pipe");
    let e = stdin.set_linger(Some(std::time::Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
    stdin.close();
    assert_eq!(p.wait().await?, 0);
    Ok(())
}

/// CPython's asyncio client: sends a line, then reads; prints how the read
/// ended.
const PY_RESET_CLIENT: &str = r#"
import asyncio, sys
async def main(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"hello\n")
    await w.drain()
    try:
        data = await r.read()
        print("read", data)
    except ConnectionResetError:
        print("reset")
    w.close()
asyncio.run(main(int(sys.argv[1])))
"#;

/// The same abortive close seen by a peer that is not aio: CPython's
/// asyncio client gets `ConnectionResetError`, not an empty read.
async fn a_python_client_sees_the_linger_zero_reset() -> io::Result<()> {
    if !aio_test::have_peer("python3") {
        return Ok(());
    }
    let server = local_server(|mut r: StreamReader, w: StreamWriter| async move {
        assert_eq!(r.readline().await?, b"hello\n");
        w.set_linger(Some(std::time::Duration::ZERO))?;
        w.abort();
        Ok::<_, StreamError>(())
    })
    .await?;
    let port = server.sockets()[0].port();
    let (stdout, stderr) = python(&["-c", PY_RESET_CLIENT, &port.to_string()]).await?;
    assert_eq!(stdout, "reset\n", "python said: {stderr}");
    server.close();
    server.wait_closed().await?;
    Ok(())
}

/// test_streams' `test_drain_raises`: the peer accepts and closes at once;
/// a client that writes and drains in a loop must get an error, not spin
/// forever with its data vanishing.
async fn drain_raises_when_the_peer_is_gone() -> io::Result<()> {
    let server = local_server(|_r: StreamReader, _w: StreamWriter| async { Ok::<_, io::Error>(()) }).await?;
    let port = server.sockets()[0].port();
    let (_r, w) = open_connection("127.0.0.1", port).await?;
    let mut failed = None;
    for _ in 0..1_000_000 {
        w.write(b"foo\n");
        if let Err(e) = w.drain().await {
            failed = Some(e);
            break;
        }
        yield_now().await?;
    }
    let e = failed.expect("a million writes to a closed peer all drained");
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted
        ),
        "{e}"
    );
    w.close();
    assert!(w.wait_closed().await.is_err(), "wait_closed reports the failure");
    assert_eq!(
        w.drain().await.unwrap_err().kind(),
        e.kind(),
        "the failure, not just 'closed'"
    );
    w.abort();
    server.close();
    server.wait_closed().await?;
    Ok(())
}

/// A peer that resets the connection (closes with `SO_LINGER` 0): once
/// our reader has seen the reset, `drain` and `wait_closed` report it too,
/// as asyncio's do (its reader and writer share the connection's fate).
async fn a_reset_seen_by_the_reader_fails_the_writer() -> io::Result<()> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let connected = aio_core::Future::<()>::new();
    let c2 = connected.clone();
    let peer = create_task(async move {
        let (s, _) = l.accept().await?;
        // Reset only once the client's connect has completed.
        (&c2).await.map_err(|e| io::Error::other(e.to_string()))?;
        s.set_linger(Some(std::time::Duration::ZERO))?;
        drop(s);
        Ok::<_, io::Error>(())
    });
    let (mut r, w) = open_connection("127.0.0.1", addr.port()).await?;
    connected.set_result(()).unwrap();
    peer.await.map_err(err)??;
    match r.read(-1).await {
        Err(StreamError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("a read from a reset connection gave {other:?}"),
    }
    let e = w
        .drain()
        .await
        .expect_err("drain after the reader saw a reset succeeded");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    assert!(w.is_closing());
    assert_eq!(
        w.wait_closed().await.unwrap_err().kind(),
        io::ErrorKind::ConnectionReset
    );
    w.write(b"dropped");
    assert_eq!(w.drain().await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    Ok(())
}

/// A drain cut short — dropped by a timeout, or its task cancelled —
/// takes nothing with it: the buffer stays queued; an abort afterwards
/// still discards it and every later drain says so.
async fn drains_cut_short_then_abort() -> io::Result<()> {
    let server = local_server(|r: StreamReader, w: StreamWriter| async move {
        let _open = (r, w);
        aio_core::sleep(3600).await?;
        Ok::<_, io::Error>(())
    })
    .await?;
    let port = server.sockets()[0].port();
    let (_r, w) = open_connection("127.0.0.1", port).await?;
    let w = Rc::new(w);
    w.write(&payload(BIG, 9));
    let r = aio_core::timeout(0.01, w.drain()).await;
    assert!(
        matches!(r, Err(aio_core::TimeoutError { .. })),
        "the peer reads nothing: {r:?}"
    );
    let w2 = w.clone();
    let drain = create_task(async move { w2.drain().await });
    yield_now().await?;
    drain.cancel();
    // The cancellation propagated out of the drain: the task ends cancelled.
    assert!(drain.await.unwrap_err().is_cancelled());
    assert!(w.write_buffer_size() > 0, "a cut drain keeps the data queued");
    w.abort();
    assert_eq!(w.write_buffer_size(), 0);
    assert_eq!(w.drain().await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    // The handler never reads (wait_closed would wait for it): the loop's
    // close cancels it.
    server.close();
    Ok(())
}

/// The loop closes while a writer still holds data and a server still
/// listens: afterwards, with no loop, `abort`, `write` and `close` neither
/// panic nor leak, and the descriptors close with their last handles.
fn a_writer_and_a_server_outlive_their_loop(b: Backend) {
    let Some(lp) = aio_test::new_loop(b) else { return };
    let runner = aio_core::Runner::with_loop(lp);
    let (s, w, server, fd, target) = runner
        .run(async {
            let server = echo_server().await?;
            let port = server.sockets()[0].port();
            let s = TcpStream::connect(("127.0.0.1", port)).await?;
            let fd = s.as_raw_fd();
            let target = fd_target(fd);
            let (r, w) = s.into_streams();
            w.write(&payload(BIG, 11));
            Ok::<_, io::Error>((r, w, server, fd, target))
        })
        .unwrap();
    runner.close();
    w.write(b"after the loop");
    w.abort();
    assert!(w.is_closing());
    w.close();
    server.close();
    drop((s, w, server));
    assert_ne!(fd_target(fd), target, "the socket's descriptor is still open");
}

backend_tests!(
    plain: closed_server_refuses_at_once,
    drain_after_close_is_connection_lost,
    drain_waiting_when_closed_sees_the_close_through,
    write_after_write_eof_is_an_error,
    abort_closes_at_once,
    abort_closes_a_pipe_at_once,
    abort_with_linger_zero_resets_the_peer,
    a_python_client_sees_the_linger_zero_reset,
    drain_raises_when_the_peer_is_gone,
    a_reset_seen_by_the_reader_fails_the_writer,
    drains_cut_short_then_abort;
    each: a_writer_and_a_server_outlive_their_loop,
);
