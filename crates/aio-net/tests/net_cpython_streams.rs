//! CPython's own tests of asyncio's streams (`Lib/test/test_asyncio/
//! test_streams.py`, 3.14's `StreamTests`), ported step for step and run
//! on every backend.
//!
//! CPython drives a bare `StreamReader` by hand; here every reader sits on
//! a real connection (a Unix socket pair) whose far end, a [`Feeder`],
//! plays the hand:
//!
//! - `stream.feed_data(b)` is the feeder writing `b`, and `feed_eof()` its
//!   shutdown of the sending side. The feeder is a plain blocking socket,
//!   so each write is in the kernel before the test's next step, as fed
//!   data is in the buffer; writes in a row reach the reader together, as
//!   feeds in a row fill the buffer before it looks.
//! - `stream.set_exception(exc)` is a reset of the connection, the one
//!   exception a connection delivers: the feeder closes with bytes of ours
//!   unread, and Linux then fails the reader's next receive with
//!   `ECONNRESET` (asyncio sets that `ConnectionResetError` on the reader
//!   the same way, from `connection_lost`).
//! - A read task that CPython starts before a `call_soon`'d feeding
//!   callback runs one loop turn first, so it waits as CPython's does.
//! - `StreamReader(limit=n)` is `set_limit(n)` (`limit=0`'s `ValueError`
//!   is its `InvalidInput`); `readuntil((a, b))`, asyncio 3.13's tuple of
//!   separators, is `readuntil_any(&[a, b])`; the `ValueError` of
//!   `readline` over the limit is `StreamError::LimitOverrun` (asyncio's
//!   `LimitOverrunError`, which `readline` re-raises as `ValueError`).
//! - `stream._buffer` is what the reader received and has not returned,
//!   seen without consuming it through `AsyncBufRead`. aio's reader
//!   receives only when a read needs bytes (asyncio's transport reads
//!   ahead into the buffer), so after a call that needed none
//!   (`read(0)`, `readexactly(0)`) the port checks instead that every fed
//!   byte is still to be read.
//! - `test_utils.run_test_server()` is an HTTP/1.0 server on a thread of
//!   its own (blocking sockets, not asyncio) answering "Test message";
//!   the `messages` list is the loop's exception handler. Servers listen
//!   on port 0 of 127.0.0.1 (CPython's `localhost`, or a port found free
//!   and closed first). Error messages are compared without regard to
//!   case (Rust's start lower-case).
//!
//! Every reader scenario here, as ported (socket pair, blocking feeder,
//! the same turns, asserting asyncio's outcome), was run on Python 3.11's
//! asyncio too, where it passes. The socket changes one outcome:
//! in `test_readuntil_limit_found_sep` asyncio pauses reading once its
//! buffer holds more than twice the limit, so a byte sent after that stays
//! in the socket (the test says how it is ported). `test_start_tls` needs
//! the `tls` feature.
//!
//! Not ported, because aio's API has nothing to express them with:
//! - `test_feed_empty_data`, `test_feed_nonempty_data`: they look only at
//!   the private `_buffer` after `feed_data`, before any read; aio's
//!   reader holds nothing until a read asks (the reads below check what
//!   feeding makes readable).
//! - The `limit=-1` step of `test_invalid_limit` and the
//!   `readexactly(-1)` step of `test_readexactly_zero_or_less`: limits and
//!   counts are `usize`s.
//! - `test_exception`: aio's reader has no `exception()` accessor (the
//!   tests that read after `set_exception` are ported).
//! - `test_open_connection_error`, `test_open_unix_connection_error`: they
//!   call the private `writer._protocol.connection_lost(ZeroDivisionError())`.
//! - `test_open_connection_no_loop_ssl`, `test_open_unix_connection_no_loop_ssl`:
//!   `ssl=` with `set_event_loop(None)` (aio has no event loop to unset;
//!   TLS on the streams has its own suite, `net_tls.rs`).
//! - `test_streamreader_constructor_*`, `test_streamreaderprotocol_constructor_*`:
//!   which loop a reader or protocol object binds to; aio makes readers
//!   only from connections.
//! - `test___repr__*`, `test_IncompleteReadError_pickleable`,
//!   `test_LimitOverrunError_pickleable`: repr strings and pickling.
//! - `test_unclosed_resource_warnings`, `test_loop_is_closed_resource_warnings`,
//!   `test_unclosed_server_resource_warnings`,
//!   `test_open_connection_happy_eyeball_refcycles`: `ResourceWarning`s
//!   from `__del__` and reference cycles seen by the garbage collector.
//!
//! `test_multiple_drain` drives the private `FlowControlMixin` with
//! `pause_writing()`/`resume_writing()`; it is ported through the public
//! API: ten `drain`s wait on a writer over its high-water mark, and the
//! peer reading everything resumes them all.
//!
//! Where aio differs by design (README's asyncio → aio table), the port
//! asserts aio's outcome and says so:
//! - `test_read_exception`, `test_readexactly_exception`: a connection
//!   reset that arrives while the reader still holds received bytes.
//!   asyncio raises the reset at the next read and drops them; aio hands
//!   them out first (`b"ne"`, then `b"\n"`) and raises the reset when it
//!   next receives: nothing received is lost.
//! - `test_at_eof`, `test_eof_feed_when_closing_writer`: aio receives
//!   only when a read asks, so `at_eof()` turns true when a read meets the
//!   end (at once, returning nothing), where asyncio's eager transport may
//!   already know it.
//!
//! `test_unhandled_exception` found that a handler's failure was reported
//! as "Unhandled error in client_connected_cb: <the error>"; it is now
//! asyncio's "Unhandled exception in client_connected_cb", with the error
//! apart in the context's `error` (asyncio's `exception`).

