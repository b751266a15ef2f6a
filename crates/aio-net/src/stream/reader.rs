//! `StreamReader`: asyncio's buffered reader.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use aio_core::io::{self as aio_io, OpFuture, RecvStream};

use super::{ReadOp, StreamError, Transport};

/// asyncio's default limit: 64 KiB.
pub(crate) const DEFAULT_LIMIT: usize = 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Reads from a connection through a buffer: asyncio's `StreamReader`.
///
/// Every method is an aio await point. A cancelled call loses no byte:
/// data already received stays buffered for the next call, and a receive
/// the kernel is still running (io_uring) stays attached to the reader and
/// lands in the buffer later.
///
/// The buffer is bounded by the reader's limit (64 KiB by default, see
/// [`set_limit`](StreamReader::set_limit)): a line longer than the limit is
/// an error, never unbounded memory.
pub struct StreamReader {
    transport: Rc<Transport>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    limit: usize,
    /// Sockets: a receive kept armed (multishot on io_uring).
    recv: Option<RecvStream>,
    /// Pipes: a read in flight, and the buffer for the next one.
    inflight: Option<OpFuture<ReadOp>>,
    spare: Vec<u8>,
    /// TLS: the ciphertext received and the session that decrypts it.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ReadSide>,
}

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("buffered", &self.buffered())
            .field("eof", &self.eof)
            .field("limit", &self.limit)
            .finish()
    }
}

