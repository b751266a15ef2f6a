//! Watching a child exit without a thread per child, and recording its
//! status the moment the loop sees it, as asyncio's child watcher does.
//!
//! Every child is watched from its spawn on by its loop's reaper task (see
//! [`reaper`](super::reaper)): on Linux with a pidfd (5.3+), which becomes
//! readable when the process exits and is registered with the loop's
//! driver; elsewhere (or when forced, as the tests do) the loop listens to
//! SIGCHLD and each watched child looks at itself at every delivery. The
//! reaper reaps the child with `waitpid(pid, WNOHANG)` on its pid only
//! (std's `try_wait`) and records the status in the [`ChildExit`] it shares
//! with the `Process`: `returncode` only reads it, `wait` is woken by it.
//!
//! A wait on another loop of the thread (the child's own loop is not the
//! one running) watches the child itself there. A `Process` dropped while
//! its loop runs leaves its child to the reaper; dropped anywhere else, or
//! after its loop closed, it hands the child to the process-wide orphan
//! thread (see [`orphans`](super::orphans)).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::{Child, ExitStatus};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use aio_core::driver::FdKind;
use aio_core::io::{self as aio_io, Interest, PollReady, Registered};

use super::orphans::{orphan, reap_pending};
use super::reaper::Reaper;
use crate::signal::Subscription;
use crate::sys;

/// How a child's exit is watched.
///
/// `Auto` (the default) uses a pidfd where the kernel has them (Linux 5.3+)
/// and SIGCHLD otherwise; `AIO_FORCE_SIGCHLD=1` in the environment makes
/// `Auto` pick SIGCHLD, so the fallback can be exercised on Linux. The
/// loop's reaper sets the watch up as soon as it finds the child still
/// running after the spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChildWatcher {
    /// A pidfd where available, else SIGCHLD.
    #[default]
    Auto,
    /// A pidfd registered with the loop's driver (Linux 5.3+); waiting
    /// fails where there is none.
    Pidfd,
    /// The loop listens to SIGCHLD and each watched child checks itself at
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

/// What is known of a child's exit: shared by its `Process` (through
/// [`Exit`]) and the reaper that watches it, which records the status.
pub(crate) struct ChildExit {
    pid: u32,
    /// Taken once reaped, or when handed to the orphan thread.
    child: RefCell<Option<Child>>,
    status: Cell<Option<ExitStatus>>,
    /// A reaper watches the child and will record its exit.
    watched: Cell<bool>,
    /// The waits blocked until the reaper records the exit.
    waiters: RefCell<Waiters>,
}

impl ChildExit {
    fn new(child: Child) -> ChildExit {
        ChildExit {
            pid: child.id(),
            child: RefCell::new(Some(child)),
            status: Cell::new(None),
            watched: Cell::new(false),
            waiters: RefCell::new(Waiters::default()),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The recorded exit status, without a system call.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.status.get()
    }

    /// Whether the child is ours to reap still (not reaped, not handed on).
    pub(crate) fn unreaped(&self) -> bool {
        self.child.borrow().is_some()
    }

    /// Reaps the child if it has exited (without waiting), records its
    /// status and wakes the waits.
    pub(crate) fn try_reap(&self) -> Option<ExitStatus> {
        if let Some(s) = self.status.get() {
            return Some(s);
        }
        let res = self.child.borrow_mut().as_mut()?.try_wait();
        let s = match res {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            // Only ECHILD can come from `waitpid(pid, WNOHANG)`: someone
            // else reaped it (SIGCHLD ignored, a `waitpid(-1)` elsewhere in
            // the process). asyncio reports 255 then; so do we.
            Err(_) => ExitStatus::from_raw(255 << 8),
        };
        drop(self.child.borrow_mut().take());
        self.status.set(Some(s));
        self.wake_waiters();
        Some(s)
    }

    fn wake_waiters(&self) {
        let wakers = self.waiters.borrow_mut().take_wakers();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// A reaper watches the child from now on.
    pub(crate) fn set_watched(&self) {
        self.watched.set(true);
    }

    /// The reaper lets go of the child, unreaped: a `Process` still
    /// there watches it itself from now on (its waits are woken to do
    /// so); without one, the orphan thread takes the child.
    pub(crate) fn release(self: &Rc<ChildExit>, how: ChildWatcher) {
        self.watched.set(false);
        if Rc::strong_count(self) > 1 {
            self.wake_waiters();
        } else if let Some(c) = self.child.borrow_mut().take() {
            orphan(c, how.uses_pidfd());
        }
    }
}

/// One slot per wait blocked on the reaper, freed when the wait ends, so
/// that cancelled waits leave nothing behind.
#[derive(Default)]
struct Waiters {
    slots: Vec<Slot>,
}

enum Slot {
    Free,
    /// A wait's; its waker until woken.
    Taken(Option<Waker>),
}

impl Waiters {
    /// Stores `waker` in slot `key` (taking a free slot when `None`).
    fn register(&mut self, key: &mut Option<usize>, waker: &Waker) {
        let k = *key.get_or_insert_with(|| match self.slots.iter().position(|s| matches!(s, Slot::Free)) {
            Some(k) => k,
            None => {
                self.slots.push(Slot::Free);
                self.slots.len() - 1
            }
        });
        match &mut self.slots[k] {
            Slot::Taken(Some(w)) if w.will_wake(waker) => {}
            s => *s = Slot::Taken(Some(waker.clone())),
        }
    }

    fn free(&mut self, key: usize) {
        self.slots[key] = Slot::Free;
        while matches!(self.slots.last(), Some(Slot::Free)) {
            self.slots.pop();
        }
    }

    /// The wakers to wake (outside the borrow), leaving the slots taken.
    fn take_wakers(&mut self) -> Vec<Waker> {
        self.slots
            .iter_mut()
            .filter_map(|s| match s {
                Slot::Taken(w) => w.take(),
                Slot::Free => None,
            })
            .collect()
    }
}

/// Ready once the reaper has recorded the exit, or let go of the child.
struct ReaperWait<'a> {
    exit: &'a ChildExit,
    key: Option<usize>,
}

impl Future for ReaperWait<'_> {
    type Output = Result<(), aio_core::Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        aio_core::cancel::check()?;
        let this = &mut *self;
        if this.exit.status.get().is_some() || !this.exit.watched.get() {
            return Poll::Ready(Ok(()));
        }
        this.exit.waiters.borrow_mut().register(&mut this.key, cx.waker());
        Poll::Pending
    }
}

