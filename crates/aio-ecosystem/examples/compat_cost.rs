//! What the compat shim costs: a 64-byte TCP echo round trip from an aio
//! task on aio's own socket, on tokio's socket through
//! `aio::compat::tokio` (its readiness comes from the side runtime's
//! thread), and on tokio alone (current-thread runtime); plus the cost of
//! wrapping a future that does not wait.
//!
//! ```text
//! cargo run --release -p aio-ecosystem --example compat_cost
//! AIO_BACKEND=poll cargo run --release -p aio-ecosystem --example compat_cost
//! ```

use std::time::{Duration, Instant};

use aio::{TcpListener, TcpStream, create_task};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUNDS: u32 = 20_000;
const MSG: usize = 64;

/// Echoes each connection's bytes back until it closes.
async fn aio_echo_server() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    create_task(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            s.set_nodelay(true).ok();
            create_task(async move {
                let mut buf = [0u8; MSG];
                // tokio's traits (aio's own `read_exact`/`write_all` take
                // owned buffers): the same calls as the tokio server below.
                while AsyncReadExt::read_exact(&mut s, &mut buf).await.is_ok() {
                    if AsyncWriteExt::write_all(&mut s, &buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// `ROUNDS` round trips on a stream; the time per round trip.
async fn round_trips<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<Duration> {
    let mut buf = [7u8; MSG];
    // Warm-up.
    for _ in 0..1000 {
        s.write_all(&buf).await?;
        s.read_exact(&mut buf).await?;
    }
    let t = Instant::now();
    for _ in 0..ROUNDS {
        s.write_all(&buf).await?;
        s.read_exact(&mut buf).await?;
    }
    Ok(t.elapsed() / ROUNDS)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (direct, compat, wrap, backend) = aio::run(async {
        let backend = aio::get_running_loop().backend();
        let addr = aio_echo_server().await?;

        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let direct = round_trips(&mut s).await?;

        let compat = aio::compat::tokio(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            round_trips(&mut s).await
        })
        .await?;

        let t = Instant::now();
        for _ in 0..ROUNDS {
            aio::compat::tokio(async {}).await;
        }
        let wrap = t.elapsed() / ROUNDS;
        Ok::<_, Box<dyn std::error::Error>>((direct, compat, wrap, backend))
    })?;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tokio_alone = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                s.set_nodelay(true).ok();
                tokio::spawn(async move {
                    let mut buf = [0u8; MSG];
                    while s.read_exact(&mut buf).await.is_ok() {
                        if s.write_all(&buf).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        round_trips(&mut s).await
    })?;

    println!("64-byte echo round trip, {ROUNDS} rounds (aio backend: {backend}):");
    println!(
        "  aio socket, direct             {:>7.2} us",
        direct.as_secs_f64() * 1e6
    );
    println!(
        "  tokio socket via aio::compat   {:>7.2} us",
        compat.as_secs_f64() * 1e6
    );
    println!(
        "  tokio alone (current-thread)   {:>7.2} us",
        tokio_alone.as_secs_f64() * 1e6
    );
    println!(
        "  compat::tokio(ready future)    {:>7.3} us per wrap",
        wrap.as_secs_f64() * 1e6
    );
    Ok(())
}
