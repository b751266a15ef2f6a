//! asyncio's TCP echo server, with streams: every connection gets back
//! what it sends, until it closes. Python's asyncio clients talk to it as
//! to a Python server.
//!
//!     cargo run --release -p aio --example echo_server [HOST:PORT] [--quiet]
//!
//! The address defaults to 127.0.0.1:8888.

use std::io;

async fn handle_echo(
    mut reader: aio::StreamReader,
    writer: aio::StreamWriter,
    quiet: bool,
) -> Result<(), aio::StreamError> {
    let addr = writer.peer_addr()?;
    if !quiet {
        println!("Connection from {addr}");
    }
    loop {
        let data = reader.read(64 * 1024).await?;
        if data.is_empty() {
            break;
        }
        if !quiet {
            println!("Received {:?} from {addr}", String::from_utf8_lossy(&data));
        }
        writer.write(&data);
        writer.drain().await?;
    }
    if !quiet {
        println!("Close the connection to {addr}");
    }
    writer.close();
    writer.wait_closed().await?;
    Ok(())
}

fn parse_addr(s: &str) -> io::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("expected HOST:PORT, got {s:?}")))?;
    let port = port
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad port in {s:?}")))?;
    Ok((host.trim_matches(|c| c == '[' || c == ']').to_string(), port))
}

#[aio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quiet = args.iter().any(|a| a == "--quiet");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("127.0.0.1:8888", String::as_str);
    let (host, port) = parse_addr(addr)?;
    let server = aio::start_server(move |r, w| handle_echo(r, w, quiet), &host, port).await?;
    println!("Serving on {}", server.addresses().join(", "));
    server.serve_forever().await?;
    Ok(())
}
