//! A pool of loops: `LoopPool::spawn` (a `Send` job placed on the pool,
//! awaited from this loop as a `ConcurrentFuture`) and a request to a
//! pool's server (a connection accepted by one loop and handed to the
//! loop that holds fewer), each ended every way.

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aio::{LoopPool, TaskError};
use aio_core::Cancelled;
use aio_sync::Event;

use crate::harness::{Case, Ending, Endings, Local, ensure, ready};

pub struct PoolFx {
    pool: LoopPool,
    /// Opened by `feed`: the job finishes.
    gate: Arc<Event>,
    /// Times the job started, finished, and was cancelled at the gate.
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
}

impl Drop for PoolFx {
    fn drop(&mut self) {
        self.pool.shutdown(Duration::ZERO);
    }
}

/// A job that waits for the gate; `Err` when it was cancelled there.
pub struct PoolSpawn;

impl Case for PoolSpawn {
    type Fx = PoolFx;
    type Out = Result<Result<u32, Cancelled>, TaskError>;
    const NAME: &'static str = "pool spawn";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerCloses);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let pool = aio::LoopPool::builder(1)
                .loop_builder(aio::Builder::new().backend(aio::Backend::None))
                .build()?;
            Ok(PoolFx {
                pool,
                gate: Arc::new(Event::new()),
                started: Arc::new(AtomicUsize::new(0)),
                finished: Arc::new(AtomicUsize::new(0)),
                cancelled: Arc::new(AtomicUsize::new(0)),
            })
        })
    }

    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let (gate, started) = (fx.gate.clone(), fx.started.clone());
        let (finished, cancelled) = (fx.finished.clone(), fx.cancelled.clone());
        let job = fx.pool.spawn(async move {
            started.fetch_add(1, Ordering::SeqCst);
            if let Err(c) = gate.wait().await {
                cancelled.fetch_add(1, Ordering::SeqCst);
                return Err(c);
            }
            finished.fetch_add(1, Ordering::SeqCst);
            Ok::<u32, Cancelled>(7)
        });
        Box::pin(job)
    }

    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.gate.set();
        ready(Ok(()))
    }

    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let finished = || fx.finished.load(Ordering::SeqCst);
            match got {
                // It ran once and its result came back.
                Some(Ok(Ok(7))) => ensure(finished() == 1, || format!("finished {} times", finished()))?,
                // Cancelled (the awaiting task was): it never finished.
                Some(Ok(Err(_))) | Some(Err(TaskError::Cancelled(_))) => {
                    ensure(finished() == 0, || "a cancelled job finished".into())?
                }
                Some(other) => return Err(io::Error::other(format!("the job ended with {other:?}"))),
                // Dropped, the job goes on detached and finishes; timed
                // out, it was cancelled first (asyncio's `wait_for` of a
                // wrapped future cancels it). Either way it ends, once.
                None => {
                    let ended = || finished() + fx.cancelled.load(Ordering::SeqCst);
                    aio_test::until("the job ends", || ended() >= 1).await?;
                    ensure(ended() == 1, || format!("the job ended {} times", ended()))?
                }
            }
            let started = fx.started.load(Ordering::SeqCst);
            ensure(started <= 1, || format!("the job started {started} times"))?;
            // The pool still runs jobs.
            let again = fx.pool.spawn(async { 8 }).await;
            ensure(matches!(again, Ok(8)), || format!("the next job: {again:?}"))
        })
    }

    fn peer_end(fx: &Rc<Self::Fx>, _reset: bool) -> Local<'_, io::Result<()>> {
        // The pool shuts down with no grace while the job waits.
        fx.pool.shutdown(Duration::ZERO);
        ready(Ok(()))
    }

    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        match out {
            Ok(Err(_)) | Err(TaskError::Cancelled(_)) => Ok(()),
            other => Err(io::Error::other(format!("a job of a pool shut down: {other:?}"))),
        }
    }
}

pub struct PoolServerFx {
    pool: LoopPool,
    server: aio_net::PoolServer,
    /// Opened by `feed`: the handler answers.
    gate: Arc<Event>,
    /// Connections whose handler ended (answered or met end of stream).
    ended: Arc<AtomicUsize>,
    /// Set by the peer-reset column: the handler, once the gate opens,
    /// resets its connection (`SO_LINGER` 0, then `abort`) instead of
    /// answering.
    reset: Arc<AtomicBool>,
}