// The cancellation test shares one reader between the test and a task.
#![allow(clippy::await_holding_refcell_ref)]

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use aio_core::{
    ExceptionContext, Task, TaskError, create_task, current_task, gather, get_running_loop, timeout, to_thread,
};
use aio_net::{
    StreamError, StreamReader, StreamWriter, UnixStream, open_connection, open_unix_connection, start_server,
    start_unix_server,
};
use aio_test::{Dir, backend_tests, settle, until};
use futures_util::io::AsyncBufRead;

/// CPython's `StreamTests.DATA`.
const DATA: &[u8] = b"line1\nline2\nline3\n";

fn err(e: TaskError) -> io::Error {
    io::Error::other(e.to_string())
}

/// The far end of a reader's connection, which feeds it: CPython's
/// `feed_data`, `feed_eof` and `set_exception` (see the module docs).
struct Feeder(StdUnixStream);

impl Feeder {
    fn feed_data(&self, data: &[u8]) {
        (&self.0).write_all(data).expect("the feeder writes");
    }

    fn feed_eof(&self) {
        self.0.shutdown(Shutdown::Write).expect("the feeder shuts down");
    }

    /// `set_exception(ConnectionResetError())`: the feeder closes with
    /// bytes from `w` unread, so the kernel resets the connection.
    async fn set_exception(self, w: &StreamWriter) -> io::Result<()> {
        w.write(b"unread");
        until("the bytes reach the feeder", || w.write_buffer_size() == 0).await?;
        drop(self);
        Ok(())
    }
}

/// `asyncio.StreamReader()` with its feeder (and the writer of its
/// connection, which the reset needs).
fn stream() -> io::Result<(Feeder, StreamReader, StreamWriter)> {
    let (feeder, ours) = StdUnixStream::pair()?;
    let (r, w) = UnixStream::from_std(ours)?.into_streams();
    Ok((Feeder(feeder), r, w))
}

/// `asyncio.StreamReader(limit=limit)`.
fn stream_with_limit(limit: usize) -> io::Result<(Feeder, StreamReader, StreamWriter)> {
    let (feeder, mut r, w) = stream()?;
    r.set_limit(limit)?;
    Ok((feeder, r, w))
}

/// `stream._buffer`: what the reader received and has not returned yet,
/// left in place.
fn buffer(r: &mut StreamReader) -> Vec<u8> {
    if r.buffered() == 0 {
        return Vec::new();
    }
    // With bytes held, `poll_fill_buf` returns them without receiving.
    match Pin::new(r).poll_fill_buf(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(held)) => held.to_vec(),
        other => panic!("the held bytes were not handed out: {other:?}"),
    }
}

/// What the stream still has to give: the feeder's EOF, then everything
/// up to it (for `_buffer` where aio's reader has received nothing yet).
async fn rest(feeder: Feeder, r: &mut StreamReader) -> io::Result<Vec<u8>> {
    feeder.feed_eof();
    Ok(r.read(-1).await?)
}

/// Lets a task just created run up to where it waits, as CPython's task
/// runs its first step before the callback `call_soon`'d after it.
async fn waits<T>(t: &Task<T>) {
    settle(1).await;
    assert!(!t.done(), "the read did not wait for data");
}

