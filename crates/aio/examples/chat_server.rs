//! A chat server: every line a client sends goes to every other client,
//! prefixed with the sender's name. The first line a client sends is its
//! name. Try it with two `nc 127.0.0.1 8888` sessions, or Python's
//! `asyncio.open_connection`.
//!
//!     cargo run --release -p aio --example chat_server [HOST:PORT]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

type Clients = Rc<RefCell<BTreeMap<u64, (String, aio::StreamWriter)>>>;

fn broadcast(clients: &Clients, from: u64, line: &str) {
    for (id, (_, w)) in clients.borrow().iter() {
        if *id != from {
            w.write(line.as_bytes());
        }
    }
}

async fn handle_client(
    mut reader: aio::StreamReader,
    writer: aio::StreamWriter,
    clients: Clients,
    id: u64,
) -> Result<(), aio::StreamError> {
    writer.write(b"Your name? ");
    writer.drain().await?;
    let name = String::from_utf8_lossy(&reader.readline().await?).trim().to_string();
    if name.is_empty() {
        return Ok(());
    }
    writer.write(format!("Welcome, {name}! {} other(s) here.\n", clients.borrow().len()).as_bytes());
    broadcast(&clients, id, &format!("* {name} joined\n"));
    clients.borrow_mut().insert(id, (name.clone(), writer));
    println!("{name} joined");
    loop {
        let line = match reader.readline().await {
            Ok(l) if l.is_empty() => break,
            Ok(l) => l,
            Err(aio::StreamError::LimitOverrun { .. }) => continue,
            Err(e) => {
                println!("{name}: {e}");
                break;
            }
        };
        let text = String::from_utf8_lossy(&line);
        broadcast(&clients, id, &format!("{name}: {}\n", text.trim_end()));
    }
    clients.borrow_mut().remove(&id);
    broadcast(&clients, id, &format!("* {name} left\n"));
    println!("{name} left");
    Ok(())
}

#[aio::main]
async fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8888".into());
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad port"))?;
    let clients: Clients = Rc::default();
    let next_id = Rc::new(std::cell::Cell::new(0u64));
    let server = aio::start_server(
        move |r, w| {
            let id = next_id.get();
            next_id.set(id + 1);
            handle_client(r, w, clients.clone(), id)
        },
        host.trim_matches(|c| c == '[' || c == ']'),
        port,
    )
    .await?;
    println!("Chat server on {}", server.addresses().join(", "));
    server.serve_forever().await?;
    Ok(())
}
