//! Running a task's steps: a poll in its scope and context, and what
//! completing it does (wake the awaiter, run done callbacks, report a
//! failure nobody will see).

use std::ptr::NonNull;
use std::task::Context;

use super::TaskRef;
use super::error::TaskError;
use super::header::{ABORT, HANDLE, Header, OBSERVED, Outcome, POLLING, PollOutcome, RETRIEVED, STARTED};
use super::{header, raw};
use crate::callback::CallbackCell;
use crate::cancel::Cancelled;
use crate::context::Restore;
use crate::event_loop::core::Core;
use crate::event_loop::exception::ExceptionContext;

/// One step of a task, with asyncio's cancellation rules applied around it.
pub(crate) fn poll_task(core: &Core, ptr: NonNull<Header>) {
    // SAFETY: the caller holds the task's alive reference.
    let h = unsafe { ptr.as_ref() };
    let scope = &h.scope;
    let was_pending = scope.is_pending();
    if !h.flag(STARTED) {
        h.set_flag(STARTED, true);
        if was_pending {
            // Cancelled before its first step: the body never runs.
            let c = scope.deliver();
            return finish(core, ptr, Outcome::Cancelled, Some(c));
        }
    }
    let deliveries = scope.deliveries();
    h.set_flag(POLLING, true);
    let outcome = {
        // SAFETY: header and scope live in the task allocation, which the
        // alive reference keeps in place for the whole poll.
        let _g = unsafe { Restore::poll(h, scope) };
        let waker = raw::waker_ref(ptr);
        let mut cx = Context::from_waker(&waker);
        // SAFETY: loop thread; the POLLING flag rules out re-entry.
        unsafe { (h.vtable.poll)(ptr, &mut cx) }
    };
    h.set_flag(POLLING, false);
    match outcome {
        PollOutcome::Pending => {
            if h.flag(ABORT) {
                finish(core, ptr, Outcome::Cancelled, Some(scope.error()));
            } else if was_pending && scope.is_pending() && scope.deliveries() == deliveries {
                // Nothing in this step consumed the delivery: the task waits
                // only on foreign futures. Drop it (the hard path).
                scope.clear_pending();
                finish(core, ptr, Outcome::Cancelled, Some(scope.error()));
            }
        }
        PollOutcome::Ready => {
            if scope.ends_cancelled() {
                // Its cancellation propagated out (the output carries it)
                // or was never delivered: asyncio's cancelled task. One
                // that handled it keeps what it returned. The message is
                // the one that escaped (a cancelled future's, raised in
                // the task, or the task's own).
                finish(core, ptr, Outcome::Cancelled, Some(scope.delivered_copy()));
            } else {
                complete(core, ptr, Outcome::Ok);
            }
        }
        PollOutcome::Panicked => complete(core, ptr, Outcome::Panicked),
    }
}

/// Replaces whatever the task holds with `Err(Cancelled)` and completes it.
pub(super) fn finish(core: &Core, ptr: NonNull<Header>, outcome: Outcome, c: Option<Cancelled>) {
    // SAFETY: alive reference held by the caller.
    let h = unsafe { ptr.as_ref() };
    let err = crate::TaskError::Cancelled(c.unwrap_or_default());
    // SAFETY: loop thread, not inside the task's own poll.
    unsafe { (h.vtable.finish_with)(ptr, err) };
    complete(core, ptr, outcome);
}