#[track_caller]
fn assert_reset<T: std::fmt::Debug>(r: Result<T, StreamError>) {
    match r {
        Err(StreamError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the reset (asyncio's ConnectionResetError): {other:?}"),
    }
}

#[track_caller]
fn assert_limit_overrun<T: std::fmt::Debug>(r: Result<T, StreamError>) {
    match r {
        Err(StreamError::LimitOverrun { .. }) => {}
        other => panic!("expected LimitOverrun (asyncio's ValueError): {other:?}"),
    }
}

/// `self.loop.set_exception_handler(lambda loop, ctx: messages.append(ctx))`:
/// the messages the loop's exception handler receives.
fn exception_messages() -> Rc<RefCell<Vec<String>>> {
    let messages = Rc::new(RefCell::new(Vec::new()));
    let m = messages.clone();
    get_running_loop().set_exception_handler(Some(move |ctx: &ExceptionContext| {
        m.borrow_mut().push(ctx.message.clone())
    }));
    messages
}

// --- StreamReader ---

async fn test_read_zero() -> io::Result<()> {
    // Read zero bytes.
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(DATA);

    let data = stream.read(0).await?;
    assert_eq!(data, b"");
    assert_eq!(rest(feeder, &mut stream).await?, DATA);
    Ok(())
}

async fn test_read() -> io::Result<()> {
    // Read bytes.
    let (feeder, mut stream, _w) = stream()?;
    let read_task = create_task(async move {
        let data = stream.read(30).await;
        (stream, data)
    });
    waits(&read_task).await;
    feeder.feed_data(DATA);

    let (mut stream, data) = read_task.await.map_err(err)?;
    assert_eq!(data?, DATA);
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_read_line_breaks() -> io::Result<()> {
    // Read bytes without line breaks.
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(b"line1");
    feeder.feed_data(b"line2");

    let data = stream.read(5).await?;

    assert_eq!(data, b"line1");
    assert_eq!(buffer(&mut stream), b"line2");
    Ok(())
}

async fn test_read_eof() -> io::Result<()> {
    // Read bytes, stop at eof.
    let (feeder, mut stream, _w) = stream()?;
    let read_task = create_task(async move {
        let data = stream.read(1024).await;
        (stream, data)
    });
    waits(&read_task).await;
    feeder.feed_eof();

    let (mut stream, data) = read_task.await.map_err(err)?;
    assert_eq!(data?, b"");
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_read_until_eof() -> io::Result<()> {
    // Read all bytes until eof.
    let (feeder, mut stream, _w) = stream()?;
    let read_task = create_task(async move {
        let data = stream.read(-1).await;
        (stream, data)
    });
    waits(&read_task).await;
    feeder.feed_data(b"chunk1\n");
    feeder.feed_data(b"chunk2");
    feeder.feed_eof();

    let (mut stream, data) = read_task.await.map_err(err)?;

    assert_eq!(data?, b"chunk1\nchunk2");
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_read_exception() -> io::Result<()> {
    let (feeder, mut stream, w) = stream()?;
    feeder.feed_data(b"line\n");

    let data = stream.read(2).await?;
    assert_eq!(data, b"li");

    feeder.set_exception(&w).await?;
    // asyncio raises the reset at once, dropping "ne\n"; aio hands out
    // what it received first (nothing received is lost: README, "A peer
    // resets"), then raises the reset.
    assert_eq!(stream.read(2).await?, b"ne");
    assert_eq!(stream.read(2).await?, b"\n");
    assert_reset(stream.read(2).await);
    Ok(())
}

async fn test_read_limit() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream_with_limit(3)?;
    feeder.feed_data(b"chunk");
    let data = stream.read(5).await?;
    assert_eq!(data, b"chunk");
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_readline() -> io::Result<()> {
    // Read one line. 'readline' will need to wait for the data to come
    // from the feeder.
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(b"chunk1 ");
    let read_task = create_task(async move {
        let line = stream.readline().await;
        (stream, line)
    });
    waits(&read_task).await;
    feeder.feed_data(b"chunk2 ");
    feeder.feed_data(b"chunk3 ");
    feeder.feed_data(b"\n chunk4");

    let (mut stream, line) = read_task.await.map_err(err)?;
    assert_eq!(line?, b"chunk1 chunk2 chunk3 \n");
    assert_eq!(buffer(&mut stream), b" chunk4");
    Ok(())
}

async fn test_readline_limit_with_existing_data() -> io::Result<()> {
    // Read one line. The data is in the socket before the read starts.
    let (feeder, mut stream, _w) = stream_with_limit(3)?;
    feeder.feed_data(b"li");
    feeder.feed_data(b"ne1\nline2\n");

    assert_limit_overrun(stream.readline().await);
    // The buffer should contain the remaining data after exception.
    assert_eq!(buffer(&mut stream), b"line2\n");

    let (feeder, mut stream, _w) = stream_with_limit(3)?;
    feeder.feed_data(b"li");
    feeder.feed_data(b"ne1");
    feeder.feed_data(b"li");

    assert_limit_overrun(stream.readline().await);
    // No b'\n' at the end. The limit is 3, so before waiting for more
    // data readline consumes the entire buffer, and since that is more
    // than 3 bytes, it fails. The buffer is expected to be empty now.
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_at_eof() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;
    assert!(!stream.at_eof());

    feeder.feed_data(b"some data\n");
    assert!(!stream.at_eof());

    stream.readline().await?;
    assert!(!stream.at_eof());

    feeder.feed_data(b"some data\n");
    feeder.feed_eof();
    // asyncio's transport reads the data and the EOF as soon as the loop
    // runs (CPython feeds both at once), so its at_eof() is true here. aio
    // receives only when a read asks (README, `at_eof`): true once a read
    // has met the end, which the next read does at once.
    settle(5).await;
    stream.readline().await?;
    assert!(!stream.at_eof());
    assert_eq!(stream.readline().await?, b"");
    assert!(stream.at_eof());
    Ok(())
}

async fn test_readline_limit() -> io::Result<()> {
    // Read one line. The feeding callback, call_soon'd before the read's
    // task is made, runs before it: everything is fed when readline looks.
    let (feeder, mut stream, _w) = stream_with_limit(7)?;
    feeder.feed_data(b"chunk1");
    feeder.feed_data(b"chunk2");
    feeder.feed_data(b"chunk3\n");
    feeder.feed_eof();

    assert_limit_overrun(stream.readline().await);
    // The buffer had just one line of data, and after the error it
    // should be empty.
    assert_eq!(buffer(&mut stream), b"");

    let (feeder, mut stream, _w) = stream_with_limit(7)?;
    feeder.feed_data(b"chunk1");
    feeder.feed_data(b"chunk2\n");
    feeder.feed_data(b"chunk3\n");
    feeder.feed_eof();

    assert_limit_overrun(stream.readline().await);
    assert_eq!(buffer(&mut stream), b"chunk3\n");

    // Check strictness of the limit.
    let (feeder, mut stream, _w) = stream_with_limit(7)?;
    feeder.feed_data(b"1234567\n");
    let line = stream.readline().await?;
    assert_eq!(line, b"1234567\n");
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"12345678\n");
    assert_limit_overrun(stream.readline().await);
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"12345678");
    assert_limit_overrun(stream.readline().await);
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_readline_nolimit_nowait() -> io::Result<()> {
    // All needed data for the first readline is in the socket.
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(&DATA[..6]);
    feeder.feed_data(&DATA[6..]);

    let line = stream.readline().await?;

    assert_eq!(line, b"line1\n");
    assert_eq!(buffer(&mut stream), b"line2\nline3\n");
    Ok(())
}

async fn test_readline_eof() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(b"some data");
    feeder.feed_eof();

    let line = stream.readline().await?;
    assert_eq!(line, b"some data");
    Ok(())
}

async fn test_readline_empty_eof() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_eof();

    let line = stream.readline().await?;
    assert_eq!(line, b"");
    Ok(())
}

async fn test_readline_read_byte_count() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(DATA);

    stream.readline().await?;

    let data = stream.read(7).await?;

    assert_eq!(data, b"line2\nl");
    assert_eq!(buffer(&mut stream), b"ine3\n");
    Ok(())
}

async fn test_readline_exception() -> io::Result<()> {
    let (feeder, mut stream, w) = stream()?;
    feeder.feed_data(b"line\n");

    let data = stream.readline().await?;
    assert_eq!(data, b"line\n");

    feeder.set_exception(&w).await?;
    assert_reset(stream.readline().await);
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

#[track_caller]
fn assert_value_error<T: std::fmt::Debug>(r: Result<T, StreamError>, says: &str) {
    match r {
        Err(StreamError::Io(e)) if e.kind() == io::ErrorKind::InvalidInput => {
            assert!(
                e.to_string().to_lowercase().contains(&says.to_lowercase()),
                "asyncio's ValueError says '{says} ...': {e}"
            );
        }
        other => panic!("expected InvalidInput (asyncio's ValueError): {other:?}"),
    }
}

async fn test_readuntil_separator() -> io::Result<()> {
    let (_feeder, mut stream, _w) = stream()?;
    assert_value_error(stream.readuntil(b"").await, "Separator should be");
    // The tuple steps: `separator=(b'',)` and `separator=()`.
    assert_value_error(stream.readuntil_any(&[b""]).await, "Separator should be");
    assert_value_error(stream.readuntil_any(&[]).await, "Separator should contain");
    Ok(())
}

async fn test_readuntil_multi_chunks() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;

    feeder.feed_data(b"lineAAA");
    let data = stream.readuntil(b"AAA").await?;
    assert_eq!(data, b"lineAAA");
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"lineAAA");
    let data = stream.readuntil(b"AAA").await?;
    assert_eq!(data, b"lineAAA");
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"lineAAAxxx");
    let data = stream.readuntil(b"AAA").await?;
    assert_eq!(data, b"lineAAA");
    assert_eq!(buffer(&mut stream), b"xxx");
    Ok(())
}

