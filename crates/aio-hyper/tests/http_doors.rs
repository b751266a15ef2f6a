//! aio-hyper as the door for HTTP crates, on every backend: the client as
//! a `tower::Service`, the connection's `ConnInfo` (peer address, TLS) in
//! each request, tower services served through `TowerToHyperService`, and
//! a graceful shutdown that lets a request in progress finish.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use aio_core::{create_task, sleep};
use aio_hyper::http::{Request, Response, StatusCode};
use aio_hyper::hyper::body::Incoming;
use aio_hyper::hyper::service::service_fn;
use aio_hyper::{BodyExt, Builder, Bytes, Client, ConnInfo, Full, GracefulShutdown, TowerService, TowerToHyperService};
use aio_net::TcpListener;
use aio_sync::Event;
use aio_test::{TestResult, backend_tests};

type Body = Full<Bytes>;

async fn text(res: Response<Incoming>) -> Result<String, Box<dyn std::error::Error>> {
    let body = res.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}

/// Answers with the peer address it found in the request's `ConnInfo`.
fn peer_service() -> impl aio_hyper::hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + 'static,
> + Clone
+ 'static {
    service_fn(|req: Request<Incoming>| async move {
        let info = req.extensions().get::<ConnInfo>().cloned();
        let text = match info {
            Some(i) => format!("{} {:?}", i.remote_addr, i.local_addr),
            None => "none".to_owned(),
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
    })
}

/// The client through tower's trait, and the peer address a service sees.
async fn tower_client_and_peer_addr() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = create_task(async move { aio_hyper::serve(&listener, peer_service()).await });
    let mut client: Client<Body> = Client::new();
    std::future::poll_fn(|cx| TowerService::poll_ready(&mut client, cx)).await?;
    let req = Request::get(format!("http://{addr}/")).body(Full::default())?;
    let res = TowerService::call(&mut client, req).await?;
    assert_eq!(res.status(), StatusCode::OK);
    let seen = text(res).await?;
    let (peer, local) = seen.split_once(' ').unwrap();
    assert!(peer.starts_with("127.0.0.1:"), "{seen}");
    assert_ne!(peer, addr.to_string());
    assert_eq!(local, format!("Some({addr})"));
    server.cancel();
    Ok(())
}

/// A tower service (not a hyper one) behind `TowerToHyperService`.
#[derive(Clone)]
struct Upper;

impl tower_service::Service<Request<Incoming>> for Upper {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        Box::pin(async move {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(Response::new(Full::new(Bytes::from(body.to_ascii_uppercase()))))
        })
    }
}

async fn tower_service_served() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = create_task(async move { aio_hyper::serve(&listener, TowerToHyperService::new(Upper)).await });
    let client: Client<Body> = Client::new().http2_only();
    let req = Request::post(format!("http://{addr}/")).body(Full::new(Bytes::from("shout")))?;
    let res = client.request(req).await?;
    assert_eq!(text(res).await?, "SHOUT");
    server.cancel();
    Ok(())
}

/// A request in progress when the shutdown starts still gets its answer;
/// the server stops accepting; `wait` returns once the connection closed
/// (HTTP/1: after the response; HTTP/2: GOAWAY, then the open stream ends).
async fn graceful_shutdown() -> TestResult {
    graceful(Client::new()).await
}

async fn graceful_shutdown_http2() -> TestResult {
    graceful(Client::new().http2_only()).await
}

async fn graceful(client: Client<Body>) -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = GracefulShutdown::new();
    let (entered, release) = (std::rc::Rc::new(Event::new()), std::rc::Rc::new(Event::new()));
    let svc = {
        let (entered, release) = (entered.clone(), release.clone());
        service_fn(move |req: Request<Incoming>| {
            let (entered, release) = (entered.clone(), release.clone());
            async move {
                if req.uri().path() == "/slow" {
                    entered.set();
                    let _ = release.wait().await;
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done"))))
            }
        })
    };
    let server = {
        let shutdown = shutdown.clone();
        create_task(async move { Builder::new().serve_graceful(&listener, svc, &shutdown).await })
    };
    let slow = {
        let client = client.clone();
        create_task(async move {
            let res = client.get(format!("http://{addr}/slow").parse()?).await?;
            text(res).await
        })
    };
    entered.wait().await?;
    assert_eq!(shutdown.connections(), 1);
    // The loop's metrics count it too (what a pool's balancing reads).
    assert_eq!(aio_core::get_running_loop().metrics().connections, 1);
    shutdown.shutdown();
    server.await??;
    assert!(!shutdown.wait_now());
    release.set();
    assert_eq!(slow.await??, "done");
    shutdown.wait().await?;
    assert_eq!(shutdown.connections(), 0);
    aio_test::until("the loop's connection count drops", || {
        aio_core::get_running_loop().metrics().connections == 0
    })
    .await?;
    // Nobody accepts any more.
    let late = Client::<Body>::new().get(format!("http://{addr}/").parse()?).await;
    assert!(late.is_err());
    sleep(0).await?;
    Ok(())
}

trait WaitNow {
    fn wait_now(&self) -> bool;
}

impl WaitNow for GracefulShutdown {
    /// Whether `wait` would return at once.
    fn wait_now(&self) -> bool {
        self.is_shutting_down() && self.connections() == 0
    }
}

/// Over TLS, `ConnInfo` carries what the handshake negotiated.
#[cfg(feature = "tls")]
async fn tls_conn_info() -> TestResult {
    use aio_net::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use aio_net::{TlsAcceptor, TlsConnector};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let acceptor = TlsAcceptor::new(vec![ck.cert.der().clone()], key)?.alpn_protocols(["h2", "http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let svc = service_fn(|req: Request<Incoming>| async move {
        let info = req.extensions().get::<ConnInfo>().cloned().expect("ConnInfo");
        let tls = info.tls.expect("a TLS connection");
        // The connection is counted in the loop's metrics.
        assert_eq!(aio_core::get_running_loop().metrics().connections, 1);
        let text = format!(
            "{} {}",
            String::from_utf8_lossy(tls.alpn_protocol.as_deref().unwrap_or_default()),
            tls.server_name.unwrap_or_default()
        );
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
    });
    let server = create_task(async move { Builder::new().serve_tls(&listener, acceptor, svc).await });
    let client: Client<Body> = Client::with_tls(TlsConnector::from_pem(ck.cert.pem().as_bytes())?);
    let res = client.get(format!("https://localhost:{port}/").parse()?).await?;
    assert_eq!(text(res).await?, "h2 localhost");
    server.cancel();
    Ok(())
}

backend_tests!(
    tower_client_and_peer_addr,
    tower_service_served,
    graceful_shutdown,
    graceful_shutdown_http2,
    #[cfg(feature = "tls")]
    tls_conn_info,
);
