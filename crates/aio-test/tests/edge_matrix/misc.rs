//! Subprocess `wait` and `communicate`, `sleep`, queue `get` and `put`,
//! lock and semaphore `acquire`, barrier `wait`, awaiting an
//! `aio::Future`, `wait` for tasks, condition and event `wait`.
#![allow(clippy::await_holding_refcell_ref)] // one operation at a time holds the process

use std::cell::{Cell, RefCell};
use std::future::IntoFuture;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aio_core::{Cancelled, sleep, timeout};
use aio_net::{DEVNULL, PIPE, Process, create_subprocess_exec};
use aio_queue::{GetError, PutError, Queue};
use aio_sync::{Barrier, BarrierError, BoundedSemaphore, Condition, Event, Lock, OwnedLockGuard, Semaphore};

use crate::harness::{Case, Ending, Endings, Local, completed, ensure, invalid_input, ready};

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub struct ProcFx {
    p: Rc<RefCell<Process>>,
    stdin: RefCell<Option<aio_net::StreamWriter>>,
}

/// `wait` for a child that runs until its stdin closes (`cat`): the return
/// code is recorded whatever happened to an earlier `wait`, and a signal
/// sent after it is refused with `ESRCH`.
pub struct Wait;

impl Case for Wait {
    type Fx = ProcFx;
    type Out = io::Result<i32>;
    const NAME: &'static str = "subprocess wait";
    const ENDINGS: Endings = Endings::ALL;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let mut p = create_subprocess_exec("cat", []).stdin(PIPE).stdout(DEVNULL).await?;
            let stdin = RefCell::new(p.stdin.take());
            Ok(ProcFx {
                p: Rc::new(RefCell::new(p)),
                stdin,
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let p = fx.p.clone();
        Box::pin(async move { p.borrow().wait().await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        if let Some(w) = fx.stdin.borrow_mut().take() {
            w.close();
        }
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some(code) = completed(got)? {
                ensure(code == 0, || format!("cat exited with {code}"))?;
            }
            let p = fx.p.clone();
            let code = timeout(10.0, async move { p.borrow().wait().await })
                .await
                .map_err(|_| io::Error::other("the child's exit was never seen"))??;
            ensure(code == 0 && fx.p.borrow().returncode() == Some(0), || {
                format!("exit {code}")
            })?;
            // Once the exit is recorded a signal is refused, never sent
            // (the pid may be reused): asyncio's ProcessLookupError.
            let e = fx.p.borrow().kill();
            ensure(
                e.as_ref().err().and_then(io::Error::raw_os_error) == Some(libc::ESRCH),
                || format!("a signal after the exit: {e:?}"),
            )
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        let p = fx.p.borrow();
        ready(if reset { p.kill() } else { p.terminate() })
    }
    fn check_peer_end(out: Self::Out, reset: bool) -> io::Result<()> {
        let want = if reset { -libc::SIGKILL } else { -libc::SIGTERM };
        match out {
            Ok(code) if code == want => Ok(()),
            r => Err(io::Error::other(format!("a killed child's wait: {r:?} (want {want})"))),
        }
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            match create_subprocess_exec("/no/such/program", []).await {
                Err(e) if e.to_string().contains("/no/such/program") => Ok(()),
                Err(e) => Err(io::Error::other(format!("the error does not name the program: {e}"))),
                Ok(_) => Err(io::Error::other("a missing program started")),
            }
        })
    }
}

/// `communicate` with `cat`: ended early, the child still exits (its
/// stdin is closed) and is reaped; nothing leaks.
pub struct Communicate;

impl Case for Communicate {
    type Fx = ProcFx;
    type Out = io::Result<(Option<Vec<u8>>, Option<Vec<u8>>)>;
    const NAME: &'static str = "subprocess communicate";

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let p = create_subprocess_exec("cat", []).stdin(PIPE).stdout(PIPE).await?;
            Ok(ProcFx {
                p: Rc::new(RefCell::new(p)),
                stdin: RefCell::new(None),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let p = fx.p.clone();
        Box::pin(async move {
            let input = aio_test::payload(300_000, 11);
            p.borrow_mut().communicate(&input[..]).await
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some((out, _)) = completed(got)? {
                ensure(out.as_deref() == Some(&aio_test::payload(300_000, 11)[..]), || {
                    "cat's output differs".into()
                })?
            }
            // Ended early, the child may wait for input nobody sends: its
            // stdin was taken by `communicate` (closed when dropped).
            let p = fx.p.clone();
            if let Some(w) = p.borrow_mut().stdin.take() {
                w.close();
            }
            drop(p.borrow_mut().stdout.take());
            let code = timeout(10.0, async move { p.borrow().wait().await })
                .await
                .map_err(|_| io::Error::other("the child never exited"))??;
            ensure(code == 0 || code == -libc::SIGPIPE, || {
                format!("cat exited with {code}")
            })
        })
    }
}

/// `sleep`: never early; ended otherwise, no timer is left behind.
pub struct Sleep;

pub struct SleepFx {
    start: Instant,
}

const NAP: f64 = 0.02;

impl Case for Sleep {
    type Fx = SleepFx;
    type Out = aio_core::Result<()>;
    const NAME: &'static str = "sleep";
    const ENDINGS: Endings = Endings::WAITING.but(Ending::DroppedAsItCompletes).and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async { Ok(SleepFx { start: Instant::now() }) })
    }
    fn op(_: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        Box::pin(async { sleep(NAP).await.map(drop) })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some(Ok(())) = got {
                let took = fx.start.elapsed();
                ensure(took >= Duration::from_secs_f64(NAP), || {
                    format!("slept {took:?} of {NAP} s")
                })?;
            }
            Ok(())
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async { invalid_input("sleep(NaN)", sleep(f64::NAN).await.map_err(io::Error::from)) })
    }
}

