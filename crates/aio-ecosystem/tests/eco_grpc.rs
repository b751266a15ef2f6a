//! tonic through aio-hyper, on both backends: the hand-written `aio.Echo`
//! service (prost messages, no protoc) served by `aio::hyper::serve` with
//! `TowerToHyperService`, called by tonic's `client::Grpc` on
//! `aio::hyper::Client`; a unary call, a server-streaming call, an error
//! status, and concurrent calls on one HTTP/2 connection.

use aio::create_task;
use aio::hyper::TowerToHyperService;
use aio::{Task, TcpListener};
use aio_ecosystem::grpc::{EchoClient, EchoServer};
use aio_test::{TestResult, backend_tests};
use futures_util::StreamExt;

async fn serve() -> Result<(std::net::SocketAddr, Task<std::io::Result<()>>), std::io::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = create_task(async move { aio::hyper::serve(&listener, TowerToHyperService::new(EchoServer)).await });
    Ok((addr, server))
}

async fn unary() -> TestResult {
    let (addr, server) = serve().await?;
    let mut client = EchoClient::new(addr);
    assert_eq!(client.say("hello").await?.message, "HELLO");
    // Calls at once, multiplexed on the client's HTTP/2 connection.
    let calls: Vec<_> = (0..32)
        .map(|i| {
            let mut client = client.clone();
            create_task(async move { client.say(&format!("m{i}")).await })
        })
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        assert_eq!(c.await??.message, format!("M{i}"));
    }
    server.cancel();
    Ok(())
}

async fn server_streaming() -> TestResult {
    let (addr, server) = serve().await?;
    let mut client = EchoClient::new(addr);
    let mut replies = client.count("tick", 500).await?;
    let mut n = 0;
    while let Some(reply) = replies.next().await {
        let reply = reply?;
        assert_eq!((reply.message.as_str(), reply.index), ("tick", n));
        n += 1;
    }
    assert_eq!(n, 500);
    // A status from the service reaches the caller.
    let Err(status) = client.count("x", 1_000_000).await else {
        panic!("a count above the limit is refused")
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    server.cancel();
    Ok(())
}

async fn unreachable_server() -> TestResult {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        l.local_addr()?
    };
    let Err(status) = EchoClient::new(addr).say("anyone?").await else {
        panic!("nobody listens")
    };
    // tonic reports a transport's error it does not know as `Unknown`,
    // with the cause.
    assert!(status.message().contains("Connection refused"), "{status:?}");
    Ok(())
}

backend_tests!(unary, server_streaming, unreachable_server);
