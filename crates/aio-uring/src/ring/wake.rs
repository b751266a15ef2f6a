//! Parking and waking: the loop waits in `io_uring_enter`, and other
//! threads wake it through an eventfd whose read is always armed in the
//! ring (a write completes the read, and the completion ends the wait).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use aio_core::driver::Unpark;
use io_uring::{opcode, types};

use super::Ring;

/// `user_data` of the eventfd read that wakes the ring from other threads.
pub(super) const WAKE: u64 = u64::MAX;

/// `io_uring_enter` flag: wait for (and, with deferred task work, run) completions.
const IORING_ENTER_GETEVENTS: u32 = 1;

/// Wakes the ring from another thread: the eventfd read completes.
pub(super) struct EventFd(pub(super) OwnedFd);

impl Unpark for EventFd {
    fn unpark(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. A
        // failure (EAGAIN: the counter is full) means a wake is pending anyway.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

impl Ring {
    pub(crate) fn unparker(&self) -> io::Result<Arc<dyn Unpark>> {
        Ok(Arc::new(EventFd(self.wake_fd.try_clone()?)))
    }

    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let e = opcode::Read::new(
            types::Fd(self.wake_fd.as_raw_fd()),
            (&mut *self.wake_buf as *mut u64).cast(),
            8,
        )
        .build()
        .user_data(WAKE);
        self.wake_armed = true;
        self.push(e);
    }

    /// Submits and waits up to `timeout` for a completion, then reaps.
    pub(crate) fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.arm_wake();
        self.drain_backlog();
        let res = match timeout {
            Some(Duration::ZERO) => {
                if self.unsubmitted || self.defer_taskrun {
                    let n = self.ring.submission().len() as u32;
                    // GETEVENTS runs deferred task work, posting completions.
                    // SAFETY: no argument is passed.
                    unsafe {
                        self.ring
                            .submitter()
                            .enter::<libc::sigset_t>(n, 0, IORING_ENTER_GETEVENTS, None)
                    }
                } else {
                    Ok(0)
                }
            }
            Some(timeout) => {
                let ts = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        self.unsubmitted = false;
        match res {
            Ok(_) => {}
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                _ => return Err(e),
            },
        }
        self.reap();
        self.blocking.collect();
        Ok(())
    }
}