/// `RawSleep` (other libraries' timers on the loop, hyper's): never
/// early; it does not observe aio's cancellation, so a cancelled task
/// that awaits it still sleeps to the deadline, and anything else ends
/// it by dropping it.
pub struct RawSleep;

impl Case for RawSleep {
    type Fx = SleepFx;
    type Out = ();
    const NAME: &'static str = "raw sleep";
    const ENDINGS: Endings = Endings::WAITING;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async { Ok(SleepFx { start: Instant::now() }) })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let mut s = aio_core::time::RawSleep::until(fx.start + Duration::from_secs_f64(NAP));
        Box::pin(std::future::poll_fn(move |cx| {
            s.poll_sleep(cx).expect("polled on the loop that armed it")
        }))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if got.is_some() {
                let took = fx.start.elapsed();
                ensure(took >= Duration::from_secs_f64(NAP), || {
                    format!("slept {took:?} of {NAP} s")
                })?;
            }
            Ok(())
        })
    }
}

pub struct QueueFx {
    q: Queue<u32>,
}

/// `get` on an empty queue: an item a dropped or cancelled getter was
/// handed goes to the next getter, never lost or duplicated.
pub struct QueueGet;

impl Case for QueueGet {
    type Fx = QueueFx;
    type Out = Result<u32, GetError>;
    const NAME: &'static str = "queue get";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerCloses).and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            Ok(QueueFx {
                q: Queue::with_maxsize(1),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move { fx.q.get().await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move { fx.q.put_nowait(7).map_err(err) })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let item = match got {
                Some(Ok(v)) => Some(v),
                Some(Err(GetError::Cancelled(_))) | None => None,
                Some(Err(e)) => return Err(err(e)),
            };
            let rest = fx.q.get_nowait().ok();
            ensure(item.is_some() != rest.is_some(), || {
                format!("got {item:?}, left {rest:?}: lost or doubled")
            })?;
            ensure(item.or(rest) == Some(7) && fx.q.empty(), || "the wrong item".into())
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, _reset: bool) -> Local<'_, io::Result<()>> {
        fx.q.shutdown(false);
        ready(Ok(()))
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        match out {
            Err(GetError::ShutDown) => Ok(()),
            r => Err(io::Error::other(format!("get on a shut-down queue: {r:?}"))),
        }
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let q = Queue::<u32>::new();
            q.put_nowait(1).map_err(err)?;
            q.get_nowait().map_err(err)?;
            q.task_done().map_err(err)?;
            ensure(q.task_done().is_err(), || {
                "task_done more often than items: no error".into()
            })
        })
    }
}

