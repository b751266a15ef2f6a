//! The I/O operations: each one defined once, as the memory it owns, the
//! [`RawOp`] it asks for, and how the driver's result becomes its output.

use std::any::Any;
use std::io;
use std::net::Shutdown as How;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};

use socket2::{SockAddr, SockAddrStorage};

use super::buf::{BufResult, IoBuf, IoBufMut};
use super::raw::{Interest, RawOp};

/// An operation the loop's driver can run.
///
/// The operation owns every piece of memory its [`RawOp`] points to, on the
/// heap, so the pointers stay valid when the operation is moved — into the
/// driver, if its future is dropped while the kernel still works on it.
pub trait Operation: 'static {
    /// What the operation produces.
    type Output;

    /// The system call, with pointers into `self`.
    fn raw(&mut self) -> RawOp;

    /// Turns the driver's result (a byte count or descriptor) into the output.
    fn complete(self, res: io::Result<usize>) -> Self::Output;

    /// An error that makes running the operation pointless (a receive into
    /// a buffer with no room), checked before it is handed to the driver.
    fn invalid(&self) -> Option<io::Error> {
        None
    }

    /// For an operation whose output needs none of its memory back (an
    /// open, a stat, a sync): moves out the memory its system call uses,
    /// so that, cancelled while a thread runs the call (which nothing can
    /// interrupt: an open of a FIFO nobody writes to), it is left to finish
    /// with the driver and its caller goes on at once. The result, if it
    /// ever comes, is disposed of (a descriptor it opened is closed).
    /// `None` (the default): the caller waits for the call to end, whose
    /// result (bytes moved, a buffer) it must not lose.
    fn detach(&mut self) -> Option<Box<dyn Any>> {
        None
    }
}

/// Where a receive writes into `buf`: after its initialized bytes, into
/// the spare capacity (`Vec::with_capacity(n)` receives `n` bytes); or, in
/// a buffer with no spare capacity (`vec![0; n]`), over the whole buffer
/// from its start, as `std::io::Read::read` fills a slice. Returns the
/// start offset and the length the kernel may write.
fn target<B: IoBufMut>(buf: &B) -> (usize, usize) {
    let (init, total) = (buf.bytes_init(), buf.bytes_total());
    if init < total { (init, total - init) } else { (0, total) }
}

fn spare<B: IoBufMut>(buf: &mut B) -> (*mut u8, usize) {
    let (start, len) = target(buf);
    // SAFETY: `start + len <= bytes_total`, so the pointer stays within
    // the buffer.
    (unsafe { buf.stable_mut_ptr().add(start) }, len)
}

/// The error of a receive into a buffer with no room at all: a read of
/// zero bytes would look like the end of the stream.
fn no_room() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "buffer has no capacity to receive into")
}

/// The error of a file offset above `i64::MAX`, which no file has (and
/// which io_uring would read as "at the cursor" if it reached the kernel).
pub(crate) fn bad_offset(offset: Option<u64>) -> Option<io::Error> {
    offset.filter(|&o| i64::try_from(o).is_err()).map(|o| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("file offset {o} is past the largest a file can have (i64::MAX)"),
        )
    })
}

fn appended<B: IoBufMut>(mut buf: B, res: io::Result<usize>) -> BufResult<usize, B> {
    if let Ok(n) = res {
        let (start, _) = target(&buf);
        // SAFETY: the kernel wrote `n` bytes at `start` (see `target`).
        unsafe { buf.set_init(start + n) };
    }
    (res, buf)
}

/// `read(2)` (or `pread(2)` at an offset) into `buf`: appended to its
/// spare capacity, or over the whole buffer when it has none (see
/// [`Recv`]).
#[derive(Debug)]
pub struct Read<B> {
    fd: RawFd,
    buf: B,
    offset: Option<u64>,
}

impl<B: IoBufMut> Read<B> {
    /// Reads from `fd` into `buf`.
    pub fn new(fd: RawFd, buf: B, offset: Option<u64>) -> Read<B> {
        Read { fd, buf, offset }
    }
}

