//! The matrix's machinery: an operation is a [`Case`] (one table row), an
//! [`Ending`] is a column, and [`cell`] runs one row through one column
//! with the same invariants for every cell.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use aio_core::{Runner, create_task, sleep, timeout, yield_now};
use aio_test::{Backend, Either, fd_count, fds_settle, open_fds, race};

/// Every way an operation's await can end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It completes: the peer (or the clock) lets it.
    Completes,
    /// Dropped while it waits (a `select`-style race lost to a timer),
    /// then the peer sends what it would have got.
    Dropped,
    /// Dropped as it completes: the peer sends first, then the operation
    /// races a yield (in the kernel or on a thread, it may finish after
    /// its future is gone).
    DroppedAsItCompletes,
    /// Dropped from inside the loop's I/O driver while it waits: it
    /// belongs to another executor's task, which that executor's waker
    /// drops when the driver wakes it.
    DroppedInDriver,
    /// Ended by `timeout`.
    Timeout,
    /// Its task is cancelled (`task.cancel()`) while it waits.
    Cancelled,
    /// The loop is closed while it waits.
    LoopClosed,
    /// The peer closes (EOF, a shut-down queue, a process that exits).
    PeerCloses,
    /// The peer resets (or refuses, or is killed).
    PeerResets,
    /// Absurd input.
    BadInput,
}

impl Ending {
    /// Every column, in the order a row runs them.
    pub const ALL: [Ending; 10] = [
        Ending::Completes,
        Ending::Dropped,
        Ending::DroppedAsItCompletes,
        Ending::DroppedInDriver,
        Ending::Timeout,
        Ending::Cancelled,
        Ending::LoopClosed,
        Ending::PeerCloses,
        Ending::PeerResets,
        Ending::BadInput,
    ];
}

/// The columns a row has, run in [`Ending::ALL`]'s order. Rows differ by
/// a column or two, so each says how it differs from [`Endings::WAITING`].
#[derive(Clone, Copy, Debug)]
pub struct Endings(u16);

impl Endings {
    /// Every column.
    pub const ALL: Endings = Endings(0x3ff);
    /// What every waiting operation supports: completes, dropped, dropped
    /// as it completes, dropped inside the driver, timeout, cancelled, the
    /// loop closed.
    pub const WAITING: Endings = Endings(0)
        .and(Ending::Completes)
        .and(Ending::Dropped)
        .and(Ending::DroppedAsItCompletes)
        .and(Ending::DroppedInDriver)
        .and(Ending::Timeout)
        .and(Ending::Cancelled)
        .and(Ending::LoopClosed);

    /// These columns and `e`.
    pub const fn and(self, e: Ending) -> Endings {
        Endings(self.0 | 1 << e as u16)
    }

    /// These columns but `e`.
    pub const fn but(self, e: Ending) -> Endings {
        Endings(self.0 & !(1 << e as u16))
    }

    /// The columns, in order.
    pub fn list(self) -> Vec<Ending> {
        Ending::ALL
            .into_iter()
            .filter(|&e| self.0 & 1 << e as u16 != 0)
            .collect()
    }
}

/// A boxed future of the loop's thread.
pub type Local<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One operation: a row of the matrix.
///
/// The operation waits until [`feed`](Case::feed) lets it complete; after
/// it ended (with a result, or none: dropped, timed out, cancelled),
/// [`settle`](Case::settle) checks that nothing was lost — the next
/// operation of the same kind sees what the ended one would have got, a
/// lock or permit is not leaked, a queue item is not lost or duplicated.
pub trait Case: 'static {
    /// The operation's object and its peer.
    type Fx: 'static;
    /// What the operation returns.
    type Out: 'static;

    /// The row's name.
    const NAME: &'static str;
    /// The columns that apply.
    const ENDINGS: Endings = Endings::WAITING;

    /// A fresh fixture.
    fn setup() -> Local<'static, io::Result<Self::Fx>>;
    /// The operation (owning what it needs, so a task can run it).
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out>;
    /// Lets the operation complete: the peer sends, releases, exits.
    /// Nothing, for operations that complete by themselves.
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        let _ = fx;
        ready(Ok(()))
    }
    /// The operation ended with `got` (`None`: it returned nothing):
    /// checks its result and that nothing it would have got is lost.
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>>;
    /// The peer closes or (`reset`) resets while the operation waits.
    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        let _ = (fx, reset);
        unreachable!("{}: no peer to end", Self::NAME)
    }
    /// Checks the outcome after [`peer_end`](Case::peer_end).
    fn check_peer_end(out: Self::Out, reset: bool) -> io::Result<()> {
        let _ = (out, reset);
        unreachable!("{}: no peer to end", Self::NAME)
    }
    /// Runs the operation with absurd input and checks its clear error.
    fn bad_input() -> Local<'static, io::Result<()>> {
        unreachable!("{}: no bad input", Self::NAME)
    }
}