async fn test_readuntil_multi_chunks_1() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;

    feeder.feed_data(b"QWEaa");
    feeder.feed_data(b"XYaa");
    feeder.feed_data(b"a");
    let data = stream.readuntil(b"aaa").await?;
    assert_eq!(data, b"QWEaaXYaaa");
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"QWEaa");
    feeder.feed_data(b"XYa");
    feeder.feed_data(b"aa");
    let data = stream.readuntil(b"aaa").await?;
    assert_eq!(data, b"QWEaaXYaaa");
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"aaa");
    let data = stream.readuntil(b"aaa").await?;
    assert_eq!(data, b"aaa");
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"Xaaa");
    let data = stream.readuntil(b"aaa").await?;
    assert_eq!(data, b"Xaaa");
    assert_eq!(buffer(&mut stream), b"");

    feeder.feed_data(b"XXX");
    feeder.feed_data(b"a");
    feeder.feed_data(b"a");
    feeder.feed_data(b"a");
    let data = stream.readuntil(b"aaa").await?;
    assert_eq!(data, b"XXXaaa");
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_readuntil_eof() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;
    let data = b"some dataAA";
    feeder.feed_data(data);
    feeder.feed_eof();

    match stream.readuntil(b"AAA").await {
        Err(e @ StreamError::IncompleteRead { .. }) => {
            assert!(e.to_string().contains("undefined expected bytes"), "{e}");
            let StreamError::IncompleteRead { partial, expected } = e else {
                unreachable!()
            };
            assert_eq!(partial, data);
            assert_eq!(expected, None);
        }
        other => panic!("expected IncompleteRead: {other:?}"),
    }
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_readuntil_limit_found_sep() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream_with_limit(3)?;
    feeder.feed_data(b"some dataAA");
    match stream.readuntil(b"AAA").await {
        Err(StreamError::LimitOverrun { consumed, message }) => {
            assert!(message.contains("not found"), "{message}");
            assert_eq!(consumed, 9);
        }
        other => panic!("expected LimitOverrun: {other:?}"),
    }

    assert_eq!(buffer(&mut stream), b"some dataAA");

    // CPython's feed_data puts the b'A' in the buffer. Over a socket,
    // asyncio stopped reading when the buffer passed twice the limit (11
    // bytes > 6), so the b'A' stays in the socket and readuntil says the
    // same again (Python 3.11, over a socket pair). aio agrees.
    feeder.feed_data(b"A");
    settle(5).await;
    match stream.readuntil(b"AAA").await {
        Err(StreamError::LimitOverrun { consumed, message }) => {
            assert!(message.contains("not found"), "{message}");
            assert_eq!(consumed, 9);
        }
        other => panic!("expected LimitOverrun: {other:?}"),
    }
    assert_eq!(buffer(&mut stream), b"some dataAA");

    // The buffer CPython reaches ('some dataAAA'), fed before the read.
    let (feeder, mut stream, _w) = stream_with_limit(3)?;
    feeder.feed_data(b"some dataAA");
    feeder.feed_data(b"A");
    match stream.readuntil(b"AAA").await {
        Err(StreamError::LimitOverrun { consumed, message }) => {
            assert!(message.contains("is found"), "{message}");
            assert_eq!(consumed, 9);
        }
        other => panic!("expected LimitOverrun: {other:?}"),
    }

    assert_eq!(buffer(&mut stream), b"some dataAAA");
    Ok(())
}

async fn test_readuntil_multi_separator() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream()?;

    // Simple case
    feeder.feed_data(b"line 1\nline 2\r");
    let data = stream.readuntil_any(&[b"\r", b"\n"]).await?;
    assert_eq!(data, b"line 1\n");
    let data = stream.readuntil_any(&[b"\r", b"\n"]).await?;
    assert_eq!(data, b"line 2\r");
    assert_eq!(buffer(&mut stream), b"");

    // First end position matches, even if that's a longer match
    feeder.feed_data(b"ABCDEFG");
    let data = stream.readuntil_any(&[b"DEF", b"BCDE"]).await?;
    assert_eq!(data, b"ABCDE");
    assert_eq!(buffer(&mut stream), b"FG");
    Ok(())
}

