//! aio-uring: aio's io_uring driver.
//!
//! [`UringDriver`] runs every I/O operation aio-core defines as one
//! submission queue entry, submits once per loop turn (batching), and reaps
//! completions from the shared ring. A full submission queue is submitted
//! and the rest waits in a backlog (an operation is never dropped); a
//! completion-queue overflow is absorbed by the kernel (`FEAT_NODROP`) and
//! drained before the next submission. When the kernel answers `EAGAIN`,
//! the driver polls for readiness and submits again.
//!
//! **Receives on an empty socket wait in the driver.** A short receive on
//! a stream socket means its buffer is now empty, so the next receive would
//! only make the kernel arm (and later tear down) a one-shot poll on the
//! socket's wait queue, work done again for every request and partly paid
//! by the peer's `send`. Instead the driver holds that receive back (its
//! future waits, as on aio-poll, with nothing submitted) and arms one
//! multishot poll per socket (its "watch"), which stays on the wait queue
//! for the socket's life, like an epoll registration; when the watch
//! reports data, the waiting receives are woken, submit, and complete at
//! once. A receive that saw a watch event while it ran does not mark its
//! socket empty, so no data can arrive unnoticed whatever the order of the
//! completions.
//!
//! **Registered descriptors.** Each registered socket or pipe also takes a
//! slot in the ring's table of registered files, and entries name it by
//! slot, so the kernel neither looks it up nor counts a reference on it per
//! operation (descriptors beyond the table, up to 8192 slots, go by
//! number). Deregistering empties the slot before the descriptor closes.
//!
//! **Files cost no system call of their own.** A file's life is short and
//! its operations few (open, statx, a read, close), so it takes no slot
//! (two `io_uring_register` calls, to fill and to empty it, would cost
//! more than the per-operation lookups they save), and a file dropped
//! while the loop runs is closed by an `IORING_OP_CLOSE` in the ring, with
//! the turn's other entries: open, statx and close of a file cost a share
//! of one `io_uring_enter`. Files keep real descriptors (no
//! `IORING_FILE_INDEX_ALLOC`): `AsRawFd`, `into_std`, a child's inherited
//! descriptor and `lseek` on a duplicate must keep working.
//!
//! **A send the socket takes at once goes at once.** A stream writer with
//! nothing in flight sends with a plain non-blocking `send(2)`, as on
//! aio-poll (and as tokio does), and only what the socket does not take
//! goes through the ring: the reply of a request leaves during the step
//! that wrote it, instead of a turn later with a task to collect the
//! completion and another `io_uring_enter` (measured on one TLS or HTTP
//! connection: two turns and a task spawn per request less).
//!
//! **Multishot receives** (asyncio streams' `RecvStream`) draw from a
//! shared ring of provided buffers. One pauses once 64 KiB wait for its
//! reader (the rest stays in the socket, under TCP flow control), and a
//! receive that finds the buffers short goes one-shot into its own buffer,
//! so a reader that stops reading never starves the other connections.
//!
//! **Multishot accepts** pause once 16 accepted connections wait for
//! their listener's owner, so a server that stops accepting holds no more
//! descriptors than that; the rest wait in the kernel's backlog.
//!
//! **Memory safety under cancellation.** The kernel writes into an
//! operation's buffers until its completion. A future dropped while its
//! operation is in flight hands the operation (buffers, address storage) to
//! the driver, which asks the kernel to cancel it and frees the memory only
//! when the completion arrives. A *cancelled* (not dropped) operation waits
//! for the kernel too, and returns the data if the operation won the race.
//!
//! **Nothing received is lost to a dropped future.** When the kernel
//! completes a dropped receive or accept before its cancel lands (a
//! `select` that let a timer win), what it got (bytes, a datagram and its
//! address, a connection) is kept for its descriptor and handed to the next
//! receive or accept there, before anything newer; a receive issued while
//! such an operation is still in the kernel waits for it, so the order
//! holds. This is what a readiness driver gives for free (a dropped receive
//! there never took anything).
//! At shutdown the driver cancels everything and waits for the completions
//! before freeing; what does not complete is leaked, never freed under the
//! kernel.
//!
//! Other threads wake a ring blocked in `io_uring_enter` through an eventfd
//! whose read is always armed in the ring.
//!
//! Most programs get this driver through the `aio` facade's `uring`
//! feature, which falls back to aio-poll when the kernel refuses io_uring
//! (`ENOSYS`, `EPERM` from seccomp or `kernel.io_uring_disabled`, `ENOMEM`
//! from the memlock limit, a missing opcode).
//!
//! ```
//! let Ok(driver) = aio_uring::UringDriver::new() else {
//!     return; // no io_uring here
//! };
//! let lp = aio_core::Loop::builder().driver(driver).build();
//! assert_eq!(lp.backend(), "uring");
//! let v = lp.run_until_complete(async { aio_core::sleep(0.001).await.map(|_| 7) });
//! assert_eq!(v.unwrap().unwrap(), 7);
//! lp.close();
//! ```

