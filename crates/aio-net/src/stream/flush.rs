//! How a [`StreamWriter`](super::StreamWriter)'s buffer reaches the
//! kernel: a write is sent at once when the socket takes it (on both
//! drivers: io_uring runs a send with nothing in flight as a plain
//! `send(2)`; a pipe's write waits for the ring there) and buffered
//! otherwise; one background task per writer sends the buffer,
//! then does what `write_eof` or `close` asked for. TLS records (an alert,
//! a key update) that the session queues by itself go the same way.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use aio_core::io::{self as aio_io, Borrowed};

use super::writer::{Inner, State};
use super::{Kind, Transport};

/// Sends `data` at once when the socket takes it and buffers the rest.
/// Returns whether a flush must start (the caller starts it once it has
/// released the state).
pub(super) fn queue(inner: &Inner, st: &mut State, data: &[u8]) -> bool {
    let mut rest = data;
    if !st.flushing && st.pending.is_empty() {
        if let Some(t) = inner.transport.borrow().as_ref() {
            let op = match t.kind {
                Kind::Pipe => Borrowed::Write(data),
                _ => Borrowed::Send(data),
            };
            match crate::sock::send_now(&t.fd, op) {
                Ok(n) => rest = &data[n..],
                Err(e) => {
                    st.fail(&e);
                    return false;
                }
            }
        }
    }
    if rest.is_empty() {
        return false;
    }
    st.pending.extend_from_slice(rest);
    st.update_pause();
    if st.flushing {
        return false;
    }
    st.flushing = true;
    true
}

pub(super) fn spawn_flusher(inner: &Rc<Inner>) {
    match aio_core::try_get_running_loop() {
        Some(lp) => {
            let task = lp.create_task(flush(inner.clone()));
            *inner.flusher.borrow_mut() = Some(task.to_ref());
        }
        None => {
            let mut st = inner.st.borrow_mut();
            st.flushing = false;
            st.fail(&io::Error::other("no running event loop to flush the writer"));
        }
    }
}

/// Queues the session's close_notify alert; whether a flush must start.
#[cfg(feature = "tls")]
pub(super) fn close_notify(inner: &Inner, st: &mut State) -> bool {
    let Some(tls) = &inner.tls else { return false };
    if st.error.is_some() {
        return false;
    }
    let mut out = std::mem::take(&mut st.scratch);
    tls.close_notify(&mut out);
    let start = queue(inner, st, &out);
    out.clear();
    st.scratch = out;
    start
}

/// Sends what the TLS session queued by itself (an alert or a key update
/// answered while reading).
#[cfg(feature = "tls")]
pub(super) fn send_tls_output(inner: &Rc<Inner>) {
    let Some(tls) = &inner.tls else { return };
    let mut st = inner.st.borrow_mut();
    if st.error.is_some() || st.closed || inner.transport.borrow().is_none() {
        return;
    }
    let mut out = std::mem::take(&mut st.scratch);
    tls.take_output(&mut out);
    let start = !out.is_empty() && queue(inner, &mut st, &out);
    out.clear();
    st.scratch = out;
    if start {
        drop(st);
        spawn_flusher(inner);
    }
}

/// The background flush: sends the buffer, then does what `write_eof` or
/// `close` asked for.
async fn flush(inner: Rc<Inner>) {
    let t = inner.transport.borrow().clone();
    if let Some(t) = t {
        if send_buffer(&inner, &t).await {
            shut_down(&inner, &t).await;
        }
    }
    let mut st = inner.st.borrow_mut();
    if st.aborted {
        // `abort` settled the state; it drops this task at its next step.
        return;
    }
    st.flushing = false;
    if st.closing || st.error.is_some() {
        st.closed = true;
    }
    st.wake_all();
    // More data (or a close) may have arrived after the loop checked.
    let again = !st.pending.is_empty() && st.error.is_none() || (st.closing && !st.closed);
    if again {
        st.flushing = true;
        drop(st);
        spawn_flusher(&inner);
    }
}

/// Sends the buffer until it is empty; `false` if `abort` stopped it.
async fn send_buffer(inner: &Inner, t: &Transport) -> bool {
    loop {
        let buf = {
            let mut st = inner.st.borrow_mut();
            if st.aborted {
                return false;
            }
            if st.error.is_some() || st.pending.is_empty() {
                return true;
            }
            let b = std::mem::take(&mut st.pending);
            st.in_flight = b.len();
            b
        };
        let mut buf = buf;
        let mut start = 0;
        while start < buf.len() {
            let (res, b) = aio_io::submit(t.write_op(buf, start)).await;
            buf = b;
            let mut st = inner.st.borrow_mut();
            if st.aborted {
                // The buffer was discarded: nothing to count, no error to keep.
                return false;
            }
            if st.error.is_some() {
                // Failed meanwhile (the reader saw the connection go):
                // `fail` dropped the buffer and its counts.
                return true;
            }
            match res {
                Ok(0) => {
                    st.fail(&io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => {
                    start += n;
                    st.in_flight -= n;
                    st.update_pause();
                }
                Err(e) => {
                    st.fail(&e);
                    break;
                }
            }
        }
        let mut st = inner.st.borrow_mut();
        if st.pending.is_empty() && st.error.is_none() {
            buf.clear();
            st.pending = buf; // keep the capacity
        }
    }
}

/// Does what `write_eof` or `close` asked for, once the buffer is sent.
async fn shut_down(inner: &Inner, t: &Transport) {
    let (eof, closing) = {
        let st = inner.st.borrow();
        (st.eof, st.closing)
    };
    if !eof && !closing {
        return;
    }
    let how = if closing { Shutdown::Both } else { Shutdown::Write };
    if inner.kind == Kind::Pipe {
        // A pipe has no shutdown: closing our end is the EOF.
        inner.transport.borrow_mut().take();
        return;
    }
    let res = aio_io::submit(aio_io::Shutdown::new(t.fd.as_raw_fd(), how)).await;
    let mut st = inner.st.borrow_mut();
    if st.aborted {
        return;
    }
    match res {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
        Err(e) => st.fail(&e),
    }
    if closing {
        inner.transport.borrow_mut().take();
    }
}