async fn test_readuntil_multi_separator_limit() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream_with_limit(3)?;
    feeder.feed_data(b"some dataA");

    match stream.readuntil_any(&[b"A", b"ome dataA"]).await {
        Err(StreamError::LimitOverrun { consumed, message }) => {
            assert!(message.contains("is found"), "{message}");
            // The shorter separator is the one that matched: b"A" at 9.
            assert_eq!(consumed, 9);
        }
        other => panic!("expected LimitOverrun: {other:?}"),
    }

    assert_eq!(buffer(&mut stream), b"some dataA");
    Ok(())
}

async fn test_readuntil_multi_separator_negative_offset() -> io::Result<()> {
    // If the buffer is big enough for the smallest separator (but does
    // not contain it) but too small for the largest, `offset` must not
    // become negative.
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(b"data");

    let readuntil_task = create_task(async move {
        let data = stream.readuntil_any(&[b"A", b"long sep"]).await;
        (stream, data)
    });
    waits(&readuntil_task).await;
    feeder.feed_data(b"Z");
    // (Over a socket the b"Z" may arrive alone: the read looks at
    // b"dataZ", still shorter than the long separator, and waits again.)
    settle(2).await;
    feeder.feed_data(b"Aaaa");

    let (mut stream, data) = readuntil_task.await.map_err(err)?;
    assert_eq!(data?, b"dataZA");
    assert_eq!(buffer(&mut stream), b"aaa");
    Ok(())
}

async fn test_invalid_limit() -> io::Result<()> {
    // `StreamReader(limit=0)`; `limit=-1` cannot be written (a `usize`).
    let (_feeder, mut stream, _w) = stream()?;
    let before = stream.limit();
    match stream.set_limit(0) {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            assert!(e.to_string().contains("Limit cannot be <= 0"), "{e}");
        }
        other => panic!("expected InvalidInput (asyncio's ValueError): {other:?}"),
    }
    assert_eq!(stream.limit(), before, "a refused limit changes nothing");
    Ok(())
}

async fn test_readuntil_bytearray() -> io::Result<()> {
    // The separator as a buffer of another type (Python's bytearray).
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(b"some data\r\n");
    let separator: Vec<u8> = Vec::from(*b"\r\n");
    let data = stream.readuntil(&separator).await?;
    assert_eq!(data, b"some data\r\n");
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_readexactly_zero_or_less() -> io::Result<()> {
    // Read exact number of bytes (zero; a negative count is no usize).
    let (feeder, mut stream, _w) = stream()?;
    feeder.feed_data(DATA);

    let data = stream.readexactly(0).await?;
    assert_eq!(data, b"");
    assert_eq!(rest(feeder, &mut stream).await?, DATA);
    Ok(())
}

async fn test_readexactly() -> io::Result<()> {
    // Read exact number of bytes.
    let (feeder, mut stream, _w) = stream()?;

    let n = 2 * DATA.len();
    let read_task = create_task(async move {
        let data = stream.readexactly(n).await;
        (stream, data)
    });
    waits(&read_task).await;
    feeder.feed_data(DATA);
    feeder.feed_data(DATA);
    feeder.feed_data(DATA);

    let (mut stream, data) = read_task.await.map_err(err)?;
    assert_eq!(data?, [DATA, DATA].concat());
    assert_eq!(buffer(&mut stream), DATA);
    Ok(())
}

async fn test_readexactly_limit() -> io::Result<()> {
    let (feeder, mut stream, _w) = stream_with_limit(3)?;
    feeder.feed_data(b"chunk");
    let data = stream.readexactly(5).await?;
    assert_eq!(data, b"chunk");
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_readexactly_eof() -> io::Result<()> {
    // Read exact number of bytes (eof).
    let (feeder, mut stream, _w) = stream()?;
    let n = 2 * DATA.len();
    let read_task = create_task(async move {
        let data = stream.readexactly(n).await;
        (stream, data)
    });
    waits(&read_task).await;
    feeder.feed_data(DATA);
    feeder.feed_eof();

    let (mut stream, data) = read_task.await.map_err(err)?;
    match data {
        Err(e @ StreamError::IncompleteRead { .. }) => {
            assert_eq!(e.to_string(), "18 bytes read on a total of 36 expected bytes");
            let StreamError::IncompleteRead { partial, expected } = e else {
                unreachable!()
            };
            assert_eq!(partial, DATA);
            assert_eq!(expected, Some(n));
        }
        other => panic!("expected IncompleteRead: {other:?}"),
    }
    assert_eq!(buffer(&mut stream), b"");
    Ok(())
}

async fn test_readexactly_exception() -> io::Result<()> {
    let (feeder, mut stream, w) = stream()?;
    feeder.feed_data(b"line\n");

    let data = stream.readexactly(2).await?;
    assert_eq!(data, b"li");

    feeder.set_exception(&w).await?;
    // asyncio raises the reset at once; aio hands out what it received
    // first (README, "A peer resets"), then raises it.
    assert_eq!(stream.readexactly(2).await?, b"ne");
    assert_reset(stream.readexactly(2).await);
    Ok(())
}

async fn test_exception_waiter() -> io::Result<()> {
    let (feeder, mut stream, w) = stream()?;

    let t1 = create_task(async move { stream.readline().await });
    waits(&t1).await;
    feeder.set_exception(&w).await?;

    assert_reset(t1.await.map_err(err)?);
    Ok(())
}

async fn test_exception_cancel() -> io::Result<()> {
    let (feeder, stream, w) = stream()?;
    let stream = Rc::new(RefCell::new(stream));

    let s = stream.clone();
    let t = create_task(async move { s.borrow_mut().readline().await });
    settle(1).await;
    t.cancel();
    settle(1).await;
    // The following line fails if set_exception() isn't careful.
    feeder.set_exception(&w).await?;
    settle(1).await;
    // CPython asserts the private `_waiter` is None: the cancelled read
    // left nothing waiting. Here: it ended cancelled, and the next read
    // gets the exception.
    aio_test::assert_cancelled(t).await;
    assert_reset(stream.borrow_mut().readline().await);
    Ok(())
}

// --- Servers and connections ---

/// What CPython's test HTTP server answers every request with.
const HTTP_RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\nServer: WSGIServer/0.2 CPython/3.11\r\n\
Content-type: text/plain\r\nContent-Length: 12\r\n\r\nTest message";

/// Reads a request up to its blank line, answers it, and closes the
/// connection (HTTP/1.0); a client that leaves first is not answered.
fn serve_http<S: Read + Write>(mut s: S) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let _ = s.write_all(HTTP_RESPONSE);
}

/// `test_utils.run_test_server()`: the address, and the server's thread,
/// which serves one connection and ends.
fn run_test_server() -> io::Result<(u16, JoinHandle<()>)> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    let thread = std::thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            serve_http(s);
        }
    });
    Ok((port, thread))
}

