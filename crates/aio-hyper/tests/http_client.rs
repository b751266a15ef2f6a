//! The pooled client against servers that count what it does, on every
//! backend: how many connections it opens for concurrent users and a
//! small idle limit, resending an idempotent request when a reused
//! connection dies as it goes out, and sharing one HTTP/2 connection
//! among concurrent first requests.

mod raw_http;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use aio_core::{TimeoutError, create_task, gather, timeout};
use aio_hyper::hyper::body::Incoming;
use aio_hyper::hyper::service::service_fn;
use aio_hyper::hyper::{Request, Response, Version};
use aio_hyper::{BodyExt, Builder, Bytes, Client, ClientError, Full, Io};
use aio_net::TcpListener;
use aio_test::{TestResult, backend_tests};
use raw_http::{RawServer, Script, Stats};

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

/// An HTTP/1.1 and HTTP/2 (hyper) server counting its connections.
async fn counting_hyper_server() -> std::io::Result<(SocketAddr, Rc<Stats>, aio_core::Task<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stats = Rc::new(Stats::default());
    let st = stats.clone();
    let server = create_task(async move {
        let builder = Rc::new(Builder::new());
        while let Ok((stream, _)) = listener.accept().await {
            st.accepted.set(st.accepted.get() + 1);
            st.open.set(st.open.get() + 1);
            let (builder, st) = (builder.clone(), st.clone());
            drop(create_task(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let text = format!("{} {:?}", req.uri().path(), req.version());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                });
                let _ = builder.serve_connection(Io::tcp(stream), svc).await;
                st.open.set(st.open.get() - 1);
            }));
        }
    });
    Ok((addr, stats, server))
}

/// Issue 21, item 9: 16 requests starting together to an HTTP/2 host share
/// the one connection being made.
async fn http2_first_requests_share_a_connection() -> TestResult {
    let (addr, stats, server) = counting_hyper_server().await?;
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
    assert_eq!(stats.accepted.get(), 1);
    assert_eq!(client.pooled(), 1);
    server.cancel();
    Ok(())
}

/// Issue 21, item 10: a request whose response does not come fails with
/// `Timeout`; its connection is closed and its place under the limit freed.
async fn request_timeout() -> TestResult {
    let server = RawServer::start(Script::default()).await?;
    let client: Client<Body> = Client::new()
        .timeout(Duration::from_millis(100))
        .max_connections_per_host(1);
    let t0 = Instant::now();
    match client.get(server.uri("/hang")).await {
        Err(ClientError::Timeout(d)) => assert_eq!(d, Duration::from_millis(100)),
        other => panic!("a request that never gets an answer: {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let e = std::io::Error::from(ClientError::Timeout(Duration::from_millis(100)));
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    // The next request gets the one place, on a new connection.
    let res = client.get(server.uri("/after")).await?;
    assert_eq!(body_text(res).await?, "/after");
    assert_eq!(server.stats.accepted.get(), 2);
    server.stats.until_open_at_most(1).await?;
    Ok(())
}

/// A listener whose accept queue is full: a connect to it hangs (the
/// kernel drops the SYN) until the caller gives up.
async fn hanging_listener() -> Result<(aio_net::TcpListener, Vec<std::net::TcpStream>), Box<dyn std::error::Error>> {
    let socket = aio_net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(0)?;
    let addr = listener.local_addr()?;
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => fillers.push(s),
            Err(_) => return Ok((listener, fillers)),
        }
    }
    Err("the accept queue never filled".into())
}