impl Drop for ReaperWait<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            self.exit.waiters.borrow_mut().free(k);
        }
    }
}

/// A `Process`'s side of its child's exit.
pub(crate) struct Exit {
    state: Rc<ChildExit>,
    how: ChildWatcher,
    /// A watch of its own, for waits on a loop other than the reaper's
    /// (shared with the waits in progress, so none holds a borrow).
    watch: RefCell<Option<Rc<Watch>>>,
    /// The loop's reaper, which watches the child from the spawn on.
    reaper: Rc<Reaper>,
}

impl fmt::Debug for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exit").field("status", &self.state.status()).finish()
    }
}

impl Exit {
    /// Hands `child` to the running loop's `reaper`, which watches it
    /// from now on.
    pub(crate) fn new(child: Child, how: ChildWatcher, reaper: Rc<Reaper>) -> Exit {
        let state = Rc::new(ChildExit::new(child));
        reaper.watch(state.clone(), how);
        Exit {
            state,
            how,
            watch: RefCell::new(None),
            reaper,
        }
    }

    /// The exit status once the loop has recorded it, without a system call.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.state.status()
    }

    /// Waits until the child's exit is recorded.
    pub(crate) async fn wait(&self) -> io::Result<ExitStatus> {
        loop {
            aio_core::cancel::check()?;
            if let Some(s) = self.state.status() {
                return Ok(s);
            }
            if !(self.state.watched.get() && self.reaper.is_running()) {
                return self.wait_here().await;
            }
            ReaperWait {
                exit: &self.state,
                key: None,
            }
            .await?;
        }
    }

    /// Waits with a watch of this loop's own: the reaper's loop is not the
    /// one running, or the reaper could not watch the child.
    async fn wait_here(&self) -> io::Result<ExitStatus> {
        if let Some(s) = self.state.try_reap() {
            return Ok(s);
        }
        let stored = self.watch.borrow().clone();
        let watch = match stored {
            Some(w) if w.is_running() => w,
            _ => {
                let w = Rc::new(Watch::new(self.state.pid, self.how)?);
                *self.watch.borrow_mut() = Some(w.clone());
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
            if let Some(s) = self.state.try_reap() {
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

    /// Sends `sig`, unless the child was reaped (its pid may be reused):
    /// then `ESRCH`, asyncio's `ProcessLookupError`.
    pub(crate) fn send_signal(&self, sig: i32) -> io::Result<()> {
        if self.state.status().is_some() {
            // Reaped: its pid may belong to another process by now. asyncio
            // raises `ProcessLookupError` (ESRCH) here.
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // Not reaped, so the pid is still our child (alive or a zombie).
        sys::kill(self.state.pid, sig)
    }
}

impl Drop for Exit {
    fn drop(&mut self) {
        reap_pending();
        if self.state.watched.get() && self.reaper.is_running() {
            // The reaper reaps it when it exits.
            return;
        }
        // Whoever watches it next (the reaper when its loop runs again, or
        // closes) finds it gone.
        let Some(child) = self.state.child.borrow_mut().take() else {
            return;
        };
        let pidfd = match self.watch.get_mut().as_deref() {
            Some(w) => w.is_pidfd(),
            None => self.how.uses_pidfd(),
        };
        orphan(child, pidfd);
    }
}