impl<B: IoBufMut> Operation for Read<B> {
    type Output = BufResult<usize, B>;
    fn invalid(&self) -> Option<io::Error> {
        bad_offset(self.offset).or_else(|| (self.buf.bytes_total() == 0).then(no_room))
    }
    fn raw(&mut self) -> RawOp {
        let (buf, len) = spare(&mut self.buf);
        RawOp::Read {
            fd: self.fd,
            buf,
            len,
            offset: self.offset,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        appended(self.buf, res)
    }
}

/// `write(2)` (or `pwrite(2)`) of `buf`'s data (from byte `start`).
#[derive(Debug)]
pub struct Write<B> {
    fd: RawFd,
    buf: B,
    start: usize,
    offset: Option<u64>,
}

impl<B: IoBuf> Write<B> {
    /// Writes `buf` to `fd` (at file `offset`, if given).
    pub fn new(fd: RawFd, buf: B, offset: Option<u64>) -> Write<B> {
        Write {
            fd,
            buf,
            start: 0,
            offset,
        }
    }

    /// Writes `buf[start..]` to `fd` at its current position.
    pub fn from(fd: RawFd, buf: B, start: usize) -> Write<B> {
        Write {
            fd,
            buf,
            start,
            offset: None,
        }
    }

    /// Writes `buf[start..]` to `fd` at file `offset` (or its current
    /// position).
    pub fn at(fd: RawFd, buf: B, start: usize, offset: Option<u64>) -> Write<B> {
        Write { fd, buf, start, offset }
    }
}

impl<B: IoBuf> Operation for Write<B> {
    type Output = BufResult<usize, B>;
    fn invalid(&self) -> Option<io::Error> {
        bad_offset(self.offset)
    }
    fn raw(&mut self) -> RawOp {
        let start = self.start.min(self.buf.bytes_init());
        RawOp::Write {
            fd: self.fd,
            // SAFETY: `start <= bytes_init`, within the buffer.
            buf: unsafe { self.buf.stable_ptr().add(start) },
            len: self.buf.bytes_init() - start,
            offset: self.offset,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        (res, self.buf)
    }
}

/// `recv(2)` into `buf`.
///
/// Data is appended after the buffer's initialized bytes, into its spare
/// capacity (`Vec::with_capacity(n)`); a buffer with no spare capacity
/// (`vec![0u8; n]`) is filled from its start, as `std::io::Read::read`
/// fills a slice, so `buf[..n]` is what arrived. A buffer with no capacity
/// at all is an `InvalidInput` error: a receive of zero bytes would read
/// as the end of the stream.
#[derive(Debug)]
pub struct Recv<B> {
    fd: RawFd,
    buf: B,
    flags: i32,
}

impl<B: IoBufMut> Recv<B> {
    /// Receives from the socket `fd` into `buf`.
    pub fn new(fd: RawFd, buf: B, flags: i32) -> Recv<B> {
        Recv { fd, buf, flags }
    }
}

impl<B: IoBufMut> Operation for Recv<B> {
    type Output = BufResult<usize, B>;
    fn invalid(&self) -> Option<io::Error> {
        (self.buf.bytes_total() == 0).then(no_room)
    }
    fn raw(&mut self) -> RawOp {
        let (buf, len) = spare(&mut self.buf);
        RawOp::Recv {
            fd: self.fd,
            buf,
            len,
            flags: self.flags,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        appended(self.buf, res)
    }
}

/// `send(2)` of `buf`'s data (from byte `start`).
#[derive(Debug)]
pub struct Send<B> {
    fd: RawFd,
    buf: B,
    start: usize,
    flags: i32,
}

impl<B: IoBuf> Send<B> {
    /// Sends `buf[start..]` on the socket `fd`.
    pub fn new(fd: RawFd, buf: B, start: usize, flags: i32) -> Send<B> {
        Send { fd, buf, start, flags }
    }
}

impl<B: IoBuf> Operation for Send<B> {
    type Output = BufResult<usize, B>;
    fn raw(&mut self) -> RawOp {
        let start = self.start.min(self.buf.bytes_init());
        RawOp::Send {
            fd: self.fd,
            // SAFETY: `start <= bytes_init`, within the buffer.
            buf: unsafe { self.buf.stable_ptr().add(start) },
            len: self.buf.bytes_init() - start,
            flags: self.flags,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        (res, self.buf)
    }
}

/// The heap part of a message operation: address, header, one iovec.
struct Msg {
    addr: SockAddrStorage,
    hdr: libc::msghdr,
    iov: libc::iovec,
}

impl Msg {
    fn new() -> Box<Msg> {
        Box::new(Msg {
            addr: SockAddrStorage::zeroed(),
            // SAFETY: an all-zero msghdr/iovec is a valid empty value.
            hdr: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            iov: unsafe { std::mem::zeroed() },
        })
    }

