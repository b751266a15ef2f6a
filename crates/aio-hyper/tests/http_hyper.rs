//! hyper on aio, on every backend: HTTP/1.1 with a pooled client (one
//! connection reused, bodies of 0 B to 1 MiB both ways), HTTP/2 with prior
//! knowledge multiplexing concurrent requests over one connection to a
//! `!Send` service, hyper's header read timeout on aio's timer, the timer
//! itself, connection errors, servers that close connections, cancelled
//! serve loops, and (with `tls`) HTTPS with ALPN choosing HTTP/2 or 1.1.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use aio_core::{create_task, timeout};
use aio_hyper::hyper::body::Incoming;
use aio_hyper::hyper::rt::Timer;
use aio_hyper::hyper::service::service_fn;
use aio_hyper::hyper::{Method, Request, Response, StatusCode, Version};
use aio_hyper::{AioTimer, BodyExt, Builder, Bytes, Client, ClientError, Full};
use aio_net::{TcpListener, open_connection};
use aio_test::{TestResult, backend_tests};

type Body = Full<Bytes>;

/// Echoes POST bodies; answers GET with the path and the protocol; counts
/// requests in an `Rc` (a `!Send` service).
fn echo_service(
    count: Rc<Cell<usize>>,
) -> impl aio_hyper::hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = aio_hyper::hyper::Error,
    Future = impl Future<Output = Result<Response<Body>, aio_hyper::hyper::Error>> + 'static,
> + Clone
+ 'static {
    service_fn(move |req: Request<Incoming>| {
        let count = count.clone();
        async move {
            count.set(count.get() + 1);
            let version = req.version();
            let path = req.uri().path().to_owned();
            if req.method() == Method::POST {
                let body = req.into_body().collect().await?.to_bytes();
                return Ok(Response::new(Full::new(body)));
            }
            if path == "/close" {
                let mut res = Response::new(Full::new(Bytes::from_static(b"bye")));
                res.headers_mut().insert("connection", "close".parse().unwrap());
                return Ok(res);
            }
            Ok(Response::new(Full::new(Bytes::from(format!("{path} {version:?}")))))
        }
    })
}

async fn body_text(res: Response<Incoming>) -> Result<String, Box<dyn std::error::Error>> {
    Ok(String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?)
}

async fn http1_pooled_client() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Rc::new(Cell::new(0));
    let svc = echo_service(count.clone());
    let server = create_task(async move { aio_hyper::serve(&listener, svc).await });
    let client: Client<Body> = Client::new();
    for i in 0..20 {
        let res = client.get(format!("http://{addr}/n/{i}").parse()?).await?;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.version(), Version::HTTP_11);
        assert_eq!(body_text(res).await?, format!("/n/{i} HTTP/1.1"));
    }
    // One connection, reused.
    assert_eq!(client.pooled(), 1);
    for size in [0usize, 1, 100_000, 1 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let req = Request::post(format!("http://{addr}/echo")).body(Full::new(Bytes::from(data.clone())))?;
        let res = client.request(req).await?;
        let got = res.into_body().collect().await?.to_bytes();
        assert!(got == data, "echo of {size} bytes");
    }
    assert_eq!(client.pooled(), 1);
    // Concurrent requests open more connections, all pooled after.
    let reqs = (0..8).map(|i| {
        let client = client.clone();
        let uri = format!("http://{addr}/c/{i}");
        async move { body_text(client.get(uri.parse()?).await?).await }
    });
    let got = aio_core::gather(reqs).await?;
    assert_eq!(got.len(), 8);
    assert!(client.pooled() > 1);
    assert_eq!(count.get(), 32);
    server.cancel();
    assert!(server.await.is_err());
    Ok(())
}

async fn http2_multiplexed() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Rc::new(Cell::new(0));
    let svc = echo_service(count.clone());
    let server = create_task(async move { aio_hyper::serve(&listener, svc).await });
    let client: Client<Body> = Client::new().http2_only();
    let reqs = (0..50).map(|i| {
        let client = client.clone();
        let uri = format!("http://{addr}/s/{i}");
        async move {
            let res = client.get(uri.parse()?).await?;
            assert_eq!(res.version(), Version::HTTP_2);
            body_text(res).await
        }
    });
    let got = aio_core::gather(reqs).await?;
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, &format!("/s/{i} HTTP/2.0"));
    }
    // One multiplexed connection.
    assert_eq!(client.pooled(), 1);
    let big = vec![5u8; 300_000];
    let res = client
        .request(Request::post(format!("http://{addr}/echo")).body(Full::new(Bytes::from(big.clone())))?)
        .await?;
    assert!(res.into_body().collect().await?.to_bytes() == big);
    assert_eq!(count.get(), 51);
    server.cancel();
    Ok(())
}

