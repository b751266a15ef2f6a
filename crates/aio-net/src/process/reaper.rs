//! The loop's child watcher: records every child's exit the moment the
//! loop sees it, and reaps every child, even one nobody waits for.
//!
//! Each loop that spawns gets one reaper task (`aio-reaper`), created at a
//! spawn — never while the loop closes, so closing never waits for it —
//! and kept while a child of that loop is left to reap (then it ends, so
//! `all_tasks()` does not keep showing it). Every child is handed to it at
//! its spawn: the task watches all of them at once (see [`Watch`]), reaps
//! each as it exits and records the status for its `Process`, whether or
//! not anyone awaits `wait()`, as asyncio's child watcher does. When the
//! loop closes (the task is cancelled or dropped) it lets go of the
//! children still running: a `Process` still alive watches its own from
//! then on, the others go to the process-wide orphan thread (see
//! [`orphans`](super::orphans)), which reaps them when they exit.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use aio_core::io::{self as aio_io, Interest, OpFuture, PollReady};

use super::exit::{ChildExit, ChildWatcher, Watch};

thread_local! {
    static REAPERS: RefCell<Vec<Weak<Reaper>>> = const { RefCell::new(Vec::new()) };
}

/// One loop's reaper: the children handed over, and the task's waker.
pub(crate) struct Reaper {
    /// The loop (to tell whether it is the one running).
    lp: aio_core::Loop,
    handed: RefCell<Vec<(Rc<ChildExit>, ChildWatcher)>>,
    waker: RefCell<Option<Waker>>,
    /// The task ended: it takes no children any more.
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
            l.retain(|w| w.upgrade().is_some_and(|r| !r.stopped.get()));
            l.iter().filter_map(Weak::upgrade).find(|r| r.lp.is_running())
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
            free: Vec::new(),
            woken: Arc::new(Woken::default()),
            look: Vec::new(),
        });
        task.set_name("aio-reaper");
        r
    }

    /// Whether the reaper's loop is the one running on this thread (and
    /// the reaper still watches children).
    pub(crate) fn is_running(&self) -> bool {
        !self.stopped.get() && self.lp.is_running()
    }

    /// Watches a child just spawned on this reaper's loop (watched the way
    /// `how` says), until it exits and is reaped.
    pub(crate) fn watch(&self, exit: Rc<ChildExit>, how: ChildWatcher) {
        if self.stopped.get() {
            return;
        }
        exit.set_watched();
        self.handed.borrow_mut().push((exit, how));
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// A child the reaper task watches. `op` comes first so an in-flight
/// readiness wait is dropped before the pidfd it watches is closed.
struct Watched {
    op: Option<OpFuture<PollReady>>,
    /// Set up once the child is found running (a child that has exited by
    /// the task's first look, common when several are spawned together,
    /// costs no pidfd and no registration).
    watch: Option<Watch>,
    exit: Rc<ChildExit>,
    how: ChildWatcher,
    /// Look at the child (it may have exited) before waiting again.
    look: bool,
    /// The SIGCHLD generation read before the last look.
    seen: u64,
    /// Wakes the task, saying it is this child that moved.
    waker: Waker,
}

impl Watched {
    fn new(exit: Rc<ChildExit>, how: ChildWatcher, waker: Waker) -> Watched {
        Watched {
            op: None,
            watch: None,
            exit,
            how,
            look: true,
            seen: 0,
            waker,
        }
    }

    /// Waits (with the child's own waker) until the child has exited, then
    /// reaps it and records its status: `true` once done with the child
    /// (its exit recorded; or it was taken away, or cannot be watched,
    /// when it is let go of on drop).
    fn poll_done(&mut self) -> bool {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            if !self.exit.unreaped() {
                return true;
            }
            if self.look {
                self.look = false;
                // Read the generation before looking, so an exit between
                // the look and the wait is not missed.
                if let Some(Watch::Sigchld(sub)) = &self.watch {
                    self.seen = sub.generation();
                }
                if self.exit.try_reap().is_some() {
                    return true;
                }
            }
            let Some(watch) = &self.watch else {
                let Ok(w) = Watch::new(self.exit.pid(), self.how) else {
                    return true;
                };
                // A pidfd is readable once the child has exited, even
                // before the watch: only SIGCHLD needs another look.
                self.look = !w.is_pidfd();
                self.watch = Some(w);
                continue;
            };
            match watch {
                Watch::Pidfd(fd) => {
                    // Shielded: the task observes cancellation itself.
                    let fd = fd.as_raw_fd();
                    let op = self
                        .op
                        .get_or_insert_with(|| aio_io::submit_shielded(PollReady::new(fd, Interest::Readable)));
                    match Pin::new(op).poll(&mut cx) {
                        Poll::Pending => return false,
                        Poll::Ready(res) => {
                            self.op = None;
                            if res.is_err() {
                                return true;
                            }
                        }
                    }
                }
                Watch::Sigchld(sub) => match sub.poll_after(self.seen, &mut cx) {
                    Poll::Pending => return false,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return true,
                },
            }
            self.look = true;
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.op = None;
        if self.exit.unreaped() {
            self.exit.release(self.how);
        }
    }
}

/// Which watched children were woken since the task last looked: each
/// child's watch wakes the task through a waker of its own that notes the
/// child's key, so a wake looks at the children that moved, not at all.
#[derive(Default)]
struct Woken {
    keys: Mutex<Vec<usize>>,
    task: Mutex<Option<Waker>>,
}

struct ChildWaker {
    key: usize,
    woken: Arc<Woken>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let w = &self.woken;
        w.keys.lock().unwrap_or_else(PoisonError::into_inner).push(self.key);
        if let Some(t) = &*w.task.lock().unwrap_or_else(PoisonError::into_inner) {
            t.wake_by_ref();
        }
    }
}

