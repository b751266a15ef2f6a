//! Test support shared by aio's crates (not published).
//!
//! - **One test, every backend.** [`backend_tests!`] expands each listed
//!   test into `poll::name` and `uring::name`; [`run_poll`],
//!   [`run_uring`] and [`run_on`] run one future on a fresh loop of that
//!   backend. With `AIO_REQUIRE_URING=1` (CI) a kernel without io_uring
//!   fails the test instead of skipping it, so CI cannot lose a backend.
//! - **Invariants of the edge matrix**: [`fd_count`] and [`fds_settle`]
//!   (no descriptor leaked), [`serial`] (tests that count descriptors run
//!   one at a time in their binary), [`race`] (a future dropped mid-flight
//!   by a `select`-style race, as `futures_lite::future::or` does it).
//! - **Foreign executors**: [`drop_inside_driver`] (a waker the driver
//!   wakes drops aio objects).
//! - **Plain threads**: [`block_on`], [`poll_once`], [`within`] (a bound
//!   against hangs, never a timing assertion).
//! - **Tasks**: [`spawn_on`] and [`waiting_on`] (a waiter on a shared
//!   lock, queue, event), [`assert_cancelled`], [`settle`], [`until`].
//! - **Data and places**: [`payload`], [`Dir`], [`raise_nofile`],
//!   [`TestResult`] (for tests whose errors are of many kinds), [`Rng`]
//!   (the same random choices for the same seed).
//! - **Children**: [`is_unreaped_child`], [`assert_reaped`],
//!   [`wait_reaped`] (no zombie left behind), from `/proc`.
//!
//! aio-core's own tests keep their helpers: a dev-dependency on this
//! crate, which depends on aio-core, would build aio-core twice there.
//!
//! ```
//! async fn sleeps() -> std::io::Result<()> {
//!     aio_core::sleep(0.001).await?;
//!     Ok(())
//! }
//! aio_test::run_poll(sleeps());
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use aio_core::{Loop, Runner};

/// The two I/O backends every socket, stream, file and subprocess test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// aio-poll (epoll).
    Poll,
    /// aio-uring (io_uring).
    Uring,
}

impl Backend {
    /// Both, in the order tests run them.
    pub const ALL: [Backend; 2] = [Backend::Poll, Backend::Uring];

    /// `"poll"` or `"uring"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Poll => "poll",
            Backend::Uring => "uring",
        }
    }
}

/// Whether a missing io_uring fails the test (`AIO_REQUIRE_URING=1`).
fn uring_required() -> bool {
    std::env::var("AIO_REQUIRE_URING").is_ok_and(|v| v == "1")
}

/// A new loop on `backend`, or `None` (skip) where the kernel refuses
/// io_uring — unless `AIO_REQUIRE_URING=1`, which makes that a panic.
pub fn new_loop(backend: Backend) -> Option<Loop> {
    build_loop(backend, Loop::builder())
}

/// [`new_loop`] from `builder`'s settings (its driver, if it has one, is
/// replaced by `backend`'s).
pub fn build_loop(backend: Backend, builder: aio_core::Builder) -> Option<Loop> {
    match backend {
        Backend::Poll => Some(builder.driver(aio_poll::PollDriver::new().expect("epoll")).build()),
        Backend::Uring => match aio_uring::UringDriver::new() {
            Ok(d) => Some(builder.driver(d).build()),
            Err(e) => {
                assert!(
                    !uring_required(),
                    "io_uring is required (AIO_REQUIRE_URING=1) but unavailable: {e}"
                );
                eprintln!("io_uring unavailable ({e}): skipped");
                None
            }
        },
    }
}

/// A loop on the readiness backend.
pub fn poll_loop() -> Loop {
    new_loop(Backend::Poll).expect("the poll backend is always there")
}

/// A loop on io_uring, or `None` (see [`new_loop`]).
pub fn uring_loop() -> Option<Loop> {
    new_loop(Backend::Uring)
}

/// Runs `f` to completion on a fresh loop of `backend` and closes it;
/// panics if `f` returns an error.
pub fn run_on<E: Debug, F: Future<Output = Result<(), E>> + 'static>(backend: Backend, f: F) {
    if let Some(lp) = new_loop(backend) {
        Runner::with_loop(lp).run(f).unwrap();
    }
}

