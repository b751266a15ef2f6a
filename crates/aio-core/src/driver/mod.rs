//! The boundary between the loop and the operating system.
//!
//! The loop calls its driver in one place: [`Driver::park`], when no task is
//! ready, with the time until the next timer. Other threads wake a parked
//! loop through the driver's [`Unpark`]. aio-core ships [`ParkDriver`], a
//! plain thread parker with no I/O, so tasks, timers, sync primitives and
//! queues run with no reactor at all; aio-poll and aio-uring provide the I/O
//! drivers.

pub mod blocking;
pub mod kept;
mod park;

pub use blocking::Blocking;
pub use park::ParkDriver;

use std::any::Any;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use socket2::SockAddr;

use crate::io::raw::RawOp;

/// A connection an accept took: its descriptor, and the peer's address
/// when the accept reported it.
pub type Accepted = (RawFd, Option<SockAddr>);

/// Whether `fd` is a stream socket (TCP, Unix stream), for drivers that
/// learn from short transfers: on a stream socket a short read means the
/// receive buffer is empty; on a datagram socket it means nothing.
pub fn is_stream_socket(fd: RawFd) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid for writes of the sizes given; a
    // descriptor that is not a socket makes the call fail, nothing more.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, (&raw mut ty).cast(), &mut len) };
    r == 0 && ty == libc::SOCK_STREAM
}

/// What the code registering a descriptor knows of it, so a driver need
/// not ask the kernel ([`IoDriver::register_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A stream socket (TCP, Unix stream; listeners too).
    StreamSocket,
    /// Anything else: a datagram socket, a pipe, a pidfd.
    Other,
    /// A regular file or a directory: never waits for readiness, and its
    /// calls block on the disk (a readiness driver runs them on threads).
    File,
    /// Not known: the driver finds out ([`is_stream_socket`]).
    Unknown,
}

impl FdKind {
    /// Whether `fd`, of this kind, is a stream socket (asking the kernel
    /// only when the kind is [`FdKind::Unknown`]).
    pub fn is_stream_socket(self, fd: RawFd) -> bool {
        match self {
            FdKind::StreamSocket => true,
            FdKind::Other | FdKind::File => false,
            FdKind::Unknown => is_stream_socket(fd),
        }
    }
}

/// Wakes a loop parked in [`Driver::park`], from any thread.
///
/// A wake that arrives before the loop parks must make the next `park`
/// return at once (it is "sticky").
pub trait Unpark: Send + Sync + 'static {
    /// Makes the current or next `park` return.
    fn unpark(&self);
}

/// What a loop needs from the OS: a way to block until something happens.
///
/// Implemented by [`ParkDriver`] here and by the I/O drivers of aio-poll
/// (`PollDriver`) and aio-uring (`UringDriver`).
pub trait Driver: 'static {
    /// Blocks until I/O is ready, [`Unpark::unpark`] is called, or `timeout`
    /// passes (`None`: no limit; `Some(ZERO)`: just collect what is ready).
    /// Wakes the wakers of completed I/O before returning.
    fn park(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// A handle that wakes this driver from other threads.
    fn unparker(&self) -> Arc<dyn Unpark>;

    /// The backend's name: `"park"`, `"poll"` or `"uring"`.
    fn name(&self) -> &'static str;

    /// Access to the concrete driver (for driver-specific extensions).
    fn as_any(&mut self) -> &mut dyn Any;

    /// The driver's I/O side; `None` for a driver without I/O.
    fn io(&mut self) -> Option<&mut dyn IoDriver> {
        None
    }

    /// The loop stops running (`run_until_complete` returned, or it
    /// closed): hand the kernel what is queued without waiting, so work
    /// queued in the last turn (a file's close on io_uring) does not wait
    /// for the next run. Default: nothing (a readiness driver queues
    /// nothing).
    fn flush(&mut self) {}

    /// Whether operations are in flight that complete by themselves, with
    /// no event from outside the process: file I/O, or a `shutdown` the
    /// kernel runs on its worker threads (io_uring). Waiting for a peer (a
    /// receive, an accept, a readiness poll) is not. A loop whose clock is
    /// [paused](crate::time#the-paused-test-clock) waits for such work in
    /// real time instead of jumping its clock past it. Default: `false`
    /// (a readiness driver keeps nothing in the kernel).
    fn is_busy(&self) -> bool {
        false
    }
}

/// What a driver does for I/O: run [`RawOp`]s.
///
/// A readiness driver (aio-poll) runs an operation as a non-blocking system
/// call and, when it would block, waits for the descriptor to become ready
/// and tries again: nothing is ever in flight in the kernel. A completion
/// driver (aio-uring) submits it to the kernel and reports the completion;
/// while the kernel works, the operation is *in flight*, identified by a
/// token, and the memory it points to must stay alive.
pub trait IoDriver {
    /// Starts watching a descriptor (sockets, pipes) of `kind` for the
    /// loop's lifetime of it: a readiness driver registers it once,
    /// edge-triggered. Callers that made or accepted the descriptor know
    /// its kind, which saves a driver that treats stream sockets apart a
    /// `getsockopt` per descriptor.
    fn register_kind(&mut self, fd: RawFd, kind: FdKind) -> io::Result<()>;

    /// [`register_kind`](IoDriver::register_kind) for a descriptor of
    /// unknown kind.
    fn register(&mut self, fd: RawFd) -> io::Result<()> {
        self.register_kind(fd, FdKind::Unknown)
    }

    /// Stops watching a descriptor (before it is closed).
    fn deregister(&mut self, fd: RawFd);