impl Drop for PoolServerFx {
    fn drop(&mut self) {
        self.server.close();
        self.pool.shutdown(Duration::ZERO);
    }
}

/// A line to a pool's server (two loops: the connection may be handed to
/// the sibling that holds fewer) and its echo, which the handler sends once
/// the gate opens.
pub struct PoolConnection;

/// Sends a line on a new connection and reads the echo.
async fn exchange(addr: std::net::SocketAddr) -> io::Result<Vec<u8>> {
    let (mut r, w) = aio_net::open_connection(&addr.ip().to_string(), addr.port()).await?;
    w.write(b"ping\n");
    w.drain().await?;
    let line = r.readline().await?;
    w.close();
    Ok(line)
}

impl Case for PoolConnection {
    type Fx = PoolServerFx;
    type Out = io::Result<Vec<u8>>;
    const NAME: &'static str = "pool server connection";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerCloses).and(Ending::PeerResets);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            // The pool's loops run the row's backend too.
            let backend = match aio_core::get_running_loop().backend() {
                "uring" => aio::Backend::Uring,
                _ => aio::Backend::Poll,
            };
            let pool = aio::LoopPool::builder(2)
                .loop_builder(aio::Builder::new().backend(backend))
                .build()?;
            let gate = Arc::new(Event::new());
            let ended = Arc::new(AtomicUsize::new(0));
            let reset = Arc::new(AtomicBool::new(false));
            let (g, e, rs) = (gate.clone(), ended.clone(), reset.clone());
            let server = pool.start_server(
                "127.0.0.1:0",
                move |mut r: aio_net::StreamReader, w: aio_net::StreamWriter| {
                    let (gate, ended, reset) = (g.clone(), e.clone(), rs.clone());
                    async move {
                        let line = r.readline().await;
                        if let Ok(line) = line {
                            if !line.is_empty() && gate.wait().await.is_ok() {
                                if reset.load(Ordering::SeqCst) && w.set_linger(Some(Duration::ZERO)).is_ok() {
                                    // The reset goes out as the handler
                                    // drops the connection.
                                    w.abort();
                                } else {
                                    w.write(&line);
                                    let _ = w.drain().await;
                                }
                            }
                        }
                        w.close();
                        ended.fetch_add(1, Ordering::SeqCst);
                    }
                },
            )?;
            Ok(PoolServerFx {
                pool,
                server,
                gate,
                ended,
                reset,
            })
        })
    }

    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        Box::pin(exchange(fx.server.local_addr()))
    }

    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        fx.gate.set();
        ready(Ok(()))
    }

    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            match got {
                Some(Ok(line)) => ensure(line == b"ping\n", || format!("the echo was {line:?}"))?,
                Some(Err(e)) if crate::harness::is_cancel(&e) => {}
                Some(Err(e)) => return Err(e),
                None => {}
            }
            // Whatever happened to the first, the server answers the next
            // connection, and every handler ends (a client gone mid-way is
            // end of stream to it).
            let line = exchange(fx.server.local_addr()).await?;
            ensure(line == b"ping\n", || format!("the next echo was {line:?}"))?;
            aio_test::until("every handler ends", || fx.server.connections() == 0).await?;
            let ended = fx.ended.load(Ordering::SeqCst);
            ensure((1..=2).contains(&ended), || format!("{ended} handlers ended"))
        })
    }

    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        if reset {
            // The handler, let go, resets the connection it read the
            // request from.
            fx.reset.store(true, Ordering::SeqCst);
            fx.gate.set();
        } else {
            // The pool shuts down with no grace while the handler waits:
            // the client meets the end of the connection.
            fx.pool.shutdown(Duration::ZERO);
        }
        ready(Ok(()))
    }

    fn check_peer_end(out: Self::Out, reset: bool) -> io::Result<()> {
        if reset {
            // The read fails, saying why: a reset is not an empty answer.
            return match out {
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
                other => Err(io::Error::other(format!(
                    "a connection reset by the pool's handler gave {other:?}"
                ))),
            };
        }
        match out {
            Ok(line) if line.is_empty() => Ok(()),
            Err(_) => Ok(()),
            Ok(line) => Err(io::Error::other(format!("an answer from a pool shut down: {line:?}"))),
        }
    }
}
