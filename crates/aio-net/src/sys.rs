//! The system calls std does not offer, and the only unsafe code of
//! aio-net: `pidfd_open`, `kill` with any signal, `poll`, `setsid` and `setpgid` in a
//! child before it runs its program, `sigaction` (keeping the
//! disposition it replaced), close-on-exec pipes, and the
//! async-signal-safe pieces of the signal handler (one-byte `write`,
//! `errno`).
//!
//! Each function is a thin wrapper with a safe signature; everything above
//! it (processes, signals) is safe code.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The libc result of a call that returns -1 on failure.
fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// How a child sets itself up before it runs its program: a new session
/// (asyncio's `start_new_session`), then a process group (`process_group`;
/// -1: none), in the order of CPython's `_posixsubprocess`.
#[derive(Debug)]
pub(crate) struct ChildSetup {
    pub(crate) new_session: AtomicBool,
    pub(crate) pgid: AtomicI32,
}

impl Default for ChildSetup {
    fn default() -> ChildSetup {
        ChildSetup {
            new_session: AtomicBool::new(false),
            pgid: AtomicI32::new(-1),
        }
    }
}

/// Makes every child `cmd` spawns run `setup` (as it is when the child is
/// spawned) before its program.
pub(crate) fn before_exec(cmd: &mut std::process::Command, setup: Arc<ChildSetup>) {
    use std::os::unix::process::CommandExt;
    let hook = move || {
        if setup.new_session.load(Ordering::Relaxed) {
            // SAFETY: setsid takes no arguments.
            cvt(unsafe { libc::setsid() })?;
        }
        let pgid = setup.pgid.load(Ordering::Relaxed);
        if pgid >= 0 {
            // SAFETY: setpgid takes two integers (0: this process).
            cvt(unsafe { libc::setpgid(0, pgid) })?;
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before `exec`, where only
    // async-signal-safe steps are allowed: it reads two atomics, calls
    // `setsid` and `setpgid` (both async-signal-safe), and on failure
    // makes an `io::Error` from `errno` (a code: no allocation, no lock).
    unsafe { cmd.pre_exec(hook) };
}

/// A pidfd for `pid` (Linux 5.3+): readable once the process exits.
///
/// `pid` must be an unreaped child of ours, so the number cannot have been
/// reused by another process.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags (none) and returns a new
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor (close-on-exec) that
    // nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfds are Linux only: the SIGCHLD fallback runs elsewhere.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pidfd_open(_pid: u32) -> io::Result<OwnedFd> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// `kill(pid, sig)`.
pub(crate) fn kill(pid: u32, sig: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill takes two integers; no memory is passed.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// A pipe, both ends close-on-exec and blocking: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // SAFETY: as above; close-on-exec is set right after (no exec can
        // happen in between on this thread, and aio spawns from the loop).
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        for fd in fds {
            // SAFETY: `fd` was just created and is open.
            cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        }
    }
    // SAFETY: pipe2 returned two new descriptors that nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `poll(fds, timeout_ms)` (-1: no timeout): how many entries have
/// events (their `revents` set).
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    let n = libc::nfds_t::try_from(fds.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fds` is valid for reading and writing `n` entries for the
    // duration of the call.
    cvt(unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) }).map(|n| n as usize)
}

/// A signal disposition, as `sigaction` reported it.
pub(crate) struct Action(libc::sigaction);

impl Action {
    /// The handler address (`SIG_DFL` is 0, `SIG_IGN` is 1).
    pub(crate) fn handler(&self) -> usize {
        self.0.sa_sigaction
    }
}

/// Installs `handler` for `sig` (restarting interrupted calls) and returns
/// the disposition it replaced.
pub(crate) fn install(sig: i32, handler: extern "C" fn(libc::c_int)) -> io::Result<Action> {
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask).
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = handler as *const () as usize;
    new.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `new.sa_mask` is a valid sigset to initialize; `new` and
    // `old` are valid for the duration of the call. The handler only uses
    // async-signal-safe operations (atomics, `write`, `errno`).
    unsafe {
        libc::sigemptyset(&mut new.sa_mask);
        cvt(libc::sigaction(sig, &new, &mut old))?;
    }
    Ok(Action(old))
}

/// Puts back a disposition saved by [`install`].
pub(crate) fn restore(sig: i32, old: &Action) -> io::Result<()> {
    // SAFETY: `old` is a disposition the kernel gave us for this signal;
    // passing a null pointer for the old action is allowed.
    cvt(unsafe { libc::sigaction(sig, &old.0, std::ptr::null_mut()) }).map(drop)
}

/// The current disposition of `sig`, without changing it.
pub(crate) fn current(sig: i32) -> io::Result<Action> {
    // SAFETY: an all-zero sigaction is a valid value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is valid for writing.
    cvt(unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) })?;
    Ok(Action(old))
}

/// Writes one byte to `fd`, ignoring failure (a full pipe already holds a
/// wake-up). Async-signal-safe.
pub(crate) fn write_wake(fd: RawFd, byte: u8) {
    // SAFETY: `byte` is valid for one byte; the caller guarantees `fd` is
    // open (see `signal::registry`).
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

#[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
use libc::__errno as errno_location;
#[cfg(any(target_os = "linux", target_os = "android"))]
use libc::__errno_location as errno_location;
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
use libc::__error as errno_location;

/// The calling thread's `errno`. Async-signal-safe.
pub(crate) fn errno() -> i32 {
    // SAFETY: the location of the thread's errno is always valid.
    unsafe { *errno_location() }
}

/// Sets the calling thread's `errno` (a signal handler restores it).
/// Async-signal-safe.
pub(crate) fn set_errno(v: i32) {
    // SAFETY: as above.
    unsafe { *errno_location() = v };
}