/// Marks a task complete: unregisters it, queues its done callbacks, wakes
/// its awaiter and releases its alive reference (unless it is queued).
///
/// The state word says `COMPLETE` only at the end, in the step that
/// releases the alive reference: until then the task counts as running
/// for wakes (one while its output drops queues it as any wake of a live
/// task does, and that entry then releases the alive reference). Nothing
/// that runs in between reads the word: the awaiter, woken here, runs in
/// a later turn, and `done()` reads the outcome, set first.
pub(super) fn complete(core: &Core, ptr: NonNull<Header>, outcome: Outcome) {
    // SAFETY: alive reference held by the caller.
    let h = unsafe { ptr.as_ref() };
    h.set_outcome(outcome);
    core.unregister_task(h);

    if let Some(mut extras) = h.local.extras.take() {
        for (_, cb) in std::mem::take(&mut extras.callbacks) {
            core.call_soon_rc(CallbackCell::rc(cb));
        }
        h.local.extras.set(Some(extras));
    }
    if let Some(w) = h.local.join_waker.take() {
        w.wake();
    }
    if !h.flag(HANDLE) {
        // Detached: nobody will read the output; drop it here, on the loop
        // thread, and report a panic nobody will see otherwise.
        drop_detached_output(core, h, ptr);
    }
    // SAFETY: the alive reference, released exactly once: here, or by the
    // run loop when it dequeues the completed task; `h` is not used after.
    unsafe { header::complete_and_release(ptr) };
}

/// asyncio's message for a task that failed as the closing loop cancelled
/// it (`run()`'s `_cancel_all_tasks`).
const SHUTDOWN_FAILURE: &str = "unhandled exception during asyncio.run() shutdown";

pub(super) fn drop_detached_output(core: &Core, h: &Header, ptr: NonNull<Header>) {
    if let Some(mut ctx) = unseen_failure(h, ptr) {
        if core.cancelled_at_shutdown(h.id()) {
            ctx.message = SHUTDOWN_FAILURE.into();
        }
        core.report(ctx);
    }
    h.set_flag(RETRIEVED, true);
    // SAFETY: loop thread; the task is complete, nothing else reads the stage.
    unsafe { (h.vtable.drop_stage)(ptr) };
}

/// The report of a task the closing loop cancelled that failed instead,
/// while the program holds its handle: asyncio's `run()` reports such a
/// failure to the loop's handler and marks it retrieved, so dropping the
/// handle later reports nothing. The handle keeps the failure (the report
/// has a copy of a panic, by its message). Loop thread only.
pub(crate) fn shutdown_failure(t: &TaskRef) -> Option<ExceptionContext> {
    let h = t.header();
    if !h.flag(HANDLE) {
        return None;
    }
    let ctx = failure_report(h, t.ptr(), SHUTDOWN_FAILURE, true)?;
    h.set_flag(OBSERVED, true);
    Some(ctx)
}

/// The report of a finished task whose failure nobody saw — its panic (taken
/// out), or an output that is a failure (an `Err`, when the task was made by
/// `create_task`) — as asyncio logs "Task exception was never retrieved".
/// Loop thread only.
pub(super) fn unseen_failure(h: &Header, ptr: NonNull<Header>) -> Option<ExceptionContext> {
    failure_report(h, ptr, "Task exception was never retrieved", false)
}

/// A report saying `message` of the failure a finished task ended with,
/// unless it was seen: its panic (taken out of the task, or copied when
/// the task `keep`s it for a handle), or the `Debug` of an `Err` output.
fn failure_report(h: &Header, ptr: NonNull<Header>, message: &str, keep: bool) -> Option<ExceptionContext> {
    if h.flag(RETRIEVED) || h.flag(OBSERVED) {
        return None;
    }
    let (panic, error) = match h.outcome() {
        Outcome::Panicked => {
            let e = if keep {
                // SAFETY: loop thread; the task is complete, its stage
                // holds its output until the handle takes it.
                unsafe { (h.vtable.error_ref)(ptr).as_ref() }.cloned()
            } else {
                // SAFETY: loop thread; the task is complete, nothing else
                // reads the stage.
                unsafe { (h.vtable.take_error)(ptr) }
            };
            match e {
                Some(TaskError::Panicked(p)) => (Some(p), None),
                _ => return None,
            }
        }
        // SAFETY: as above.
        Outcome::Ok => (None, Some(unsafe { (h.vtable.failure?)(ptr) }?)),
        Outcome::Cancelled | Outcome::Running => return None,
    };
    Some(ExceptionContext {
        message: message.into(),
        task: Some(h.name()),
        panic,
        error,
    })
}
