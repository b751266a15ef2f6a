//! Graceful shutdown of a server: [`GracefulShutdown`] and
//! [`Builder::serve_graceful`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use aio_core::Cancelled;
use aio_net::TcpListener;
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};

use crate::conn_info::{ConnInfo, WithConnInfo};
use crate::rt::Io;
use crate::server::{Backoff, BoxError, Builder, report};

/// Stops a server without cutting requests off: what tonic's
/// `serve_with_shutdown` and hyper-util's `GracefulShutdown` do, for
/// [`Builder::serve_graceful`].
///
/// [`shutdown`](GracefulShutdown::shutdown) makes the server stop
/// accepting (its `serve_graceful` returns) and asks every connection to
/// finish: an HTTP/1 connection closes once the response in progress is
/// sent (an idle one at once), an HTTP/2 connection sends GOAWAY and
/// closes when its open streams are done. [`wait`](GracefulShutdown::wait)
/// waits until the last connection has closed. Clones share one state;
/// the handle belongs to its loop (not `Send`).
///
/// # Examples
/// ```
/// use std::convert::Infallible;
/// use aio_hyper::hyper::{Request, Response, body::Incoming, service::service_fn};
/// use aio_hyper::{Builder, Bytes, Full, GracefulShutdown};
///
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let listener = aio_net::TcpListener::bind("127.0.0.1:0").await?;
/// let shutdown = GracefulShutdown::new();
/// let server = {
///     let shutdown = shutdown.clone();
///     aio_core::create_task(async move {
///         let svc = service_fn(|_: Request<Incoming>| async {
///             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hi"))))
///         });
///         Builder::new().serve_graceful(&listener, svc, &shutdown).await
///     })
/// };
/// aio_core::sleep(0.01).await?;
/// shutdown.shutdown();
/// server.await??;              // stopped accepting
/// shutdown.wait().await?;       // and every connection is done
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct GracefulShutdown {
    inner: Rc<State>,
}

#[derive(Default)]
struct State {
    shutting_down: Cell<bool>,
    connections: Cell<usize>,
    next_id: Cell<u64>,
    /// Whoever waits for the signal or for the last connection.
    watchers: RefCell<HashMap<u64, Waker>>,
}

impl fmt::Debug for GracefulShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulShutdown")
            .field("shutting_down", &self.is_shutting_down())
            .field("connections", &self.connections())
            .finish()
    }
}

impl GracefulShutdown {
    /// A handle not yet signalled.
    pub fn new() -> GracefulShutdown {
        GracefulShutdown::default()
    }

    /// Starts the shutdown: the servers serving with this handle stop
    /// accepting and each of their connections finishes what it is doing,
    /// then closes. Calling it again does nothing.
    pub fn shutdown(&self) {
        if !self.inner.shutting_down.replace(true) {
            self.wake_all();
        }
    }

    /// Whether [`shutdown`](GracefulShutdown::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.get()
    }

    /// The connections still open.
    pub fn connections(&self) -> usize {
        self.inner.connections.get()
    }

    /// Waits until the shutdown was started and every connection has
    /// closed.
    ///
    /// # Cancellation
    /// Returns `Err(Cancelled)`; the shutdown goes on.
    pub async fn wait(&self) -> Result<(), Cancelled> {
        let watch = self.watch();
        poll_fn(|cx| {
            aio_core::cancel::check()?;
            if self.is_shutting_down() && self.connections() == 0 {
                return Poll::Ready(Ok(()));
            }
            watch.set(cx);
            Poll::Pending
        })
        .await
    }

    fn wake_all(&self) {
        let wakers: Vec<Waker> = self.inner.watchers.borrow().values().cloned().collect();
        for w in wakers {
            w.wake();
        }
    }

    /// A place for one waiter's waker, removed when it is dropped.
    fn watch(&self) -> Watch<'_> {
        let id = self.inner.next_id.get();
        self.inner.next_id.set(id + 1);
        Watch { owner: self, id }
    }

    /// Counts a connection until the returned guard is dropped.
    fn track(&self) -> Tracked {
        self.inner.connections.set(self.inner.connections.get() + 1);
        Tracked { owner: self.clone() }
    }
}

struct Watch<'a> {
    owner: &'a GracefulShutdown,
    id: u64,
}

impl Watch<'_> {
    fn set(&self, cx: &Context<'_>) {
        let mut w = self.owner.inner.watchers.borrow_mut();
        match w.get_mut(&self.id) {
            Some(old) if old.will_wake(cx.waker()) => {}
            Some(old) => old.clone_from(cx.waker()),
            None => {
                w.insert(self.id, cx.waker().clone());
            }
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.owner.inner.watchers.borrow_mut().remove(&self.id);
    }
}

struct Tracked {
    owner: GracefulShutdown,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let n = self.owner.inner.connections.get() - 1;
        self.owner.inner.connections.set(n);
        if n == 0 {
            self.owner.wake_all();
        }
    }
}

impl Builder {
    /// [`serve`](Builder::serve) until `shutdown` is signalled: then it
    /// stops accepting and returns `Ok(())`, while the connections it
    /// started finish their requests and close (see
    /// [`GracefulShutdown`]; its `wait` tells when they are done). Each
    /// request carries its [`ConnInfo`].
    ///
    /// # Errors
    /// As [`serve`](Builder::serve).
    ///
    /// # Cancellation
    /// Returns `Err(Interrupted)` (from `Cancelled`) and stops accepting;
    /// the connections go on (signal `shutdown` to end them too).
    pub async fn serve_graceful<S, B>(
        &self,
        listener: &TcpListener,
        service: S,
        shutdown: &GracefulShutdown,
    ) -> io::Result<()>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let builder = Rc::new(self.clone());
        let mut backoff = Backoff::default();
        let watch = shutdown.watch();
        loop {
            let accepted = {
                let mut accept = pin!(backoff.accept(listener));
                poll_fn(|cx| {
                    if shutdown.is_shutting_down() {
                        return Poll::Ready(None);
                    }
                    watch.set(cx);
                    accept.as_mut().poll(cx).map(Some)
                })
                .await
            };
            let Some(accepted) = accepted else { return Ok(()) };
            let (stream, peer) = accepted?;
            let info = ConnInfo::new(peer, stream.local_addr().ok());
            let service = WithConnInfo::new(service.clone(), info);
            let tracked = shutdown.track();
            let builder = builder.clone();
            // Counted in the loop's metrics (`connections`) while it lives.
            let held = aio_core::get_running_loop().hold_connection();
            drop(aio_core::create_task(async move {
                let r = serve_until_shutdown(&builder, Io::tcp(stream), service, &tracked.owner).await;
                drop((tracked, held));
                report(r);
            }));
        }
    }
}

/// Serves one connection; once `shutdown` is signalled, asks hyper to end
/// it gracefully and goes on until it has.
async fn serve_until_shutdown<S, B>(
    builder: &Builder,
    io: Io,
    service: S,
    shutdown: &GracefulShutdown,
) -> Result<(), BoxError>
where
    S: Service<Request<Incoming>, Response = Response<B>> + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    let mut conn = pin!(builder.inner.serve_connection(io, service));
    let watch = shutdown.watch();
    let mut told = false;
    poll_fn(|cx| {
        if !told {
            if shutdown.is_shutting_down() {
                conn.as_mut().graceful_shutdown();
                told = true;
            } else {
                watch.set(cx);
            }
        }
        conn.as_mut().poll(cx)
    })
    .await
}