impl StreamReader {
    pub(crate) fn new(t: Rc<Transport>) -> StreamReader {
        let recv = (t.kind != super::Kind::Pipe).then(|| RecvStream::new(std::os::fd::AsRawFd::as_raw_fd(&t.fd)));
        StreamReader {
            recv,
            transport: t,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            limit: DEFAULT_LIMIT,
            inflight: None,
            spare: Vec::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// A reader whose bytes come through a TLS session: `recv` is the
    /// socket's receive stream (kept from the handshake, so nothing it
    /// received is lost).
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(t: Rc<Transport>, recv: RecvStream, tls: crate::tls::ReadSide) -> StreamReader {
        let mut r = StreamReader::new(t);
        r.recv = Some(recv);
        r.tls = Some(tls);
        r
    }

    /// Takes the reader apart for `start_tls`: the transport, the receive
    /// stream, and the bytes received and not yet read (the first bytes of
    /// the peer's handshake, if it already started).
    #[cfg(feature = "tls")]
    pub(crate) fn into_parts(mut self) -> io::Result<(Rc<Transport>, RecvStream, Vec<u8>)> {
        if self.tls.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "start_tls: the connection already runs TLS",
            ));
        }
        let Some(recv) = self.recv.take() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "start_tls: TLS needs a socket, not a pipe",
            ));
        };
        let rest = self.take_all();
        Ok((self.transport.clone(), recv, rest))
    }

    /// Sets the largest line or chunk `readline`/`readuntil` accept
    /// (asyncio's `limit=`).
    ///
    /// # Errors
    /// A limit of 0 is refused (`InvalidInput`, "Limit cannot be <= 0",
    /// asyncio's `ValueError`); the limit stays as it was.
    pub fn set_limit(&mut self, limit: usize) -> io::Result<()> {
        check_limit(limit)?;
        self.limit = limit;
        Ok(())
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes received and not yet read.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether the peer closed and everything was read.
    pub fn at_eof(&self) -> bool {
        self.eof && self.buffered() == 0
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        if self.pos == 0 && n == self.buf.len() {
            // All of it: hand the buffer over instead of copying it.
            return std::mem::take(&mut self.buf);
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        out
    }

    fn take_all(&mut self) -> Vec<u8> {
        let n = self.buffered();
        self.consume(n)
    }

    /// Receives more data into the buffer; `false` at EOF. A failure of
    /// the connection is recorded for the writer too.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, StreamError>> {
        let r = ready!(self.poll_fill_buf(cx));
        if let Err(StreamError::Io(e)) = &r {
            if !matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
            ) {
                self.transport.set_lost(e);
            }
        }
        Poll::Ready(r)
    }

    fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, StreamError>> {
        if self.eof {
            return Poll::Ready(Ok(false));
        }
        // Cancellation is observed here, before the receive: a receive in
        // flight is kept for the next call (nothing it brings is lost).
        aio_core::cancel::check()?;
        // One fill adds at most the limit (or a 64 KiB chunk, if larger), so
        // a line that never ends costs about twice the limit before it is
        // refused, as on a readiness driver.
        let max = self.limit.max(READ_CHUNK);
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let recv = self.recv.as_mut().expect("TLS runs on a socket's receive stream");
            compact(&mut self.buf, &mut self.pos);
            let n = ready!(tls.poll_fill(cx, recv, &mut self.buf, max))?;
            return Poll::Ready(Ok(self.got(n)));
        }
        if let Some(recv) = &mut self.recv {
            compact(&mut self.buf, &mut self.pos);
            let n = ready!(recv.poll_recv(cx, &mut self.buf, max))?;
            return Poll::Ready(Ok(self.got(n)));
        }
        self.poll_read_chunk(cx)
    }

    /// `n` bytes came (0: the end of the stream); whether data came.
    fn got(&mut self, n: usize) -> bool {
        self.eof |= n == 0;
        n > 0
    }

    /// Fills from a one-shot read of a chunk (a pipe, which has no receive
    /// stream): the chunk becomes the buffer when nothing is buffered, else
    /// it is appended and kept as the next read's buffer.
    fn poll_read_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, StreamError>> {
        let t = &self.transport;
        let spare = &mut self.spare;
        let op = self.inflight.get_or_insert_with(|| {
            let mut b = std::mem::take(spare);
            b.clear();
            if b.capacity() > 2 * READ_CHUNK {
                // A read fills all the spare capacity: keep it near a chunk.
                b = Vec::new();
            }
            b.reserve_exact(READ_CHUNK);
            aio_io::submit_shielded(t.read_op(b))
        });
        let (res, chunk) = ready!(Pin::new(op).poll(cx));
        self.inflight = None;
        match res {
            Ok(n) if n > 0 && self.buffered() == 0 => {
                self.buf.clear();
                self.pos = 0;
                self.spare = std::mem::replace(&mut self.buf, chunk);
                Poll::Ready(Ok(true))
            }
            Ok(n) => {
                if n > 0 {
                    compact(&mut self.buf, &mut self.pos);
                    self.buf.extend_from_slice(&chunk);
                }
                self.spare = chunk;
                Poll::Ready(Ok(self.got(n)))
            }
            Err(e) => {
                self.spare = chunk;
                Poll::Ready(Err(e.into()))
            }
        }
    }

    async fn fill(&mut self) -> Result<bool, StreamError> {
        poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// asyncio's `read(n)`: up to `n` bytes (waiting for at least one,
    /// unless at EOF, where it returns an empty vector); `n < 0` reads
    /// everything up to EOF.
    ///
    /// # Cancellation
    /// Returns `Cancelled`; buffered data stays for the next call.
    pub async fn read(&mut self, n: isize) -> Result<Vec<u8>, StreamError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if n < 0 {
            while self.fill().await? {}
            return Ok(self.take_all());
        }
        if self.buffered() == 0 {
            self.fill().await?;
        }
        let k = (n as usize).min(self.buffered());
        Ok(self.consume(k))
    }

    /// asyncio's `readline()`: one line, with its `\n`; at EOF, whatever is
    /// left (possibly empty). A line over the limit is an error, and (as in
    /// asyncio) is discarded up to its end, or the whole buffer if the end
    /// is not in it.
    ///
    /// # Cancellation
    /// As [`read`](StreamReader::read).
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self.readuntil(b"\n").await {
            Ok(line) => Ok(line),
            Err(StreamError::IncompleteRead { partial, .. }) => Ok(partial),
            Err(StreamError::LimitOverrun { consumed, message }) => {
                let d = self.data();
                if d.len() > consumed && d[consumed] == b'\n' {
                    self.consume(consumed + 1);
                } else {
                    self.take_all();
                }
                Err(StreamError::LimitOverrun { consumed, message })
            }
            Err(e) => Err(e),
        }
    }

    /// asyncio's `readuntil(sep)`: the data up to and including `sep`.
    /// EOF first gives `IncompleteRead` with everything read; no `sep`
    /// within the limit gives `LimitOverrun` (the data stays buffered); an
    /// empty `sep` is `InvalidInput` (asyncio's `ValueError`).
    ///
    /// # Cancellation
    /// As [`read`](StreamReader::read).
    pub async fn readuntil(&mut self, sep: &[u8]) -> Result<Vec<u8>, StreamError> {
        self.until(&[sep]).await
    }

    /// asyncio 3.13's `readuntil((sep1, sep2, ...))`: the shortest data
    /// that ends with any of `seps` (of two matches ending at the same
    /// byte, the shorter separator is the one that matched, for the
    /// limit). Otherwise as [`readuntil`](StreamReader::readuntil); no
    /// separator at all, or an empty one, is `InvalidInput`.
    ///
    /// ```no_run
    /// # async fn f(r: &mut aio_net::StreamReader) -> Result<(), aio_net::StreamError> {
    /// let line = r.readuntil_any(&[b"\r\n", b"\n"]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancellation
    /// As [`read`](StreamReader::read).
    pub async fn readuntil_any(&mut self, seps: &[&[u8]]) -> Result<Vec<u8>, StreamError> {
        self.until(seps).await
    }

    /// `readuntil`, step for step: `offset` is where no separator can
    /// begin any more, so each look scans only what arrived since.
    async fn until(&mut self, seps: &[&[u8]]) -> Result<Vec<u8>, StreamError> {
        let invalid = |m| Err(StreamError::Io(io::Error::new(io::ErrorKind::InvalidInput, m)));
        let (Some(min), Some(max)) = (seps.iter().map(|s| s.len()).min(), seps.iter().map(|s| s.len()).max()) else {
            return invalid("Separator should contain at least one element");
        };
        if min == 0 {
            return invalid("Separator should be at least one-byte string");
        }
        let mut offset = 0;
        loop {
            let d = self.data();
            if d.len() - offset >= min {
                if let Some((start, end)) = first_match(d, offset, seps) {
                    if start > self.limit {
                        return Err(StreamError::LimitOverrun {
                            consumed: start,
                            message: "Separator is found, but chunk is longer than limit",
                        });
                    }
                    return Ok(self.consume(end));
                }
                // A separator may still begin in the last `max - 1` bytes.
                offset = (d.len() + 1).saturating_sub(max);
                if offset > self.limit {
                    return Err(StreamError::LimitOverrun {
                        consumed: offset,
                        message: "Separator is not found, and chunk exceed the limit",
                    });
                }
            }
            if !self.fill().await? {
                let partial = self.take_all();
                return Err(StreamError::IncompleteRead {
                    partial,
                    expected: None,
                });
            }
        }
    }

    /// asyncio's `readexactly(n)`: exactly `n` bytes; EOF first gives
    /// `IncompleteRead` carrying the bytes that did arrive.
    ///
    /// # Cancellation
    /// As [`read`](StreamReader::read): the bytes gathered so far stay
    /// buffered.
    pub async fn readexactly(&mut self, n: usize) -> Result<Vec<u8>, StreamError> {
        while self.buffered() < n {
            if !self.fill().await? {
                let partial = self.take_all();
                return Err(StreamError::IncompleteRead {
                    partial,
                    expected: Some(n),
                });
            }
        }
        Ok(self.consume(n))
    }
}