/// `put` on a full queue: the item is in the queue exactly when the put
/// said so.
pub struct QueuePut;

impl Case for QueuePut {
    type Fx = QueueFx;
    type Out = Result<(), PutError<u32>>;
    const NAME: &'static str = "queue put";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerCloses);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let q = Queue::with_maxsize(1);
            q.put_nowait(1).map_err(err)?;
            Ok(QueueFx { q })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move { fx.q.put(2).await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let first = fx.q.get_nowait().map_err(err)?;
            ensure(first == 1, || "the wrong first item".into())
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let put = match got {
                Some(Ok(())) => true,
                // A cancelled put hands its item back.
                Some(Err(PutError::Cancelled(_, item))) => {
                    ensure(item == 2, || format!("a cancelled put gave back {item}"))?;
                    false
                }
                None => false,
                Some(Err(e)) => return Err(err(e)),
            };
            let left = fx.q.get_nowait().ok();
            ensure(left == put.then_some(2), || {
                format!("put said {put}, the queue holds {left:?}")
            })?;
            // The slot is free again.
            fx.q.put_nowait(3).map_err(err)
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, _reset: bool) -> Local<'_, io::Result<()>> {
        fx.q.shutdown(false);
        ready(Ok(()))
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        match out {
            Err(PutError::ShutDown(2)) => Ok(()),
            r => Err(io::Error::other(format!("put on a shut-down queue: {r:?}"))),
        }
    }
}

pub struct LockFx {
    lock: Arc<Lock>,
    held: RefCell<Option<OwnedLockGuard>>,
}

/// `acquire` of a held lock: a waiter dropped or cancelled after it was
/// handed the lock passes it on; the lock is never leaked. `BIASED`: the
/// lock was first released with nobody waiting, so it is biased to the
/// loop's thread and held through the bias; the waiter ends the bias
/// (a second task of the owner must queue), and afterwards the lock
/// works from another thread too (its release there, its `try_acquire`).
pub struct LockAcquire<const BIASED: bool>;

impl<const BIASED: bool> Case for LockAcquire<BIASED> {
    type Fx = LockFx;
    type Out = Result<OwnedLockGuard, Cancelled>;
    const NAME: &'static str = if BIASED {
        "lock acquire (biased)"
    } else {
        "lock acquire"
    };
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let lock = Arc::new(Lock::new());
            if BIASED {
                drop(lock.acquire().await.map_err(err)?);
            }
            let g = lock.acquire_owned().await.map_err(err)?;
            Ok(LockFx {
                lock,
                held: RefCell::new(Some(g)),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        Box::pin(fx.lock.acquire_owned())
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        let g = fx.held.borrow_mut().take();
        if !BIASED {
            drop(g);
            return ready(Ok(()));
        }
        // Released on another thread.
        let released = std::thread::spawn(move || drop(g)).join();
        ready(released.map_err(|_| io::Error::other("the release panicked")))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some(Ok(g)) = got {
                ensure(fx.lock.locked(), || "a held guard, an unlocked lock".into())?;
                drop(g);
            }
            let g = timeout(10.0, fx.lock.acquire())
                .await
                .map_err(|_| io::Error::other("the lock was leaked"))?
                .map_err(err)?;
            drop(g);
            ensure(!fx.lock.locked(), || "locked with no holder".into())?;
            if BIASED {
                let lock = fx.lock.clone();
                let other = std::thread::spawn(move || lock.try_acquire().map(drop).is_some())
                    .join()
                    .map_err(|_| io::Error::other("try_acquire panicked"))?;
                ensure(other, || "another thread found the free lock taken".into())?;
                ensure(!fx.lock.locked(), || "locked with no holder".into())?;
            }
            Ok(())
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            ensure(Lock::new().release().is_err(), || {
                "releasing an unlocked lock: no error".into()
            })?;
            // A biased lock released twice: the second is the error.
            let lock = Lock::new();
            drop(lock.acquire().await.map_err(err)?);
            lock.acquire().await.map_err(err)?.forget();
            ensure(lock.release().is_ok(), || "releasing a held lock failed".into())?;
            ensure(lock.release().is_err(), || {
                "releasing a biased, unlocked lock: no error".into()
            })
        })
    }
}

