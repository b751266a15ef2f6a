//! File-system calls on threads: what a driver does with an operation no
//! readiness applies to (a regular file is always "ready", and its calls
//! block on the disk), or one its kernel interface lacks (io_uring has no
//! `getdents`).
//!
//! [`Blocking`] follows the completion-driver contract of
//! [`IoDriver`](super::IoDriver): an operation is submitted and identified
//! by a token; while a thread runs its system call the operation's memory
//! must stay alive, so a future dropped meanwhile hands its memory over
//! ([`forget`](Blocking::forget)) and it is freed after the call returns. A
//! cancel ([`cancel`](Blocking::cancel)) stops an operation that has not
//! started (it reports `ECANCELED`); one already in its system call
//! finishes, and its result (how much a write wrote) is reported.
//!
//! [`execute_raw`] is the one definition of each file call's execution,
//! shared by the drivers.

use std::any::Any;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Unpark;
use crate::io::RawOp;
use crate::thread::pool::ThreadPool;

/// Tokens of blocking operations carry this bit, so a driver can tell them
/// from its own.
pub const TOKEN_TAG: u64 = 1 << 62;

/// How many threads may run file calls at once (as many calls in flight:
/// 64 concurrent random reads need 64 threads on a readiness driver).
const MAX_THREADS: usize = 128;

/// A running operation's state.
enum Slot {
    Free(usize),
    Running {
        waker: Option<Waker>,
        cancelled: Arc<AtomicBool>,
        /// The memory of a dropped future, freed after the call.
        owner: Option<Box<dyn Any>>,
    },
    Done(io::Result<usize>),
}

/// The operations a thread finished, waiting for the loop to collect them.
struct Finished {
    results: Mutex<Vec<(usize, io::Result<usize>)>>,
    /// Operations handed to threads and not yet finished.
    running: Mutex<usize>,
    idle: Condvar,
}

/// Runs file calls on a pool of threads for a driver (see the module docs).
pub struct Blocking {
    pool: ThreadPool,
    slots: Vec<Slot>,
    free: usize,
    finished: Arc<Finished>,
    unparker: Arc<dyn Unpark>,
}

/// A raw operation on its way to a thread.
struct SendOp(RawOp);

// SAFETY: the pointers in the operation refer to memory that the
// operation's owner keeps alive until the call returns (the future, or the
// driver after `forget`), and nothing else touches it meanwhile.
unsafe impl Send for SendOp {}

impl Blocking {
    /// An executor that wakes its loop through `unparker` when a call ends.
    pub fn new(unparker: Arc<dyn Unpark>) -> Blocking {
        Blocking {
            pool: ThreadPool::with_name(MAX_THREADS, Duration::from_secs(10), "aio-blocking"),
            slots: Vec::new(),
            free: usize::MAX,
            finished: Arc::new(Finished {
                results: Mutex::new(Vec::new()),
                running: Mutex::new(0),
                idle: Condvar::new(),
            }),
            unparker,
        }
    }

    /// Whether `token` names an operation of this executor.
    pub fn owns(token: u64) -> bool {
        token & TOKEN_TAG != 0
    }

    /// Hands `op` to a thread; its token is written to `token`.
    pub fn submit(&mut self, op: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let slot = Slot::Running {
            waker: Some(waker.clone()),
            cancelled: cancelled.clone(),
            owner: None,
        };
        let i = if self.free != usize::MAX {
            let i = self.free;
            self.free = match self.slots[i] {
                Slot::Free(next) => next,
                _ => unreachable!("the free list holds free slots"),
            };
            self.slots[i] = slot;
            i
        } else {
            self.slots.push(slot);
            self.slots.len() - 1
        };
        let finished = self.finished.clone();
        let unparker = self.unparker.clone();
        let job = SendOp(*op);
        *finished.running.lock() += 1;
        let accepted = self.pool.execute(Box::new(move || {
            let job = job;
            let r = if cancelled.load(Ordering::Acquire) {
                Err(io::Error::from_raw_os_error(libc::ECANCELED))
            } else {
                execute(&job.0)
            };
            finished.results.lock().push((i, r));
            let mut running = finished.running.lock();
            *running -= 1;
            if *running == 0 {
                finished.idle.notify_all();
            }
            drop(running);
            unparker.unpark();
        }));
        if !accepted {
            *self.finished.running.lock() -= 1;
            self.release(i);
            return Poll::Ready(Err(io::Error::other("the file-call threads could not start")));
        }
        *token = Some(TOKEN_TAG | i as u64);
        Poll::Pending
    }