#[cfg(target_os = "linux")]
mod bufs;
#[cfg(target_os = "linux")]
mod ops;
#[cfg(target_os = "linux")]
mod ring;

use std::any::Any;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use aio_core::driver::{Accepted, Driver, FdKind, IoDriver, Unpark};
use aio_core::io::RawOp;

/// The io_uring driver. See the crate docs.
pub struct UringDriver {
    #[cfg(target_os = "linux")]
    ring: ring::Ring,
    unparker: Arc<dyn Unpark>,
}

impl UringDriver {
    /// A driver with a 1024-entry submission queue.
    pub fn new() -> io::Result<UringDriver> {
        UringDriver::with_entries(1024)
    }

    /// A driver with `entries` submission queue entries (a power of two;
    /// the completion queue gets four times as many).
    #[cfg(target_os = "linux")]
    pub fn with_entries(entries: u32) -> io::Result<UringDriver> {
        let ring = ring::Ring::new(entries)?;
        let unparker = ring.unparker()?;
        log::debug!("aio: io_uring ready (defer_taskrun: {})", ring.defer_taskrun());
        Ok(UringDriver { ring, unparker })
    }

    /// io_uring is Linux only.
    #[cfg(not(target_os = "linux"))]
    pub fn with_entries(_entries: u32) -> io::Result<UringDriver> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring is Linux only"))
    }

    /// Whether this kernel lets us use io_uring (creates and drops a ring).
    pub fn is_available() -> bool {
        UringDriver::with_entries(8).is_ok()
    }

    /// Operations the kernel is still running (futures waiting, or dropped
    /// futures whose memory the driver keeps), and receives waiting in the
    /// driver for their socket's data.
    pub fn in_flight(&self) -> usize {
        #[cfg(target_os = "linux")]
        {
            self.ring.in_flight()
        }
        #[cfg(not(target_os = "linux"))]
        0
    }
}

#[cfg(target_os = "linux")]
impl Driver for UringDriver {
    fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.ring.park(timeout)
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.unparker.clone()
    }

    fn name(&self) -> &'static str {
        "uring"
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn io(&mut self) -> Option<&mut dyn IoDriver> {
        Some(self)
    }

    fn is_busy(&self) -> bool {
        self.ring.is_busy()
    }

    fn flush(&mut self) {
        self.ring.flush();
    }
}

#[cfg(target_os = "linux")]
impl IoDriver for UringDriver {
    fn register_kind(&mut self, fd: RawFd, kind: FdKind) -> io::Result<()> {
        // Every operation names its descriptor; the driver only keeps a
        // hint per descriptor (see `Ring::register`).
        self.ring.register(fd, kind);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) {
        self.ring.deregister(fd);
    }

    fn close(&mut self, fd: OwnedFd) {
        self.ring.close(fd);
    }

    fn poll_op(&mut self, op: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        self.ring.poll_op(op, token, waker)
    }

    fn cancel_op(&mut self, token: u64) {
        self.ring.cancel(token);
    }

    fn watch_readable(&mut self, fd: RawFd) -> Option<u32> {
        self.ring.watch_readable(fd)
    }

    fn poll_readable(&mut self, fd: RawFd, seen: u32, waker: &Waker) -> Poll<()> {
        self.ring.poll_readable(fd, seen, waker)
    }

    fn forget_op(&mut self, token: u64, owner: Box<dyn Any>) {
        self.ring.forget(token, owner);
    }

    fn is_completion_based(&self) -> bool {
        true
    }

    fn try_op(&mut self, op: &RawOp) -> Option<io::Result<usize>> {
        ops::send_now(op)
    }

    fn poll_recv_multi(
        &mut self,
        fd: RawFd,
        token: &mut Option<u64>,
        waker: &Waker,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Option<Poll<io::Result<usize>>> {
        self.ring.poll_recv_multi(fd, token, waker, out, max)
    }

    fn poll_accept_multi(
        &mut self,
        fd: RawFd,
        token: &mut Option<u64>,
        waker: &Waker,
    ) -> Option<Poll<io::Result<Accepted>>> {
        // A multishot accept reports no address.
        self.ring
            .poll_accept_multi(fd, token, waker)
            .map(|p| p.map(|r| r.map(|fd| (fd, None))))
    }
}