pub struct SemFx {
    sem: Semaphore,
}

/// `acquire` of a semaphore at 0: a permit a dropped or cancelled waiter
/// was handed goes on; the count ends where it began.
pub struct SemaphoreAcquire;

impl Case for SemaphoreAcquire {
    type Fx = SemFx;
    type Out = Result<(), Cancelled>;
    const NAME: &'static str = "semaphore acquire";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async { Ok(SemFx { sem: Semaphore::new(0) }) })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        // The permit is kept (forgotten) by a waiter that got it.
        Box::pin(async move { fx.sem.acquire().await.map(|g| g.forget()) })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.sem.release();
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let took = matches!(got, Some(Ok(())));
            let value = fx.sem.value();
            ensure(value == usize::from(!took), || {
                format!("took: {took}, value {value}: a permit lost or made")
            })
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let b = BoundedSemaphore::new(1);
            ensure(b.release().is_err(), || {
                "a bounded semaphore released past its value: no error".into()
            })
        })
    }
}

pub struct BarrierFx {
    barrier: Rc<Barrier>,
    /// The other party, sent by `feed`.
    other: RefCell<Option<aio_core::Task<Result<usize, BarrierError>>>>,
}

/// `wait` at a barrier of two parties, the other arriving as the feed: a
/// waiter dropped or cancelled before the release no longer counts (the
/// other party waits for a new partner); one dropped after it, as the
/// barrier let it through, leaves the other passed. Either way the next
/// round fills and passes: no arrival is lost or counted twice.
pub struct BarrierWait;

impl Case for BarrierWait {
    type Fx = BarrierFx;
    type Out = Result<usize, BarrierError>;
    const NAME: &'static str = "barrier wait";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            Ok(BarrierFx {
                barrier: Rc::new(Barrier::new(2).map_err(err)?),
                other: RefCell::new(None),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move { fx.barrier.wait().await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        let b = fx.barrier.clone();
        *fx.other.borrow_mut() = Some(aio_core::create_task(async move { b.wait().await }));
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let b = &fx.barrier;
            if let Some(Ok(i)) = got {
                ensure(i < 2, || format!("arrival index {i} at a barrier of 2"))?;
            }
            let other = fx.other.borrow_mut().take();
            if let Some(other) = other {
                // The other party arrives, then passes with the operation
                // or, if that left before the release, waits for a partner.
                aio_test::until("the other party arrives or passes", || {
                    other.done() || b.n_waiting() == 1
                })
                .await?;
                if !other.done() {
                    let mine = timeout(10.0, b.wait()).await.map_err(err)?.map_err(err)?;
                    ensure(mine == 1, || format!("the partner's index {mine}"))?;
                }
                let theirs = timeout(10.0, other).await.map_err(err)?.map_err(err)?;
                ensure(theirs.is_ok(), || format!("the other party: {theirs:?}"))?;
            }
            ensure(b.n_waiting() == 0, || format!("{} left waiting", b.n_waiting()))?;
            // A fresh round fills and passes.
            let (x, y) = timeout(10.0, aio_core::gather!(b.wait(), b.wait()))
                .await
                .map_err(err)?
                .map_err(err)?;
            let mut idx = [x, y];
            idx.sort();
            ensure(idx == [0, 1], || format!("the next round's indexes {idx:?}"))?;
            ensure(!b.broken(), || "broken".into())
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async { ensure(Barrier::new(0).is_err(), || "a barrier of 0 parties: no error".into()) })
    }
}

pub struct FutureFx {
    fut: aio_core::Future<u32>,
}

/// Awaiting an `aio::Future` that `feed` completes. A cancelled awaiter
/// cancels the future (asyncio's rule), so its later `set_result` is an
/// `InvalidStateError`; a dropped one leaves it pending; an awaiter that
/// got the value leaves it for every other awaiter too.
pub struct FutureAwait;