/// The reaper task: watches every child handed over until it is reaped,
/// or until the loop closes.
struct ReapTask {
    r: Rc<Reaper>,
    /// Indexed by key (`None`: a free key, listed in `free`).
    watching: Vec<Option<Watched>>,
    free: Vec<usize>,
    woken: Arc<Woken>,
    /// The keys to look at in this poll (kept for its allocation).
    look: Vec<usize>,
}

impl Future for ReapTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if aio_core::cancel::check().is_err() {
            // The loop closes (or someone cancelled us): let go of them all.
            self.stop();
            return Poll::Ready(());
        }
        let this = &mut *self;
        for w in [
            &mut *this.r.waker.borrow_mut(),
            &mut *this.woken.task.lock().unwrap_or_else(PoisonError::into_inner),
        ] {
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        let mut look = std::mem::take(&mut this.look);
        look.append(&mut this.woken.keys.lock().unwrap_or_else(PoisonError::into_inner));
        let handed = std::mem::take(&mut *this.r.handed.borrow_mut());
        for (exit, how) in handed {
            let key = this.free.pop().unwrap_or(this.watching.len());
            let waker = Waker::from(Arc::new(ChildWaker {
                key,
                woken: this.woken.clone(),
            }));
            let w = Some(Watched::new(exit, how, waker));
            match this.watching.get_mut(key) {
                Some(slot) => *slot = w,
                None => this.watching.push(w),
            }
            look.push(key);
        }
        // A key may be listed twice, or be stale (its child gone, the key
        // taken again): looking again costs nothing.
        for key in look.drain(..) {
            if let Some(slot) = this.watching.get_mut(key) {
                if slot.as_mut().is_some_and(Watched::poll_done) {
                    *slot = None;
                    this.free.push(key);
                }
            }
        }
        this.look = look;
        // Nothing left to reap: done (the next spawn starts another).
        if this.free.len() == this.watching.len() && this.r.handed.borrow().is_empty() {
            this.stop();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl ReapTask {
    fn stop(&mut self) {
        self.r.stopped.set(true);
        // The children's wakers may outlive us (in the driver): they must
        // not keep the task alive.
        drop(self.r.waker.borrow_mut().take());
        drop(self.woken.task.lock().unwrap_or_else(PoisonError::into_inner).take());
        self.watching.clear();
        self.free.clear();
        let handed = std::mem::take(&mut *self.r.handed.borrow_mut());
        for (exit, how) in handed {
            if exit.unreaped() {
                exit.release(how);
            }
        }
    }
}

impl Drop for ReapTask {
    fn drop(&mut self) {
        self.stop();
    }
}