/// `test_utils.run_test_unix_server()`, at `path`.
fn run_test_unix_server(path: &std::path::Path) -> io::Result<JoinHandle<()>> {
    let l = std::os::unix::net::UnixListener::bind(path)?;
    Ok(std::thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            serve_http(s);
        }
    }))
}

/// Waits (bounded) for a server's thread to end: the `with` block's exit.
async fn join(thread: JoinHandle<()>) -> io::Result<()> {
    timeout(10, to_thread(move || thread.join()))
        .await
        .map_err(|_| io::Error::other("the test server's thread did not end"))?
        .map_err(|e| io::Error::other(e.to_string()))?
        .map_err(|_| io::Error::other("the test server's thread panicked"))
}

/// `_basetest_open_connection`.
async fn basetest_open_connection(mut reader: StreamReader, writer: StreamWriter) -> io::Result<()> {
    writer.write(b"GET / HTTP/1.0\r\n\r\n");
    let data = reader.readline().await?;
    assert_eq!(data, b"HTTP/1.0 200 OK\r\n");
    let data = reader.read(-1).await?;
    assert!(data.ends_with(b"\r\n\r\nTest message"), "{data:?}");
    writer.close();
    Ok(())
}

async fn test_open_connection() -> io::Result<()> {
    let messages = exception_messages();
    let (port, httpd) = run_test_server()?;
    let (reader, writer) = open_connection("127.0.0.1", port).await?;
    basetest_open_connection(reader, writer).await?;
    assert_eq!(*messages.borrow(), Vec::<String>::new());
    join(httpd).await
}

async fn test_open_unix_connection(d: Dir) -> io::Result<()> {
    let messages = exception_messages();
    let path = d.join("httpd.sock");
    let httpd = run_test_unix_server(&path)?;
    let (reader, writer) = open_unix_connection(&path).await?;
    basetest_open_connection(reader, writer).await?;
    assert_eq!(*messages.borrow(), Vec::<String>::new());
    join(httpd).await
}

/// `MyServer.handle_client` of the server tests.
async fn handle_client(mut client_reader: StreamReader, client_writer: StreamWriter) -> Result<(), StreamError> {
    let data = client_reader.readline().await?;
    client_writer.write(&data);
    client_writer.drain().await?;
    client_writer.close();
    client_writer.wait_closed().await?;
    Ok(())
}

/// `MyServer.handle_client_callback`: a plain callback that starts the
/// handler as a task of its own.
fn handle_client_callback(client_reader: StreamReader, client_writer: StreamWriter) -> std::future::Ready<()> {
    drop(create_task(handle_client(client_reader, client_writer)));
    std::future::ready(())
}

/// The client of the server tests: sends a line, reads it back.
async fn client(mut reader: StreamReader, writer: StreamWriter) -> io::Result<Vec<u8>> {
    // send a line
    writer.write(b"hello world!\n");
    // read it back
    let msgback = reader.readline().await?;
    writer.close();
    writer.wait_closed().await?;
    Ok(msgback)
}

async fn tcp_client(port: u16) -> io::Result<Vec<u8>> {
    let (reader, writer) = open_connection("127.0.0.1", port).await?;
    client(reader, writer).await
}

async fn test_start_server() -> io::Result<()> {
    let messages = exception_messages();

    // test the server variant with a coroutine as client handler
    let server = start_server(handle_client, "127.0.0.1", 0).await?;
    let port = server.sockets()[0].port();
    let msg = create_task(tcp_client(port)).await.map_err(err)??;
    server.close();
    server.wait_closed().await?;
    assert_eq!(msg, b"hello world!\n");

    // test the server variant with a callback as client handler
    let server = start_server(handle_client_callback, "127.0.0.1", 0).await?;
    let port = server.sockets()[0].port();
    let msg = create_task(tcp_client(port)).await.map_err(err)??;
    server.close();
    server.wait_closed().await?;
    assert_eq!(msg, b"hello world!\n");

    assert_eq!(*messages.borrow(), Vec::<String>::new());
    Ok(())
}

async fn test_start_unix_server(d: Dir) -> io::Result<()> {
    async fn unix_client(path: std::path::PathBuf) -> io::Result<Vec<u8>> {
        let (reader, writer) = open_unix_connection(path).await?;
        client(reader, writer).await
    }
    let messages = exception_messages();

    // test the server variant with a coroutine as client handler
    let path = d.join("coroutine.sock");
    let server = start_unix_server(handle_client, &path).await?;
    let msg = create_task(unix_client(path)).await.map_err(err)??;
    server.close();
    server.wait_closed().await?;
    assert_eq!(msg, b"hello world!\n");

    // test the server variant with a callback as client handler
    let path = d.join("callback.sock");
    let server = start_unix_server(handle_client_callback, &path).await?;
    let msg = create_task(unix_client(path)).await.map_err(err)??;
    server.close();
    server.wait_closed().await?;
    assert_eq!(msg, b"hello world!\n");

    assert_eq!(*messages.borrow(), Vec::<String>::new());
    Ok(())
}

