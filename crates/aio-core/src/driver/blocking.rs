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
//! finishes, and its result (how much a write wrote) is reported — or, for
//! a call whose output needs none of its memory (an open), its future
//! goes on without it ([`IoDriver::cancel_may_wait`](super::IoDriver::cancel_may_wait)).
//!
//! Nothing a dropped operation's call brings is lost: a descriptor it
//! opened is closed when it arrives, and what a read at a file's cursor
//! got is handed to the next read of that descriptor, first (reads issued
//! meanwhile wait for it), as io_uring's driver keeps what its dropped
//! receives got ([`super::kept`]). A closing driver waits briefly
//! for calls still running; one the kernel blocks indefinitely is left to
//! its thread, which disposes of its own result.
//!
//! [`execute_raw`] is the one definition of each file call's execution,
//! shared by the drivers.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Unpark;
use super::kept::{self, Kept};
use crate::io::raw::RawOp;
use crate::thread::pool::ThreadPool;

/// Tokens of blocking operations carry this bit, so a driver can tell them
/// from its own.
pub const TOKEN_TAG: u64 = 1 << 62;

/// How many threads may run file calls at once (as many calls in flight:
/// 64 concurrent random reads need 64 threads on a readiness driver).
const MAX_THREADS: usize = 128;

/// How long a closing driver waits for calls still running (every future
/// is gone by then: these are dropped operations). Calls on regular files
/// end within it; a call the kernel blocks indefinitely (an open of a FIFO
/// nobody writes to) is left to its thread, its memory leaked.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A running operation's state.
enum Slot {
    Free(usize),
    Running {
        waker: Option<Waker>,
        cancelled: Arc<AtomicBool>,
        /// The memory of a dropped future, freed after the call.
        owner: Option<Box<dyn Any>>,
        /// The call, for what its result means once nobody waits for it.
        raw: RawOp,
        /// A dropped read at its file's cursor: the registration of its
        /// descriptor's [`Kept`] entry, which gets what it read.
        keep: Option<u64>,
    },
    Done(io::Result<usize>, RawOp),
}

/// What dropped reads at a descriptor's cursor got (see [`Kept`]), for one
/// registration of the descriptor number.
struct KeptFd {
    registration: u64,
    kept: Kept,
}

/// The operations a thread finished, waiting for the loop to collect them.
struct Finished {
    results: Mutex<Results>,
    /// Operations handed to threads and not yet finished.
    running: Mutex<usize>,
    idle: Condvar,
}

#[derive(Default)]
struct Results {
    list: Vec<(usize, io::Result<usize>)>,
    /// The driver is gone: a thread that finishes now disposes of its
    /// result itself (a descriptor it opened is closed) and frees the
    /// memory its call used, which the driver left here by slot.
    abandoned: bool,
    left: HashMap<usize, Left>,
}

