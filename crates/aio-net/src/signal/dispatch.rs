//! The per-loop half of signal handling: a self-pipe registered with the
//! loop's driver, a task (`aio-signals`) that reads it and dispatches what
//! the process-wide handler recorded, and per signal the loop's handler
//! callback and its listeners (`wait_signal` futures, the SIGCHLD child
//! watcher).
//!
//! The state of a thread's loops lives in a thread-local list; the one
//! whose loop is running is the current loop's (a thread runs one loop at
//! a time, and a `Loop` never leaves its thread). The task ends, and the
//! state goes, once the loop has no handler and no listener left; the next
//! use starts them again.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::AsRawFd;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use aio_core::driver::FdKind;
use aio_core::io::{self as aio_io, Read, Registered};

use super::SignalError;
use super::registry::{MAX_SIGNAL, Slot};

thread_local! {
    static LOOPS: RefCell<Vec<Weak<LoopSignals>>> = const { RefCell::new(Vec::new()) };
}

/// What one loop does with signals.
pub(crate) struct LoopSignals {
    slot: Slot,
    /// The self-pipe's read end, registered with the loop.
    pipe: Registered,
    /// Indexed by signal number.
    entries: RefCell<Vec<Entry>>,
    /// The dispatch task ended (the loop closed, or it was cancelled).
    stopped: Cell<bool>,
}

#[derive(Default)]
struct Entry {
    /// `add_signal_handler`'s callback.
    handler: Option<Rc<dyn Fn()>>,
    /// Subscriptions alive.
    listeners: u32,
    /// How many deliveries the loop has dispatched.
    generation: u64,
    /// Listeners waiting for the next delivery.
    wakers: Vec<Waker>,
}

impl Entry {
    fn active(&self) -> bool {
        self.handler.is_some() || self.listeners > 0
    }
}

/// Checks that `sig` is a signal a handler may be installed for.
pub(crate) fn check(sig: i32) -> Result<(), SignalError> {
    if !(1..=MAX_SIGNAL).contains(&sig) || sig == libc::SIGKILL || sig == libc::SIGSTOP {
        return Err(SignalError::Invalid(sig));
    }
    Ok(())
}

impl LoopSignals {
    /// The running loop's state, if it has one.
    pub(crate) fn find() -> Option<Rc<LoopSignals>> {
        LOOPS.with(|l| {
            let mut l = l.borrow_mut();
            l.retain(|w| w.strong_count() > 0);
            l.iter()
                .filter_map(Weak::upgrade)
                .find(|s| !s.stopped.get() && s.pipe.owner().is_running())
        })
    }

    /// The running loop's state, created (with its dispatch task) on first use.
    pub(crate) fn current() -> Result<Rc<LoopSignals>, SignalError> {
        if aio_core::try_get_running_loop().is_none() {
            return Err(SignalError::NoRunningLoop);
        }
        if let Some(s) = LoopSignals::find() {
            return Ok(s);
        }
        let (slot, read) = Slot::new()?.ok_or(SignalError::TooManyLoops)?;
        let pipe = Registered::with_kind(read, FdKind::Other)?;
        let s = Rc::new(LoopSignals {
            slot,
            pipe,
            entries: RefCell::new((0..=MAX_SIGNAL).map(|_| Entry::default()).collect()),
            stopped: Cell::new(false),
        });
        LOOPS.with(|l| l.borrow_mut().push(Rc::downgrade(&s)));
        let task = aio_core::create_task(pump(s.clone()));
        task.set_name("aio-signals");
        Ok(s)
    }

    /// Sets `sig`'s callback (replacing one already set).
    pub(crate) fn set_handler(&self, sig: i32, h: Rc<dyn Fn()>) -> Result<(), SignalError> {
        let old = {
            let mut es = self.entries.borrow_mut();
            let e = &mut es[sig as usize];
            if !e.active() {
                self.enable(sig)?;
            }
            e.handler.replace(h)
        };
        // Dropped outside the borrow: a closure's captures may do anything.
        drop(old);
        Ok(())
    }

    /// Removes `sig`'s callback; `false` if there was none.
    pub(crate) fn remove_handler(&self, sig: i32) -> bool {
        let old = {
            let mut es = self.entries.borrow_mut();
            let e = &mut es[sig as usize];
            let old = e.handler.take();
            if old.is_some() && !e.active() {
                self.slot.disable(sig);
                self.slot.wake(); // the reader may be idle now
            }
            old
        };
        old.is_some()
    }

    fn listen(&self, sig: i32) -> Result<(), SignalError> {
        let mut es = self.entries.borrow_mut();
        let e = &mut es[sig as usize];
        if !e.active() {
            self.enable(sig)?;
        }
        e.listeners += 1;
        Ok(())
    }

