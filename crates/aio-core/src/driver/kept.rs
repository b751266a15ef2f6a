//! What the kernel delivered to operations whose futures were dropped.
//!
//! A future dropped while its receive is in flight (a `select` that let a
//! timer win, a `timeout`) cannot stop the kernel (or the thread running
//! its call) from completing it: the cancel may arrive after the data. The data, datagram or accepted
//! connection is then kept here, per descriptor, and handed to the next
//! receive or accept on that descriptor before anything newer, so nothing
//! the kernel took off a socket is lost (as on a readiness driver, where a
//! dropped receive never took anything). Rare by design: only a dropped
//! future that lost this race ever puts anything here.
//!
//! For drivers: io_uring keeps what its dropped receives and accepts got,
//! the file-call threads ([`Blocking`](super::Blocking)) what dropped
//! reads at a file's cursor got.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::task::Waker;

use crate::io::raw::RawOp;

/// Which operations share what is kept.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Class {
    /// `read`, `recv`, `recvmsg` (not peeking: a peek consumes nothing).
    Receive,
    /// `accept`.
    Accept,
}

/// The class of `raw`, if it consumes something from its descriptor.
pub fn class(raw: &RawOp) -> Option<Class> {
    match *raw {
        RawOp::Read { offset: None, .. } => Some(Class::Receive),
        RawOp::Recv { flags, .. } | RawOp::RecvMsg { flags, .. } if flags & libc::MSG_PEEK == 0 => Some(Class::Receive),
        RawOp::Accept { .. } => Some(Class::Accept),
        _ => None,
    }
}

enum Item {
    /// Stream data (TCP, Unix stream, pipes): receives may split it.
    Bytes(Vec<u8>),
    /// One datagram and its source address (empty when unknown).
    Datagram(Vec<u8>, Vec<u8>),
    /// An accepted connection and its peer's address.
    Conn(OwnedFd, Vec<u8>),
}

impl Item {
    fn class(&self) -> Class {
        match self {
            Item::Bytes(_) | Item::Datagram(..) => Class::Receive,
            Item::Conn(..) => Class::Accept,
        }
    }
}

/// One descriptor's kept results, and the dropped operations still in the
/// kernel (their results come before anything a later operation gets, so
/// later operations of their class wait for them).
#[derive(Default)]
pub struct Kept {
    items: VecDeque<Item>,
    /// Bytes of the front `Bytes` item already handed out.
    head: usize,
    in_flight: u32,
    waiters: Vec<Waker>,
}

impl Kept {
    /// Whether nothing is kept or awaited (the entry can go).
    pub fn is_idle(&self) -> bool {
        self.items.is_empty() && self.in_flight == 0 && self.waiters.is_empty()
    }

    /// Whether data is kept for the next receive.
    pub fn has_data(&self) -> bool {
        self.items.front().is_some_and(|i| i.class() == Class::Receive)
    }

    /// A dropped operation was left in the kernel; its result will come.
    pub fn expect(&mut self) {
        self.in_flight += 1;
    }