/// How long a dropped or timed-out operation waits before it is ended:
/// long enough to be in flight (in the kernel, on a thread, in a waiter
/// list), short enough for many cells.
const SHORT: f64 = 0.003;

/// A bound on every cell, against hangs (never a timing assertion).
const BOUND: f64 = 20.0;

/// Runs row `C` through `ending` on the running loop, checking the
/// invariants every cell shares: no hang, no descriptor leaked, and the
/// row's own outcome and no-loss checks.
pub async fn cell<C: Case>(ending: Ending) -> io::Result<()> {
    let base = fd_count();
    let what = format!("{} / {ending:?}", C::NAME);
    match timeout(BOUND, run::<C>(ending)).await {
        Ok(r) => r.map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))?,
        Err(_) => panic!("{what}: not done within {BOUND} s (a hang)"),
    }
    let n = fds_settle(base, Duration::from_secs(10)).await;
    assert!(n <= base, "{what}: {} descriptors leaked ({})", n - base, open_fds());
    Ok(())
}

async fn run<C: Case>(ending: Ending) -> io::Result<()> {
    if ending == Ending::BadInput {
        return C::bad_input().await;
    }
    let fx = Rc::new(C::setup().await?);
    match ending {
        Ending::Completes => {
            let t = spawn(C::op(&fx));
            aio_test::settle(3).await;
            C::feed(&fx).await?;
            let got = t
                .await
                .map_err(|e| io::Error::other(format!("the operation's task: {e}")))?
                .0;
            C::settle(&fx, Some(got)).await
        }
        Ending::Dropped => {
            let got = match race(C::op(&fx), sleep(SHORT)).await {
                Either::Left(out) => Some(out),
                Either::Right(r) => {
                    r?;
                    None
                }
            };
            C::feed(&fx).await?;
            C::settle(&fx, got).await
        }
        Ending::DroppedAsItCompletes => {
            C::feed(&fx).await?;
            let got = match race(C::op(&fx), yield_now()).await {
                Either::Left(out) => Some(out),
                Either::Right(r) => {
                    r?;
                    None
                }
            };
            C::settle(&fx, got).await
        }
        Ending::DroppedInDriver => {
            let mut op = C::op(&fx);
            let got = match aio_test::poll_once(op.as_mut()) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => {
                    aio_test::drop_inside_driver(Box::new(op)).await?;
                    None
                }
            };
            C::feed(&fx).await?;
            C::settle(&fx, got).await
        }
        Ending::Timeout => {
            let got = timeout(SHORT, C::op(&fx)).await.ok();
            C::feed(&fx).await?;
            C::settle(&fx, got).await
        }
        Ending::Cancelled => {
            // What the operation returned is kept whatever the task's
            // outcome: a result that beat the cancellation stands.
            let slot = Rc::new(RefCell::new(None));
            let (s, op) = (slot.clone(), C::op(&fx));
            let t = create_task(async move {
                let out = op.await;
                *s.borrow_mut() = Some(out);
            });
            sleep(SHORT).await?;
            t.cancel();
            let _ = t.await;
            let got = slot.borrow_mut().take();
            C::feed(&fx).await?;
            C::settle(&fx, got).await
        }
        Ending::PeerCloses | Ending::PeerResets => {
            let reset = ending == Ending::PeerResets;
            let t = spawn(C::op(&fx));
            aio_test::settle(3).await;
            C::peer_end(&fx, reset).await?;
            let out = t
                .await
                .map_err(|e| io::Error::other(format!("the operation's task: {e}")))?
                .0;
            C::check_peer_end(out, reset)
        }
        Ending::LoopClosed | Ending::BadInput => unreachable!("handled apart"),
    }
}

/// An operation's output as a task's: the task never "fails" (the cell
/// judges the output itself).
struct Output<T>(T);

impl<T> aio_core::TaskOutput for Output<T> {}

fn spawn<T: 'static>(op: Local<'static, T>) -> aio_core::Task<Output<T>> {
    create_task(async move { Output(op.await) })
}

