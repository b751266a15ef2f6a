//! tonic on aio: the `aio.Echo` gRPC service (aio-ecosystem's hand-written
//! prost messages and tower service, what tonic-build would generate)
//! served by `aio::hyper::serve` and called by tonic's client over
//! `aio::hyper::Client`: a unary call, then a server-streaming one.
//!
//! ```text
//! cargo run -p aio-ecosystem --example grpc_echo
//! ```

use aio::TcpListener;
use aio::hyper::TowerToHyperService;
use aio_ecosystem::grpc::{EchoClient, EchoServer};
use futures_util::StreamExt;

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The server: any tower service of HTTP requests, tonic's included.
    let server =
        aio::create_task(async move { aio::hyper::serve(&listener, TowerToHyperService::new(EchoServer)).await });

    let mut client = EchoClient::new(addr);
    let reply = client.say("hello, grpc").await?;
    println!("Say   -> {:?}", reply.message);
    let mut replies = client.count("tick", 3).await?;
    while let Some(reply) = replies.next().await {
        let reply = reply?;
        println!("Count -> {} #{}", reply.message, reply.index);
    }
    server.cancel();
    Ok(())
}