impl Case for FutureAwait {
    type Fx = FutureFx;
    type Out = Result<u32, aio_core::FutureError>;
    const NAME: &'static str = "future await";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            Ok(FutureFx {
                fut: aio_core::Future::new(),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        Box::pin(fx.fut.clone().into_future())
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        // A future the awaiter cancelled first refuses the value.
        let _ = fx.fut.set_result(7);
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let fut = &fx.fut;
            match got {
                Some(Ok(v)) => ensure(v == 7, || format!("awaited {v}"))?,
                Some(Err(e)) => ensure(e.is_cancelled() && fut.cancelled(), || {
                    format!("an awaiter ended with {e:?}, the future cancelled: {}", fut.cancelled())
                })?,
                None => {}
            }
            if !fut.done() {
                // Dropped before the feed: still pending, and it takes a value.
                fut.set_result(7).map_err(err)?;
            }
            // Whatever the first awaiter did, the next one gets the outcome.
            let next = timeout(10.0, fut.clone().into_future()).await.map_err(err)?;
            match next {
                Ok(v) => ensure(v == 7, || format!("the next awaiter got {v}")),
                Err(e) => ensure(e.is_cancelled() && fut.cancelled(), || {
                    format!("the next awaiter: {e:?}")
                }),
            }
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let fut = aio_core::Future::<u32>::new();
            fut.set_result(1).map_err(err)?;
            ensure(fut.set_result(2).is_err(), || "a second set_result: no error".into())?;
            ensure(!fut.cancel(), || "cancelling a done future succeeded".into())
        })
    }
}

pub struct WaitFx {
    gate: aio_core::Future<()>,
    task: RefCell<Option<aio_core::Task<u32>>>,
    /// The task, seen after its handle went with a wait that ended early.
    probe: aio_core::TaskRef,
}

/// `wait` for a task that finishes when `feed` opens its gate: the wait
/// returns it done; a wait dropped, timed out or cancelled leaves the task
/// running (asyncio's `wait` never cancels what it waits for), and it
/// still finishes with its value.
pub struct WaitTasks;

impl Case for WaitTasks {
    type Fx = WaitFx;
    type Out = Result<(usize, usize), aio_core::WaitError>;
    const NAME: &'static str = "wait for tasks";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let gate = aio_core::Future::<()>::new();
            let g = gate.clone();
            let task = aio_core::create_task(async move {
                let _ = g.await;
                7
            });
            Ok(WaitFx {
                gate,
                probe: task.to_ref(),
                task: RefCell::new(Some(task)),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move {
            let task = fx.task.borrow_mut().take().expect("one wait per cell");
            let (done, pending) = aio_core::wait([task], aio_core::ALL_COMPLETED).await?;
            let counts = (done.len(), pending.len());
            // The task goes back for `settle` to read.
            *fx.task.borrow_mut() = done.into_iter().chain(pending).next();
            Ok(counts)
        })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        let _ = fx.gate.set_result(());
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            if let Some(Ok(counts)) = got {
                ensure(counts == (1, 0), || format!("done and pending: {counts:?}"))?;
            }
            let _ = fx.gate.set_result(());
            match fx.task.borrow_mut().take() {
                // The wait returned it: done, with its value.
                Some(t) => {
                    let v = timeout(10.0, t).await.map_err(err)?.map_err(err)?;
                    ensure(v == 7, || format!("the task gave {v}"))
                }
                // The wait ended without returning it (dropped, cancelled):
                // the handle went with the wait's list, but the task was not
                // cancelled and runs to its end.
                None => {
                    aio_test::until("the task ends", || fx.probe.done()).await?;
                    ensure(!fx.probe.cancelled(), || "the wait cancelled its task".into())
                }
            }
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let none: Vec<aio_core::Task<()>> = Vec::new();
            let r = aio_core::wait(none, aio_core::ALL_COMPLETED).await;
            ensure(matches!(r, Err(aio_core::WaitError::Empty)), || {
                format!("wait for no task: {r:?}")
            })
        })
    }
}