async fn header_read_timeout_on_aio_timer() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Rc::new(Cell::new(0));
    let builder = Builder::new()
        .http1_only()
        .header_read_timeout(Some(Duration::from_millis(100)));
    let svc = echo_service(count.clone());
    let server = create_task(async move { builder.serve(&listener, svc).await });
    // A client that never finishes its headers.
    let (mut r, w) = open_connection("127.0.0.1", addr.port()).await?;
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n");
    let t0 = Instant::now();
    let got = timeout(10.0, r.read(-1)).await??;
    assert!(t0.elapsed() >= Duration::from_millis(90), "{:?}", t0.elapsed());
    // hyper closes (possibly after a 408).
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(count.get(), 0);
    server.cancel();
    Ok(())
}

async fn timer_sleeps() -> TestResult {
    let t0 = Instant::now();
    AioTimer.sleep(Duration::from_millis(20)).await;
    assert!(t0.elapsed() >= Duration::from_millis(20));
    let mut s = AioTimer.sleep(Duration::from_secs(3600));
    AioTimer.reset(&mut s, Instant::now() + Duration::from_millis(10));
    timeout(10.0, s).await?;
    // A sleep dropped before it fires (by the timeout) disarms its timer.
    let armed = AioTimer.sleep(Duration::from_secs(3600));
    let polled = timeout(0.001, armed).await;
    assert!(polled.is_err());
    // Sleeps are Send + Sync, as hyper asks.
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(&AioTimer.sleep(Duration::ZERO));
    // Polled where no aio loop runs, a sleep still ends (a helper thread
    // fires it) — also one armed on this loop first and then moved there.
    let t0 = Instant::now();
    std::thread::spawn(|| aio_test::block_on(AioTimer.sleep(Duration::from_millis(5))))
        .join()
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(5));
    let mut moved = AioTimer.sleep(Duration::from_millis(20));
    assert!(aio_test::poll_once(moved.as_mut()).is_pending());
    let t0 = Instant::now();
    std::thread::spawn(move || aio_test::block_on(moved)).join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(60));
    Ok(())
}

async fn client_errors() -> TestResult {
    let client: Client<Body> = Client::new();
    // Nothing listens there.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        l.local_addr()?.port()
    };
    match client.get(format!("http://127.0.0.1:{port}/").parse()?).await {
        Err(ClientError::Connect(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected a connect error, got {other:?}"),
    }
    for bad in ["/relative", "ftp://127.0.0.1/x"] {
        assert!(
            matches!(client.get(bad.parse()?).await, Err(ClientError::InvalidUri(_))),
            "{bad}"
        );
    }
    Ok(())
}

async fn server_closing_connections() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = create_task(async move { aio_hyper::serve(&listener, echo_service(Rc::new(Cell::new(0)))).await });
    let client: Client<Body> = Client::new();
    for _ in 0..5 {
        let res = client.get(format!("http://{addr}/close").parse()?).await?;
        assert_eq!(body_text(res).await?, "bye");
        let res = client.get(format!("http://{addr}/after").parse()?).await?;
        assert_eq!(body_text(res).await?, "/after HTTP/1.1");
    }
    server.cancel();
    Ok(())
}

#[cfg(feature = "tls")]
async fn https_with_alpn() -> TestResult {
    use aio_net::rustls::RootCertStore;
    use aio_net::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use aio_net::{TlsAcceptor, TlsConnector};

    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut roots = RootCertStore::empty();
    roots.add(ck.cert.der().clone())?;
    for (alpn, version) in [
        (&["h2", "http/1.1"][..], Version::HTTP_2),
        (&["http/1.1"][..], Version::HTTP_11),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let acceptor = TlsAcceptor::new(vec![ck.cert.der().clone()], key.clone_key())?.alpn_protocols(alpn);
        let svc = echo_service(Rc::new(Cell::new(0)));
        let server = create_task(async move { Builder::new().serve_tls(&listener, acceptor, svc).await });
        let client: Client<Body> = Client::with_tls(TlsConnector::with_roots(roots.clone()));
        for i in 0..3 {
            let res = client.get(format!("https://localhost:{port}/tls/{i}").parse()?).await?;
            assert_eq!(res.version(), version);
            assert_eq!(body_text(res).await?, format!("/tls/{i} {version:?}"));
        }
        assert_eq!(client.pooled(), 1);
        // An untrusted certificate is refused, with TLS's reason.
        let stranger: Client<Body> = Client::new();
        let e = stranger
            .get(format!("https://localhost:{port}/").parse()?)
            .await
            .expect_err("self-signed");
        assert!(e.to_string().contains("certificate"), "{e}");
        server.cancel();
    }
    Ok(())
}

backend_tests!(
    http1_pooled_client,
    http2_multiplexed,
    header_read_timeout_on_aio_timer,
    timer_sleeps,
    client_errors,
    server_closing_connections,
    #[cfg(feature = "tls")]
    https_with_alpn,
);