    /// Deregisters `fd` and closes it, while its loop runs (a turn
    /// follows, or [`Driver::flush`] when it stops). A completion driver
    /// may close it in the kernel's queue, with the turn's other work;
    /// the number stays taken until then, so no new descriptor can meet
    /// a stale registration. Errors of the close are not reported (as
    /// when a std `File` is dropped). Default: deregisters, then closes
    /// at once.
    fn close(&mut self, fd: OwnedFd) {
        self.deregister(fd.as_raw_fd());
        drop(fd);
    }

    /// Runs or continues `op`. `token` is `None` until a completion driver
    /// puts the operation in flight, and it returns to `None` with the
    /// result. `Pending` means `waker` will be woken when it is worth
    /// polling again.
    fn poll_op(&mut self, op: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>>;

    /// Asks the kernel to cancel an operation in flight. Its completion
    /// (possibly a success, if it won the race) still comes through
    /// `poll_op`.
    fn cancel_op(&mut self, token: u64);

    /// Whether a cancel of the operation in flight may take unbounded time:
    /// a thread blocked in its system call (an open of a FIFO nobody
    /// writes to) cannot be interrupted. The operation's future then
    /// leaves what it can to the driver
    /// ([`Operation::detach`](crate::io::Operation::detach)) instead of
    /// waiting. Default: `false` (the kernel ends a cancelled operation
    /// promptly).
    fn cancel_may_wait(&self, token: u64) -> bool {
        let _ = token;
        false
    }

    /// The future of an operation in flight was dropped: keep `owner` (the
    /// memory the operation points into) until the kernel is done with it,
    /// cancel the operation, and drop `owner` after its completion.
    fn forget_op(&mut self, token: u64, owner: Box<dyn Any>);

    /// Whether operations complete only through the kernel's queue (then
    /// nothing may call the system calls directly on the driver's behalf).
    fn is_completion_based(&self) -> bool;

    /// Runs `op` once without waiting, if the driver can: `None` when it
    /// would block or the driver cannot run operations directly.
    fn try_op(&mut self, op: &RawOp) -> Option<io::Result<usize>> {
        let _ = op;
        None
    }

    /// A receive that stays armed (io_uring's multishot receive into a
    /// ring of provided buffers, so no buffer is pinned per idle
    /// connection): appends the next data of socket `fd` to `out`, at most
    /// `max` bytes (what the driver received beyond that waits for the
    /// next call); `Ok(0)` is end of stream. `token` identifies the armed receive across calls;
    /// end it with [`forget_op`](IoDriver::forget_op) (the owner box may be
    /// empty: the driver owns the buffers). `None` when the driver has no
    /// such operation (the caller then uses one-shot receives); an
    /// `ENOBUFS` error when it ran out of buffers (the caller then receives
    /// one-shot this time, and the next call arms again).
    fn poll_recv_multi(
        &mut self,
        fd: RawFd,
        token: &mut Option<u64>,
        waker: &Waker,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Option<Poll<io::Result<usize>>> {
        let _ = (fd, token, waker, out, max);
        None
    }

    /// Starts (or goes on) watching stream socket `fd` for data with a
    /// readiness watch that stays armed (io_uring's multishot poll, like an
    /// epoll registration), and returns how many events the watch has
    /// reported so far, for [`poll_readable`](IoDriver::poll_readable).
    /// Called right after a read found the socket empty (it would block, or
    /// it was short), before the loop next waits: an event counted later is
    /// data that came after that read. `None` when the driver has no such
    /// watch for `fd` (the caller waits with a one-shot
    /// [`PollReady`](crate::io::PollReady)) or the socket reported its end
    /// (a read returns at once). Default: `None`.
    fn watch_readable(&mut self, fd: RawFd) -> Option<u32> {
        let _ = fd;
        None
    }

    /// Whether socket `fd`'s watch reported an event since it counted
    /// `seen` (`Ready`: read again); else `waker` is woken at its next
    /// event. Nothing is in flight for the caller: dropping it needs no
    /// call. Default: `Ready`.
    fn poll_readable(&mut self, fd: RawFd, seen: u32, waker: &Waker) -> Poll<()> {
        let _ = (fd, seen, waker);
        Poll::Ready(())
    }

    /// An accept that stays armed (io_uring's multishot accept): the next
    /// connection accepted on listening socket `fd` (non-blocking,
    /// close-on-exec), with the peer's address if the accept reported it.
    /// Same token rules as [`poll_recv_multi`](IoDriver::poll_recv_multi);
    /// `None` when the driver has no such operation.
    fn poll_accept_multi(
        &mut self,
        fd: RawFd,
        token: &mut Option<u64>,
        waker: &Waker,
    ) -> Option<Poll<io::Result<Accepted>>> {
        let _ = (fd, token, waker);
        None
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::{UnixDatagram, UnixStream};

    use super::FdKind;

    #[test]
    fn unknown_kinds_ask_the_kernel_and_known_ones_do_not() {
        let (s, _peer) = UnixStream::pair().unwrap();
        let (d, _peer2) = UnixDatagram::pair().unwrap();
        assert!(FdKind::Unknown.is_stream_socket(s.as_raw_fd()));
        assert!(!FdKind::Unknown.is_stream_socket(d.as_raw_fd()));
        // A descriptor that is not a socket at all.
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(!FdKind::Unknown.is_stream_socket(f.as_raw_fd()));
        // Known kinds are taken at their word, even for a closed number.
        assert!(FdKind::StreamSocket.is_stream_socket(-1));
        assert!(!FdKind::Other.is_stream_socket(d.as_raw_fd()));
    }
}