pub struct CondFx {
    cond: Condition,
    /// Where the operation's wait is.
    op: Rc<Cell<WaitState>>,
    /// A second waiter, queued behind the operation's, and where it is.
    rival: RefCell<Option<aio_core::Task<Result<(), Cancelled>>>>,
    rival_state: Rc<Cell<WaitState>>,
    /// The feed's notifier, and how many waiters its `notify(1)` reached.
    notifier: RefCell<Option<aio_core::Task<Result<(), Cancelled>>>>,
    fed: Cell<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WaitState {
    NotYet,
    Waiting,
    Ended,
}

/// Marks a wait `Waiting` while it lives, `Ended` once dropped (however
/// the wait ended).
struct Waiting(Rc<Cell<WaitState>>);

impl Waiting {
    fn start(state: &Rc<Cell<WaitState>>) -> Waiting {
        state.set(WaitState::Waiting);
        Waiting(state.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.set(WaitState::Ended);
    }
}

/// `wait` on a condition, with a rival queued behind it and a `notify(1)`
/// as the feed, made once the rival waits (a notify with nobody waiting
/// reaches nobody, in asyncio too), by a notifier that keeps the lock a
/// turn longer. A waiter that ends without acting on the notification
/// leaves it to the rival; one that acted on it leaves the rival's owed;
/// the lock is free at the end. (A waiter dropped while it takes the lock
/// back after a notify passes it on: aio-sync's
/// `dropped_while_reacquiring_passes_the_notification_on` and CPython's
/// `test_cancelled_wakeup_relock` pin that window, which these endings
/// do not reach.)
pub struct ConditionWait;

impl Case for ConditionWait {
    type Fx = CondFx;
    type Out = Result<(), Cancelled>;
    const NAME: &'static str = "condition wait";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            Ok(CondFx {
                cond: Condition::new(),
                op: Rc::new(Cell::new(WaitState::NotYet)),
                rival: RefCell::new(None),
                rival_state: Rc::new(Cell::new(WaitState::NotYet)),
                notifier: RefCell::new(None),
                fed: Cell::new(0),
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move {
            let mut g = fx.cond.acquire().await?;
            // The rival takes the lock once this wait gives it up, so it
            // queues second.
            let rival = fx.clone();
            *fx.rival.borrow_mut() = Some(aio_core::create_task(async move {
                let mut g = rival.cond.acquire().await?;
                let _waiting = Waiting::start(&rival.rival_state);
                rival.cond.wait(&mut g).await
            }));
            let _waiting = Waiting::start(&fx.op);
            fx.cond.wait(&mut g).await
        })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        let fx2 = fx.clone();
        *fx.notifier.borrow_mut() = Some(aio_core::create_task(async move {
            // Once the rival waits, behind the operation if that still
            // waits.
            while fx2.rival_state.get() != WaitState::Waiting || fx2.op.get() == WaitState::NotYet {
                aio_core::yield_now().await?;
            }
            let g = fx2.cond.acquire().await?;
            fx2.fed.set(fx2.cond.notify(1).expect("notify under the lock"));
            // Held a turn longer: the woken waiter waits to take the lock
            // back, which is where a drop can lose its notification.
            let held = aio_core::yield_now().await;
            drop(g);
            held
        }));
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let cond = &fx.cond;
            let notifier = fx.notifier.borrow_mut().take();
            if let Some(n) = notifier {
                timeout(10.0, n).await.map_err(err)?.map_err(err)?.map_err(err)?;
            }
            ensure(fx.fed.get() == 1, || {
                format!("the notify reached {} waiters", fx.fed.get())
            })?;
            let rival = fx.rival.borrow_mut().take();
            let rival = rival.ok_or_else(|| err("the operation never queued its rival"))?;
            if matches!(got, Some(Ok(()))) {
                // The operation acted on the notification: the rival's is
                // still owed.
                let g = cond.acquire().await.map_err(err)?;
                ensure(cond.notify(1) == Ok(1), || "the rival no longer waits".into())?;
                drop(g);
            }
            // Otherwise the notification went to the rival, straight or
            // passed on by the operation: it must wake without another.
            let theirs = timeout(10.0, rival)
                .await
                .map_err(|_| err("the rival was never woken: a notification was lost"))?
                .map_err(err)?;
            ensure(theirs.is_ok(), || format!("the rival: {theirs:?}"))?;
            ensure(!cond.locked(), || "the lock is held by nobody".into())
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            ensure(Condition::new().notify(1).is_err(), || {
                "notify without the lock: no error".into()
            })
        })
    }
}

