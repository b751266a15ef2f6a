//! An HTTP/1.1 and HTTP/2 server with hyper on aio: `GET /` says hello,
//! `POST /echo` sends the body back, anything else is a 404. Services need
//! not be `Send`: the hit counter is an `Rc<Cell<_>>`.
//!
//!     cargo run -p aio --features hyper --example http_server [HOST:PORT] [--check]
//!
//! The address defaults to 127.0.0.1:3000; then try
//! `curl -v http://127.0.0.1:3000/`, `curl --http2-prior-knowledge ...` or
//! `curl --data hi http://127.0.0.1:3000/echo`. `--check` serves on a free
//! port, makes one request of each kind with aio's client, and exits.

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::rc::Rc;

use aio::hyper::hyper::body::Incoming;
use aio::hyper::hyper::service::service_fn;
use aio::hyper::hyper::{Method, Request, Response, StatusCode};
use aio::hyper::{BodyExt, Bytes, Client, Full};

async fn route(req: Request<Incoming>, hits: Rc<Cell<u64>>) -> Result<Response<Full<Bytes>>, Infallible> {
    hits.set(hits.get() + 1);
    let res = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Response::new(Full::new(Bytes::from(format!(
            "hello from aio over {:?} (request {})\n",
            req.version(),
            hits.get()
        )))),
        (&Method::POST, "/echo") => match req.into_body().collect().await {
            Ok(body) => Response::new(Full::new(body.to_bytes())),
            Err(_) => status(StatusCode::BAD_REQUEST),
        },
        _ => status(StatusCode::NOT_FOUND),
    };
    Ok(res)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(format!("{code}\n"))));
    *res.status_mut() = code;
    res
}

#[aio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or(if check { "127.0.0.1:0" } else { "127.0.0.1:3000" }, String::as_str);
    let listener = aio::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("Serving HTTP/1.1 and HTTP/2 on http://{local}");
    let hits = Rc::new(Cell::new(0));
    let service = service_fn(move |req| route(req, hits.clone()));
    let server = aio::create_task(async move { aio::hyper::serve(&listener, service).await });
    if !check {
        return server.await.map_err(|e| io::Error::other(e.to_string()))?;
    }

    for client in [Client::<Full<Bytes>>::new(), Client::new().http2_only()] {
        let res = client.get(format!("http://{local}/").parse().unwrap()).await?;
        let body = res.into_body().collect().await.map_err(io::Error::other)?.to_bytes();
        print!("GET / -> {}", String::from_utf8_lossy(&body));
        let req = Request::post(format!("http://{local}/echo"))
            .body(Full::new(Bytes::from_static(b"ping")))
            .unwrap();
        let res = client.request(req).await?;
        let body = res.into_body().collect().await.map_err(io::Error::other)?.to_bytes();
        println!("POST /echo -> {}", String::from_utf8_lossy(&body));
    }
    server.cancel();
    Ok(())
}