    fn release(&mut self, i: usize) {
        self.slots[i] = Slot::Free(self.free);
        self.free = i;
    }

    fn index(&self, token: u64) -> Option<usize> {
        let i = (token & !TOKEN_TAG) as usize;
        (i < self.slots.len()).then_some(i)
    }

    /// The result of the operation `token` names, once its call returned;
    /// `token` goes back to `None` with it.
    pub fn poll(&mut self, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        self.collect();
        let Some(i) = token.and_then(|t| self.index(t)) else {
            *token = None;
            return Poll::Ready(Err(io::Error::other("file operation lost")));
        };
        match &mut self.slots[i] {
            Slot::Running { waker: w, .. } => {
                match w {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *w = Some(waker.clone()),
                }
                Poll::Pending
            }
            Slot::Done(_) => {
                let Slot::Done(r) = std::mem::replace(&mut self.slots[i], Slot::Free(0)) else {
                    unreachable!()
                };
                self.release(i);
                *token = None;
                Poll::Ready(r)
            }
            Slot::Free(_) => {
                *token = None;
                Poll::Ready(Err(io::Error::other("file operation lost")))
            }
        }
    }

    /// Stops the operation if its call has not started.
    pub fn cancel(&mut self, token: u64) {
        if let Some(Slot::Running { cancelled, .. }) = self.index(token).map(|i| &self.slots[i]) {
            cancelled.store(true, Ordering::Release);
        }
    }

    /// The operation's future was dropped: keep `owner` until the call
    /// returns (or free it now if it has).
    pub fn forget(&mut self, token: u64, owner: Box<dyn Any>) {
        let Some(i) = self.index(token) else { return };
        match &mut self.slots[i] {
            Slot::Running {
                owner: o, cancelled, ..
            } => {
                cancelled.store(true, Ordering::Release);
                *o = Some(owner);
            }
            Slot::Done(_) => {
                drop(owner);
                self.release(i);
            }
            Slot::Free(_) => drop(owner),
        }
    }

    /// Takes in the calls that returned, waking their futures (the driver
    /// calls this when it parks).
    pub fn collect(&mut self) {
        let results = std::mem::take(&mut *self.finished.results.lock());
        for (i, r) in results {
            match std::mem::replace(&mut self.slots[i], Slot::Done(r)) {
                Slot::Running { owner: Some(owner), .. } => {
                    // Nobody waits: the memory can go now.
                    drop(owner);
                    self.release(i);
                }
                Slot::Running { waker, .. } => {
                    if let Some(w) = waker {
                        w.wake();
                    }
                }
                _ => unreachable!("a call returns once"),
            }
        }
    }

    /// Operations whose calls have not been collected.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| !matches!(s, Slot::Free(_))).count()
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        // Threads may still write into memory of dropped futures: wait for
        // them (bounded), and leak what is still in use after that.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut running = self.finished.running.lock();
        while *running > 0 {
            if self.finished.idle.wait_until(&mut running, deadline).timed_out() {
                break;
            }
        }
        let stuck = *running > 0;
        drop(running);
        self.collect();
        if stuck {
            log::error!("file calls still running when the loop closed; leaking their memory");
            for s in std::mem::take(&mut self.slots) {
                if let Slot::Running { owner: Some(o), .. } = s {
                    std::mem::forget(o);
                }
            }
        }
        self.pool.shutdown(Duration::from_secs(1));
    }
}