pub struct EventFx {
    ev: Event,
}

/// `wait` for an event the feed sets: whatever happened to a waiter, the
/// event stays set and the next waiter returns at once; a cleared event
/// makes waiters wait again.
pub struct EventWait;

impl Case for EventWait {
    type Fx = EventFx;
    type Out = Result<(), Cancelled>;
    const NAME: &'static str = "event wait";

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async { Ok(EventFx { ev: Event::new() }) })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move { fx.ev.wait().await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.ev.set();
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let ev = &fx.ev;
            ensure(ev.is_set(), || "the event is no longer set".into())?;
            if let Some(r) = got {
                ensure(r.is_ok() || r.as_ref().is_err_and(|c| !c.is_invalid_delay()), || {
                    format!("the waiter: {r:?}")
                })?;
            }
            timeout(10.0, ev.wait())
                .await
                .map_err(|_| err("a set event made a waiter wait"))?
                .map_err(err)?;
            ev.clear();
            let waits = timeout(0.001, ev.wait()).await.is_err();
            ensure(waits, || "a cleared event let a waiter through".into())
        })
    }
}

pub struct TaskFx {
    gate: aio_core::Future<()>,
    task: aio_core::Task<u32>,
}

/// Awaiting a task's handle (asyncio's `await task`): the awaiter gets the
/// task's value. An awaiter cancelled (or timed out) cancels the task, as
/// asyncio's does; this one handles it and still returns its value, which
/// the handle keeps. One dropped without a cancellation leaves it running.
/// Bad input: a task awaiting its own handle fails at once ("Task cannot
/// await on itself") rather than waiting, or spinning once cancelled.
pub struct TaskAwait;

impl Case for TaskAwait {
    type Fx = TaskFx;
    type Out = Result<u32, aio_core::TaskError>;
    const NAME: &'static str = "task await";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let gate = aio_core::Future::<()>::new();
            let g = gate.clone();
            let task = aio_core::create_task(async move {
                // A cancellation sent through an awaiter is handled here.
                let _ = g.await;
                7
            });
            Ok(TaskFx { gate, task })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let fx = fx.clone();
        Box::pin(async move { (&fx.task).await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        let _ = fx.gate.set_result(());
        ready(Ok(()))
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            match got {
                Some(Ok(v)) => ensure(v == 7, || format!("awaited {v}"))?,
                Some(Err(e)) => ensure(e.is_cancelled(), || format!("the awaiter ended with {e:?}"))?,
                None => {}
            }
            let _ = fx.gate.set_result(());
            // However the awaiter ended, the task ends with its value, and
            // the next awaiter gets it.
            let v = timeout(10.0, (&fx.task).into_future())
                .await
                .map_err(err)?
                .map_err(err)?;
            ensure(v == 7, || format!("the next awaiter got {v}"))
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            type Selfish = aio_core::Task<Result<(), aio_core::TaskError>>;
            let cell: Rc<std::cell::OnceCell<Selfish>> = Rc::default();
            let me = cell.clone();
            let task = aio_core::create_task(async move {
                let t = me.get().expect("stored before it runs");
                t.await.and_then(|r| r)
            });
            let probe = task.to_ref();
            let _ = cell.set(task);
            aio_test::until("the task awaiting itself ends", || probe.done()).await?;
            match cell.get().expect("set").cloned_result() {
                Some(Err(aio_core::TaskError::Panicked(p))) => ensure(
                    p.message().is_some_and(|m| m.contains("cannot await on itself")),
                    || format!("it panicked with {:?}", p.message()),
                ),
                other => Err(err(format!("a task awaiting itself ended with {other:?}"))),
            }
        })
    }
}
