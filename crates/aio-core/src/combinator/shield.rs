//! `shield`: protect a future from the caller's cancellation.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use pin_project_lite::pin_project;
use std::task::{Context, Poll};

use crate::cancel::{self, Cancelled, Scope};
use crate::contextvars::ContextSlot;

/// Protects `fut` from cancellation: asyncio's `shield`.
///
/// `fut` is polled in a boundary scope, so a cancellation of the caller
/// never reaches its await points. The shield itself is an await point:
/// when the caller is cancelled it returns `Err(Cancelled)` at once.
/// What happens to `fut` then depends on what it is — the shield is
/// dropped with it. Pass a task (or `&mut task`) to keep the work running,
/// as asyncio does by wrapping the coroutine in a task:
///
/// ```
/// # aio_core::run(async {
/// let mut task = aio_core::create_task(async {
///     aio_core::sleep(0.05).await?;
///     Ok::<_, aio_core::Cancelled>("finished")
/// });
/// let r = aio_core::wait_for(aio_core::shield(&mut task), 0.01).await;
/// assert!(r.is_err()); // the caller timed out ...
/// assert_eq!(task.await.unwrap()?, "finished"); // ... the task did not
/// # Ok::<(), aio_core::Cancelled>(())
/// # }).unwrap();
/// ```
///
/// # Cancellation
/// Returns `Err(Cancelled)` when the caller is cancelled, unless `fut`
/// is ready on the same poll (then its output is returned and the
/// cancellation is delivered at the caller's next await point).
pub fn shield<F: IntoFuture>(fut: F) -> Shield<F::IntoFuture> {
    Shield {
        fut: fut.into_future(),
        scope: Scope::boundary(),
        vars: ContextSlot::new(crate::contextvars::current()),
    }
}

pin_project! {
    /// Future of [`shield`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Shield<F> {
        #[pin]
        fut: F,
        scope: Scope,
        // `fut`'s context variables: a copy of the context `shield` was
        // called in (asyncio's shield wraps a coroutine in a task, which
        // copies it).
        vars: ContextSlot,
    }
}

impl<F> fmt::Debug for Shield<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Shield<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = {
            let _g = this.scope.enter();
            let _v = this.vars.enter();
            this.fut.poll(cx)
        };
        if let Poll::Ready(v) = res {
            return Poll::Ready(Ok(v));
        }
        cancel::check()?;
        Poll::Pending
    }
}
