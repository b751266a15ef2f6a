//! asyncio's streams: `StreamReader`, `StreamWriter`, `open_connection`,
//! `start_server` and their Unix variants.

mod flush;
mod reader;
mod sendfile;
mod server;
mod writer;

pub use reader::StreamReader;
pub(crate) use reader::check_limit;
#[cfg(feature = "tls")]
pub(crate) use server::start_server_with;
pub use server::{HandlerOutput, Server, open_connection, open_unix_connection, start_server, start_unix_server};
pub(crate) use server::{failure, report, report_failure};
pub use writer::StreamWriter;

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::{Rc, Weak};

use aio_core::Cancelled;
use aio_core::io::{BufResult, Operation, RawOp, Read, Recv, Registered, Send, Write};

use crate::{TcpStream, UnixStream};

/// The connection under a reader and a writer.
pub(crate) struct Transport {
    pub(crate) fd: Registered,
    pub(crate) kind: Kind,
    /// The failure the reader saw (a reset), which the writer reports
    /// too: asyncio's reader and writer share one protocol, whose
    /// `connection_lost` ends both.
    lost: RefCell<Option<(io::ErrorKind, String)>>,
    /// The writer made on this transport, once there is one: a server's
    /// `close_clients`/`abort_clients` close a connection through it.
    writer: RefCell<Weak<writer::Inner>>,
    /// Woken when the transport goes (its last handle dropped, the
    /// descriptor closed): a server's `wait_closed`.
    on_drop: RefCell<Vec<std::task::Waker>>,
    /// The peer's address as `accept` gave it (asyncio's transport keeps
    /// `peername` from its start); `None` elsewhere, where it is asked
    /// of the socket.
    pub(crate) peer: Option<std::net::SocketAddr>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        for w in self.on_drop.get_mut().drain(..) {
            w.wake();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Unix,
    /// A pipe (subprocess stdin/stdout/stderr): `read`/`write`, no addresses.
    Pipe,
}

impl Transport {
    pub(crate) fn tcp(s: TcpStream) -> Transport {
        // asyncio sets TCP_NODELAY on every stream socket.
        let _ = s.set_nodelay(true);
        Transport::new(s.fd, Kind::Tcp)
    }

    pub(crate) fn unix(s: UnixStream) -> Transport {
        Transport::new(s.fd, Kind::Unix)
    }

    pub(crate) fn pipe(fd: Registered) -> Transport {
        Transport::new(fd, Kind::Pipe)
    }

    fn new(fd: Registered, kind: Kind) -> Transport {
        Transport {
            fd,
            kind,
            lost: RefCell::new(None),
            writer: RefCell::new(Weak::new()),
            on_drop: RefCell::new(Vec::new()),
            peer: None,
        }
    }

    /// Whether the connection is over for its server, as asyncio's
    /// `Server` detaches a transport once its `connection_lost` ran: the
    /// writer closed (its close done, or aborted, or failed). Otherwise
    /// `cx` is woken when that may have changed: the writer settles, or
    /// the transport is dropped (which ends it too).
    pub(crate) fn poll_ended(&self, cx: &std::task::Context<'_>) -> bool {
        if let Some(w) = self.writer.borrow().upgrade() {
            let mut st = w.st.borrow_mut();
            if st.closed {
                return true;
            }
            st.wait(cx);
        }
        let mut on_drop = self.on_drop.borrow_mut();
        if !on_drop.iter().any(|w| w.will_wake(cx.waker())) {
            on_drop.push(cx.waker().clone());
        }
        false
    }

    /// Records that the connection failed under the reader (the first
    /// failure stands).
    pub(crate) fn set_lost(&self, e: &io::Error) {
        let mut lost = self.lost.borrow_mut();
        if lost.is_none() {
            *lost = Some((e.kind(), e.to_string()));
        }
    }

    /// The failure the reader saw, if any.
    pub(crate) fn lost(&self) -> Option<io::Error> {
        self.lost.borrow().as_ref().map(|(k, m)| io::Error::new(*k, m.clone()))
    }