/// [`run_on`] the readiness backend.
pub fn run_poll<E: Debug, F: Future<Output = Result<(), E>> + 'static>(f: F) {
    run_on(Backend::Poll, f);
}

/// [`run_on`] io_uring (skipped where the kernel refuses it, unless required).
pub fn run_uring<E: Debug, F: Future<Output = Result<(), E>> + 'static>(f: F) {
    run_on(Backend::Uring, f);
}

/// What a test returns where its errors are of many kinds (HTTP, I/O,
/// timeouts): the runners take any `Result<(), E: Debug>`.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Expands each listed test function into one `#[test]` per backend:
/// `poll::name` and `uring::name`.
///
/// - `backend_tests!(a, b)`: `async fn a() -> Result<(), E>`.
/// - `backend_tests!(dir: a, b)`: `async fn a(d: aio_test::Dir) -> Result<(), E>`,
///   each run with its own fresh temporary directory.
/// - `backend_tests!(serial: a, b)`, `backend_tests!(serial_dir: a, b)`:
///   as the forms above, holding [`serial`] for the whole test (tests that
///   count descriptors).
/// - `backend_tests!(each: a, b)`: `fn a(b: aio_test::Backend)`, for tests
///   that build and close their loops themselves.
///
/// Forms combine, separated by `;`: `backend_tests!(dir: a; each: b)`. A
/// name may carry attributes for both its tests:
/// `backend_tests!(a, #[cfg(feature = "tls")] b)`.
#[macro_export]
macro_rules! backend_tests {
    ($($form:ident: $($(#[$m:meta])* $name:ident),* $(,)?);+ $(;)?) => {
        $crate::backend_tests!(@mod poll Poll; $($form: $($(#[$m])* $name),*);+);
        $crate::backend_tests!(@mod uring Uring; $($form: $($(#[$m])* $name),*);+);
    };
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        $crate::backend_tests!(plain: $($(#[$m])* $name),*);
    };
    (@mod $mod:ident $b:ident; $($form:ident: $($(#[$m:meta])* $name:ident),*);+) => {
        mod $mod {
            $($(
                $(#[$m])*
                #[test]
                fn $name() {
                    $crate::backend_tests!(@run $form $b $name);
                }
            )*)+
        }
    };
    (@run plain $b:ident $name:ident) => {
        $crate::run_on($crate::Backend::$b, super::$name())
    };
    (@run serial $b:ident $name:ident) => {
        let _one = $crate::serial();
        $crate::backend_tests!(@run plain $b $name)
    };
    (@run dir $b:ident $name:ident) => {
        let d = $crate::Dir::new(&format!("{}-{}", $crate::Backend::$b.name(), stringify!($name)));
        $crate::run_on($crate::Backend::$b, super::$name(d))
    };
    (@run serial_dir $b:ident $name:ident) => {
        let _one = $crate::serial();
        $crate::backend_tests!(@run dir $b $name)
    };
    (@run each $b:ident $name:ident) => {
        super::$name($crate::Backend::$b)
    };
}

/// Whether `program` (a peer that is not aio: `python3`, `curl`) runs
/// here (`program --version` succeeds). A test that needs it and finds it
/// missing says so and passes, unless `AIO_REQUIRE_PEERS` is set (as
/// `.ci/run` sets it), where this panics.
pub fn have_peer(program: &str) -> bool {
    let ok = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("AIO_REQUIRE_PEERS").is_none(),
            "{program} is required (AIO_REQUIRE_PEERS is set) but does not run"
        );
        eprintln!("skipped: no {program}");
    }
    ok
}

/// The calling thread's scheduler time slice in nanoseconds, as the
/// kernel shows it (`se.slice` in `/proc/thread-self/sched`); `None` where
/// it does not.
pub fn scheduler_slice_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    let line = s.lines().find(|l| l.starts_with("se.slice"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

/// Whether the kernel gives normal threads the slice they ask for
/// (`sched_setattr`'s `sched_runtime`, Linux 6.12 and later).
pub fn has_custom_slices() -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = r
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 12)
}

/// Holds every other holder off: tests that count the process's
/// descriptors take it for their whole run, so that no test of the same
/// binary opens or closes descriptors meanwhile.
pub fn serial() -> parking_lot::MutexGuard<'static, ()> {
    static ONE: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
    ONE.lock()
}

/// How many descriptors the process has open (`/proc/self/fd`, not
/// counting the one that lists it).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1))
}

/// What the process's open descriptors are, for a message that says
/// which ones leaked: the count of each target (`/tmp/x`, `socket:`,
/// `pipe:`), most frequent first.
pub fn open_fds() -> String {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return String::new();
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for e in dir.filter_map(Result::ok) {
        let target = std::fs::read_link(e.path()).map_or_else(|_| "?".to_owned(), |p| p.display().to_string());
        // `socket:[123]` and `pipe:[45]` by kind, files by path.
        let kind = match target.find(":[") {
            Some(i) => target[..i + 1].to_owned(),
            None => target,
        };
        *counts.entry(kind).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    v.iter()
        .map(|(k, n)| format!("{n}× {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits (on the running loop, `bound` at most) until the process has no
/// more than `baseline` descriptors open: results of dropped operations
/// that are still on their way (a thread's open, the kernel's accept)
/// close what they bring when they arrive. Returns the count it settled
/// at, so a caller asserts `<= baseline` with the listing in its message.
pub async fn fds_settle(baseline: usize, bound: Duration) -> usize {
    let deadline = Instant::now() + bound;
    loop {
        let n = fd_count();
        if n <= baseline || Instant::now() >= deadline {
            return n;
        }
        aio_core::sleep(0.005)
            .await
            .expect("the settling wait is not cancelled");
    }
}

/// Which of two raced futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    /// The first.
    Left(A),
    /// The second.
    Right(B),
}

/// Polls `a`, then `b`, until one is ready, and drops the other where it
/// stands: a future dropped mid-flight, as `futures_lite::future::or` and
/// `select!` drop it (no cancellation is delivered to it).
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// Spawns `op` on the running loop with its own clone of `shared` (an
/// `Arc` or an `Rc`): the task a test sets waiting on a lock, a queue,
/// an event, a child process.
pub fn spawn_on<S: Clone + 'static, F>(shared: &S, op: impl FnOnce(S) -> F) -> aio_core::Task<F::Output>
where
    F: Future + 'static,
    F::Output: aio_core::Reportable,
{
    aio_core::create_task(op(shared.clone()))
}

/// [`spawn_on`], then one turn of the loop ([`settle`]`(1)`): the task
/// has run up to where it waits when this returns.
pub async fn waiting_on<S: Clone + 'static, F>(shared: &S, op: impl FnOnce(S) -> F) -> aio_core::Task<F::Output>
where
    F: Future + 'static,
    F::Output: aio_core::Reportable,
{
    let t = spawn_on(shared, op);
    settle(1).await;
    t
}

/// Awaits `task` and fails the test unless it ended cancelled.
pub async fn assert_cancelled<T: Debug>(task: aio_core::Task<T>) {
    let r = task.await;
    assert!(
        r.as_ref().is_err_and(|e| e.is_cancelled()),
        "the task was not cancelled: {r:?}"
    );
}

/// Waits (10 s at most) until `done()`, looking every millisecond.
pub async fn until(what: &str, done: impl Fn() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        aio_core::sleep(0.001).await?;
    }
    Ok(())
}

/// Lets every other ready task run `n` times.
pub async fn settle(n: usize) {
    for _ in 0..n {
        aio_core::yield_now().await.expect("settling is not cancelled");
    }
}

/// Whether `pid` is a child of this process that has not been reaped
/// (running, or a zombie): its `/proc` entry exists with us as parent.
pub fn is_unreaped_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')').expect("a /proc stat line") + 2..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next();
    let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    ppid == std::process::id()
}

/// The state letter of process `pid` (`Z` for a zombie), if it exists.
pub fn child_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Fails the test if `pid` is a child of ours that has not been reaped.
#[track_caller]
pub fn assert_reaped(pid: u32) {
    assert!(
        !is_unreaped_child(pid),
        "child {pid} was not reaped (state {:?})",
        child_state(pid)
    );
}

/// Waits (on the running loop, 10 s at most) until `pid` has been reaped.
pub async fn wait_reaped(pid: u32) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_unreaped_child(pid) {
        assert!(
            Instant::now() < deadline,
            "child {pid} not reaped after 10 s (state {:?})",
            child_state(pid)
        );
        aio_core::sleep(0.005).await?;
    }
    Ok(())
}

/// A temporary directory, removed when dropped.
#[derive(Debug)]
pub struct Dir(PathBuf);

impl Dir {
    /// A fresh, empty directory named after the process and `name`.
    pub fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("aio-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("a temporary directory");
        Dir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A deterministic payload: every byte depends on its position and `seed`.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Raises the open-file soft limit to the hard limit (at most 65,536):
/// 1,000 connections need 2,000 descriptors.
pub fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` to completion on the current (plain) thread: no aio loop, so
/// the primitives see a foreign executor.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// Polls `fut` once with a waker that does nothing.
pub fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `secs` (a loose bound against hangs, never a timing assertion).
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            h.join().expect("the test thread sent its result");
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("a thread that returned sent its result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {secs} s: hang"),
    }
}

thread_local! {
    /// What [`drop_inside_driver`]'s foreign waker drops, and whether it
    /// was woken, with the waiting task's waker.
    static DROP_ON_WAKE: std::cell::RefCell<Option<Box<dyn std::any::Any>>> = const { std::cell::RefCell::new(None) };
    static FOREIGN_WOKEN: std::cell::RefCell<(bool, Option<Waker>)> = const { std::cell::RefCell::new((false, None)) };
}

/// The waker of "another executor" whose wake drops one of its tasks:
/// what it drops is whatever [`drop_inside_driver`] gave it.
struct ForeignWaker;

impl Wake for ForeignWaker {
    fn wake(self: Arc<Self>) {
        drop(DROP_ON_WAKE.with(|s| s.borrow_mut().take()));
        FOREIGN_WOKEN.with(|w| {
            let mut w = w.borrow_mut();
            w.0 = true;
            if let Some(w) = w.1.take() {
                w.wake();
            }
        });
    }
}

/// Drops `payload` from inside the running loop's I/O driver, as another
/// executor's waker may: a receive on a socket pair is polled with a
/// waker whose wake drops `payload`, and the pair's other end sends, so
/// the driver wakes it while it reports readiness or completions. Returns
/// once `payload` was dropped (an error after 10 s).
///
/// A driver must not lose track of what `payload` owns: aio sockets,
/// operations in flight.
pub async fn drop_inside_driver(payload: Box<dyn std::any::Any>) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded: both are new descriptors owned here.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let a = aio_core::io::Registered::new(a)?;
    let mut recv = pin!(aio_core::io::submit(aio_core::io::Recv::new(
        a.as_raw_fd(),
        vec![0u8; 8],
        0
    )));
    let foreign = Waker::from(Arc::new(ForeignWaker));
    FOREIGN_WOKEN.with(|w| *w.borrow_mut() = (false, None));
    DROP_ON_WAKE.with(|s| *s.borrow_mut() = Some(payload));
    if recv.as_mut().poll(&mut Context::from_waker(&foreign)).is_ready() {
        return Err(io::Error::other("a receive on an empty socket pair completed"));
    }
    // SAFETY: `b` is open; the byte is read from a live local.
    if unsafe { libc::write(b.as_raw_fd(), b"!".as_ptr().cast(), 1) } != 1 {
        return Err(io::Error::last_os_error());
    }
    let woken = std::future::poll_fn(|cx| {
        FOREIGN_WOKEN.with(|w| {
            let mut w = w.borrow_mut();
            if w.0 {
                return Poll::Ready(());
            }
            w.1 = Some(cx.waker().clone());
            Poll::Pending
        })
    });
    aio_core::timeout(10, woken)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the driver never woke the foreign waker"))?;
    if DROP_ON_WAKE.with(|s| s.borrow_mut().take()).is_some() {
        return Err(io::Error::other("the foreign waker was woken but dropped nothing"));
    }
    let (n, _) = aio_core::timeout(10, recv)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the woken receive never completed"))?;
    if n? != 1 {
        return Err(io::Error::other("the woken receive lost the byte"));
    }
    Ok(())
}

/// A xorshift generator for randomized tests: the same choices for the
/// same seed, and no dependency.
///
/// ```
/// let mut a = aio_test::Rng::new(7);
/// let mut b = aio_test::Rng::new(7);
/// assert_eq!(a.below(100), b.below(100));
/// assert!(a.below(3) < 3);
/// ```
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value, 0 too).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