/// The memory of a call still running when its driver closed.
struct Left(#[allow(dead_code)] Box<dyn Any>);

// SAFETY: the loop thread gave the memory up for good when it put it here;
// from then on only the thread running the call touches it (through the
// call's pointers), and it drops it once the call returned.
unsafe impl Send for Left {}

/// Runs file calls on a pool of threads for a driver (see the module docs).
pub struct Blocking {
    pool: ThreadPool,
    slots: Vec<Slot>,
    free: usize,
    finished: Arc<Finished>,
    unparker: Arc<dyn Unpark>,
    /// Per descriptor, what dropped reads at the cursor got (rarely any).
    kept: HashMap<RawFd, KeptFd>,
    next_registration: u64,
}

/// A raw operation on its way to a thread.
struct SendOp(RawOp);

// SAFETY: the pointers in the operation refer to memory that the
// operation's owner keeps alive until the call returns (the future, or the
// driver after `forget`), and nothing else touches it meanwhile.
unsafe impl Send for SendOp {}

/// Closes the descriptor a successful `raw` returned, which nobody will
/// take: its future is gone.
fn close_unclaimed(raw: &RawOp, res: &io::Result<usize>) {
    if let (true, Ok(fd)) = (raw.returns_fd(), res) {
        // SAFETY: a new descriptor the call made for this operation alone.
        drop(unsafe { OwnedFd::from_raw_fd(*fd as RawFd) });
    }
}

impl Blocking {
    /// An executor that wakes its loop through `unparker` when a call ends.
    pub fn new(unparker: Arc<dyn Unpark>) -> Blocking {
        Blocking {
            pool: ThreadPool::with_name(MAX_THREADS, Duration::from_secs(10), "aio-blocking"),
            slots: Vec::new(),
            free: usize::MAX,
            finished: Arc::new(Finished {
                results: Mutex::new(Results::default()),
                running: Mutex::new(0),
                idle: Condvar::new(),
            }),
            unparker,
            kept: HashMap::new(),
            next_registration: 0,
        }
    }

    /// Whether `token` names an operation of this executor.
    pub fn owns(token: u64) -> bool {
        token & TOKEN_TAG != 0
    }

    /// Hands `op` to a thread; its token is written to `token`. A read at
    /// a file's cursor first gets what dropped reads of that descriptor
    /// got, and waits for those still running (without a token: nothing
    /// of it is on a thread).
    pub fn submit(&mut self, op: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        if let Some(p) = self.complete_from_kept(op, waker) {
            return p;
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let slot = Slot::Running {
            waker: Some(waker.clone()),
            cancelled: cancelled.clone(),
            owner: None,
            raw: *op,
            keep: None,
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
            let mut results = finished.results.lock();
            let left = if results.abandoned {
                close_unclaimed(&job.0, &r);
                results.left.remove(&i)
            } else {
                results.list.push((i, r));
                None
            };
            drop(results);
            drop(left);
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

    /// Completes `op` at once from what dropped reads of its descriptor
    /// got, or makes it wait for those still running; `None` when neither
    /// applies (the usual case: one check of an empty map).
    fn complete_from_kept(&mut self, op: &RawOp, waker: &Waker) -> Option<Poll<io::Result<usize>>> {
        if self.kept.is_empty() {
            return None;
        }
        kept::class(op)?;
        let entry = self.kept.get_mut(&op.fd())?;
        if entry.kept.must_wait(waker) {
            return Some(Poll::Pending);
        }
        // SAFETY: `op` was not handed to a thread: its memory is the
        // caller's, alive for this call.
        let r = unsafe { entry.kept.deliver(op) }?;
        if entry.kept.is_idle() {
            self.kept.remove(&op.fd());
        }
        Some(Poll::Ready(r))
    }

    /// Descriptor `fd` is closed: what dropped reads kept for it goes (a
    /// read still running on it gives its data to nobody, never to a new
    /// descriptor with the same number).
    pub fn closed(&mut self, fd: RawFd) {
        if !self.kept.is_empty() {
            self.kept.remove(&fd);
        }
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
            Slot::Done(..) => {
                let Slot::Done(r, _) = std::mem::replace(&mut self.slots[i], Slot::Free(0)) else {
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
    /// returns (or free it now if it has). What the call brings is not
    /// lost: a descriptor it opened is closed, and what a read at a file's
    /// cursor got goes to the next read of that descriptor.
    pub fn forget(&mut self, token: u64, owner: Box<dyn Any>) {
        let Some(i) = self.index(token) else { return };
        match &mut self.slots[i] {
            Slot::Running {
                owner: o,
                cancelled,
                raw,
                keep,
                ..
            } => {
                cancelled.store(true, Ordering::Release);
                *o = Some(owner);
                if kept::class(raw).is_some() {
                    let entry = kept_entry(&mut self.kept, &mut self.next_registration, raw.fd());
                    entry.kept.expect();
                    *keep = Some(entry.registration);
                }
            }
            Slot::Done(..) => {
                let Slot::Done(r, raw) = std::mem::replace(&mut self.slots[i], Slot::Free(0)) else {
                    unreachable!()
                };
                let registration = self.kept.get(&raw.fd()).map(|e| e.registration);
                // SAFETY: `owner` holds the call's memory, and the call returned.
                unsafe { self.dispose(&raw, r, registration.or(Some(u64::MAX)), false) };
                drop(owner);
                self.release(i);
            }
            Slot::Free(_) => drop(owner),
        }
    }

    /// Disposes of the result of a call nobody waits for: a new descriptor
    /// is closed; what a read at the cursor got is kept for registration
    /// `keep` of its descriptor (`u64::MAX`: whichever is current), if that
    /// is still the descriptor's; `expected` says the read was counted as
    /// running ([`Kept::expect`]).
    ///
    /// # Safety
    /// The memory `raw` points to must be alive, and the call returned.
    unsafe fn dispose(&mut self, raw: &RawOp, res: io::Result<usize>, keep: Option<u64>, expected: bool) {
        close_unclaimed(raw, &res);
        let (Some(registration), Some(_)) = (keep, kept::class(raw)) else {
            return;
        };
        let fd = raw.fd();
        let entry = if registration == u64::MAX {
            Some(kept_entry(&mut self.kept, &mut self.next_registration, fd))
        } else {
            self.kept.get_mut(&fd).filter(|e| e.registration == registration)
        };
        let Some(entry) = entry else {
            return; // the descriptor was closed meanwhile: nobody can read it
        };
        let n = res.map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
        // SAFETY: forwarded from the caller.
        unsafe { entry.kept.capture(raw, n, true) };
        if expected {
            entry.kept.arrived();
        }
        if entry.kept.is_idle() {
            self.kept.remove(&fd);
        }
    }

    /// Takes in the calls that returned, waking their futures (the driver
    /// calls this when it parks).
    pub fn collect(&mut self) {
        let results = std::mem::take(&mut self.finished.results.lock().list);
        for (i, r) in results {
            let Slot::Running { raw, .. } = &self.slots[i] else {
                unreachable!("a call returns once")
            };
            let raw = *raw;
            match std::mem::replace(&mut self.slots[i], Slot::Done(r, raw)) {
                Slot::Running {
                    owner: Some(owner),
                    keep,
                    ..
                } => {
                    // Nobody waits: dispose of the result, then the memory
                    // can go.
                    let Slot::Done(r, raw) = std::mem::replace(&mut self.slots[i], Slot::Free(0)) else {
                        unreachable!()
                    };
                    // SAFETY: `owner` holds the call's memory, and the call returned.
                    unsafe { self.dispose(&raw, r, keep, true) };
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

/// The [`Kept`] entry of `fd`, made (with a new registration) if missing.
fn kept_entry<'a>(kept: &'a mut HashMap<RawFd, KeptFd>, next: &mut u64, fd: RawFd) -> &'a mut KeptFd {
    kept.entry(fd).or_insert_with(|| {
        *next += 1;
        KeptFd {
            registration: *next,
            kept: Kept::default(),
        }
    })
}

impl Drop for Blocking {
    fn drop(&mut self) {
        // Threads may still write into memory of dropped futures: wait for
        // them (bounded); then the threads still running dispose of their
        // results themselves, and their memory is leaked.
        let deadline = Instant::now() + CLOSE_WAIT;
        let mut running = self.finished.running.lock();
        while *running > 0 {
            if self.finished.idle.wait_until(&mut running, deadline).timed_out() {
                break;
            }
        }
        let stuck = *running > 0;
        drop(running);
        self.finished.results.lock().abandoned = true;
        self.collect();
        if stuck {
            log::warn!("file calls still blocked in the kernel when the loop closed; leaving them to their threads");
            let mut results = self.finished.results.lock();
            for (i, s) in std::mem::take(&mut self.slots).into_iter().enumerate() {
                match s {
                    // The thread frees it after its call.
                    Slot::Running { owner: Some(o), .. } => drop(results.left.insert(i, Left(o))),
                    // A future that outlived its loop still owns this
                    // memory: it must not free it under the thread.
                    Slot::Running { owner: None, .. } => {
                        log::error!("a file call's future outlived its loop while the call runs");
                    }
                    _ => {}
                }
            }
        }
        self.pool.shutdown(if stuck { Duration::ZERO } else { CLOSE_WAIT });
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
            let fd = retry(|| unsafe { libc::openat(dirfd, path, flags | libc::O_CLOEXEC, mode) } as isize)?;
            if flags & libc::O_NONBLOCK == 0 {
                make_waitable(fd as RawFd);
            }
            Ok(fd)
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

/// Puts a FIFO, socket or character device just opened (blocking, as
/// `open(2)` without `O_NONBLOCK` waits for a FIFO's other end) into
/// non-blocking mode, so that a readiness driver waits for its data
/// instead of blocking a thread in `read(2)` that no cancellation could
/// end. The description is the opener's alone; aio-fs gives blocking mode
/// back when it hands the file out as a std file. Regular files,
/// directories and block devices are left as they are.
fn make_waitable(fd: RawFd) {
    // SAFETY: `st` is a valid out-pointer; a failed call leaves the
    // descriptor as it was.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return;
        }
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFIFO || kind == libc::S_IFSOCK || kind == libc::S_IFCHR {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
    }
}

/// [`execute_raw`] for an operation a thread was handed.
fn execute(op: &RawOp) -> io::Result<usize> {
    // SAFETY: the operation's owner keeps its memory alive until the
    // thread reports the result (see `Blocking::forget`).
    unsafe { execute_raw(op) }
}
