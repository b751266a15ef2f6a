//! The pooled client against a plain-threads HTTP/1.1 server that counts
//! the connections it accepts: the scenarios of issue 21, at full size.
//!
//! ```text
//! cargo run -p aio-hyper --release --example client_pool -- churn [poll|uring]
//! cargo run -p aio-hyper --release --example client_pool -- idle-close [poll|uring] [requests]
//! ```
//!
//! - `churn`: 8 tasks share `Client::new().max_idle_per_host(4)` and make
//!   1,000 GETs; the server sends each body 20 ms after its head. Prints
//!   how many connections were opened (at most 8 are needed).
//! - `idle-close`: the server closes connections idle for 0.3 s; one task
//!   makes GETs 280–320 ms apart (200 by default). Prints how many failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aio_hyper::{BodyExt, Bytes, Client, Full};

/// The server's connection counters.
#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    peak: AtomicUsize,
}

/// A thread per connection: each GET is answered with its path, the body
/// `body_delay` after the head; a connection idle for `idle_close` is
/// closed.
fn server(body_delay: Duration, idle_close: Option<Duration>) -> (SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            c.accepted.fetch_add(1, Ordering::Relaxed);
            let open = c.open.fetch_add(1, Ordering::Relaxed) + 1;
            c.peak.fetch_max(open, Ordering::Relaxed);
            let c = c.clone();
            std::thread::spawn(move || {
                let _ = serve(stream, body_delay, idle_close);
                c.open.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    (addr, counts)
}

fn serve(stream: TcpStream, body_delay: Duration, idle_close: Option<Duration>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(idle_close)?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // Idle too long: close.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        w.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", path.len()).as_bytes())?;
        if !body_delay.is_zero() {
            std::thread::sleep(body_delay);
        }
        w.write_all(path.as_bytes())?;
    }
}

async fn churn() -> Result<(), Box<dyn std::error::Error>> {
    let (addr, counts) = server(Duration::from_millis(20), None);
    let client: Client<Full<Bytes>> = Client::new().max_idle_per_host(4);
    let t0 = Instant::now();
    let users = (0..8).map(|u| {
        let client = client.clone();
        async move {
            // 1,000 requests: 125 per task.
            for i in 0..125 {
                let res = client.get(format!("http://{addr}/{u}/{i}").parse()?).await?;
                res.into_body().collect().await?;
            }
            Ok::<_, Box<dyn std::error::Error>>(())
        }
    });
    aio_core::gather(users).await?;
    println!(
        "churn: 1000 GETs by 8 tasks, max_idle_per_host(4), bodies 20 ms after heads: \
         {} connections opened, at most {} open at once, {:.2} s",
        counts.accepted.load(Ordering::Relaxed),
        counts.peak.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn idle_close(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let (addr, counts) = server(Duration::ZERO, Some(Duration::from_millis(300)));
    let client: Client<Full<Bytes>> = Client::new();
    let mut failed = 0;
    for i in 0..n {
        // 280, 290, ..., 320 ms: around the server's idle limit.
        aio_core::sleep(Duration::from_millis(280 + 10 * (i as u64 % 5))).await?;
        match client.get(format!("http://{addr}/{i}").parse()?).await {
            Ok(res) => {
                res.into_body().collect().await?;
            }
            Err(e) => {
                failed += 1;
                eprintln!("GET {i}: {e}");
            }
        }
    }
    println!(
        "idle-close: {n} GETs 280-320 ms apart, server closing idle connections after 0.3 s: \
         {failed} failed, {} connections opened",
        counts.accepted.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("churn", String::as_str).to_owned();
    let backend = args.get(1).map_or("poll", String::as_str);
    let n = args.get(2).map_or(Ok(200), |s| s.parse())?;
    let main = async move {
        match mode.as_str() {
            "churn" => churn().await,
            "idle-close" => idle_close(n).await,
            other => Err(format!("unknown scenario {other:?}: churn or idle-close").into()),
        }
    };
    match backend {
        "poll" => aio_core::run_on(aio_poll::PollDriver::new()?, main)?,
        "uring" => aio_core::run_on(aio_uring::UringDriver::new()?, main)?,
        other => return Err(format!("unknown backend {other:?}: poll or uring").into()),
    }
    Ok(())
}
