//! Fetches URLs concurrently with aio's pooled HTTP client (hyper on one
//! loop): status, protocol and body size of each.
//!
//!     cargo run -p aio --features hyper --example http_client [URL ...]
//!
//! With no URL it starts a small server of its own and fetches from it ten
//! times at once, then shows that the pool kept the connections.
//! `https://` URLs need `--features hyper,tls`.

use std::convert::Infallible;
use std::io;
use std::time::Instant;

use aio::hyper::hyper::Request;
use aio::hyper::hyper::body::Incoming;
use aio::hyper::hyper::service::service_fn;
use aio::hyper::{BodyExt, Bytes, Client, Full};

async fn fetch(client: Client<Full<Bytes>>, url: String) -> io::Result<String> {
    let t0 = Instant::now();
    let uri = url
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {e}")))?;
    let res = client.get(uri).await?;
    let (status, version) = (res.status(), res.version());
    let body = res.into_body().collect().await.map_err(io::Error::other)?.to_bytes();
    Ok(format!(
        "{url}: {status} over {version:?}, {} bytes in {:.1} ms",
        body.len(),
        t0.elapsed().as_secs_f64() * 1e3
    ))
}

#[aio::main]
async fn main() -> io::Result<()> {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    let mut server = None;
    if urls.is_empty() {
        let listener = aio::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hello = service_fn(|req: Request<Incoming>| async move {
            aio::sleep(0.01).await.ok(); // some work
            Ok::<_, Infallible>(aio::hyper::hyper::Response::new(Full::new(Bytes::from(format!(
                "hello, {}\n",
                req.uri().path()
            )))))
        });
        server = Some(aio::create_task(
            async move { aio::hyper::serve(&listener, hello).await },
        ));
        urls = (0..10).map(|i| format!("http://{addr}/page/{i}")).collect();
    }
    let client: Client<Full<Bytes>> = Client::new();
    let fetches = urls.into_iter().map(|u| fetch(client.clone(), u));
    for r in aio::gather_settled(fetches).await? {
        match r {
            Ok(line) => println!("{line}"),
            Err(e) => println!("error: {e}"),
        }
    }
    println!("{} connection(s) kept in the pool", client.pooled());
    if let Some(s) = server {
        s.cancel();
    }
    Ok(())
}
