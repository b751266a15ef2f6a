//! The bridge to threads: `to_thread` and its pool.

pub(crate) mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;

use crate::cancel::{self, Cancelled};
use crate::context::expect_core;

/// Runs the blocking closure `f` on the loop's thread pool and waits for its
/// result without blocking the loop: asyncio's `to_thread`.
///
/// The pool is bounded (asyncio's `min(32, cpus + 4)` threads by default,
/// see `Builder::max_threads`), grows on demand and lets idle threads exit.
/// A panic in `f` is caught and returned as `Err(ToThreadError::Panicked)`.
/// `f` runs in a copy of the caller's context ([`ContextVar`](crate::ContextVar)s
/// read there see the caller's values), as asyncio's `to_thread` does.
///
/// # Cancellation
/// A cancelled wait returns `Err(Cancelled)` at once; the closure cannot be
/// interrupted and runs to the end on its thread, its result dropped.
///
/// # Examples
/// ```
/// # aio_core::run(async {
/// let n = aio_core::to_thread(|| (1..=10u64).product::<u64>()).await.unwrap();
/// assert_eq!(n, 3_628_800);
/// # });
/// ```
#[track_caller]
pub fn to_thread<F, T>(f: F) -> ToThread<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let pool = expect_core(|core| core.thread_pool());
    // asyncio's to_thread runs `f` in `copy_context().run`.
    let ctx = crate::contextvars::current();
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState::Waiting(None)),
    });
    let s2 = slot.clone();
    let submitted = pool.execute(Box::new(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::contextvars::run_in(ctx, f)));
        let mut st = s2.state.lock();
        let prev = std::mem::replace(
            &mut *st,
            SlotState::Done(r.map_err(|p| ToThreadError::Panicked(p.into()))),
        );
        drop(st);
        if let SlotState::Waiting(Some(w)) = prev {
            w.wake();
        }
    }));
    if !submitted {
        *slot.state.lock() = SlotState::Done(Err(ToThreadError::ShutDown));
    }
    ToThread { slot }
}

/// Why [`to_thread`] has no value.
#[derive(Debug)]
pub enum ToThreadError {
    /// The waiting task was cancelled (the closure still runs to the end).
    Cancelled(Cancelled),
    /// The closure panicked.
    Panicked(crate::Panic),
    /// The loop's thread pool is shut down (the loop is closing).
    ShutDown,
}

impl From<Cancelled> for ToThreadError {
    fn from(c: Cancelled) -> Self {
        ToThreadError::Cancelled(c)
    }
}

impl std::fmt::Display for ToThreadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToThreadError::Cancelled(c) => std::fmt::Display::fmt(c, f),
            ToThreadError::Panicked(p) => write!(f, "the thread function panicked: {p}"),
            ToThreadError::ShutDown => f.write_str("the thread pool is shut down"),
        }
    }
}

impl std::error::Error for ToThreadError {}

impl From<ToThreadError> for std::io::Error {
    fn from(e: ToThreadError) -> std::io::Error {
        match e {
            ToThreadError::Cancelled(c) => c.into(),
            other => std::io::Error::other(other.to_string()),
        }
    }
}

enum SlotState<T> {
    Waiting(Option<std::task::Waker>),
    Done(Result<T, ToThreadError>),
    Taken,
}

struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

/// Future of [`to_thread`].
#[must_use = "futures do nothing unless awaited"]
pub struct ToThread<T> {
    slot: Arc<Slot<T>>,
}

impl<T> std::fmt::Debug for ToThread<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToThread").finish_non_exhaustive()
    }
}

impl<T> Future for ToThread<T> {
    type Output = Result<T, ToThreadError>;

    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.slot.state.lock();
        match &mut *st {
            SlotState::Waiting(w) => {
                if let Err(c) = cancel::check() {
                    *st = SlotState::Taken;
                    return Poll::Ready(Err(c.into()));
                }
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            SlotState::Done(_) => match std::mem::replace(&mut *st, SlotState::Taken) {
                SlotState::Done(r) => Poll::Ready(r),
                _ => unreachable!(),
            },
            SlotState::Taken => panic!("`ToThread` polled after completion"),
        }
    }
}

/// Pins the calling thread to CPU `cpu` (`sched_setaffinity`), as a pool
/// of loops does for each of its threads when asked: a loop that stays on
/// one core keeps its caches warm. Linux only; elsewhere an `Unsupported`
/// error.
///
/// # Errors
/// The CPU does not exist or is not allowed to this process.
pub fn pin_current_thread(cpu: usize) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no such CPU"));
        }
        // SAFETY: an all-zero `cpu_set_t` is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid set of the size passed; 0 is this thread.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "pinning threads to CPUs is only supported on Linux",
        ))
    }
}

/// Asks the scheduler for a time slice of `slice` for the calling thread
/// (Linux 6.12+, `sched_setattr`'s `sched_runtime` for a normal thread,
/// clamped by the kernel to 0.1–100 ms): a thread with a shorter slice
/// than the others on its CPU is run sooner when it wakes (EEVDF picks the
/// earliest virtual deadline), without a larger share of the CPU. What a
/// loop that serves requests wants on cores it shares with other busy
/// threads. The thread keeps its policy and nice value; a real-time or
/// idle thread is left alone (an `Unsupported` error), as is everything
/// elsewhere than Linux. Kernels before 6.12 accept the call and keep
/// their own slice.
pub fn set_scheduler_slice(slice: std::time::Duration) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr`, as of its first version (48 bytes).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        // SAFETY: pid 0 is the calling thread; no memory is passed.
        let policy = unsafe { libc::sched_getscheduler(0) };
        if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
            // A real-time or idle thread keeps what it was given.
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a scheduler slice is set only for normal (SCHED_OTHER, SCHED_BATCH) threads",
            ));
        }
        // SAFETY: no memory is passed; reads the calling thread's nice
        // value (on Linux, PRIO_PROCESS 0 is the calling thread).
        let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: policy as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
            deadline: 0,
            period: 0,
        };
        // SAFETY: `attr` is a valid `sched_attr` of the size it states, alive
        // for the call; pid 0 is the calling thread; flags 0.
        let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = slice;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "a thread's scheduler slice can be set only on Linux",
        ))
    }
}

/// The CPUs the calling thread may run on (`sched_getaffinity`), in
/// order: where a pool of loops pins its threads. Elsewhere than Linux,
/// `0..available_parallelism`.
///
/// # Errors
/// The system call fails.
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero `cpu_set_t` is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable set of the size passed.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `set` was filled in above; CPU_ISSET reads it.
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok((0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect())
    }
}
