//! Reaping children nobody waits for, so none is left a zombie.
//!
//! Each loop that spawns gets one reaper task (`aio-reaper`), created at a
//! spawn — never while the loop closes, so closing never waits for it —
//! and kept while a `Process` of that loop exists or a child is left to
//! reap (then it ends, so `all_tasks()` does not keep showing it). A
//! `Process` dropped while its child runs hands the child and its exit
//! watch to that task, which waits on all of them at once and reaps each
//! as it exits. When the loop closes (the task is cancelled or
//! dropped), or when a child is dropped with no reaper to take it, the
//! child goes to the process-wide orphan thread (see
//! [`orphans`](super::orphans)), which reaps it when it exits.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::process::Child;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use aio_core::io::{self as aio_io, Interest, OpFuture, PollReady};

use super::exit::{ChildWatcher, Watch};
use super::orphans::{orphan, reap_pending};

thread_local! {
    static REAPERS: RefCell<Vec<Weak<Reaper>>> = const { RefCell::new(Vec::new()) };
}

/// One loop's reaper: the children handed over, and the task's waker.
pub(crate) struct Reaper {
    /// The loop (to tell whether it is the one running).
    lp: aio_core::Loop,
    handed: RefCell<Vec<(Child, Watch)>>,
    waker: RefCell<Option<Waker>>,
    /// The task ended: children go to the orphan thread instead.
    stopped: Cell<bool>,
}

impl Reaper {
    /// The running loop's reaper, created with its task on first use.
    ///
    /// # Panics
    /// When no loop runs on this thread (spawning checks first).
    pub(crate) fn current() -> Rc<Reaper> {
        let found = REAPERS.with(|l| {
            let mut l = l.borrow_mut();
            l.retain(|w| w.strong_count() > 0);
            l.iter()
                .filter_map(Weak::upgrade)
                .find(|r| !r.stopped.get() && r.lp.is_running())
        });
        if let Some(r) = found {
            return r;
        }
        let r = Rc::new(Reaper {
            lp: aio_core::get_running_loop(),
            handed: RefCell::new(Vec::new()),
            waker: RefCell::new(None),
            stopped: Cell::new(false),
        });
        REAPERS.with(|l| l.borrow_mut().push(Rc::downgrade(&r)));
        let task = aio_core::create_task(ReapTask {
            r: r.clone(),
            watching: Vec::new(),
        });
        task.set_name("aio-reaper");
        r
    }

    /// Whether the reaper's loop is the one running on this thread (and
    /// the reaper still takes children).
    pub(crate) fn is_running(&self) -> bool {
        !self.stopped.get() && self.lp.is_running()
    }

    /// Lets the task look again (a `Process` went away: it may be idle).
    pub(crate) fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Takes over a child that is still running, watched by `watch` (set
    /// up on this reaper's loop), or hands it to the orphan thread when
    /// there is none (watching it the way `how` says).
    pub(crate) fn adopt(&self, child: Child, watch: Option<Watch>, how: ChildWatcher) {
        reap_pending();
        match watch {
            Some(w) if !self.stopped.get() => {
                self.handed.borrow_mut().push((child, w));
                if let Some(w) = self.waker.borrow_mut().take() {
                    w.wake();
                }
            }
            Some(w) => orphan(child, w.is_pidfd()),
            None => orphan(child, how.uses_pidfd()),
        }
    }
}

/// A child the reaper task waits for. `op` comes first so an in-flight
/// readiness wait is dropped before the pidfd it watches is closed.
struct Watched {
    op: Option<OpFuture<PollReady>>,
    child: Option<Child>,
    watch: Watch,
}

impl Watched {
    /// Waits (registering `cx`) until the child has exited and reaps it:
    /// `true` once reaped (or once it cannot be watched any more, when it
    /// goes to the orphan thread).
    fn poll_reaped(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let seen = match &self.watch {
                Watch::Sigchld(sub) => sub.generation(),
                Watch::Pidfd(_) => 0,
            };
            let Some(child) = self.child.as_mut() else { return true };
            if !matches!(child.try_wait(), Ok(None)) {
                self.child = None;
                return true;
            }
            match &self.watch {
                Watch::Pidfd(fd) => {
                    // Shielded: the task observes cancellation itself.
                    let fd = fd.as_raw_fd();
                    let op = self
                        .op
                        .get_or_insert_with(|| aio_io::submit_shielded(PollReady::new(fd, Interest::Readable)));
                    match Pin::new(op).poll(cx) {
                        Poll::Pending => return false,
                        Poll::Ready(res) => {
                            self.op = None;
                            if res.is_err() {
                                return self.give_up();
                            }
                        }
                    }
                }
                Watch::Sigchld(sub) => match sub.poll_after(seen, cx) {
                    Poll::Pending => return false,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return self.give_up(),
                },
            }
        }
    }

    fn give_up(&mut self) -> bool {
        if let Some(c) = self.child.take() {
            orphan(c, self.watch.is_pidfd());
        }
        true
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.op = None;
        if let Some(c) = self.child.take() {
            orphan(c, self.watch.is_pidfd());
        }
    }
}

/// The reaper task: waits for every child handed over until the loop
/// closes.
struct ReapTask {
    r: Rc<Reaper>,
    watching: Vec<Watched>,
}

impl Future for ReapTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if aio_core::cancel::check().is_err() {
            // The loop closes (or someone cancelled us): hand everything on.
            self.stop();
            return Poll::Ready(());
        }
        let this = &mut *self;
        {
            let mut w = this.r.waker.borrow_mut();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        let handed = std::mem::take(&mut *this.r.handed.borrow_mut());
        this.watching.extend(handed.into_iter().map(|(child, watch)| Watched {
            op: None,
            child: Some(child),
            watch,
        }));
        this.watching.retain_mut(|w| !w.poll_reaped(cx));
        // Nothing to reap and no `Process` left to hand one over: done.
        if this.watching.is_empty() && Rc::strong_count(&this.r) == 1 && this.r.handed.borrow().is_empty() {
            this.stop();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl ReapTask {
    fn stop(&mut self) {
        self.r.stopped.set(true);
        self.watching.clear();
        for (child, watch) in self.r.handed.borrow_mut().drain(..) {
            orphan(child, watch.is_pidfd());
        }
    }
}

impl Drop for ReapTask {
    fn drop(&mut self) {
        self.stop();
    }
}
