//! Rows whose operation runs as the child of a `TaskGroup`: the group
//! stands between the operation and every ending, so each column checks
//! that the group passes it on — a timeout or a cancellation of the
//! group's caller cancels the child (whose operation then ends as its own
//! row says), a dropped group drops the child with its operation in flight
//! (also from inside the driver), a closing loop ends it — and the inner
//! row's checks (nothing lost, nothing leaked, the documented outcome)
//! hold through it.
//!
//! The child keeps what its operation returned where the group's caller
//! reads it after the group ends, as a program gathers its children's
//! results; a group that ends any other way than by its caller's
//! cancellation fails the cell.

use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;

use aio_core::{TaskGroup, TaskGroupError};

use crate::harness::{Case, Endings, Local};

/// Row `C`'s operation as the one child of a task group.
pub struct InGroup<C>(PhantomData<C>);

/// What the group's caller saw: the group's end, and what the child's
/// operation returned (`None` if it returned nothing: dropped unfinished).
fn ended<T>(r: Result<(), TaskGroupError<Infallible>>, out: Option<T>) -> io::Result<Option<T>> {
    match r {
        Ok(()) => {
            if out.is_none() {
                return Err(io::Error::other("the group ended, but its child returned nothing"));
            }
            Ok(out)
        }
        // Cancelled from outside (a timeout, `task.cancel()`): the child
        // was cancelled and awaited; what its operation returned stands.
        Err(e) if e.is_cancelled() => Ok(out),
        Err(e) => Err(io::Error::other(format!(
            "the group failed without a failing child: {} failures",
            e.failures().len()
        ))),
    }
}

impl<C: Case> Case for InGroup<C> {
    type Fx = C::Fx;
    type Out = io::Result<Option<C::Out>>;

    const NAME: &'static str = "a task group's child";
    const ENDINGS: Endings = C::ENDINGS;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        C::setup()
    }

    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let op = C::op(fx);
        Box::pin(async move {
            let out = Rc::new(RefCell::new(None));
            let o = out.clone();
            let r = TaskGroup::run(|tg| async move {
                tg.create_task(async move {
                    *o.borrow_mut() = Some(op.await);
                    Ok::<_, Infallible>(())
                });
                Ok(())
            })
            .await;
            let got = out.borrow_mut().take();
            ended(r, got)
        })
    }

    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        C::feed(fx)
    }

    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let got = got.transpose()?.flatten();
            C::settle(fx, got).await
        })
    }

    fn peer_end(fx: &Rc<Self::Fx>, reset: bool) -> Local<'_, io::Result<()>> {
        C::peer_end(fx, reset)
    }

    fn check_peer_end(out: Self::Out, reset: bool) -> io::Result<()> {
        match out? {
            Some(out) => C::check_peer_end(out, reset),
            None => Err(io::Error::other("the peer ended, and the child returned nothing")),
        }
    }

    /// The inner row's absurd input, inside a child: its clear error comes
    /// out through the child's handle, and the group ends normally.
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let handle = RefCell::new(None);
            let h = &handle;
            TaskGroup::run(|tg| async move {
                *h.borrow_mut() = Some(tg.create_task(async { Ok::<_, Infallible>(C::bad_input().await) }));
                Ok(())
            })
            .await
            .map_err(|e| io::Error::other(format!("the group failed: cancelled {}", e.is_cancelled())))?;
            let child = handle.borrow_mut().take().expect("the child was created");
            child
                .result()
                .ok_or_else(|| io::Error::other("the child ended without its value"))?
        })
    }
}
