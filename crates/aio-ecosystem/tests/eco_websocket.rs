//! tokio-tungstenite on aio's streams, on both backends: the server runs
//! `accept_async` on an accepted aio `TcpStream`, the client
//! `client_async` on a connected one; and the same over aio's TLS (`wss://`)
//! through `Duplex`.

use aio::{Duplex, StreamReader, StreamWriter, TcpListener, TcpStream, TlsAcceptor, TlsConnector, create_task};
use aio_ecosystem::servers::SelfSigned;
use aio_test::{TestResult, backend_tests};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, accept_async, client_async};

/// Echoes every text and binary message until the client closes.
async fn echo<S>(mut ws: WebSocketStream<S>) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

/// Sends texts and a large binary message and reads each back, then closes.
async fn talk<S>(mut ws: WebSocketStream<S>) -> TestResult
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for i in 0..100 {
        ws.send(Message::text(format!("message {i}"))).await?;
        assert_eq!(ws.next().await.unwrap()?, Message::text(format!("message {i}")));
    }
    let big = aio_test::payload(1 << 20, 7);
    ws.send(Message::binary(big.clone())).await?;
    assert_eq!(ws.next().await.unwrap()?.into_data(), big);
    ws.close(None).await?;
    while ws.next().await.transpose()?.is_some() {}
    Ok(())
}

async fn plain_echo() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = create_task(async move {
        let (stream, _) = listener.accept().await?;
        echo(accept_async(stream).await?).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    let stream = TcpStream::connect(addr).await?;
    let (ws, response) = client_async(format!("ws://{addr}/echo"), stream).await?;
    assert_eq!(response.status(), 101);
    talk(ws).await?;
    server.await?.map_err(|e| e.to_string())?;
    Ok(())
}

/// `wss://`: aio's TLS on both ends, joined into one stream by `Duplex`.
async fn tls_echo() -> TestResult {
    let cert = SelfSigned::localhost();
    let acceptor = TlsAcceptor::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())?;
    let server = aio::start_server_tls(
        |r: StreamReader, w: StreamWriter| async move {
            let ws = accept_async(Duplex::new(r, w)).await?;
            echo(ws).await
        },
        "127.0.0.1",
        0,
        acceptor,
    )
    .await?;
    let port = server.sockets()[0].port();
    let tls = TlsConnector::from_pem(cert.cert_pem.as_bytes())?;
    let (r, w) = aio::open_connection_tls("localhost", port, &tls).await?;
    let (ws, _) = client_async(format!("wss://localhost:{port}/"), Duplex::new(r, w)).await?;
    talk(ws).await?;
    server.close();
    Ok(())
}

backend_tests!(plain_echo, tls_echo);
