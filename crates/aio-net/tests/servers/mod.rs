//! The servers the stream suites talk to (`net_stream`, `net_closing`,
//! `net_tls`, `net_emfile`, `net_real_peers`): any handler on a fresh port
//! of 127.0.0.1, and the echo server most tests use, which copies what it
//! reads back until EOF, then closes (over TLS, with close_notify); and
//! [`python`], to run a CPython peer.
#![allow(dead_code)] // each suite uses some of them

use std::future::Future;
use std::io;

use aio_core::create_task;
use aio_net::{
    HandlerOutput, PIPE, Server, StreamError, StreamReader, StreamWriter, create_subprocess_exec, start_server,
};
#[cfg(feature = "tls")]
use aio_net::{TlsAcceptor, start_server_tls};

/// Runs `python3` with `args` to the end; returns what it printed on
/// stdout and on stderr.
pub async fn python(args: &[&str]) -> io::Result<(String, String)> {
    let (stdout, stderr) = create_subprocess_exec("python3", args)
        .stdout(PIPE)
        .stderr(PIPE)
        .await?
        .communicate(None)
        .await?;
    let text = |b: Option<Vec<u8>>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
    Ok((text(stdout), text(stderr)))
}

/// A server on a fresh port of 127.0.0.1 that serves each connection
/// with `handler`.
pub async fn local_server<H, Fut>(handler: H) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    start_server(handler, "127.0.0.1", 0).await
}

/// [`local_server`] over TLS (`tls`).
#[cfg(feature = "tls")]
pub async fn local_server_tls<H, Fut>(handler: H, tls: TlsAcceptor) -> io::Result<Server>
where
    H: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    start_server_tls(handler, "127.0.0.1", 0, tls).await
}

/// Copies what `r` reads to `w` until EOF, then closes `w` and waits for
/// the close.
async fn echo(mut r: StreamReader, w: StreamWriter) -> Result<(), StreamError> {
    let mut data = r.read(64 * 1024).await?;
    while !data.is_empty() {
        w.write(&data);
        w.drain().await?;
        data = r.read(64 * 1024).await?;
    }
    w.close();
    w.wait_closed().await?;
    Ok(())
}

/// An echo server on the streams API.
pub async fn echo_server() -> io::Result<Server> {
    local_server(echo).await
}

/// An echo server over TLS (`tls`).
#[cfg(feature = "tls")]
pub async fn echo_server_tls(tls: TlsAcceptor) -> io::Result<Server> {
    local_server_tls(echo, tls).await
}

/// Sends `data` to an echo server over `w`, `chunk` bytes a write, then
/// EOF, while `r` reads the echo to its end; checks it came back whole
/// and in order. Returns the writer (to close).
pub async fn echo_round_trip(
    r: &mut StreamReader,
    w: StreamWriter,
    data: Vec<u8>,
    chunk: usize,
) -> io::Result<StreamWriter> {
    let expect = data.clone();
    let sender = create_task(async move {
        for c in data.chunks(chunk) {
            w.write(c);
            w.drain().await?;
        }
        w.write_eof();
        Ok::<_, io::Error>(w)
    });
    let got = r.read(-1).await.map_err(io::Error::from)?;
    let w = sender.await.map_err(|e| io::Error::other(e.to_string()))??;
    let size = expect.len();
    assert_eq!(got.len(), size, "size {size}");
    assert!(got == expect, "echo of {size} bytes differs");
    assert!(r.at_eof());
    Ok(w)
}
