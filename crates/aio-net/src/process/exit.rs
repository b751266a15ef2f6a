//! Watching a child exit without a thread per child, and reaping every
//! child, even one whose `Process` is dropped first.
//!
//! On Linux a pidfd (5.3+) becomes readable when its process exits; it is
//! registered with the loop's driver and awaited with a readiness wait,
//! which both backends run. Elsewhere (or when forced, as the tests do),
//! the loop listens to SIGCHLD and every waiting child checks itself at
//! each delivery. Either way `waitpid(pid, WNOHANG)` (std's `try_wait`)
//! reaps.
//!
//! A `Process` dropped while its child runs hands the child to its loop's
//! reaper (see [`reaper`](super::reaper)), or, once that loop has closed,
//! to the process-wide orphan thread (see [`orphans`](super::orphans)).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Child, ExitStatus};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use aio_core::driver::FdKind;
use aio_core::io::{self as aio_io, Interest, PollReady, Registered};

use super::reaper::Reaper;
use crate::signal::Subscription;
use crate::sys;

/// How a child's exit is watched.
///
/// `Auto` (the default) uses a pidfd where the kernel has them (Linux 5.3+)
/// and SIGCHLD otherwise; `AIO_FORCE_SIGCHLD=1` in the environment makes
/// `Auto` pick SIGCHLD, so the fallback can be exercised on Linux. The
/// watch is set up the first time a wait would block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChildWatcher {
    /// A pidfd where available, else SIGCHLD.
    #[default]
    Auto,
    /// A pidfd registered with the loop's driver (Linux 5.3+); waiting
    /// fails where there is none.
    Pidfd,
    /// The loop listens to SIGCHLD and each waiting child checks itself at
    /// every delivery. Installs a process-wide SIGCHLD handler while
    /// children are watched (restoring the previous disposition after).
    Sigchld,
}

impl ChildWatcher {
    /// Whether a child watched this way is watched with a pidfd (where
    /// the kernel has them).
    pub(crate) fn uses_pidfd(self) -> bool {
        match self {
            ChildWatcher::Pidfd => true,
            ChildWatcher::Sigchld => false,
            ChildWatcher::Auto => !(forced_sigchld() || NO_PIDFD.load(Ordering::Relaxed)),
        }
    }
}

/// Whether `pidfd_open` was found missing (ENOSYS, or refused by a
/// sandbox): later spawns go straight to SIGCHLD.
static NO_PIDFD: AtomicBool = AtomicBool::new(false);

fn forced_sigchld() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("AIO_FORCE_SIGCHLD").is_ok_and(|v| v == "1"))
}

/// What a child's exit is awaited on.
pub(crate) enum Watch {
    Pidfd(Registered),
    Sigchld(Subscription),
}

impl Watch {
    /// Sets up the watch for a child of ours not reaped yet, on the
    /// running loop.
    pub(crate) fn new(pid: u32, how: ChildWatcher) -> io::Result<Watch> {
        let pidfd = |pid| {
            sys::pidfd_open(pid)
                .and_then(|fd| Registered::with_kind(fd, FdKind::Other))
                .map(Watch::Pidfd)
        };
        let sigchld = || Ok(Watch::Sigchld(Subscription::new(libc::SIGCHLD)?));
        match how {
            ChildWatcher::Pidfd => pidfd(pid),
            ChildWatcher::Sigchld => sigchld(),
            ChildWatcher::Auto if forced_sigchld() || NO_PIDFD.load(Ordering::Relaxed) => sigchld(),
            ChildWatcher::Auto => match pidfd(pid) {
                Ok(w) => Ok(w),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM | libc::EACCES)) => {
                    NO_PIDFD.store(true, Ordering::Relaxed);
                    sigchld()
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Whether this is a pidfd watch.
    pub(crate) fn is_pidfd(&self) -> bool {
        matches!(self, Watch::Pidfd(_))
    }

    /// Whether the watch's loop is the one running on this thread.
    fn is_running(&self) -> bool {
        match self {
            Watch::Pidfd(fd) => fd.owner().is_running(),
            Watch::Sigchld(sub) => sub.is_running(),
        }
    }
}

/// A child and what its exit is awaited on.
///
/// The watch is set up only when a wait would block: a child that has
/// exited by the time it is awaited (common when several are spawned
/// together) costs no pidfd and no registration. It belongs to the loop
/// that was running then (it is registered there); a wait on another loop
/// of the thread uses a watch of its own.
pub(crate) struct Exit {
    child: RefCell<Option<Child>>,
    pid: u32,
    status: Cell<Option<ExitStatus>>,
    how: ChildWatcher,
    /// Shared with the waits in progress (so none holds a borrow).
    watch: RefCell<Option<Rc<Watch>>>,
    /// The watch belongs to the reaper's loop.
    watch_home: Cell<bool>,
    /// Takes the child over if it outlives us.
    reaper: Rc<Reaper>,
}

impl fmt::Debug for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exit").field("status", &self.status.get()).finish()
    }
}