    /// Points the header at the box's own address and iovec.
    fn link(&mut self, buf: *mut u8, len: usize, addr_len: libc::socklen_t) -> *mut libc::msghdr {
        self.iov.iov_base = buf.cast();
        self.iov.iov_len = len;
        self.hdr.msg_name = (&mut self.addr as *mut SockAddrStorage).cast();
        self.hdr.msg_namelen = addr_len;
        self.hdr.msg_iov = &mut self.iov;
        self.hdr.msg_iovlen = 1;
        &mut self.hdr
    }
}

// SAFETY: `Msg` holds plain C data and pointers into itself and the
// operation's buffer; it is only dereferenced by the kernel or the loop.
unsafe impl std::marker::Send for Msg {}

/// `recvmsg(2)` of one datagram, with its source address.
pub struct RecvFrom<B> {
    fd: RawFd,
    buf: B,
    msg: Box<Msg>,
    flags: i32,
}

impl<B: IoBufMut> RecvFrom<B> {
    /// Receives one datagram from the socket `fd` into `buf`.
    pub fn new(fd: RawFd, buf: B, flags: i32) -> RecvFrom<B> {
        RecvFrom {
            fd,
            buf,
            msg: Msg::new(),
            flags,
        }
    }
}

impl<B: IoBufMut> Operation for RecvFrom<B> {
    type Output = BufResult<(usize, SockAddr), B>;
    fn invalid(&self) -> Option<io::Error> {
        (self.buf.bytes_total() == 0).then(no_room)
    }
    fn raw(&mut self) -> RawOp {
        let (buf, len) = spare(&mut self.buf);
        let size = self.msg.addr.size_of();
        RawOp::RecvMsg {
            fd: self.fd,
            msg: self.msg.link(buf, len, size),
            flags: self.flags,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        let RecvFrom { buf, msg, .. } = self;
        let (res, buf) = appended(buf, res);
        let res = res.map(|n| (n, written_addr(msg.addr, msg.hdr.msg_namelen)));
        (res, buf)
    }
}

/// `sendmsg(2)` of one datagram to an address.
pub struct SendTo<B> {
    fd: RawFd,
    buf: B,
    msg: Box<Msg>,
    addr_len: libc::socklen_t,
    flags: i32,
}

impl<B: IoBuf> SendTo<B> {
    /// Sends `buf` to `addr` on the socket `fd`.
    pub fn new(fd: RawFd, buf: B, addr: &SockAddr, flags: i32) -> SendTo<B> {
        let mut msg = Msg::new();
        let len = addr.len();
        // SAFETY: both are address storages of the same size; `len` bytes
        // of `addr` are initialized.
        unsafe {
            std::ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&mut msg.addr as *mut SockAddrStorage).cast::<u8>(),
                len as usize,
            )
        };
        SendTo {
            fd,
            buf,
            msg,
            addr_len: len,
            flags,
        }
    }
}

impl<B: IoBuf> Operation for SendTo<B> {
    type Output = BufResult<usize, B>;
    fn raw(&mut self) -> RawOp {
        let (ptr, len) = (self.buf.stable_ptr() as *mut u8, self.buf.bytes_init());
        RawOp::SendMsg {
            fd: self.fd,
            msg: self.msg.link(ptr, len, self.addr_len),
            flags: self.flags,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        (res, self.buf)
    }
}

/// The address the kernel wrote into `storage` (zeroed beforehand), of
/// `len` bytes as it reported them: the one conversion of a
/// kernel-written address, for accepts and datagram receives.
fn written_addr(storage: SockAddrStorage, len: libc::socklen_t) -> SockAddr {
    let len = len.min(storage.size_of());
    // SAFETY: the storage is initialized throughout (zeroed, then possibly
    // written by the kernel), and `len` is clamped to its size (the kernel
    // reports a truncated address's full length).
    unsafe { SockAddr::new(storage, len) }
}

/// Where an accept writes the peer's address: the one definition of that
/// storage, shared by [`Accept`] and drivers that accept without an
/// operation (aio-poll's accept that stays armed).
pub struct PeerAddr {
    storage: SockAddrStorage,
    len: libc::socklen_t,
}

impl PeerAddr {
    /// Empty (zeroed) storage.
    pub fn new() -> PeerAddr {
        let storage = SockAddrStorage::zeroed();
        let len = storage.size_of();
        PeerAddr { storage, len }
    }

