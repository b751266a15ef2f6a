//! A TLS echo server with asyncio's streams: a self-signed certificate for
//! `localhost` and `127.0.0.1` is made at start and written next to the
//! system's temporary files, so clients can trust it.
//!
//!     cargo run -p aio --features tls --example tls_echo_server [HOST:PORT] [--check]
//!
//! The address defaults to 127.0.0.1:8443. `--check` connects once as a
//! client, echoes a line and exits (a smoke test).

use std::io;

async fn handle_echo(mut reader: aio::StreamReader, writer: aio::StreamWriter) -> Result<(), aio::StreamError> {
    let addr = writer.peer_addr()?;
    let info = writer.tls_info().expect("a TLS server's writer");
    println!(
        "Connection from {addr} ({:?}, {:?})",
        info.protocol_version.unwrap(),
        info.cipher_suite.unwrap()
    );
    loop {
        let data = reader.read(64 * 1024).await?;
        if data.is_empty() {
            break;
        }
        writer.write(&data);
        writer.drain().await?;
    }
    println!("Close the connection to {addr}");
    writer.close(); // sends TLS's close_notify, then closes
    writer.wait_closed().await?;
    Ok(())
}

fn self_signed() -> io::Result<(String, String)> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

#[aio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or(if check { "127.0.0.1:0" } else { "127.0.0.1:8443" }, String::as_str);
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("expected HOST:PORT, got {addr:?}")))?;

    let (cert_pem, key_pem) = self_signed()?;
    // Its own file: two servers at once must not overwrite each other's.
    let cert_path = std::env::temp_dir().join(format!("aio-tls-echo-cert-{}.pem", std::process::id()));
    std::fs::write(&cert_path, &cert_pem)?;
    let tls = aio::TlsAcceptor::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())?;
    let server = aio::start_server_tls(handle_echo, &host, port, tls).await?;
    let port = server.sockets()[0].port();
    println!("Serving TLS on {}", server.addresses().join(", "));
    println!(
        "The certificate (self-signed, for localhost and 127.0.0.1) is in {}",
        cert_path.display()
    );
    println!("Connect with:");
    println!(
        "  openssl s_client -connect 127.0.0.1:{port} -CAfile {}",
        cert_path.display()
    );
    println!("or from Python's asyncio:");
    println!("  import asyncio, ssl");
    println!("  async def main():");
    println!(
        "      ctx = ssl.create_default_context(cafile={:?})",
        cert_path.display().to_string()
    );
    println!("      r, w = await asyncio.open_connection('localhost', {port}, ssl=ctx)");
    println!("      w.write(b'hello\\n'); print(await r.readline()); w.close()");
    println!("  asyncio.run(main())");

    if check {
        let client = aio::TlsConnector::from_pem(cert_pem.as_bytes())?;
        let (mut r, w) = aio::open_connection_tls("localhost", port, &client).await?;
        w.write(b"hello over TLS\n");
        let line = r.readline().await?;
        println!("Echoed: {:?}", String::from_utf8_lossy(&line));
        w.close();
        w.wait_closed().await?;
        server.close();
        return Ok(());
    }
    server.serve_forever().await?;
    Ok(())
}