    /// Ends the connection on a server's request: through its writer if
    /// the handler made one (`abort`, or a `close` that flushes what was
    /// written first), else by shutting the socket down, which ends what
    /// reads it (a TLS handshake, say) with EOF.
    pub(crate) fn end(&self, abort: bool) {
        let writer = self.writer.borrow().upgrade();
        match writer {
            Some(inner) => {
                let w = StreamWriter::from_inner(inner);
                if abort {
                    w.abort();
                } else {
                    w.close();
                }
            }
            None => {
                let _ = crate::sock::sref(&self.fd).shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// The peer's TCP address: the one `accept` gave, else the socket's.
    pub(crate) fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self.peer {
            Some(a) => Ok(a),
            None => crate::sock::inet(crate::sock::sref(&self.fd).peer_addr()?),
        }
    }

    /// The peer's address as text, for error messages.
    #[cfg(feature = "tls")]
    pub(crate) fn peer_string(&self) -> String {
        self.peer_addr().map_or_else(|_| "a peer".to_owned(), |a| a.to_string())
    }

    fn read_op(&self, buf: Vec<u8>) -> ReadOp {
        let fd = self.fd.as_raw_fd();
        match self.kind {
            Kind::Pipe => ReadOp::Read(Read::new(fd, buf, None)),
            _ => ReadOp::Recv(Recv::new(fd, buf, 0)),
        }
    }

    fn write_op(&self, buf: Vec<u8>, start: usize) -> WriteOp {
        let fd = self.fd.as_raw_fd();
        match self.kind {
            Kind::Pipe => WriteOp::Write(Write::from(fd, buf, start)),
            _ => WriteOp::Send(Send::new(fd, buf, start, 0)),
        }
    }
}

/// A receive on a socket or a read on a pipe.
pub(crate) enum ReadOp {
    Recv(Recv<Vec<u8>>),
    Read(Read<Vec<u8>>),
}

impl Operation for ReadOp {
    type Output = BufResult<usize, Vec<u8>>;
    fn invalid(&self) -> Option<io::Error> {
        match self {
            ReadOp::Recv(o) => o.invalid(),
            ReadOp::Read(o) => o.invalid(),
        }
    }
    fn raw(&mut self) -> RawOp {
        match self {
            ReadOp::Recv(o) => o.raw(),
            ReadOp::Read(o) => o.raw(),
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        match self {
            ReadOp::Recv(o) => o.complete(res),
            ReadOp::Read(o) => o.complete(res),
        }
    }
}

/// A send on a socket or a write on a pipe.
pub(crate) enum WriteOp {
    Send(Send<Vec<u8>>),
    Write(Write<Vec<u8>>),
}

impl Operation for WriteOp {
    type Output = BufResult<usize, Vec<u8>>;
    fn invalid(&self) -> Option<io::Error> {
        match self {
            WriteOp::Send(o) => o.invalid(),
            WriteOp::Write(o) => o.invalid(),
        }
    }
    fn raw(&mut self) -> RawOp {
        match self {
            WriteOp::Send(o) => o.raw(),
            WriteOp::Write(o) => o.raw(),
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        match self {
            WriteOp::Send(o) => o.complete(res),
            WriteOp::Write(o) => o.complete(res),
        }
    }
}

/// A reader and a writer on one transport.
pub(crate) fn pair(t: Transport) -> (StreamReader, StreamWriter) {
    pair_rc(Rc::new(t))
}

/// [`pair`] on a shared transport (a server keeps a weak one).
pub(crate) fn pair_rc(t: Rc<Transport>) -> (StreamReader, StreamWriter) {
    (StreamReader::new(t.clone()), StreamWriter::new(t))
}

/// Why a stream read failed.
#[derive(Debug)]
pub enum StreamError {
    /// EOF came before the expected data: asyncio's `IncompleteReadError`.
    /// `partial` holds every byte that was read (they are consumed).
    IncompleteRead {
        /// The bytes read before EOF.
        partial: Vec<u8>,
        /// How many were expected (`None`: up to a separator).
        expected: Option<usize>,
    },
    /// No separator within the reader's limit: asyncio's
    /// `LimitOverrunError`. For `readuntil` the data stays buffered.
    LimitOverrun {
        /// How many bytes were looked at.
        consumed: usize,
        /// What went over.
        message: &'static str,
    },
    /// The task was cancelled while waiting; no buffered byte was lost.
    Cancelled(Cancelled),
    /// The connection failed.
    Io(io::Error),
}

impl StreamError {
    /// The partial data of an `IncompleteRead`.
    pub fn partial(&self) -> Option<&[u8]> {
        match self {
            StreamError::IncompleteRead { partial, .. } => Some(partial),
            _ => None,
        }
    }

    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, StreamError::Cancelled(_))
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::IncompleteRead { partial, expected } => match expected {
                Some(n) => write!(f, "{} bytes read on a total of {n} expected bytes", partial.len()),
                None => write!(f, "{} bytes read on a total of undefined expected bytes", partial.len()),
            },
            StreamError::LimitOverrun { message, .. } => f.write_str(message),
            StreamError::Cancelled(c) => fmt::Display::fmt(c, f),
            StreamError::Io(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Io(e) => Some(e),
            StreamError::Cancelled(c) => Some(c),
            _ => None,
        }
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> StreamError {
        // An operation interrupted by a cancellation carries it inside.
        if e.kind() == io::ErrorKind::Interrupted {
            if let Some(c) = e.get_ref().and_then(|i| i.downcast_ref::<Cancelled>()) {
                return StreamError::Cancelled(c.clone());
            }
        }
        StreamError::Io(e)
    }
}

impl From<Cancelled> for StreamError {
    fn from(c: Cancelled) -> StreamError {
        StreamError::Cancelled(c)
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        match e {
            StreamError::Io(e) => e,
            StreamError::Cancelled(c) => c.into(),
            StreamError::IncompleteRead { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            StreamError::LimitOverrun { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}