#[cfg(feature = "tls")]
async fn test_start_tls() -> io::Result<()> {
    use aio_net::{TlsAcceptor, TlsConnector, start_tls, start_tls_server};

    // A certificate for "localhost" that the client trusts (CPython's
    // test contexts).
    let key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .and_then(|p| p.self_signed(&key))
        .map_err(io::Error::other)?;
    let acceptor = Rc::new(TlsAcceptor::from_pem(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
    )?);
    let connector = TlsConnector::from_pem(cert.pem().as_bytes())?;

    let handle_client = move |mut client_reader: StreamReader, client_writer: StreamWriter| {
        let acceptor = acceptor.clone();
        async move {
            let data1 = client_reader.readline().await?;
            client_writer.write(&data1);
            client_writer.drain().await?;
            assert!(client_writer.tls_info().is_none());
            let (mut client_reader, client_writer) = start_tls_server(client_reader, client_writer, &acceptor).await?;
            assert!(client_writer.tls_info().is_some());
            let data2 = client_reader.readline().await?;
            client_writer.write(&data2);
            client_writer.drain().await?;
            client_writer.close();
            client_writer.wait_closed().await?;
            Ok::<_, io::Error>(())
        }
    };

    let messages = exception_messages();
    let server = start_server(handle_client, "127.0.0.1", 0).await?;
    let port = server.sockets()[0].port();

    let (mut reader, writer) = open_connection("127.0.0.1", port).await?;
    writer.write(b"hello world 1!\n");
    writer.drain().await?;
    let msgback1 = reader.readline().await?;
    assert!(writer.tls_info().is_none());
    let (mut reader, writer) = start_tls(reader, writer, &connector, "localhost").await?;
    assert!(writer.tls_info().is_some());
    writer.write(b"hello world 2!\n");
    writer.drain().await?;
    let msgback2 = reader.readline().await?;
    writer.close();
    writer.wait_closed().await?;

    server.close();
    server.wait_closed().await?;

    assert_eq!(*messages.borrow(), Vec::<String>::new());
    assert_eq!(msgback1, b"hello world 1!\n");
    assert_eq!(msgback2, b"hello world 2!\n");
    Ok(())
}

async fn test_multiple_drain() -> io::Result<()> {
    // See https://github.com/python/cpython/issues/74116
    let drained = Rc::new(Cell::new(0));
    let drainer = |w: Rc<StreamWriter>| {
        let drained = drained.clone();
        async move {
            w.drain().await?;
            drained.set(drained.get() + 1);
            Ok::<_, io::Error>(())
        }
    };

    // pause_writing(): far more written than the high-water mark, and the
    // peer does not read.
    let (feeder, _r, w) = stream()?;
    let total = 4 << 20;
    w.write(&vec![7u8; total]);
    assert!(
        w.write_buffer_size() > w.get_write_buffer_limits().1,
        "the writer is not over its high-water mark"
    );
    let w = Rc::new(w);
    let drainers: Vec<_> = (0..10).map(|_| create_task(drainer(w.clone()))).collect();
    settle(1).await;
    assert_eq!(drained.get(), 0, "a drain returned while the writer was paused");

    // resume_writing(): the peer reads everything.
    let reader = std::thread::spawn(move || {
        let mut all = vec![0u8; total];
        (&feeder.0).read_exact(&mut all).map(|()| feeder)
    });
    let results = timeout(10, gather(drainers))
        .await
        .map_err(|_| io::Error::other("the drains were not resumed"))?
        .map_err(err)?;
    for r in results {
        r?;
    }
    assert_eq!(drained.get(), 10);
    let thread = std::thread::spawn(move || drop(reader.join()));
    join(thread).await
}

async fn test_drain_raises() -> io::Result<()> {
    // See http://bugs.python.org/issue25441

    // The server is not asyncio: a thread that accepts one connection and
    // closes it at once. drain() must not loop forever on the closed
    // connection.
    let messages = exception_messages();
    let sock = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = sock.local_addr()?.port();
    let thread = std::thread::spawn(move || {
        if let Ok((clt, _)) = sock.accept() {
            drop(clt);
        }
    });

    let (_reader, writer) = open_connection("127.0.0.1", port).await?;
    let mut failure = None;
    // (Bounded: a drain that never fails is a failure, not a hang.)
    for _ in 0..1_000_000 {
        writer.write(b"foo\n");
        if let Err(e) = writer.drain().await {
            failure = Some(e);
            break;
        }
    }
    let e = failure.expect("drain kept succeeding on a connection the server closed");
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
        ),
        "{e}"
    );

    join(thread).await?;
    assert_eq!(*messages.borrow(), Vec::<String>::new());
    Ok(())
}

async fn test_wait_closed_on_close() -> io::Result<()> {
    let (port, httpd) = run_test_server()?;
    let (mut rd, wr) = open_connection("127.0.0.1", port).await?;

    wr.write(b"GET / HTTP/1.0\r\n\r\n");
    let data = rd.readline().await?;
    assert_eq!(data, b"HTTP/1.0 200 OK\r\n");
    let data = rd.read(-1).await?;
    assert!(data.ends_with(b"\r\n\r\nTest message"), "{data:?}");
    assert!(!wr.is_closing());
    wr.close();
    assert!(wr.is_closing());
    wr.wait_closed().await?;
    join(httpd).await
}