/// Issue 21, item 10: connecting longer than the connect timeout fails
/// with `ConnectTimeout`; requests waiting for the HTTP/2 connection share
/// the failure (and a refusal).
async fn connect_timeout() -> TestResult {
    let (listener, _fillers) = hanging_listener().await?;
    let uri: aio_hyper::hyper::Uri = format!("http://{}/", listener.local_addr()?).parse()?;
    let client: Client<Body> = Client::new().connect_timeout(Duration::from_millis(100));
    match timeout(10.0, client.get(uri.clone())).await? {
        Err(ClientError::ConnectTimeout(d)) => assert_eq!(d, Duration::from_millis(100)),
        other => panic!("a connect that hangs: {other:?}"),
    }
    let client: Client<Body> = Client::new().http2_only().connect_timeout(Duration::from_millis(100));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (client, uri) = (client.clone(), uri.clone());
            create_task(async move { client.get(uri).await })
        })
        .collect();
    for t in tasks {
        match timeout(10.0, t).await?? {
            Err(ClientError::ConnectTimeout(_)) => {}
            other => panic!("waiting for an HTTP/2 connection that hangs: {other:?}"),
        }
    }
    // Refused: the one attempt's error, for everyone.
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let uri: aio_hyper::hyper::Uri = format!("http://127.0.0.1:{port}/").parse()?;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (client, uri) = (client.clone(), uri.clone());
            create_task(async move { client.get(uri).await })
        })
        .collect();
    for t in tasks {
        match t.await? {
            Err(ClientError::Connect(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
            other => panic!("waiting for an HTTP/2 connection refused: {other:?}"),
        }
    }
    Ok(())
}

/// The request opening the HTTP/2 connection is cancelled: the first
/// request waiting for it opens it instead.
async fn http2_opener_cancelled() -> TestResult {
    let (listener, _fillers) = hanging_listener().await?;
    let uri: aio_hyper::hyper::Uri = format!("http://{}/", listener.local_addr()?).parse()?;
    let client: Client<Body> = Client::new().http2_only().connect_timeout(Duration::from_millis(200));
    let spawn = || {
        let (client, uri) = (client.clone(), uri.clone());
        create_task(async move { client.get(uri).await })
    };
    let (opener, second, third) = (spawn(), spawn(), spawn());
    // One turn: the opener is connecting, the others wait for it.
    aio_core::yield_now().await?;
    opener.cancel();
    assert!(timeout(10.0, opener).await?.unwrap_err().is_cancelled());
    for t in [second, third] {
        match timeout(10.0, t).await?? {
            Err(ClientError::ConnectTimeout(_)) => {}
            other => panic!("after the opener was cancelled: {other:?}"),
        }
    }
    Ok(())
}

/// Issue 21, item 10: idle connections close after the idle timeout
/// (the server sees them closed), HTTP/1.1 and HTTP/2.
async fn idle_timeout() -> TestResult {
    let server = RawServer::start(Script::default()).await?;
    let client: Client<Body> = Client::new().idle_timeout(Some(Duration::from_millis(100)));
    body_text(client.get(server.uri("/one")).await?).await?;
    assert_eq!(client.pooled(), 1);
    server.stats.until_open_at_most(0).await?;
    assert_eq!(client.pooled(), 0);
    body_text(client.get(server.uri("/two")).await?).await?;
    assert_eq!(server.stats.accepted.get(), 2);

    let (addr, stats, h2_server) = counting_hyper_server().await?;
    let client: Client<Body> = Client::new()
        .http2_only()
        .idle_timeout(Some(Duration::from_millis(100)));
    let res = client.get(format!("http://{addr}/h2").parse()?).await?;
    assert_eq!(body_text(res).await?, "/h2 HTTP/2.0");
    assert_eq!(client.pooled(), 1);
    stats.until_open_at_most(0).await?;
    assert_eq!(client.pooled(), 0);
    let res = client.get(format!("http://{addr}/again").parse()?).await?;
    assert_eq!(body_text(res).await?, "/again HTTP/2.0");
    assert_eq!(stats.accepted.get(), 2);
    h2_server.cancel();
    Ok(())
}

/// Dropping the client closes its pooled connections (HTTP/1.1 and
/// HTTP/2) without waiting for the idle timeout.
async fn dropped_client_closes_connections() -> TestResult {
    let server = RawServer::start(Script::default()).await?;
    let client: Client<Body> = Client::new();
    let users = (0..3).map(|i| {
        let (client, uri) = (client.clone(), server.uri(&format!("/{i}")));
        async move { body_text(client.get(uri).await?).await }
    });
    gather(users).await?;
    assert_eq!(server.stats.open.get(), 3);
    drop(client);
    server.stats.until_open_at_most(0).await?;

    let (addr, stats, h2_server) = counting_hyper_server().await?;
    let client: Client<Body> = Client::new().http2_only();
    body_text(client.get(format!("http://{addr}/").parse()?).await?).await?;
    assert_eq!(stats.open.get(), 1);
    drop(client);
    stats.until_open_at_most(0).await?;
    h2_server.cancel();
    Ok(())
}

/// Issue 21, item 10: with a connection limit, requests wait first come
/// first served; one that gives up (timeout) or is cancelled while waiting
/// passes its turn on.
async fn connection_limit_fifo() -> TestResult {
    // In order, on the one connection.
    let server = RawServer::start(Script::default()).await?;
    let client: Client<Body> = Client::new().max_connections_per_host(1);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (client, uri) = (client.clone(), server.uri(&format!("/q/{i}")));
            create_task(async move { body_text(client.get(uri).await?).await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        timeout(10.0, t).await???;
    }
    let expected: Vec<_> = (0..6).map(|i| format!("/q/{i}")).collect();
    assert_eq!(server.stats.paths(), expected);
    assert_eq!(server.stats.accepted.get(), 1);

    // Waiters that leave the line.
    let gate = aio_core::Future::<()>::new();
    let server = RawServer::start(Script {
        gate: Some(gate.clone()),
        ..Script::default()
    })
    .await?;
    let client: Client<Body> = Client::new().max_connections_per_host(1);
    let get = |path: &str| {
        let (client, uri) = (client.clone(), server.uri(path));
        create_task(async move { body_text(client.get(uri).await?).await })
    };
    let first = get("/first");
    let (c, uri) = (client.clone(), server.uri("/gives-up"));
    let gives_up = create_task(async move { timeout(0.05, c.get(uri)).await.map(|_| ()) });
    let after = get("/after");
    let cancelled = get("/cancelled");
    let last = get("/last");
    assert_eq!(timeout(10.0, gives_up).await??, Err(TimeoutError));
    cancelled.cancel();
    assert!(timeout(10.0, cancelled).await?.unwrap_err().is_cancelled());
    gate.set_result(())?;
    assert_eq!(timeout(10.0, first).await???, "/first");
    assert_eq!(timeout(10.0, after).await???, "/after");
    assert_eq!(timeout(10.0, last).await???, "/last");
    assert_eq!(server.stats.paths(), ["/first", "/after", "/last"]);
    assert_eq!(server.stats.accepted.get(), 1);
    Ok(())
}

/// Issue 21, item 10: 8 users under a limit of 2 connections.
async fn connection_limit_many_users() -> TestResult {
    let server = RawServer::start(Script {
        body_delay: Some(Duration::from_millis(5)),
        ..Script::default()
    })
    .await?;
    let client: Client<Body> = Client::new().max_connections_per_host(2);
    let users = (0..8).map(|u| {
        let client = client.clone();
        let uris: Vec<_> = (0..4).map(|i| server.uri(&format!("/{u}/{i}"))).collect();
        async move {
            for uri in uris {
                assert_eq!(body_text(client.get(uri.clone()).await?).await?, uri.path());
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        }
    });
    timeout(60.0, gather(users)).await??;
    assert_eq!(server.stats.paths().len(), 32);
    assert!(server.stats.accepted.get() <= 2, "{}", server.stats.accepted.get());
    Ok(())
}

/// A request dropped or cancelled while waiting for its response: its
/// connection is closed and its place under the limit freed.
async fn request_dropped_in_flight() -> TestResult {
    let server = RawServer::start(Script::default()).await?;
    let client: Client<Body> = Client::new().max_connections_per_host(1);
    assert!(timeout(0.05, client.get(server.uri("/hang"))).await.is_err());
    let res = timeout(10.0, client.get(server.uri("/next"))).await??;
    assert_eq!(body_text(res).await?, "/next");
    assert_eq!(server.stats.accepted.get(), 2);
    // Cancelled once the server has the request.
    let (c, uri) = (client.clone(), server.uri("/hang"));
    let task = create_task(async move { c.get(uri).await.map(|_| ()) });
    for _ in 0..2000 {
        if server.stats.paths().len() == 3 {
            break;
        }
        aio_core::sleep(0.005).await?;
    }
    assert_eq!(server.stats.paths().len(), 3);
    task.cancel();
    assert!(timeout(10.0, task).await?.unwrap_err().is_cancelled());
    let res = timeout(10.0, client.get(server.uri("/last"))).await??;
    assert_eq!(body_text(res).await?, "/last");
    assert_eq!(server.stats.accepted.get(), 3);
    server.stats.until_open_at_most(1).await?;
    Ok(())
}

/// Pooled connections the server closed free their places: a limit of 1
/// never gets stuck.
async fn dead_connections_free_their_place() -> TestResult {
    let server = RawServer::start(Script {
        close_after_answer: true,
        ..Script::default()
    })
    .await?;
    let client: Client<Body> = Client::new().max_connections_per_host(1);
    for i in 0..5 {
        let res = timeout(10.0, client.get(server.uri(&format!("/{i}")))).await??;
        assert_eq!(body_text(res).await?, format!("/{i}"));
    }
    assert_eq!(server.stats.accepted.get(), 5);
    Ok(())
}

/// The loop closes with requests in flight, waiting in line and opening
/// an HTTP/2 connection: they end (cancelled) without a panic.
async fn loop_closes_with_requests_waiting() -> TestResult {
    let gate = aio_core::Future::<()>::new();
    let server = RawServer::start(Script {
        gate: Some(gate.clone()),
        ..Script::default()
    })
    .await?;
    let client: Client<Body> = Client::new().max_connections_per_host(1);
    for i in 0..3 {
        let (c, uri) = (client.clone(), server.uri(&format!("/{i}")));
        drop(create_task(async move { c.get(uri).await.map(|_| ()) }));
    }
    let (listener, fillers) = hanging_listener().await?;
    let uri: aio_hyper::hyper::Uri = format!("http://{}/", listener.local_addr()?).parse()?;
    let h2: Client<Body> = Client::new().http2_only();
    for _ in 0..3 {
        let (c, uri) = (h2.clone(), uri.clone());
        drop(create_task(async move { c.get(uri).await.map(|_| ()) }));
    }
    for _ in 0..2000 {
        if server.stats.paths().len() == 1 {
            break;
        }
        aio_core::sleep(0.005).await?;
    }
    assert_eq!(server.stats.paths(), ["/0"]);
    // The servers outlive this function: the loop closes on them all.
    drop(create_task(async move {
        let _keep = (server, listener, fillers);
        aio_core::sleep(3600.0).await
    }));
    Ok(())
}

backend_tests!(
    idle_limit_keeps_busy_connections,
    reused_connection_closed_is_retried,
    http2_first_requests_share_a_connection,
    request_timeout,
    connect_timeout,
    http2_opener_cancelled,
    idle_timeout,
    connection_limit_fifo,
    connection_limit_many_users,
    request_dropped_in_flight,
    dead_connections_free_their_place,
    loop_closes_with_requests_waiting,
    dropped_client_closes_connections,
);