    fn unlisten(&self, sig: i32) {
        let wakers = {
            let mut es = self.entries.borrow_mut();
            let e = &mut es[sig as usize];
            e.listeners -= 1;
            if !e.active() {
                self.slot.disable(sig);
                self.slot.wake(); // the reader may be idle now
            }
            if e.listeners == 0 {
                std::mem::take(&mut e.wakers)
            } else {
                Vec::new()
            }
        };
        drop(wakers);
    }

    /// Starts handling `sig` for this loop. The C library refuses the
    /// signals it keeps for itself (glibc: 32 and 33) with `EINVAL`.
    fn enable(&self, sig: i32) -> Result<(), SignalError> {
        self.slot.enable(sig).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => SignalError::Invalid(sig),
            _ => SignalError::Io(e),
        })
    }

    /// No handler and no listener: nothing to read the pipe for.
    fn idle(&self) -> bool {
        self.entries.borrow().iter().all(|e| !e.active())
    }

    /// Runs what the handler recorded: wakes the listeners, schedules the
    /// callbacks on the loop (a panicking callback is reported by the
    /// loop's exception handler, as any callback's).
    fn dispatch(&self) {
        let pending = self.slot.take_pending();
        if pending == 0 {
            return;
        }
        let mut wake = Vec::new();
        let mut calls = Vec::new();
        {
            let mut es = self.entries.borrow_mut();
            for sig in (1..=MAX_SIGNAL).filter(|s| pending & (1 << (s - 1)) != 0) {
                let e = &mut es[sig as usize];
                e.generation += 1;
                wake.append(&mut e.wakers);
                calls.extend(e.handler.clone());
            }
        }
        wake.into_iter().for_each(Waker::wake);
        if !calls.is_empty() {
            let lp = aio_core::get_running_loop();
            for h in calls {
                lp.call_soon(move || h());
            }
        }
    }

    /// The dispatch task ended: the loop's handlers are removed (their
    /// dispositions restored) and listeners are told.
    fn stop(&self) {
        self.stopped.set(true);
        let (handlers, wakers) = {
            let mut es = self.entries.borrow_mut();
            let mut handlers = Vec::new();
            let mut wakers = Vec::new();
            for (sig, e) in es.iter_mut().enumerate() {
                if let Some(h) = e.handler.take() {
                    handlers.push(h);
                    if !e.active() {
                        self.slot.disable(sig as i32);
                    }
                }
                wakers.append(&mut e.wakers);
            }
            (handlers, wakers)
        };
        drop(handlers);
        wakers.into_iter().for_each(Waker::wake);
    }
}

struct StopOnDrop(Rc<LoopSignals>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The dispatch task: reads the self-pipe and dispatches after each read,
/// until the loop closes (the read is cancelled) or nothing uses it (no
/// handler, no listener: only the task holds the state).
async fn pump(s: Rc<LoopSignals>) {
    let s = StopOnDrop(s);
    let fd = s.0.pipe.as_raw_fd();
    let mut buf = Vec::with_capacity(64);
    loop {
        buf.clear();
        let (res, b) = aio_io::submit(Read::new(fd, buf, None)).await;
        buf = b;
        match res {
            Ok(n) if n > 0 => {
                s.0.dispatch();
                if Rc::strong_count(&s.0) == 1 && s.0.idle() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // EOF cannot happen while the slot holds the write end; an
            // error is a cancellation (the loop closing) or a broken driver.
            _ => return,
        }
    }
}

/// A listener of one signal on the running loop: keeps the signal handled
/// while alive, and tells when it was delivered.
pub(crate) struct Subscription {
    state: Rc<LoopSignals>,
    sig: i32,
}

impl Subscription {
    /// Starts listening to `sig` on the running loop.
    pub(crate) fn new(sig: i32) -> Result<Subscription, SignalError> {
        check(sig)?;
        let state = LoopSignals::current()?;
        state.listen(sig)?;
        Ok(Subscription { state, sig })
    }

    /// How many deliveries were dispatched so far; pass it to
    /// [`poll_after`](Subscription::poll_after).
    pub(crate) fn generation(&self) -> u64 {
        self.state.entries.borrow()[self.sig as usize].generation
    }

    /// Ready once a delivery was dispatched after `seen` (a generation).
    pub(crate) fn poll_after(&self, seen: u64, cx: &mut Context<'_>) -> Poll<Result<(), SignalError>> {
        let mut es = self.state.entries.borrow_mut();
        let e = &mut es[self.sig as usize];
        if e.generation != seen {
            return Poll::Ready(Ok(()));
        }
        if self.state.stopped.get() {
            return Poll::Ready(Err(SignalError::Stopped));
        }
        if !e.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            e.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Subscription {
    /// Whether the subscription's loop is the one running on this thread.
    pub(crate) fn is_running(&self) -> bool {
        self.state.pipe.owner().is_running()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.state.unlisten(self.sig);
    }
}
