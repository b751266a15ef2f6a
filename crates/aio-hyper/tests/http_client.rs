//! The pooled client against servers that count what it does, on every
//! backend: how many connections it opens for concurrent users and a
//! small idle limit, resending an idempotent request when a reused
//! connection dies as it goes out, and sharing one HTTP/2 connection
//! among concurrent first requests.

mod common;

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use aio_core::{create_task, gather, timeout};
use aio_hyper::hyper::body::Incoming;
use aio_hyper::hyper::service::service_fn;
use aio_hyper::hyper::{Request, Response, Version};
use aio_hyper::{BodyExt, Builder, Bytes, Client, ClientError, Full, Io};
use aio_net::TcpListener;
use common::TestResult;
use common::raw_http::{RawServer, Script};

type Body = Full<Bytes>;

async fn body_text(res: Response<Incoming>) -> Result<String, Box<dyn std::error::Error>> {
    Ok(String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?)
}

/// Issue 21, item 7: the idle limit must not close connections that are
/// busy or about to be reused. 8 users, 4 idle connections kept, bodies
/// 20 ms after their heads: the users never need more than 8 connections.
async fn idle_limit_keeps_busy_connections() -> TestResult {
    let server = RawServer::start(Script {
        body_delay: Some(Duration::from_millis(20)),
        ..Script::default()
    })
    .await?;
    let client: Client<Body> = Client::new().max_idle_per_host(4);
    let users = (0..8).map(|u| {
        let client = client.clone();
        let uri = |i| server.uri(&format!("/u{u}/{i}"));
        let uris: Vec<_> = (0..6).map(uri).collect();
        async move {
            for uri in uris {
                let res = client.get(uri.clone()).await?;
                assert_eq!(body_text(res).await?, uri.path());
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        }
    });
    timeout(60.0, gather(users)).await??;
    let accepted = server.stats.accepted.get();
    assert!(accepted <= 8, "8 users made {accepted} connections");
    assert_eq!(server.stats.paths().len(), 48);
    // Once the users are gone, the idle limit applies.
    for _ in 0..100 {
        if client.pooled() <= 4 {
            break;
        }
        aio_core::yield_now().await?;
    }
    assert_eq!(client.pooled(), 4);
    server.stats.until_open_at_most(4).await?;
    Ok(())
}

/// Issue 21, item 8: a server closes a reused connection just as a request
/// goes out (it reads the request and closes, with a FIN or a reset). An
/// idempotent request is resent once on a new connection; a POST is not,
/// and neither is a request on a fresh connection.
async fn reused_connection_closed_is_retried() -> TestResult {
    for reset in [false, true] {
        let server = RawServer::start(Script {
            answer: Some(1),
            reset,
            ..Script::default()
        })
        .await?;
        let client: Client<Body> = Client::new();
        for i in 0..5 {
            let uri = server.uri(&format!("/get/{i}"));
            let res = client.get(uri).await?;
            assert_eq!(body_text(res).await?, format!("/get/{i}"));
        }
        // The first request on a fresh connection, each next one on the
        // reused connection (closed) and again on a new one.
        assert_eq!(server.stats.accepted.get(), 5, "reset: {reset}");
        assert_eq!(server.stats.paths().len(), 9);
        // A PUT's body goes again.
        let put = Request::put(server.uri("/put")).body(Full::new(Bytes::from_static(b"twice")))?;
        let res = client.request(put).await?;
        assert_eq!(body_text(res).await?, "twice");
        assert_eq!(server.stats.accepted.get(), 6);
        // A POST is not resent.
        let post = Request::post(server.uri("/post")).body(Full::new(Bytes::from_static(b"once")))?;
        match client.request(post).await {
            Err(ClientError::Http(_)) => {}
            other => panic!("a POST on a closed connection: {other:?}"),
        }
        assert_eq!(server.stats.accepted.get(), 6);
        assert_eq!(server.stats.paths().iter().filter(|p| *p == "/post").count(), 1);
    }
    // A fresh connection that dies is not retried.
    let server = RawServer::start(Script {
        answer: Some(0),
        ..Script::default()
    })
    .await?;
    let client: Client<Body> = Client::new();
    match client.get(server.uri("/fresh")).await {
        Err(ClientError::Http(e)) => assert!(e.is_incomplete_message(), "{e}"),
        other => panic!("a closed fresh connection: {other:?}"),
    }
    assert_eq!(server.stats.accepted.get(), 1);
    Ok(())
}

/// An HTTP/1.1 and HTTP/2 server counting the connections it accepted.
async fn counting_hyper_server() -> std::io::Result<(std::net::SocketAddr, Rc<Cell<usize>>, aio_core::Task<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    let server = create_task(async move {
        let builder = Rc::new(Builder::new());
        while let Ok((stream, _)) = listener.accept().await {
            count.set(count.get() + 1);
            let builder = builder.clone();
            drop(create_task(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let text = format!("{} {:?}", req.uri().path(), req.version());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                });
                let _ = builder.serve_connection(Io::tcp(stream), svc).await;
            }));
        }
    });
    Ok((addr, accepted, server))
}

/// Issue 21, item 9: 16 requests starting together to an HTTP/2 host share
/// the one connection being made.
async fn http2_first_requests_share_a_connection() -> TestResult {
    let (addr, accepted, server) = counting_hyper_server().await?;
    let client: Client<Body> = Client::new().http2_only();
    let reqs = (0..16).map(|i| {
        let client = client.clone();
        let uri = format!("http://{addr}/h2/{i}");
        async move {
            let res = client.get(uri.parse()?).await?;
            assert_eq!(res.version(), Version::HTTP_2);
            body_text(res).await
        }
    });
    let got = timeout(30.0, gather(reqs)).await??;
    for (i, text) in got.iter().enumerate() {
        assert_eq!(text, &format!("/h2/{i} HTTP/2.0"));
    }
    assert_eq!(accepted.get(), 1);
    assert_eq!(client.pooled(), 1);
    server.cancel();
    Ok(())
}

backend_tests!(
    idle_limit_keeps_busy_connections,
    reused_connection_closed_is_retried,
    http2_first_requests_share_a_connection,
);
