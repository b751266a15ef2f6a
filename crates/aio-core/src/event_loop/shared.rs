//! A loop's thread-safe half ([`Shared`]): the injection queue other
//! threads send through (woken tasks, `call_soon_threadsafe`, cancel
//! requests), and the park handshake that makes a sender wake a parked
//! loop.
//!
//! A task's header holds its loop's `Shared` (to queue it from any
//! thread), and `Shared` queues task pointers: the two files import each
//! other, the one import circle aio-core keeps (`task::header` ↔
//! `event_loop::shared`), as tokio's and async-task's wakers have theirs.
//! Which queue a wake goes to (the loop's own, or this injection queue)
//! is decided above both, in `wake.rs`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use concurrent_queue::ConcurrentQueue;

use super::metrics::Gauges;
use crate::driver::{Driver, Unpark};
use crate::loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence};
use crate::task::header::{self, TaskPtr, release};

const RUNNING: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// Something another thread sent to the loop.
pub(crate) enum Remote {
    /// A task woken from another thread (covered by its alive reference).
    Wake(TaskPtr),
    /// `call_soon_threadsafe`.
    Call(Box<dyn FnOnce() + Send>),
    /// A cancel request for a task, with a reference to release.
    Cancel(TaskPtr, Option<Arc<String>>),
}

/// The thread-safe half of a loop, shared with wakers and `LoopHandle`s.
pub(crate) struct Shared {
    injector: ConcurrentQueue<Remote>,
    park_state: AtomicU8,
    unparker: Arc<dyn Unpark>,
    /// Address of the `Core`, compared (never dereferenced) to tell a wake
    /// on the loop's own thread from a remote one.
    pub(super) core_addr: AtomicUsize,
    /// The thread the loop's core lives on (it is not `Send`), as
    /// `thread_token` numbers it.
    #[cfg_attr(loom, allow(dead_code))]
    pub(super) owner: usize,
    closed: AtomicBool,
    /// The loop's load, published for other threads ([`LoopHandle::metrics`](crate::LoopHandle::metrics)).
    pub(crate) gauges: Gauges,
}

thread_local! {
    static TOKEN: u8 = const { 0 };
}

/// This thread, as a number no other live thread has (the address of a
/// thread-local): cheaper than a `ThreadId`, whose `thread::current()`
/// takes and drops a reference count. An exited thread's number may come
/// back, but its loops are closed by then (a `Loop` is not `Send`: it
/// dies with its thread), which the caller checks.
#[cfg_attr(loom, allow(dead_code))]
pub(super) fn thread_token() -> usize {
    TOKEN.with(|t| std::ptr::from_ref(t) as usize)
}

/// `Shared::core_addr` before the loop's core exists: neither a core's
/// address nor null (no loop running on a thread).
const NO_CORE: usize = usize::MAX;

impl Shared {
    /// The thread-safe half of a loop parking in a driver unparked by
    /// `unparker`; [`Builder::build`] then records its core's address.
    pub(crate) fn new(unparker: Arc<dyn Unpark>) -> Shared {
        Shared {
            injector: ConcurrentQueue::unbounded(),
            park_state: AtomicU8::new(RUNNING),
            unparker,
            core_addr: AtomicUsize::new(NO_CORE),
            owner: thread_token(),
            closed: AtomicBool::new(false),
            gauges: Gauges::default(),
        }
    }

    /// Sends `r` to the loop and wakes it if it is parked. A loop that
    /// closed meanwhile never takes it: it is discarded here (dropping a
    /// submitted call resolves its `ConcurrentFuture` as cancelled).
    pub(crate) fn inject(&self, r: Remote) {
        if self.injector.push(r).is_err() {
            unreachable!("the injection queue is unbounded and never closed");
        }
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            // `close` set the flag and then drained; one of the two drains
            // sees what was pushed (both sides fence between their steps).
            self.discard_injected();
            return;
        }
        if self
            .park_state
            .compare_exchange(PARKED, NOTIFIED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.unparker.unpark();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Parks the loop thread in `driver` (at most `timeout`) unless
    /// something was sent meanwhile. The other half of [`inject`]: the
    /// loop announces `PARKED` and then looks at the queue, a sender
    /// pushes and then looks at the state, each side fencing between its
    /// two steps, so at least one of them sees the other — the loop does
    /// not sleep, or the sender unparks it.
    ///
    /// [`inject`]: Shared::inject
    pub(crate) fn park(&self, driver: &mut dyn Driver, mut timeout: Option<Duration>) -> io::Result<()> {
        if timeout != Some(Duration::ZERO) {
            self.park_state.store(PARKED, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.has_remote() {
                timeout = Some(Duration::ZERO);
            }
        }
        let res = driver.park(timeout);
        self.park_state.store(RUNNING, Ordering::SeqCst);
        res
    }

    /// The next thing another thread sent (loop thread).
    pub(crate) fn take_remote(&self) -> Option<Remote> {
        self.injector.pop().ok()
    }

    /// Whether another thread sent something not taken yet.
    pub(crate) fn has_remote(&self) -> bool {
        !self.injector.is_empty()
    }

    /// Marks the loop closed and drops what other threads sent since its
    /// last turn; what they send from now on they drop themselves (see
    /// [`inject`](Shared::inject)).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.discard_injected();
    }

    /// Drops everything in the injection queue, on any thread, once the
    /// loop is closed (every task is complete by then).
    pub(super) fn discard_injected(&self) {
        while let Ok(r) = self.injector.pop() {
            match r {
                Remote::Wake(t) => unqueue(t),
                // SAFETY: a cancel request carries one reference of its own.
                Remote::Cancel(t, _) => unsafe { release(t.0) },
                Remote::Call(f) => drop(f),
            }
        }
    }

    pub(crate) fn wake(&self) {
        self.unparker.unpark();
    }

    /// Whether the loop sleeps in its driver.
    pub(crate) fn is_parked(&self) -> bool {
        self.park_state.load(Ordering::Relaxed) == PARKED
    }

    /// How many things other threads sent that the loop has not taken.
    pub(crate) fn injected(&self) -> usize {
        self.injector.len()
    }

    /// The address of the owning `Core`, for identity comparisons.
    pub(crate) fn core_addr(&self) -> *const () {
        self.core_addr.load(Ordering::Relaxed) as *const ()
    }
}

/// An injected entry of a task dropped without running it (the loop
/// closed): the entry covered the task's alive reference (see
/// `task::header`), which goes once the task is complete — and by then only
/// its header is freed, and no entry of the loop's own queue is left, so
/// any thread may do it.
fn unqueue(t: TaskPtr) {
    // SAFETY: the queue entry holds the alive reference; `on_loop` false.
    unsafe { header::dequeue_remote(t.0, false) };
}