async fn test_wait_closed_on_close_with_unread_data() -> io::Result<()> {
    let (port, httpd) = run_test_server()?;
    let (mut rd, wr) = open_connection("127.0.0.1", port).await?;

    wr.write(b"GET / HTTP/1.0\r\n\r\n");
    let data = rd.readline().await?;
    assert_eq!(data, b"HTTP/1.0 200 OK\r\n");
    wr.close();
    wr.wait_closed().await?;
    join(httpd).await
}

async fn test_async_writer_api() -> io::Result<()> {
    let messages = exception_messages();
    let (port, httpd) = run_test_server()?;

    let (mut rd, wr) = open_connection("127.0.0.1", port).await?;

    wr.write(b"GET / HTTP/1.0\r\n\r\n");
    let data = rd.readline().await?;
    assert_eq!(data, b"HTTP/1.0 200 OK\r\n");
    let data = rd.read(-1).await?;
    assert!(data.ends_with(b"\r\n\r\nTest message"), "{data:?}");
    wr.close();
    wr.wait_closed().await?;

    join(httpd).await?;
    assert_eq!(*messages.borrow(), Vec::<String>::new());
    Ok(())
}

async fn test_async_writer_api_exception_after_close() -> io::Result<()> {
    let messages = exception_messages();
    let (port, httpd) = run_test_server()?;

    let (mut rd, wr) = open_connection("127.0.0.1", port).await?;

    wr.write(b"GET / HTTP/1.0\r\n\r\n");
    let data = rd.readline().await?;
    assert_eq!(data, b"HTTP/1.0 200 OK\r\n");
    let data = rd.read(-1).await?;
    assert!(data.ends_with(b"\r\n\r\nTest message"), "{data:?}");
    wr.close();
    wr.write(b"data");
    let e = wr.drain().await.expect_err("drain after close");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");

    join(httpd).await?;
    assert_eq!(*messages.borrow(), Vec::<String>::new());
    Ok(())
}

async fn test_eof_feed_when_closing_writer() -> io::Result<()> {
    // See http://bugs.python.org/issue35065
    let messages = exception_messages();
    let (port, httpd) = run_test_server()?;

    let (mut rd, wr) = open_connection("127.0.0.1", port).await?;

    wr.close();
    wr.wait_closed().await?;
    // asyncio's close feeds the reader its EOF (at_eof() is true now); aio's
    // reader meets it at its next read (README, `at_eof`), which returns
    // nothing, as asyncio's does.
    let data = rd.read(-1).await?;
    assert_eq!(data, b"");
    assert!(rd.at_eof());

    join(httpd).await?;
    assert_eq!(*messages.borrow(), Vec::<String>::new());
    Ok(())
}

/// `_basetest_unhandled_exceptions`: serves one client with
/// `handle_echo`; returns what the exception handler received (message
/// and error).
async fn basetest_unhandled_exceptions<F, Fut>(handle_echo: F) -> io::Result<Vec<(String, Option<String>)>>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: std::future::Future + 'static,
    Fut::Output: aio_net::HandlerOutput,
{
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    get_running_loop().set_exception_handler(Some(move |ctx: &ExceptionContext| {
        r.borrow_mut().push((ctx.message.clone(), ctx.error.clone()))
    }));

    let server = start_server(handle_echo, "127.0.0.1", 0).await?;
    let port = server.sockets()[0].port();
    let (_rd, wr) = open_connection("127.0.0.1", port).await?;
    wr.write(b"test msg");
    wr.drain().await?;
    wr.close();
    wr.wait_closed().await?;
    server.close();
    server.wait_closed().await?;

    Ok(reports.take())
}

async fn test_unhandled_exception() -> io::Result<()> {
    let reports =
        basetest_unhandled_exceptions(|_reader, _writer| async { Err::<(), _>(io::Error::other("test")) }).await?;
    let (message, error) = reports.first().expect("the failure is reported");
    assert_eq!(message, "Unhandled exception in client_connected_cb");
    // The exception itself, apart (asyncio's `exception` key).
    assert!(error.as_deref().is_some_and(|e| e.contains("test")), "{error:?}");
    Ok(())
}

async fn test_unhandled_cancel() -> io::Result<()> {
    let reports = basetest_unhandled_exceptions(|_reader, writer: StreamWriter| async move {
        writer.close();
        current_task().expect("the handler runs in a task").cancel();
    })
    .await?;
    assert_eq!(reports, Vec::new());
    Ok(())
}

backend_tests!(
    plain:
    test_read_zero,
    test_read,
    test_read_line_breaks,
    test_read_eof,
    test_read_until_eof,
    test_read_exception,
    test_read_limit,
    test_readline,
    test_readline_limit_with_existing_data,
    test_at_eof,
    test_readline_limit,
    test_readline_nolimit_nowait,
    test_readline_eof,
    test_readline_empty_eof,
    test_readline_read_byte_count,
    test_readline_exception,
    test_readuntil_separator,
    test_readuntil_multi_chunks,
    test_readuntil_multi_chunks_1,
    test_readuntil_eof,
    test_readuntil_limit_found_sep,
    test_readuntil_multi_separator,
    test_readuntil_multi_separator_limit,
    test_readuntil_multi_separator_negative_offset,
    test_invalid_limit,
    test_readuntil_bytearray,
    test_readexactly_zero_or_less,
    test_readexactly,
    test_readexactly_limit,
    test_readexactly_eof,
    test_readexactly_exception,
    test_exception_waiter,
    test_exception_cancel,
    test_open_connection,
    test_start_server,
    #[cfg(feature = "tls")]
    test_start_tls,
    test_multiple_drain,
    test_drain_raises,
    test_wait_closed_on_close,
    test_wait_closed_on_close_with_unread_data,
    test_async_writer_api,
    test_async_writer_api_exception_after_close,
    test_eof_feed_when_closing_writer,
    test_unhandled_exception,
    test_unhandled_cancel;
    dir:
    test_open_unix_connection,
    test_start_unix_server,
);
