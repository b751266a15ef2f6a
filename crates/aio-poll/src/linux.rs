//! The Linux fast path for waiting: one `epoll_pwait2` on the poller's
//! epoll descriptor.
//!
//! `polling::Poller::wait` re-arms a timerfd and its notifier on every call
//! (four system calls per wait). Registration still goes through `polling`
//! (portable, and the BSDs use kqueue through it); waiting on Linux is this
//! one call, with a nanosecond timeout, and other threads wake the loop
//! through an eventfd of our own, registered edge-triggered. `polling`'s
//! notifier and timerfd are then never armed, so they never report.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use aio_core::driver::Unpark;

/// The key of our eventfd in the epoll set (never a descriptor number).
pub(crate) const WAKE_KEY: u64 = u64::MAX - 1;

pub(crate) struct Waiter {
    events: Vec<libc::epoll_event>,
    pwait2: bool,
}

/// One ready descriptor: its key and what it is ready for.
pub(crate) struct Ready {
    pub(crate) key: u64,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer closed its side or the socket failed (`EPOLLRDHUP`,
    /// `EPOLLHUP`, `EPOLLERR`): reads no longer block, and no further edge
    /// will say so.
    pub(crate) closed: bool,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            events: Vec::with_capacity(1024),
            pwait2: true,
        }
    }

    /// Waits on `epfd` up to `timeout` and calls `ready` for each ready
    /// descriptor.
    pub(crate) fn wait(
        &mut self,
        epfd: RawFd,
        timeout: Option<Duration>,
        mut ready: impl FnMut(Ready),
    ) -> io::Result<()> {
        let cap = self.events.capacity() as i32;
        let n = loop {
            let r = if self.pwait2 {
                let ts = timeout.map(|t| libc::timespec {
                    tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                });
                let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
                // SAFETY: `events` has room for `cap` entries; `tsp` is null
                // or points to a live timespec; no signal mask.
                unsafe {
                    libc::syscall(
                        libc::SYS_epoll_pwait2,
                        epfd,
                        self.events.as_mut_ptr(),
                        cap,
                        tsp,
                        std::ptr::null::<libc::sigset_t>(),
                        0usize,
                    ) as i32
                }
            } else {
                // Milliseconds, rounded up so a timer is never early.
                let ms = timeout.map_or(-1, |t| {
                    i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
                });
                // SAFETY: as above.
                unsafe { libc::epoll_wait(epfd, self.events.as_mut_ptr(), cap, ms) }
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => break 0,
                Some(libc::ENOSYS) if self.pwait2 => self.pwait2 = false,
                _ => return Err(e),
            }
        };
        // SAFETY: the kernel initialized the first `n` entries.
        unsafe { self.events.set_len(n) };
        for ev in self.events.drain(..) {
            let flags = ev.events as i32;
            ready(Ready {
                key: ev.u64,
                readable: flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI | libc::EPOLLRDHUP)
                    != 0,
                writable: flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0,
                closed: flags & (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) != 0,
            });
        }
        if n == cap as usize {
            // A busy loop: take more at once next time.
            self.events.reserve(n);
        }
        Ok(())
    }
}

/// Registers `fd` in `epfd` edge-triggered for reads and writes under
/// `key`. Unlike `polling`, this asks for `EPOLLRDHUP`, so the waiter can
/// tell the peer's end of file from plain readability (`Ready::closed`).
pub(crate) fn register_edge(epfd: RawFd, fd: RawFd, key: u64) -> io::Result<()> {
    epoll_add(
        epfd,
        fd,
        libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLOUT,
        key,
    )
}

/// `epoll_ctl(EPOLL_CTL_ADD)` of `fd` for `events`, edge-triggered.
fn epoll_add(epfd: RawFd, fd: RawFd, events: libc::c_int, key: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (events | libc::EPOLLET) as u32,
        u64: key,
    };
    // SAFETY: `epfd` is our epoll instance, `fd` a descriptor the caller
    // keeps open while registered, `ev` a valid event.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Our eventfd for cross-thread wakes.
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: plain eventfd creation; we own the result.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nobody else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Registers it edge-triggered in `epfd` under [`WAKE_KEY`].
    pub(crate) fn register(&self, epfd: RawFd) -> io::Result<()> {
        epoll_add(epfd, self.0.as_raw_fd(), libc::EPOLLIN, WAKE_KEY)
    }

    /// Empties the counter (after a wake), so the next write is a new edge.
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (already empty) is fine.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

impl Unpark for EventFd {
    fn unpark(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd; EAGAIN
        // (the counter is full) means a wake is already pending.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}
