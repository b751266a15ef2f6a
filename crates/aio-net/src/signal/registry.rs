//! The process-wide half of signal handling: one `sigaction` handler for
//! every signal aio handles, a table of the loops that listen (each one a
//! self-pipe and a mask of signals), and the dispositions we replaced.
//!
//! The handler only touches atomics and calls `write(2)`: for each loop
//! whose mask has the signal, it sets the signal's bit in the loop's
//! `pending` word and writes one byte to the loop's pipe. The loop reads
//! the pipe, swaps `pending` to zero and dispatches. Bits coalesce as
//! signals themselves do; a full pipe already holds a wake-up.
//!
//! A loop leaving the table may race with a handler running on another
//! thread that already loaded its descriptor: `ACTIVE` counts handlers in
//! progress, and the write end is closed only once none is (a handler runs
//! in microseconds, and one interrupting the closing thread itself has
//! finished before that thread resumes).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};

use crate::sys;

/// The highest signal number handled (Linux's `SIGRTMAX`).
pub(crate) const MAX_SIGNAL: i32 = 64;

/// How many loops may listen to signals at once.
const SLOTS: usize = 256;

/// A free slot.
const FREE: i32 = -1;
/// A slot being set up or torn down: the handler skips it.
const BUSY: i32 = -2;

struct Entry {
    /// The write end of the loop's self-pipe, `FREE` or `BUSY`.
    fd: AtomicI32,
    /// Bit `sig - 1` is set when the loop listens to `sig`.
    mask: AtomicU64,
    /// Signals received and not yet dispatched.
    pending: AtomicU64,
}

static TABLE: [Entry; SLOTS] = [const {
    Entry {
        fd: AtomicI32::new(FREE),
        mask: AtomicU64::new(0),
        pending: AtomicU64::new(0),
    }
}; SLOTS];

/// Handlers running right now (see the module docs).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Per signal: how many loops listen, and the disposition our handler
/// replaced (restored when the last one stops).
struct Dispositions {
    users: [u32; MAX_SIGNAL as usize + 1],
    saved: [Option<sys::Action>; MAX_SIGNAL as usize + 1],
}

static DISPOSITIONS: Mutex<Dispositions> = Mutex::new(Dispositions {
    users: [0; MAX_SIGNAL as usize + 1],
    saved: [const { None }; MAX_SIGNAL as usize + 1],
});

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// The handler installed for every signal aio handles.
extern "C" fn on_signal(sig: libc::c_int) {
    if !(1..=MAX_SIGNAL).contains(&sig) {
        return;
    }
    let saved_errno = sys::errno();
    ACTIVE.fetch_add(1, SeqCst);
    let b = bit(sig);
    for e in &TABLE {
        if e.mask.load(SeqCst) & b == 0 {
            continue;
        }
        let fd = e.fd.load(SeqCst);
        if fd >= 0 {
            e.pending.fetch_or(b, SeqCst);
            sys::write_wake(fd, sig as u8);
        }
    }
    ACTIVE.fetch_sub(1, SeqCst);
    sys::set_errno(saved_errno);
}

/// Whether `handler` is the one this module installs (for tests and
/// diagnostics: the current disposition of a signal aio handles).
pub(crate) fn is_ours(handler: usize) -> bool {
    handler == on_signal as *const () as usize
}

fn lock() -> std::sync::MutexGuard<'static, Dispositions> {
    // The data stays consistent across a panic (plain counters).
    DISPOSITIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One loop's place in the table; freed (and its pipe closed) on drop.
pub(crate) struct Slot {
    index: usize,
    write: Option<OwnedFd>,
}

impl Slot {
    /// Takes a free slot, with a new self-pipe. Returns the slot and the
    /// pipe's read end (non-blocking), for the loop to read.
    pub(crate) fn new() -> io::Result<Option<(Slot, OwnedFd)>> {
        let Some(index) = TABLE
            .iter()
            .position(|e| e.fd.compare_exchange(FREE, BUSY, SeqCst, SeqCst).is_ok())
        else {
            return Ok(None);
        };
        let release = |e| {
            TABLE[index].fd.store(FREE, SeqCst);
            e
        };
        let (read, write) = sys::pipe().map_err(release)?;
        for end in [&read, &write] {
            socket2::SockRef::from(end).set_nonblocking(true).map_err(release)?;
        }
        let e = &TABLE[index];
        e.mask.store(0, SeqCst);
        e.pending.store(0, SeqCst);
        e.fd.store(write.as_raw_fd(), SeqCst);
        Ok(Some((
            Slot {
                index,
                write: Some(write),
            },
            read,
        )))
    }

    /// Wakes the loop's reader (from the loop itself: something changed).
    pub(crate) fn wake(&self) {
        if let Some(w) = &self.write {
            sys::write_wake(w.as_raw_fd(), 0);
        }
    }

    /// The signals received since the last call (bit `sig - 1`).
    pub(crate) fn take_pending(&self) -> u64 {
        TABLE[self.index].pending.swap(0, SeqCst)
    }

    /// Starts delivering `sig` to this slot, installing the handler when
    /// no loop had it yet.
    pub(crate) fn enable(&self, sig: i32) -> io::Result<()> {
        let mut d = lock();
        let s = sig as usize;
        if d.users[s] == 0 {
            d.saved[s] = Some(sys::install(sig, on_signal)?);
        }
        d.users[s] += 1;
        TABLE[self.index].mask.fetch_or(bit(sig), SeqCst);
        Ok(())
    }

    /// Stops delivering `sig` to this slot; the last loop to stop puts the
    /// saved disposition back.
    pub(crate) fn disable(&self, sig: i32) {
        TABLE[self.index].mask.fetch_and(!bit(sig), SeqCst);
        let mut d = lock();
        let s = sig as usize;
        d.users[s] = d.users[s].saturating_sub(1);
        if d.users[s] == 0 {
            if let Some(old) = d.saved[s].take() {
                // Only fails for an invalid signal, which `enable` refused.
                let _ = sys::restore(sig, &old);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let e = &TABLE[self.index];
        let mask = e.mask.load(SeqCst);
        for sig in (1..=MAX_SIGNAL).filter(|&s| mask & bit(s) != 0) {
            self.disable(sig);
        }
        e.fd.store(BUSY, SeqCst);
        // A handler that loaded the descriptor before the store may still
        // write to it: close only once none runs.
        let mut spins = 0u32;
        while ACTIVE.load(SeqCst) != 0 {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        drop(self.write.take());
        e.pending.store(0, SeqCst);
        e.fd.store(FREE, SeqCst);
    }
}