    /// A dropped operation's completion came (with or without a result).
    pub fn arrived(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            for w in self.waiters.drain(..) {
                w.wake();
            }
        }
    }

    /// Whether operations of `class` must wait for dropped ones still in
    /// the kernel; if so, `waker` is woken when they are done.
    pub fn must_wait(&mut self, waker: &Waker) -> bool {
        if self.in_flight == 0 {
            return false;
        }
        if !self.waiters.iter().any(|w| w.will_wake(waker)) {
            self.waiters.push(waker.clone());
        }
        true
    }

    /// Keeps stream data.
    pub fn push_bytes(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match self.items.back_mut() {
            Some(Item::Bytes(b)) => b.extend_from_slice(data),
            _ => self.items.push_back(Item::Bytes(data.to_vec())),
        }
    }

    /// Keeps what `raw` (a completed operation of [`class`] `Some`) got:
    /// `res` bytes or a descriptor. `stream` says whether `raw`'s
    /// descriptor is a stream socket.
    ///
    /// # Safety
    /// The memory `raw` points to must be alive, and the kernel must have
    /// finished writing it (its completion arrived).
    pub unsafe fn capture(&mut self, raw: &RawOp, res: i32, stream: bool) {
        let Ok(n) = usize::try_from(res) else {
            return; // an error: nothing was taken
        };
        match *raw {
            RawOp::Read { buf, .. } => {
                // SAFETY: the kernel wrote `n` bytes at `buf` (caller's promise).
                self.push_bytes(unsafe { std::slice::from_raw_parts(buf, n) });
            }
            RawOp::Recv { buf, .. } => {
                // SAFETY: as above.
                let data = unsafe { std::slice::from_raw_parts(buf, n) };
                if stream {
                    self.push_bytes(data);
                } else {
                    self.items.push_back(Item::Datagram(data.to_vec(), Vec::new()));
                }
            }
            RawOp::RecvMsg { msg, .. } => {
                // SAFETY: `msg` and what it points to are alive and written.
                let (data, addr) = unsafe { read_msg(msg, n) };
                if stream {
                    self.push_bytes(&data);
                } else {
                    self.items.push_back(Item::Datagram(data, addr));
                }
            }
            RawOp::Accept { addr, len, .. } => {
                // SAFETY: a new descriptor the kernel gave this operation alone.
                let fd = unsafe { OwnedFd::from_raw_fd(n as RawFd) };
                // SAFETY: `len` and `addr` are the operation's storage,
                // which the kernel filled (`len` may exceed the storage:
                // clamp to it).
                let addr = unsafe {
                    let l = (*len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
                    std::slice::from_raw_parts(addr.cast::<u8>(), l).to_vec()
                };
                self.items.push_back(Item::Conn(fd, addr));
            }
            _ => {}
        }
    }

    /// Appends up to `max` bytes of kept stream data (or one datagram) to
    /// `out`; returns how much.
    pub fn take_into(&mut self, out: &mut Vec<u8>, max: usize) -> usize {
        self.take_with(max, |data| out.extend_from_slice(data))
    }

    /// Hands up to `max` bytes of kept stream data (or one datagram,
    /// truncated to `max`) to `put`, piece by piece; returns how much.
    fn take_with(&mut self, max: usize, mut put: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < max {
            match self.items.front() {
                Some(Item::Bytes(b)) => {
                    let k = (b.len() - self.head).min(max - n);
                    put(&b[self.head..self.head + k]);
                    self.advance(k);
                    n += k;
                }
                Some(Item::Datagram(..)) if n == 0 => {
                    let Some(Item::Datagram(d, _)) = self.items.pop_front() else {
                        unreachable!()
                    };
                    let k = d.len().min(max);
                    put(&d[..k]);
                    return k;
                }
                _ => break,
            }
        }
        n
    }

    fn advance(&mut self, k: usize) {
        self.head += k;
        if let Some(Item::Bytes(b)) = self.items.front() {
            if self.head >= b.len() {
                self.items.pop_front();
                self.head = 0;
            }
        }
    }

    /// Completes `raw` (of class `Some`) from what is kept, writing into its
    /// memory as the kernel would; `None` when nothing of its class is
    /// kept.
    ///
    /// # Safety
    /// The memory `raw` points to must be alive and not in the kernel's
    /// hands (the operation was not submitted).
    pub unsafe fn deliver(&mut self, raw: &RawOp) -> Option<io::Result<usize>> {
        let front = self.items.front()?;
        if Some(front.class()) != class(raw) {
            return None;
        }
        match *raw {
            RawOp::Read { buf, len, .. } | RawOp::Recv { buf, len, .. } => {
                let mut at = 0;
                let n = self.take_with(len, |data| {
                    // SAFETY: `buf` has room for `len` bytes (caller's
                    // promise), and the pieces add up to at most `len`.
                    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.add(at), data.len()) };
                    at += data.len();
                });
                Some(Ok(n))
            }
            RawOp::RecvMsg { msg, .. } => {
                let (data, addr, trunc) = match self.items.front() {
                    Some(Item::Datagram(..)) => {
                        let Some(Item::Datagram(d, a)) = self.items.pop_front() else {
                            unreachable!()
                        };
                        (d, a, true)
                    }
                    _ => {
                        let mut v = Vec::new();
                        // SAFETY: `msg` is the operation's header.
                        let room = unsafe { msg_room(msg) };
                        self.take_into(&mut v, room);
                        (v, Vec::new(), false)
                    }
                };
                // SAFETY: `msg` and its buffers are the operation's memory.
                Some(Ok(unsafe { write_msg(msg, &data, &addr, trunc) }))
            }
            RawOp::Accept { addr, len, .. } => {
                let Some(Item::Conn(fd, a)) = self.items.pop_front() else {
                    unreachable!("the class was checked")
                };
                // SAFETY: `addr` has `*len` bytes of room, and `len` is the
                // operation's in/out length (as accept4 treats them).
                unsafe {
                    let room = *len as usize;
                    std::ptr::copy_nonoverlapping(a.as_ptr(), addr.cast::<u8>(), a.len().min(room));
                    *len = a.len() as libc::socklen_t;
                }
                Some(Ok(std::os::fd::IntoRawFd::into_raw_fd(fd) as usize))
            }
            _ => None,
        }
    }
}