/// The result of a libc call that returns -1 on error, retried on `EINTR`.
fn retry(mut f: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Runs a file call (or a read/write of a regular file) on this thread,
/// blocking it: the one execution of these calls for every driver.
/// Socket operations are not file calls; they get `EINVAL`.
///
/// # Safety
/// The pointers in `op` must be valid as its variant documents, for the
/// duration of the call.
pub unsafe fn execute_raw(op: &RawOp) -> io::Result<usize> {
    match *op {
        RawOp::Read { fd, buf, len, offset } => retry(|| match offset {
            // SAFETY: the caller guarantees `len` writable bytes at `buf`.
            None => unsafe { libc::read(fd, buf.cast(), len) },
            // SAFETY: as above.
            Some(off) => unsafe { libc::pread(fd, buf.cast(), len, off as libc::off_t) },
        }),
        RawOp::Write { fd, buf, len, offset } => retry(|| match offset {
            // SAFETY: the caller guarantees `len` readable bytes at `buf`.
            None => unsafe { libc::write(fd, buf.cast(), len) },
            // SAFETY: as above.
            Some(off) => unsafe { libc::pwrite(fd, buf.cast(), len, off as libc::off_t) },
        }),
        RawOp::OpenAt {
            dirfd,
            path,
            flags,
            mode,
        } => {
            // SAFETY: the caller guarantees a NUL-terminated `path`.
            retry(|| unsafe { libc::openat(dirfd, path, flags | libc::O_CLOEXEC, mode) } as isize)
        }
        RawOp::Statx {
            dirfd,
            path,
            flags,
            mask,
            buf,
        } => {
            // SAFETY: the caller guarantees `path` and a writable `buf`.
            retry(|| unsafe { libc::statx(dirfd, path, flags, mask, buf) } as isize)
        }
        RawOp::Fsync { fd, datasync } => retry(|| {
            if datasync {
                // SAFETY: no pointers.
                unsafe { libc::fdatasync(fd) as isize }
            } else {
                // SAFETY: no pointers.
                unsafe { libc::fsync(fd) as isize }
            }
        }),
        RawOp::Ftruncate { fd, len } => {
            let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
            // SAFETY: no pointers.
            retry(|| unsafe { libc::ftruncate(fd, len) } as isize)
        }
        RawOp::UnlinkAt { dirfd, path, flags } => {
            // SAFETY: the caller guarantees a NUL-terminated `path`.
            retry(|| unsafe { libc::unlinkat(dirfd, path, flags) } as isize)
        }
        RawOp::RenameAt {
            from_dir,
            from,
            to_dir,
            to,
            flags,
        } => {
            // SAFETY: the caller guarantees NUL-terminated paths.
            retry(|| unsafe { libc::renameat2(from_dir, from, to_dir, to, flags) } as isize)
        }
        RawOp::MkdirAt { dirfd, path, mode } => {
            // SAFETY: the caller guarantees a NUL-terminated `path`.
            retry(|| unsafe { libc::mkdirat(dirfd, path, mode) } as isize)
        }
        RawOp::Splice {
            fd_in,
            off_in,
            fd_out,
            len,
        } => {
            let mut off = off_in.map(|o| o as libc::loff_t);
            let off_ptr = off.as_mut().map_or(std::ptr::null_mut(), |o| o as *mut libc::loff_t);
            // SAFETY: `off_ptr` is null or points to `off`, alive for the
            // call; the kernel checks the descriptors.
            retry(|| unsafe {
                libc::splice(
                    fd_in,
                    off_ptr,
                    fd_out,
                    std::ptr::null_mut(),
                    len,
                    libc::SPLICE_F_NONBLOCK,
                ) as isize
            })
        }
        RawOp::SendFile { fd, in_fd, offset, len } => {
            let mut off = offset as libc::off_t;
            // SAFETY: `off` is alive for the call; the kernel checks the
            // descriptors.
            retry(|| unsafe { libc::sendfile(fd, in_fd, &mut off, len) as isize })
        }
        RawOp::Getdents { fd, buf, len } => {
            // SAFETY: the caller guarantees `len` writable bytes at `buf`.
            retry(|| unsafe { libc::syscall(libc::SYS_getdents64, fd, buf, len) } as isize)
        }
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// [`execute_raw`] for an operation a thread was handed.
fn execute(op: &RawOp) -> io::Result<usize> {
    // SAFETY: the operation's owner keeps its memory alive until the
    // thread reports the result (see `Blocking::forget`).
    unsafe { execute_raw(op) }
}