impl Exit {
    pub(crate) fn new(child: Child, how: ChildWatcher, reaper: Rc<Reaper>) -> Exit {
        Exit {
            pid: child.id(),
            child: RefCell::new(Some(child)),
            status: Cell::new(None),
            how,
            watch: RefCell::new(None),
            watch_home: Cell::new(false),
            reaper,
        }
    }

    /// The exit status if the child has exited (reaping it), without waiting.
    pub(crate) fn try_status(&self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status.get() {
            return Ok(Some(s));
        }
        let s = match self.child.borrow_mut().as_mut() {
            Some(c) => c.try_wait()?,
            None => None,
        };
        // The watch stays until the `Process` is dropped: another task may
        // still be waiting on it.
        self.status.set(s);
        Ok(s)
    }

    /// The exit status once known (reaped), without a system call.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.status.get()
    }

    /// Waits for the child to exit and reaps it.
    pub(crate) async fn wait(&self) -> io::Result<ExitStatus> {
        aio_core::cancel::check()?;
        if let Some(s) = self.try_status()? {
            return Ok(s);
        }
        let stored = self.watch.borrow().clone();
        let watch = match stored {
            Some(w) if w.is_running() => w,
            // Set up on another loop of this thread: one for this wait.
            Some(_) => Rc::new(Watch::new(self.pid, self.how)?),
            None => {
                let w = Rc::new(Watch::new(self.pid, self.how)?);
                *self.watch.borrow_mut() = Some(w.clone());
                self.watch_home.set(self.reaper.is_running());
                w
            }
        };
        loop {
            // Read the SIGCHLD generation before looking, so an exit
            // between the look and the wait is not missed.
            let seen = match &*watch {
                Watch::Sigchld(sub) => sub.generation(),
                Watch::Pidfd(_) => 0,
            };
            if let Some(s) = self.try_status()? {
                return Ok(s);
            }
            match &*watch {
                Watch::Pidfd(fd) => {
                    aio_io::submit(PollReady::new(fd.as_raw_fd(), Interest::Readable)).await?;
                }
                Watch::Sigchld(sub) => {
                    poll_fn(|cx| {
                        aio_core::cancel::check()?;
                        sub.poll_after(seen, cx).map_err(io::Error::from)
                    })
                    .await?;
                }
            }
        }
    }

    /// Sends `sig` unless the child was reaped (its pid may be reused).
    pub(crate) fn send_signal(&self, sig: i32) -> io::Result<()> {
        if self.status.get().is_some() {
            return Ok(());
        }
        // Not reaped, so the pid is still our child (alive or a zombie).
        sys::kill(self.pid, sig)
    }
}

impl Drop for Exit {
    fn drop(&mut self) {
        // Whatever happens below, the reaper may have become idle.
        self.reaper.wake();
        let Some(mut child) = self.child.get_mut().take() else {
            return;
        };
        if self.status.get().is_some() || !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        // No wait is in progress (it would borrow us): the Rc is ours alone.
        let watch = match self.watch.get_mut().take().and_then(|w| Rc::try_unwrap(w).ok()) {
            Some(w) if self.watch_home.get() => Some(w),
            // A watch registers with the running loop: set one up for the
            // reaper's loop only while it runs (else: the orphan thread).
            _ if self.reaper.is_running() => Watch::new(self.pid, self.how).ok(),
            _ => None,
        };
        self.reaper.adopt(child, watch, self.how);
    }
}
