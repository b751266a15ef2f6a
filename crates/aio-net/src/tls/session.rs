//! The TLS layer between a socket and the stream buffers: one rustls
//! state machine shared by the reader (which feeds it ciphertext and takes
//! plaintext out) and the writer (which encrypts into its send buffer).
//!
//! Nothing here awaits while holding decrypted bytes: a fill receives
//! ciphertext into the reader's own buffer, then decrypts and appends the
//! plaintext to the stream buffer in one synchronous step, so a cancelled
//! read loses nothing.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, BufRead, Write};
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use aio_core::io::RecvStream;
use rustls::Connection;

use super::{TlsError, TlsInfo};
use crate::StreamError;
use crate::stream::{StreamReader, StreamWriter, Transport};

/// How much ciphertext one receive asks for.
const RECV_CHUNK: usize = 64 * 1024;

/// One TLS connection's state, shared by its reader and writer.
pub(crate) struct Session {
    conn: RefCell<Connection>,
    /// The writer's "send what rustls queued": alerts and key updates the
    /// read side produces must go out through the writer's buffer.
    hook: RefCell<Option<Box<dyn Fn()>>>,
    peer: String,
}

impl Session {
    fn new(mut conn: Connection, peer: String) -> Session {
        // The writer bounds its own buffer (drain's marks); rustls must
        // never refuse plaintext, or `write` would have to wait.
        conn.set_buffer_limit(None);
        Session {
            conn: RefCell::new(conn),
            hook: RefCell::new(None),
            peer,
        }
    }

    pub(crate) fn set_output_hook(&self, hook: Box<dyn Fn()>) {
        *self.hook.borrow_mut() = Some(hook);
    }

    fn kick(&self) {
        if let Some(h) = &*self.hook.borrow() {
            h();
        }
    }

    /// Encrypts `data` and appends the records to `out`.
    pub(crate) fn encrypt(&self, data: &[u8], out: &mut Vec<u8>) {
        let mut conn = self.conn.borrow_mut();
        // With no buffer limit rustls takes everything; a closed session
        // takes nothing, and then nothing is sent (as after `close`).
        let _ = conn.writer().write_all(data);
        drain_output(&mut conn, out);
    }

    /// Appends whatever records rustls has queued to `out`.
    pub(crate) fn take_output(&self, out: &mut Vec<u8>) {
        drain_output(&mut self.conn.borrow_mut(), out);
    }

    /// Appends the close_notify alert to `out`.
    pub(crate) fn close_notify(&self, out: &mut Vec<u8>) {
        let mut conn = self.conn.borrow_mut();
        conn.send_close_notify();
        drain_output(&mut conn, out);
    }

    pub(crate) fn info(&self) -> TlsInfo {
        let conn = self.conn.borrow();
        TlsInfo {
            alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
            protocol_version: conn.protocol_version(),
            cipher_suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
            peer_certificates: conn
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            server_name: match &*conn {
                Connection::Server(s) => s.server_name().map(str::to_owned),
                Connection::Client(_) => None,
            },
        }
    }
}

fn drain_output(conn: &mut Connection, out: &mut Vec<u8>) {
    while conn.wants_write() {
        // Writing into a Vec cannot fail.
        if conn.write_tls(out).is_err() {
            break;
        }
    }
}

/// What one decrypting step found.
enum Step {
    /// This many plaintext bytes were appended.
    Data(usize),
    /// The peer closed the session (close_notify, or the socket's EOF).
    Eof,
    /// More ciphertext is needed.
    More,
}

/// The reader's side of a session: ciphertext received and not yet fed
/// to rustls.
pub(crate) struct ReadSide {
    s: Rc<Session>,
    cipher: Vec<u8>,
    pos: usize,
    socket_eof: bool,
    eof_fed: bool,
    error: Option<rustls::Error>,
    /// Ciphertext (or the end of it) was fed to rustls since it last
    /// processed its records: only then is `process_new_packets` called,
    /// rather than on every read (each call parses the buffered record
    /// headers again).
    unprocessed: bool,
    /// Decrypted bytes not yet read, as of the last processing.
    plain: usize,
    /// The peer's close_notify was processed.
    closed: bool,
}

impl ReadSide {
    /// Receives and decrypts until some plaintext is appended to `out` (at
    /// most `max` bytes); `Ok(0)` at the end of the stream.
    ///
    /// This does not observe cancellation (the reader does, before).
    pub(crate) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        recv: &mut RecvStream,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Poll<Result<usize, StreamError>> {
        loop {
            let step = self.step(out, max);
            // Alerts and key-update answers go out through the writer.
            if self.s.conn.borrow().wants_write() {
                self.s.kick();
            }
            match step? {
                Step::Data(n) => return Poll::Ready(Ok(n)),
                Step::Eof => return Poll::Ready(Ok(0)),
                Step::More => {}
            }
            if self.pos == self.cipher.len() {
                self.cipher.clear();
                self.pos = 0;
            }
            if ready!(recv.poll_recv(cx, &mut self.cipher, RECV_CHUNK))? == 0 {
                self.socket_eof = true;
            }
        }
    }

