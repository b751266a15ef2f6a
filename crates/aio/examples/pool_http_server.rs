//! An HTTP server on every core: a `LoopPool` of asyncio loops, hyper on
//! each, connections spread by load, and a graceful shutdown on SIGINT or
//! SIGTERM. `GET /` says hello, `GET /heavy` does twenty times the work
//! of a plain request first, `GET /stats` shows each loop's metrics.
//! Services need not be `Send`: each loop counts its hits in an
//! `Rc<Cell<_>>` of its own.
//!
//!     cargo run -p aio --release --features hyper --example pool_http_server -- \
//!         [HOST:PORT] [--loops N] [--pin] [--spread balanced|kernel|single] [--check]
//!
//! The address defaults to 127.0.0.1:3000 and the loops to one per CPU;
//! then `curl http://127.0.0.1:3000/stats`, or load it with
//! `wrk -t2 -c100 -d10s http://127.0.0.1:3000/`. Ctrl-C stops accepting,
//! gives open connections five seconds, then closes every loop. `--check`
//! serves on a free port, makes a few requests, and shuts down.

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use aio::hyper::hyper::body::Incoming;
use aio::hyper::hyper::service::service_fn;
use aio::hyper::hyper::{Request, Response, StatusCode};
use aio::hyper::{BodyExt, Bytes, Client, Full};

/// CPU work standing for what a handler computes: `units` rounds of a
/// small hash.
fn work(units: u32) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for i in 0..units * 400 {
        h = (h ^ u64::from(i)).wrapping_mul(0x1000_0000_01b3);
    }
    std::hint::black_box(h)
}

fn text(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = code;
    res
}

async fn route(
    req: Request<Incoming>,
    hits: Rc<Cell<u64>>,
    loops: Arc<Vec<aio::LoopHandle>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    hits.set(hits.get() + 1);
    Ok(match req.uri().path() {
        "/" => {
            work(1);
            text(StatusCode::OK, "Hello, World!".into())
        }
        "/heavy" => {
            work(20);
            text(StatusCode::OK, "Hello, heavy World!".into())
        }
        "/stats" => {
            let mut out = format!("this loop served {} requests\n", hits.get());
            for (i, h) in loops.iter().enumerate() {
                let m = h.metrics();
                out += &format!(
                    "loop {i}: {} connections, {} tasks, {} ready, {:.0}% busy, {} ops in flight\n",
                    m.connections,
                    m.tasks,
                    m.ready,
                    m.busy * 100.0,
                    m.ops_in_flight
                );
            }
            text(StatusCode::OK, out)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    })
}

fn main() -> io::Result<()> {
    let (mut addr, mut loops, mut spread, mut pin, mut check) = (None, None, "balanced".to_string(), false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--loops" => loops = args.next().and_then(|n| n.parse().ok()),
            "--spread" => spread = args.next().unwrap_or_default(),
            "--pin" => pin = true,
            "--check" => check = true,
            _ => addr = Some(a),
        }
    }
    let loops = loops.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let spread = match spread.as_str() {
        "balanced" => aio::Spread::Balanced,
        "kernel" => aio::Spread::Kernel,
        "single" => aio::Spread::Single,
        other => {
            return Err(io::Error::other(format!(
                "--spread {other}: balanced, kernel or single"
            )));
        }
    };
    let addr = addr.unwrap_or_else(|| if check { "127.0.0.1:0" } else { "127.0.0.1:3000" }.to_string());

    let pool = aio::LoopPool::builder(loops).pin_cpus(pin).spread(spread).build()?;
    let handles = Arc::new(pool.handles().to_vec());
    let server = pool.serve(addr.as_str(), move || {
        // Made on the loop that got the connection: `Rc` state is fine.
        let hits = HITS.with(Rc::clone);
        let loops = handles.clone();
        service_fn(move |req| route(req, hits.clone(), loops.clone()))
    })?;
    let local = server.local_addr();
    println!("Serving HTTP on http://{local} with {loops} loops");

    if check {
        aio::run(async move {
            let client: Client<Full<Bytes>> = Client::new();
            for path in ["/", "/heavy", "/stats"] {
                let res = client
                    .get(format!("http://{local}{path}").parse().unwrap())
                    .await
                    .map_err(io::Error::other)?;
                let body = res.into_body().collect().await.map_err(io::Error::other)?.to_bytes();
                print!("GET {path}: {}", String::from_utf8_lossy(&body));
                println!();
            }
            Ok::<_, io::Error>(())
        })?;
    } else {
        // Wait for SIGINT or SIGTERM on a loop of this thread.
        aio::run(async {
            let int = aio::create_task(aio::wait_signal(libc::SIGINT));
            let term = aio::create_task(aio::wait_signal(libc::SIGTERM));
            let _ = aio::wait([int, term], aio::FIRST_COMPLETED).await;
        });
        println!("shutting down: no new connections; open ones get 5 s");
    }
    let left = pool.shutdown(Duration::from_secs(5));
    println!("closed every loop ({left} connections were still open and cancelled)");
    Ok(())
}

thread_local! {
    /// Requests served by this thread's loop.
    static HITS: Rc<Cell<u64>> = Rc::new(Cell::new(0));
}
