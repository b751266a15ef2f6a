//! Submission: entries go into the submission queue, which the loop hands
//! to the kernel once per turn (`park`); when it is full it goes at once,
//! and what still does not fit waits in a backlog, in order — an entry is
//! never dropped.

use std::io;

use io_uring::squeue::Entry;

use super::Ring;

impl Ring {
    /// Queues `e` for submission; a full queue is submitted first, and what
    /// still does not fit waits in the backlog (never dropped).
    pub(super) fn push(&mut self, e: Entry) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(e);
            return;
        }
        // SAFETY: every entry's pointers stay valid until its completion:
        // the operation's future owns the memory, or the driver keeps it
        // (`Orphaned`), and the driver's own buffers live in `self`.
        if unsafe { self.ring.submission().push(&e) }.is_ok() {
            self.unsubmitted = true;
            return;
        }
        self.submit_now();
        // SAFETY: as above.
        if unsafe { self.ring.submission().push(&e) }.is_err() {
            self.backlog.push_back(e);
        } else {
            self.unsubmitted = true;
        }
    }

    /// Moves the backlog into the queue as far as it fits.
    pub(super) fn drain_backlog(&mut self) {
        while let Some(e) = self.backlog.front().cloned() {
            // SAFETY: as in `push`.
            let mut pushed = unsafe { self.ring.submission().push(&e) }.is_ok();
            if !pushed {
                // Full: hand what is queued to the kernel, then retry once.
                self.submit_now();
                // SAFETY: as in `push`.
                pushed = unsafe { self.ring.submission().push(&e) }.is_ok();
            }
            if !pushed {
                return;
            }
            self.backlog.pop_front();
            self.unsubmitted = true;
        }
    }

    /// The loop stops running: hands the kernel what is queued (a file's
    /// close), without waiting and without reaping.
    pub(crate) fn flush(&mut self) {
        self.drain_backlog();
        if self.unsubmitted {
            self.submit_now();
        }
    }

    /// Hands the queued entries to the kernel now.
    fn submit_now(&mut self) {
        loop {
            match self.ring.submit() {
                Ok(_) => {
                    self.unsubmitted = false;
                    return;
                }
                // The completion queue overflowed: reap, then submit again.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    self.reap();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::error!("io_uring submit failed: {e}");
                    return;
                }
            }
        }
    }
}