    fn step(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Step> {
        if let Some(e) = &self.error {
            return Err(TlsError::io(&self.s.peer, e.clone(), false, None));
        }
        let mut conn = self.s.conn.borrow_mut();
        loop {
            if self.unprocessed {
                let state = match conn.process_new_packets() {
                    Ok(st) => st,
                    Err(e) => {
                        self.error = Some(e.clone());
                        return Err(TlsError::io(&self.s.peer, e, false, None));
                    }
                };
                self.unprocessed = false;
                self.plain = state.plaintext_bytes_to_read();
                self.closed = state.peer_has_closed();
            }
            if self.plain > 0 {
                // Copied straight from rustls's chunks (one per record):
                // no zeroed staging in `out`.
                let want = self.plain.min(max.max(1));
                let mut reader = conn.reader();
                let mut n = 0;
                while n < want {
                    let chunk = reader.fill_buf().unwrap_or(&[]);
                    let take = chunk.len().min(want - n);
                    if take == 0 {
                        break;
                    }
                    out.extend_from_slice(&chunk[..take]);
                    reader.consume(take);
                    n += take;
                }
                // What rustls holds can only be less than counted (never
                // more without new ciphertext): finding none ends the count.
                self.plain = if n > 0 { self.plain - n } else { 0 };
                if n > 0 {
                    return Ok(Step::Data(n));
                }
            }
            if self.closed {
                return Ok(Step::Eof);
            }
            if self.pos < self.cipher.len() {
                let n = conn.read_tls(&mut &self.cipher[self.pos..])?;
                self.pos += n;
                self.unprocessed = true;
                continue;
            }
            if self.socket_eof {
                if !self.eof_fed {
                    self.eof_fed = true;
                    conn.read_tls(&mut &[][..])?;
                    self.unprocessed = true;
                    continue;
                }
                // The socket closed without close_notify. asyncio (and
                // Python's ssl with suppress_ragged_eofs) reports a plain
                // EOF; framed reads (readexactly, readuntil) still see
                // a truncated message as IncompleteRead.
                return Ok(Step::Eof);
            }
            return Ok(Step::More);
        }
    }
}

/// Runs the handshake on `t` and builds the streams above the session.
/// `cipher` holds bytes already received (the peer's first flight, when
/// `start_tls` upgrades a connection that received it).
pub(crate) async fn establish(
    t: Rc<Transport>,
    mut recv: RecvStream,
    cipher: Vec<u8>,
    mut conn: Connection,
    timeout: Duration,
    peer: String,
) -> io::Result<(StreamReader, StreamWriter)> {
    let mut hs = Handshake {
        cipher,
        pos: 0,
        first: None,
    };
    let res = aio_core::timeout(timeout, hs.run(&t, &mut recv, &mut conn, &peer)).await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("TLS handshake with {peer} did not finish within {timeout:?} (the handshake timeout)"),
            ));
        }
    }
    let s = Rc::new(Session::new(conn, peer));
    let rs = ReadSide {
        s: s.clone(),
        cipher: hs.cipher,
        pos: hs.pos,
        socket_eof: false,
        eof_fed: false,
        error: None,
        // Records the handshake left (data sent with its last flight) are
        // processed on the first read.
        unprocessed: true,
        plain: 0,
        closed: false,
    };
    let reader = StreamReader::with_tls(t.clone(), recv, rs);
    let writer = StreamWriter::with_tls(t, s);
    Ok((reader, writer))
}

struct Handshake {
    cipher: Vec<u8>,
    pos: usize,
    /// The first byte the peer sent, to tell "not TLS at all" apart.
    first: Option<u8>,
}

impl Handshake {
    async fn run(&mut self, t: &Transport, recv: &mut RecvStream, conn: &mut Connection, peer: &str) -> io::Result<()> {
        if let Some(&b) = self.cipher.first() {
            self.first = Some(b);
        }
        loop {
            if conn.wants_write() {
                let mut out = Vec::new();
                drain_output(conn, &mut out);
                crate::sock::send_all_now(&t.fd, out).await?;
                continue;
            }
            if !conn.is_handshaking() {
                return Ok(());
            }
            if self.pos < self.cipher.len() {
                let n = conn
                    .read_tls(&mut &self.cipher[self.pos..])
                    .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {peer} failed: {e}")))?;
                self.pos += n;
            } else {
                self.cipher.clear();
                self.pos = 0;
                let n = poll_fn(|cx| {
                    aio_core::cancel::check()?;
                    recv.poll_recv(cx, &mut self.cipher, RECV_CHUNK)
                })
                .await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("TLS handshake with {peer} failed: the peer closed the connection"),
                    ));
                }
                if self.first.is_none() {
                    self.first = self.cipher.first().copied();
                }
                continue;
            }
            if let Err(e) = conn.process_new_packets() {
                // Tell the peer why (rustls queued an alert), best effort.
                let mut out = Vec::new();
                drain_output(conn, &mut out);
                if !out.is_empty() {
                    let _ = crate::sock::send_all_now(&t.fd, out).await;
                }
                // A TLS record starts with a content type of 20 to 24.
                let hint = self
                    .first
                    .filter(|b| !(20..=24).contains(b))
                    .map(|_| "the peer is not speaking TLS");
                return Err(TlsError::io(peer, e, true, hint));
            }
        }
    }
}

/// Sets up a client session on a connected transport.
pub(crate) fn client(config: &std::sync::Arc<rustls::ClientConfig>, server_name: &str) -> io::Result<Connection> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{server_name:?} is not a valid DNS name or IP address for TLS"),
        )
    })?;
    rustls::ClientConnection::new(config.clone(), name)
        .map(Connection::Client)
        .map_err(|e| TlsError::io(server_name, e, true, None))
}

/// Sets up a server session.
pub(crate) fn server(config: &std::sync::Arc<rustls::ServerConfig>, peer: &str) -> io::Result<Connection> {
    rustls::ServerConnection::new(config.clone())
        .map(Connection::Server)
        .map_err(|e| TlsError::io(peer, e, true, None))
}
