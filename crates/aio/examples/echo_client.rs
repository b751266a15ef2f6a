//! asyncio's TCP echo client: send a message, print the reply.
//!
//!     cargo run --release -p aio --example echo_client [HOST:PORT] [MESSAGE]
//!
//! The address defaults to 127.0.0.1:8888, the message to "Hello World!".

use std::io;

async fn tcp_echo_client(host: &str, port: u16, message: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (mut reader, writer) = aio::open_connection(host, port).await?;
    println!("Send: {message:?}");
    writer.write(message.as_bytes());
    writer.drain().await?;
    let data = reader.read(100).await?;
    println!("Received: {:?}", String::from_utf8_lossy(&data));
    println!("Close the connection");
    writer.close();
    writer.wait_closed().await?;
    Ok(())
}

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8888".into());
    let message = args.next().unwrap_or_else(|| "Hello World!".into());
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "expected HOST:PORT"))?;
    tcp_echo_client(host.trim_matches(|c| c == '[' || c == ']'), port.parse()?, &message).await
}