/// Moves the unread data (from `pos`) to the front of `buf` once at least
/// half of it is consumed, so the buffer neither grows without bound nor
/// is copied for every read.
fn compact(buf: &mut Vec<u8>, pos: &mut usize) {
    if *pos > 0 && *pos >= buf.len() / 2 {
        buf.drain(..*pos);
        *pos = 0;
    }
}

/// A limit `readline` can work with: asyncio refuses `limit <= 0`.
pub(crate) fn check_limit(limit: usize) -> io::Result<()> {
    if limit == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "Limit cannot be <= 0"));
    }
    Ok(())
}

/// The match of `seps` in `d` (from `offset`) that ends first, as
/// `(start, end)`; of two ending at the same byte, the shorter separator's
/// (asyncio sorts its separators by length and keeps a strictly earlier
/// end).
fn first_match(d: &[u8], offset: usize, seps: &[&[u8]]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for sep in seps {
        if let Some(i) = find(&d[offset..], sep) {
            let (start, end) = (offset + i, offset + i + sep.len());
            if best.is_none_or(|(s, e)| end < e || (end == e && start > s)) {
                best = Some((start, end));
            }
        }
    }
    best
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl futures_io::AsyncRead for StreamReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buffered() == 0 && !out.is_empty() {
            ready!(this.poll_fill(cx))?;
        }
        let n = out.len().min(this.buffered());
        out[..n].copy_from_slice(&this.data()[..n]);
        this.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncBufRead for StreamReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.buffered() == 0 {
            ready!(this.poll_fill(cx))?;
        }
        Poll::Ready(Ok(this.data()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let n = amt.min(this.buffered());
        this.pos += n;
        if this.pos == this.buf.len() {
            this.buf.clear();
            this.pos = 0;
        }
    }
}
