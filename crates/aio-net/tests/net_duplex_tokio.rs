//! `Duplex` and asyncio's reader and writer through tokio's I/O traits
//! (the `tokio-io` feature), plain and over TLS, on every backend.
#![cfg(feature = "tokio-io")]

use std::io;

use aio_core::create_task;
use aio_net::{Duplex, TcpListener, TcpStream};
use aio_test::{backend_tests, payload};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

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

/// tokio's traits on `Duplex` and on the reader and writer alone.
async fn duplex_tokio_traits() -> io::Result<()> {
    let (a, b) = tcp_pair().await?;
    let mut a = Duplex::from(a);
    let (r, mut w) = b.into_streams();
    let echo = create_task(async move {
        let mut r = tokio::io::BufReader::new(r);
        let mut line = String::new();
        while r.read_line(&mut line).await? > 0 {
            w.write_all(line.as_bytes()).await?;
            line.clear();
        }
        w.shutdown().await?;
        Ok::<_, io::Error>(())
    });
    for i in 0..100 {
        a.write_all(format!("line {i}\n").as_bytes()).await?;
        a.flush().await?;
        let mut line = String::new();
        a.read_line(&mut line).await?;
        assert_eq!(line, format!("line {i}\n"));
    }
    a.shutdown().await?;
    let mut rest = Vec::new();
    a.read_to_end(&mut rest).await?;
    assert!(rest.is_empty());
    echo.await.map_err(task_err)??;
    Ok(())
}

/// A TLS connection as one stream: 2 MiB echoed through tokio's traits,
/// then a half-close (close_notify): the server's reply still arrives.
#[cfg(feature = "tls")]
async fn duplex_tls() -> io::Result<()> {
    use aio_net::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use aio_net::{TlsAcceptor, TlsConnector, open_connection_tls, start_server_tls};

    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).map_err(io::Error::other)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let acceptor = TlsAcceptor::new(vec![ck.cert.der().clone()], key)?;
    let connector = TlsConnector::from_pem(ck.cert.pem().as_bytes())?;
    let server = start_server_tls(
        |r, w| async move {
            let mut s = Duplex::new(r, w);
            assert!(s.tls_info().is_some());
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await?;
            }
            s.write_all(b"done").await?;
            s.shutdown().await?;
            Ok::<_, io::Error>(())
        },
        "127.0.0.1",
        0,
        acceptor,
    )
    .await?;
    let port = server.sockets()[0].port();
    let (r, w) = open_connection_tls("localhost", port, &connector).await?;
    let mut s = Duplex::new(r, w);
    let data = payload(2 << 20, 5);
    let (mut rd, mut wr) = tokio::io::split(s);
    let expect = data.clone();
    let reader = create_task(async move {
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await?;
        Ok::<_, io::Error>((got, rd))
    });
    wr.write_all(&data).await?;
    wr.shutdown().await?;
    let (got, rd) = reader.await.map_err(task_err)??;
    assert_eq!(got.len(), expect.len() + 4);
    assert!(got[..expect.len()] == expect[..]);
    assert_eq!(&got[expect.len()..], b"done");
    s = rd.unsplit(wr);
    drop(s);
    server.close();
    Ok(())
}

backend_tests!(
    duplex_tokio_traits,
    #[cfg(feature = "tls")]
    duplex_tls,
);