/// Row `C` with its operation in flight when its loop closes: the close
/// ends it within its bound, and nothing is leaked.
pub fn loop_closed<C: Case>(b: Backend) {
    let Some(lp) = aio_test::new_loop(b) else { return };
    let base = fd_count();
    let runner = Runner::with_loop(lp);
    runner
        .run(async {
            let fx = Rc::new(C::setup().await?);
            let op = C::op(&fx);
            create_task(async move {
                let _keep = fx;
                let _ = op.await;
            });
            aio_test::settle(3).await;
            sleep(SHORT).await?;
            Ok::<(), io::Error>(())
        })
        .unwrap_or_else(|e| panic!("{} / LoopClosed: {e}", C::NAME));
    let t0 = Instant::now();
    runner.close();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "{} / LoopClosed: close took {took:?}",
        C::NAME
    );
    // Threads of the file calls may still be finishing what they close.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fd_count() > base && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let n = fd_count();
    assert!(
        n <= base,
        "{} / LoopClosed: {} descriptors leaked ({})",
        C::NAME,
        n - base,
        open_fds()
    );
}

/// Runs every column of row `C` on backend `b`, one after the other.
pub fn row<C: Case>(b: Backend) {
    let _one = aio_test::serial();
    for ending in C::ENDINGS.list() {
        if ending == Ending::LoopClosed {
            loop_closed::<C>(b);
        } else {
            aio_test::run_on(b, cell::<C>(ending));
        }
    }
}

/// A dyn-callable cell, for the randomized variant.
pub struct Row {
    pub name: &'static str,
    pub endings: Vec<Ending>,
    pub cell: fn(Ending) -> Local<'static, io::Result<()>>,
    pub loop_closed: fn(Backend),
}

impl Row {
    pub fn of<C: Case>() -> Row {
        Row {
            name: std::any::type_name::<C>(),
            endings: C::ENDINGS.list(),
            cell: |e| Box::pin(cell::<C>(e)),
            loop_closed: loop_closed::<C>,
        }
    }
}

/// Whether `e` is a cancellation (a cancelled operation's output carries
/// one: it received nothing).
pub fn is_cancel(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// `r`'s value; `None` for a cancellation; a real error fails the cell.
pub fn unless_cancelled<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_cancel(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks `cond`, or fails with `msg` as an `io::Error` (so a cell's
/// failure names its row and column).
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> io::Result<()> {
    if cond { Ok(()) } else { Err(io::Error::other(msg())) }
}

/// `v`, as a [`Local`] future: for a row's steps that do their work at
/// once (a drop, a release), which the harness awaits right away.
pub fn ready<'a, T: 'a>(v: T) -> Local<'a, T> {
    Box::pin(std::future::ready(v))
}

/// What an operation ended with, as the value it completed with: `None`
/// when it returned nothing (dropped, timed out) or a cancellation; a
/// real error fails the cell.
pub fn completed<T>(got: Option<io::Result<T>>) -> io::Result<Option<T>> {
    Ok(got.map(unless_cancelled).transpose()?.flatten())
}

/// The bytes a buffer-returning read ended with (none if it returned
/// nothing or was cancelled); a real error fails the cell.
pub fn received(got: Option<(io::Result<usize>, Vec<u8>)>) -> io::Result<Vec<u8>> {
    match got {
        Some((n, buf)) => Ok(if unless_cancelled(n)?.is_some() {
            buf
        } else {
            Vec::new()
        }),
        None => Ok(Vec::new()),
    }
}

/// Checks what a peer got of `sent` from an operation that ended: a
/// prefix of it, in order, and all of it when the operation completed
/// (`done`).
pub fn a_prefix(got: &[u8], sent: &[u8], done: bool) -> io::Result<()> {
    ensure(got.len() <= sent.len() && got[..] == sent[..got.len()], || {
        "the peer got bytes that were not sent there, or out of order".into()
    })?;
    ensure(!done || got.len() == sent.len(), || {
        format!(
            "the operation completed, but the peer got {} of {} bytes",
            got.len(),
            sent.len()
        )
    })
}

/// Checks that `r` is the `InvalidInput` error absurd input gets.
pub fn invalid_input<T: std::fmt::Debug>(what: &str, r: io::Result<T>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        r => Err(io::Error::other(format!("{what}: {r:?}"))),
    }
}

/// Checks that `r` failed, with a real error (not a cancellation): an
/// operation whose peer went, or whose input makes no sense.
pub fn failed<T>(what: &str, r: io::Result<T>) -> io::Result<()> {
    match r {
        Err(e) if !is_cancel(&e) => Ok(()),
        r => Err(io::Error::other(format!("{what}: {:?}", r.map(|_| "a result")))),
    }
}