/// The first `n` bytes a `recvmsg` wrote into `msg`'s buffers, and the
/// source address it wrote.
///
/// # Safety
/// `msg` and everything it points to must be alive and written.
unsafe fn read_msg(msg: *mut libc::msghdr, n: usize) -> (Vec<u8>, Vec<u8>) {
    // SAFETY: the caller's promise.
    let m = unsafe { &*msg };
    let mut data = Vec::with_capacity(n);
    for i in 0..m.msg_iovlen {
        // SAFETY: `msg_iov` holds `msg_iovlen` iovecs.
        let iov = unsafe { &*m.msg_iov.add(i) };
        let k = iov.iov_len.min(n - data.len());
        // SAFETY: the kernel filled the iovecs in order with `n` bytes.
        data.extend_from_slice(unsafe { std::slice::from_raw_parts(iov.iov_base.cast::<u8>(), k) });
        if data.len() == n {
            break;
        }
    }
    let addr = if m.msg_name.is_null() {
        Vec::new()
    } else {
        let l = (m.msg_namelen as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: the kernel wrote `msg_namelen` bytes of address (clamped
        // to the storage every aio receive gives it).
        unsafe { std::slice::from_raw_parts(m.msg_name.cast::<u8>(), l) }.to_vec()
    };
    (data, addr)
}

/// How many bytes `msg`'s buffers hold.
///
/// # Safety
/// `msg` must be a valid header.
unsafe fn msg_room(msg: *mut libc::msghdr) -> usize {
    // SAFETY: the caller's promise.
    let m = unsafe { &*msg };
    // SAFETY: `msg_iov` holds `msg_iovlen` iovecs.
    (0..m.msg_iovlen).map(|i| unsafe { (*m.msg_iov.add(i)).iov_len }).sum()
}

/// Writes `data` and `addr` into `msg` as `recvmsg` would (a datagram
/// larger than the buffers is truncated and flagged); returns the bytes
/// written.
///
/// # Safety
/// `msg` and the memory it points to must be valid for writes.
unsafe fn write_msg(msg: *mut libc::msghdr, data: &[u8], addr: &[u8], datagram: bool) -> usize {
    // SAFETY: the caller's promise.
    let m = unsafe { &mut *msg };
    let mut done = 0;
    for i in 0..m.msg_iovlen {
        if done == data.len() {
            break;
        }
        // SAFETY: `msg_iov` holds `msg_iovlen` iovecs.
        let iov = unsafe { &*m.msg_iov.add(i) };
        let k = iov.iov_len.min(data.len() - done);
        // SAFETY: each iovec has `iov_len` bytes of room.
        unsafe { std::ptr::copy_nonoverlapping(data[done..].as_ptr(), iov.iov_base.cast::<u8>(), k) };
        done += k;
    }
    m.msg_flags = if datagram && done < data.len() {
        libc::MSG_TRUNC
    } else {
        0
    };
    if !m.msg_name.is_null() {
        let room = m.msg_namelen as usize;
        // SAFETY: `msg_name` has `msg_namelen` bytes of room.
        unsafe { std::ptr::copy_nonoverlapping(addr.as_ptr(), m.msg_name.cast::<u8>(), addr.len().min(room)) };
        m.msg_namelen = addr.len() as libc::socklen_t;
    }
    done
}
