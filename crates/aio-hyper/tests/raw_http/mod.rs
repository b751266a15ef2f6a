//! A small HTTP/1.1 server on raw sockets, for testing the client from the
//! outside: it counts the connections it accepts (and how many are open at
//! once), records the requests in the order it read them, and can delay
//! bodies, hold responses until a gate opens, or close a connection as a
//! request arrives (with a FIN or a reset).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use aio_core::{Task, create_task};
use aio_net::{StreamReader, StreamWriter, TcpListener, TcpStream};

/// What the server does on every connection.
#[derive(Clone, Default)]
pub struct Script {
    /// A pause between a response's head and its body.
    pub body_delay: Option<Duration>,
    /// How many requests a connection answers; the next one is read and
    /// the connection closed without an answer, as a server that closes
    /// an idle connection just as a request goes out. `None`: no limit.
    pub answer: Option<usize>,
    /// Close with a reset (`SO_LINGER` 0) rather than a FIN.
    pub reset: bool,
    /// Close each connection right after its first answer (the client
    /// finds it dead in its pool).
    pub close_after_answer: bool,
    /// Responses wait until this is set.
    pub gate: Option<aio_core::Future<()>>,
}

/// What the server saw.
#[derive(Default, Debug)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: Cell<usize>,
    /// Connections open now.
    pub open: Cell<usize>,
    /// The most connections open at once.
    pub peak: Cell<usize>,
    /// Request lines' paths, in the order they were read.
    pub paths: RefCell<Vec<String>>,
}

impl Stats {
    pub fn paths(&self) -> Vec<String> {
        self.paths.borrow().clone()
    }

    /// Waits (checking every 5 ms, at most 10 s) until at most `n`
    /// connections are open.
    pub async fn until_open_at_most(&self, n: usize) -> Result<(), Box<dyn std::error::Error>> {
        for _ in 0..2000 {
            if self.open.get() <= n {
                return Ok(());
            }
            aio_core::sleep(0.005).await?;
        }
        Err(format!("{} connections still open, expected at most {n}", self.open.get()).into())
    }
}

pub struct RawServer {
    pub addr: SocketAddr,
    pub stats: Rc<Stats>,
    task: Task<io::Result<()>>,
}

impl RawServer {
    pub async fn start(script: Script) -> io::Result<RawServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Rc::new(Stats::default());
        let st = stats.clone();
        let task = create_task(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                st.accepted.set(st.accepted.get() + 1);
                st.open.set(st.open.get() + 1);
                st.peak.set(st.peak.get().max(st.open.get()));
                let (st, script) = (st.clone(), script.clone());
                drop(create_task(async move {
                    let _ = serve(stream, &script, &st).await;
                    st.open.set(st.open.get() - 1);
                }));
            }
        });
        Ok(RawServer { addr, stats, task })
    }

    pub fn uri(&self, path: &str) -> aio_hyper::hyper::Uri {
        format!("http://{}{path}", self.addr).parse().expect("a valid URI")
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.cancel();
    }
}

async fn serve(stream: TcpStream, script: &Script, st: &Stats) -> Result<(), Box<dyn std::error::Error>> {
    if script.reset {
        stream.set_linger(Some(Duration::ZERO))?;
    }
    let (mut r, w) = stream.into_streams();
    let mut answered = 0;
    loop {
        let Some((path, body)) = read_request(&mut r).await? else {
            return Ok(());
        };
        st.paths.borrow_mut().push(path.clone());
        if script.answer.is_some_and(|n| answered == n) {
            w.close();
            return Ok(());
        }
        if path == "/hang" {
            // Never answers; ends when the client closes.
            r.read(-1).await?;
            return Ok(());
        }
        if let Some(gate) = &script.gate {
            (&gate.clone()).await?;
        }
        let reply = if body.is_empty() { path.into_bytes() } else { body };
        respond(&w, &reply, script.body_delay).await?;
        answered += 1;
        if script.close_after_answer {
            w.close();
            return Ok(());
        }
    }
}

/// The next request's path and body; `None` at EOF between requests.
async fn read_request(r: &mut StreamReader) -> Result<Option<(String, Vec<u8>)>, Box<dyn std::error::Error>> {
    let head = match r.readuntil(b"\r\n\r\n").await {
        Ok(h) => String::from_utf8(h)?,
        Err(aio_net::StreamError::IncompleteRead { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or("no request line")?
        .to_owned();
    let mut len = 0;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse()?;
            }
        }
    }
    let body = if len > 0 { r.readexactly(len).await? } else { Vec::new() };
    Ok(Some((path, body)))
}

async fn respond(w: &StreamWriter, body: &[u8], body_delay: Option<Duration>) -> io::Result<()> {
    w.write(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
    w.drain().await?;
    if let Some(d) = body_delay {
        aio_core::sleep(d).await?;
    }
    w.write(body);
    w.drain().await
}
