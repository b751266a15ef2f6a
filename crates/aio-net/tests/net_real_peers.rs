//! aio's TLS streams against a peer that is not aio: CPython's `asyncio`
//! with its `ssl` module (OpenSSL), as client and as server, on every
//! backend (with `readuntil_any` and a server's `close_clients` too). Without `python3` the tests say so and pass, unless
//! `AIO_REQUIRE_PEERS=1` (as `.ci/run` sets), where a missing peer fails.
#![cfg(feature = "tls")]

mod servers;

use std::io;

use aio_net::{PIPE, TlsAcceptor, TlsConnector, create_subprocess_exec, open_connection_tls, start_server_tls};
use aio_test::{Dir, backend_tests, have_peer};
use servers::python;

/// A self-signed certificate for `localhost`: its PEM files in `dir`
/// (for Python) and the PEM texts.
fn certificate(dir: &Dir) -> io::Result<(String, String, std::path::PathBuf, std::path::PathBuf)> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).map_err(io::Error::other)?;
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert)?;
    std::fs::write(&key_path, &key)?;
    Ok((cert, key, cert_path, key_path))
}

/// CPython's asyncio TLS client: three lines to the server, each echo
/// printed, then a clean close (close_notify, then the socket).
const PY_CLIENT: &str = r#"
import asyncio, ssl, sys
async def main(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    for i in range(3):
        w.write(f"line {i}\n".encode())
        await w.drain()
        print((await r.readline()).decode().strip(), flush=True)
    big = bytes(range(256)) * 4096
    w.write(len(big).to_bytes(4, "big") + big)
    await w.drain()
    back = await r.readexactly(len(big))
    print("big", back == big, flush=True)
    w.close()
    await w.wait_closed()
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"#;

/// aio's TLS server (asyncio's `start_server` with `ssl=`), echoing
/// lines and then one length-prefixed block, served to CPython's client.
async fn python_ssl_client_against_aio_tls_server() -> io::Result<()> {
    if !have_peer("python3") {
        return Ok(());
    }
    let dir = Dir::new("py-client");
    let (cert, key, cert_path, _) = certificate(&dir)?;
    let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    let server = start_server_tls(
        |mut r, w| async move {
            for _ in 0..3 {
                let line = r.readline().await?;
                w.write(&line);
                w.drain().await?;
            }
            let n = u32::from_be_bytes(r.readexactly(4).await?.try_into().unwrap()) as usize;
            let block = r.readexactly(n).await?;
            w.write(&block);
            w.drain().await?;
            // The client closes: end of stream, then the close of ours.
            let rest = r.read(-1).await?;
            assert!(rest.is_empty(), "{} bytes after the block", rest.len());
            w.close();
            w.wait_closed().await?;
            Ok::<_, io::Error>(())
        },
        "127.0.0.1",
        0,
        acceptor,
    )
    .await?;
    let port = server.sockets()[0].port();
    let (stdout, stderr) = python(&["-c", PY_CLIENT, &port.to_string(), cert_path.to_str().unwrap()]).await?;
    assert_eq!(stdout, "line 0\nline 1\nline 2\nbig True\n", "python said: {stderr}");
    server.close();
    server.wait_closed().await?;
    Ok(())
}

/// CPython's asyncio TLS server: prints its port, upper-cases each line
/// until end of stream, then closes (close_notify) and exits.
const PY_SERVER: &str = r#"
import asyncio, ssl, sys
async def main(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    done = asyncio.Event()
    async def handle(r, w):
        while line := await r.readline():
            w.write(line.upper())
            await w.drain()
        w.close()
        await w.wait_closed()
        done.set()
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print(server.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    server.close()
    await server.wait_closed()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;

/// aio's TLS client (`open_connection` with `ssl=`) against CPython's TLS
/// server: lines both ways, then aio's end of stream and the server's
/// clean close, read as end of stream.
async fn aio_tls_client_against_python_ssl_server() -> io::Result<()> {
    if !have_peer("python3") {
        return Ok(());
    }
    let dir = Dir::new("py-server");
    let (cert, _, cert_path, key_path) = certificate(&dir)?;
    let mut py = create_subprocess_exec(
        "python3",
        ["-c", PY_SERVER, cert_path.to_str().unwrap(), key_path.to_str().unwrap()],
    )
    .stdout(PIPE)
    .await?;
    let mut py_out = py.stdout.take().unwrap();
    let port: u16 = String::from_utf8_lossy(&py_out.readline().await?)
        .trim()
        .parse()
        .map_err(io::Error::other)?;
    let connector = TlsConnector::from_pem(cert.as_bytes())?;
    let (mut r, w) = open_connection_tls("localhost", port, &connector).await?;
    for word in ["hello", "from aio"] {
        w.write(format!("{word}\n").as_bytes());
        w.drain().await?;
        assert_eq!(r.readline().await?, format!("{}\n", word.to_uppercase()).into_bytes());
    }
    w.write_eof();
    assert!(
        r.read(-1).await?.is_empty(),
        "the server's clean close is end of stream"
    );
    w.close();
    w.wait_closed().await?;
    assert_eq!(py.wait().await?, 0);
    Ok(())
}

/// CPython's asyncio TLS client: three lines with mixed endings, then
/// everything the server sends until end of stream, printed (line ends
/// escaped), then "eof".
const PY_READ_TO_EOF: &str = r#"
import asyncio, ssl, sys
async def main(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    w.write(b"x\r\ny\nz\r\n")
    await w.drain()
    data = await r.read()
    print(data.decode().replace("\r", "\\r").replace("\n", "\\n"), flush=True)
    print("eof", flush=True)
    w.close()
    await w.wait_closed()
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"#;

/// `readuntil_any` reading CPython's mixed line endings, and the server's
/// `close_clients` ending CPython's connection: what the handler wrote
/// arrives, then a clean end of stream (close_notify), and the handler's
/// own read meets EOF so `wait_closed` returns.
async fn python_ssl_client_against_readuntil_any_and_close_clients() -> io::Result<()> {
    if !have_peer("python3") {
        return Ok(());
    }
    let dir = Dir::new("py-close-clients");
    let (cert, key, cert_path, _) = certificate(&dir)?;
    let acceptor = TlsAcceptor::from_pem(cert.as_bytes(), key.as_bytes())?;
    let replied = std::rc::Rc::new(std::cell::Cell::new(false));
    let r2 = replied.clone();
    let server = start_server_tls(
        move |mut r, w| {
            let replied = r2.clone();
            async move {
                let mut lines = Vec::new();
                for _ in 0..3 {
                    lines.push(r.readuntil_any(&[b"\r\n", b"\n"]).await?);
                }
                w.write(&lines.join(&b'|'));
                replied.set(true);
                // Until the server closes its clients.
                let rest = r.read(-1).await?;
                assert!(rest.is_empty(), "{rest:?}");
                Ok::<_, io::Error>(())
            }
        },
        "127.0.0.1",
        0,
        acceptor,
    )
    .await?;
    let port = server.sockets()[0].port();
    let (port, ca) = (port.to_string(), cert_path.to_str().unwrap().to_owned());
    let py = aio_core::create_task(async move { python(&["-c", PY_READ_TO_EOF, &port, &ca]).await });
    aio_test::until("the handler replies", || replied.get()).await?;
    server.close();
    server.close_clients();
    let (stdout, stderr) = py.await.map_err(|e| io::Error::other(e.to_string()))??;
    assert_eq!(stdout, "x\\r\\n|y\\n|z\\r\\n\neof\n", "python said: {stderr}");
    aio_core::timeout(10, server.wait_closed())
        .await
        .expect("wait_closed hung")?;
    Ok(())
}

backend_tests!(
    python_ssl_client_against_readuntil_any_and_close_clients,
    python_ssl_client_against_aio_tls_server,
    aio_tls_client_against_python_ssl_server,
);