    /// The raw accept of listening socket `fd` into this storage. The
    /// storage must stay where it is until the accept completes.
    pub fn accept_op(&mut self, fd: RawFd) -> RawOp {
        self.len = self.storage.size_of();
        RawOp::Accept {
            fd,
            addr: (&mut self.storage as *mut SockAddrStorage).cast(),
            len: &mut self.len,
        }
    }

    /// The address an accept through [`accept_op`](PeerAddr::accept_op)
    /// wrote (unspecified if none succeeded).
    pub fn addr(self) -> SockAddr {
        written_addr(self.storage, self.len)
    }
}

impl Default for PeerAddr {
    fn default() -> PeerAddr {
        PeerAddr::new()
    }
}

/// `accept4(2)`: a new connection (non-blocking, close-on-exec) and the
/// peer's address.
pub struct Accept {
    fd: RawFd,
    addr: Box<PeerAddr>,
}

impl Accept {
    /// Accepts a connection on the listening socket `fd`.
    pub fn new(fd: RawFd) -> Accept {
        Accept {
            fd,
            addr: Box::new(PeerAddr::new()),
        }
    }
}

impl Operation for Accept {
    type Output = io::Result<(OwnedFd, SockAddr)>;
    fn raw(&mut self) -> RawOp {
        self.addr.accept_op(self.fd)
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        let fd = res? as RawFd;
        // SAFETY: the driver returns a new descriptor that nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok((fd, self.addr.addr()))
    }
}

/// `connect(2)` of a non-blocking socket, completing when connected.
pub struct Connect {
    fd: RawFd,
    addr: Box<SockAddr>,
}

impl Connect {
    /// Connects the socket `fd` to `addr`.
    pub fn new(fd: RawFd, addr: SockAddr) -> Connect {
        Connect {
            fd,
            addr: Box::new(addr),
        }
    }
}

impl Operation for Connect {
    type Output = io::Result<()>;
    fn raw(&mut self) -> RawOp {
        RawOp::Connect {
            fd: self.fd,
            addr: self.addr.as_ptr().cast(),
            len: self.addr.len(),
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// `shutdown(2)`.
#[derive(Debug)]
pub struct Shutdown {
    fd: RawFd,
    how: How,
}

impl Shutdown {
    /// Shuts down `how` on the socket `fd`.
    pub fn new(fd: RawFd, how: How) -> Shutdown {
        Shutdown { fd, how }
    }
}

impl Operation for Shutdown {
    type Output = io::Result<()>;
    fn raw(&mut self) -> RawOp {
        RawOp::Shutdown {
            fd: self.fd,
            how: self.how,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}

/// `close(2)`, through the driver (io_uring closes asynchronously).
///
/// The descriptor belongs to the operation until its description is handed
/// to the driver; from then on the driver closes it, whatever happens to
/// the future, so it is never closed twice.
#[derive(Debug)]
pub struct Close {
    fd: RawFd,
    owned: bool,
}

impl Close {
    /// Closes `fd`.
    pub fn new(fd: OwnedFd) -> Close {
        Close {
            fd: fd.into_raw_fd(),
            owned: true,
        }
    }
}

impl Operation for Close {
    type Output = io::Result<()>;
    fn raw(&mut self) -> RawOp {
        self.owned = false;
        RawOp::Close { fd: self.fd }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        if let Err(e) = &res {
            if e.kind() == io::ErrorKind::Unsupported {
                // No I/O driver ran it: close it here.
                // SAFETY: nobody else owns the descriptor.
                drop(unsafe { OwnedFd::from_raw_fd(self.fd) });
                return Ok(());
            }
        }
        res.map(drop)
    }
}

impl Drop for Close {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: never handed to a driver, so still ours alone.
            drop(unsafe { OwnedFd::from_raw_fd(self.fd) });
        }
    }
}

/// Waits until `fd` is readable or writable.
#[derive(Debug)]
pub struct PollReady {
    fd: RawFd,
    interest: Interest,
}

impl PollReady {
    /// Waits for `interest` on `fd`.
    pub fn new(fd: RawFd, interest: Interest) -> PollReady {
        PollReady { fd, interest }
    }
}

impl Operation for PollReady {
    type Output = io::Result<()>;
    fn raw(&mut self) -> RawOp {
        RawOp::PollReady {
            fd: self.fd,
            interest: self.interest,
        }
    }
    fn complete(self, res: io::Result<usize>) -> Self::Output {
        res.map(drop)
    }
}
