//! The task allocation: a header and the future (later its output) in one
//! block, reference counted, with a hand-written waker.
//!
//! Threading rule: wakers may be cloned, woken and dropped on any thread, so
//! they touch only `state`, `refs` and the immutable `shared`/`vtable`
//! fields. Everything else — the stage, the scope, the `Local` cells — is
//! touched only on the loop thread. The future and the output (which need
//! not be `Send`) are always dropped on the loop thread: by the time the
//! last reference can be released elsewhere, the stage is `Consumed`.

use std::alloc::Layout;
use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::cells::{self, CellCache};
use super::header::{Header, Local, PollOutcome, REF_ONE, TaskPtr, VTable, add_ref, release};
use crate::cancel::scope::Scope;
use crate::context::with_core;
use crate::contextvars::vars::{ContextSlot, Snapshot};
use crate::event_loop::core::Core;
use crate::event_loop::shared::Shared;
use crate::loom::sync::atomic::AtomicU32;
use crate::task::error::TaskError;
use crate::task::output::Reportable;

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, TaskError>),
    Consumed,
}

#[repr(C)]
struct TaskCell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// Allocates a task for `fut`, its cell from `cells` (its loop's cache of
/// free cells) when given. The returned pointer carries two references:
/// the task's `alive` reference and one for the caller's handle.
#[inline]
pub(crate) fn allocate<F: Future + 'static>(
    fut: F,
    vtable: &'static VTable,
    shared: Arc<Shared>,
    id: u64,
    vars: Snapshot,
    cells: Option<&CellCache>,
) -> NonNull<Header> {
    let layout = Layout::new::<TaskCell<F>>();
    let p = match cells {
        Some(c) => c.take(layout),
        None => cells::alloc_cell(layout),
    }
    .cast::<TaskCell<F>>()
    .as_ptr();
    // Written in place, header and future apart: built whole on the stack
    // and moved, a cell past 128 bytes (the header and a small future) is
    // copied with a call to `memcpy` for every task.
    // SAFETY: `p` points to a free cell of `TaskCell<F>`'s size and
    // alignment (or more), valid for writes; each field is written once, so
    // the cell is fully initialised afterwards.
    unsafe {
        (&raw mut (*p).header).write(Header {
            state: AtomicU32::new(2 * REF_ONE),
            slot: Cell::new(0),
            vtable,
            shared,
            scope: Scope::new(),
            vars: ContextSlot::new(vars),
            local: Local::new(id),
        });
        (&raw mut (*p).stage).write(UnsafeCell::new(Stage::Running(fut)));
    }
    // `TaskCell` is `repr(C)` with the header first.
    // SAFETY: `p` is non-null (a cell was allocated).
    unsafe { NonNull::new_unchecked(p.cast()) }
}

/// The vtable of a task whose output type says nothing of failure.
pub(crate) fn vtable<F: Future + 'static>() -> &'static VTable {
    &VTableFor::<F>::VTABLE
}

/// The vtable of a task whose output can be a failure to report.
pub(crate) fn vtable_reporting<F>() -> &'static VTable
where
    F: Future + 'static,
    F::Output: Reportable,
{
    &VTableFor::<F>::REPORTING
}

struct VTableFor<F>(std::marker::PhantomData<F>);

impl<F: Future + 'static> VTableFor<F> {
    const VTABLE: VTable = VTable {
        poll: poll::<F>,
        finish_with: finish_with::<F>,
        take_output: take_output::<F>,
        take_error: take_error::<F>,
        peek: peek::<F>,
        error_ref: error_ref::<F>,
        drop_stage: drop_stage::<F>,
        dealloc: dealloc::<F>,
        failure: None,
    };
}

impl<F> VTableFor<F>
where
    F: Future + 'static,
    F::Output: Reportable,
{
    const REPORTING: VTable = VTable {
        failure: Some(failure::<F>),
        ..Self::VTABLE
    };
}

/// # Safety
/// `ptr` must point to a live `TaskCell<F>`; loop thread only; the stage must
/// not be borrowed elsewhere (no re-entrant poll of the same task).
unsafe fn stage<'a, F: Future>(ptr: NonNull<Header>) -> &'a mut Stage<F> {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut *ptr.cast::<TaskCell<F>>().as_ref().stage.get() }
}

/// Replaces the stage, catching a panic from dropping the old contents (a
/// future's destructor may panic; the loop must survive it).
///
/// The old contents are dropped where they are, never moved first: a
/// running future is pinned, and one that borrows its own locals (any
/// `async` block holding a reference across an await, flume's `RecvFut`)
/// reads through those borrows in its destructor.
fn replace_stage<F: Future>(st: &mut Stage<F>, new: Stage<F>) {
    let p: *mut Stage<F> = st;
    // SAFETY: `p` is valid and the stage is initialised. Drop glue keeps
    // dropping the remaining fields when one destructor panics, so after
    // the call (normal or unwinding) the old value is fully dropped and
    // must not be touched again.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { std::ptr::drop_in_place(p) }));
    // SAFETY: the old value was dropped above; writing without dropping
    // re-initialises the slot.
    unsafe { std::ptr::write(p, new) };
}

/// # Safety
/// See [`stage`].
unsafe fn poll<F: Future>(ptr: NonNull<Header>, cx: &mut Context<'_>) -> PollOutcome {
    // SAFETY: forwarded from the caller.
    let st = unsafe { stage::<F>(ptr) };
    let Stage::Running(fut) = st else {
        return PollOutcome::Ready;
    };
    // SAFETY: the future lives inside the heap cell and is never moved
    // until it is dropped in place by `replace_stage`.
    let fut = unsafe { Pin::new_unchecked(fut) };
    match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
        Ok(Poll::Pending) => PollOutcome::Pending,
        Ok(Poll::Ready(v)) => {
            replace_stage(st, Stage::Finished(Ok(v)));
            PollOutcome::Ready
        }
        Err(payload) => {
            replace_stage(st, Stage::Finished(Err(TaskError::Panicked(payload.into()))));
            PollOutcome::Panicked
        }
    }
}

/// # Safety
/// See [`stage`].
unsafe fn finish_with<F: Future>(ptr: NonNull<Header>, err: TaskError) {
    // SAFETY: forwarded from the caller.
    let st = unsafe { stage::<F>(ptr) };
    replace_stage(st, Stage::Finished(Err(err)));
}

/// # Safety
/// See [`stage`]; `dst` must point to an `Option<Result<F::Output, TaskError>>`.
unsafe fn take_output<F: Future>(ptr: NonNull<Header>, dst: *mut ()) {
    // SAFETY: forwarded from the caller.
    let st = unsafe { stage::<F>(ptr) };
    if let Stage::Finished(out) = std::mem::replace(st, Stage::Consumed) {
        // SAFETY: the caller passes a pointer of exactly this type.
        unsafe { *dst.cast::<Option<Result<F::Output, TaskError>>>() = Some(out) };
    }
}

/// # Safety
/// See [`stage`].
unsafe fn take_error<F: Future>(ptr: NonNull<Header>) -> Option<TaskError> {
    // SAFETY: forwarded from the caller.
    let st = unsafe { stage::<F>(ptr) };
    // Only a finished stage is moved out: a running future is pinned.
    if !matches!(st, Stage::Finished(Err(_))) {
        return None;
    }
    match std::mem::replace(st, Stage::Consumed) {
        Stage::Finished(Err(e)) => Some(e),
        _ => unreachable!("checked above"),
    }
}

/// # Safety
/// See [`stage`].
unsafe fn peek<F: Future>(ptr: NonNull<Header>) -> *const () {
    // SAFETY: forwarded from the caller.
    match unsafe { stage::<F>(ptr) } {
        Stage::Finished(out) => (out as *const Result<F::Output, TaskError>).cast(),
        _ => std::ptr::null(),
    }
}

/// # Safety
/// See [`stage`].
unsafe fn error_ref<F: Future>(ptr: NonNull<Header>) -> *const TaskError {
    // SAFETY: forwarded from the caller.
    match unsafe { stage::<F>(ptr) } {
        Stage::Finished(Err(e)) => e,
        _ => std::ptr::null(),
    }
}

/// # Safety
/// See [`stage`].
unsafe fn failure<F: Future>(ptr: NonNull<Header>) -> Option<String>
where
    F::Output: Reportable,
{
    // SAFETY: forwarded from the caller.
    match unsafe { stage::<F>(ptr) } {
        Stage::Finished(Ok(v)) => v.failure(),
        _ => None,
    }
}

/// # Safety
/// See [`stage`].
unsafe fn drop_stage<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    let st = unsafe { stage::<F>(ptr) };
    replace_stage(st, Stage::Consumed);
}

/// # Safety
/// `ptr` must be a `TaskCell<F>` whose last reference was just released.
unsafe fn dealloc<F: Future>(ptr: NonNull<Header>) {
    let cell = ptr.cast::<TaskCell<F>>().as_ptr();
    // SAFETY: the cell is live until freed below.
    let owner = unsafe { ptr.as_ref() }.shared.core_addr();
    // SAFETY: allocated by `allocate`; no other reference exists. The
    // stage is `Consumed` (see module docs), so only `Send` data is
    // dropped here. `shared` is left for below.
    unsafe {
        header_drop_but_shared(&raw mut (*cell).header);
        std::ptr::drop_in_place(&raw mut (*cell).stage);
    }
    let layout = Layout::new::<TaskCell<F>>();
    // SAFETY: `cell` is non-null.
    let mem = unsafe { NonNull::new_unchecked(cell.cast::<u8>()) };
    with_core(|core| match core {
        // Its own loop runs on this thread: its reference to the loop goes
        // back to the loop's bank and the cell to its cache, for the next
        // task.
        Some(c) if std::ptr::eq(c as *const Core as *const (), owner) => {
            // SAFETY: `shared` is live and read once (not dropped above).
            c.bank_shared_ref(unsafe { std::ptr::read(&raw const (*cell).header.shared) });
            // SAFETY: a cell `allocate` made for this layout, all of it
            // dropped or moved out.
            unsafe { c.cells.put(mem, layout) }
        }
        // SAFETY: as above; `shared` is dropped now, then the cell freed.
        _ => unsafe {
            std::ptr::drop_in_place(&raw mut (*cell).header.shared);
            cells::free_cell(mem, layout)
        },
    });
}

/// Drops every field of the header at `h` but `shared` (which goes back
/// to its loop's bank of references when the task is freed on the loop's
/// thread).
///
/// # Safety
/// `h` is a live header that nothing else uses; its fields other than
/// `shared` are not used again.
unsafe fn header_drop_but_shared(h: *mut Header) {
    // Every field but `shared`: a field added to `Header` is added here.
    // SAFETY: the caller's promise; each field is dropped once.
    unsafe {
        std::ptr::drop_in_place(&raw mut (*h).state);
        std::ptr::drop_in_place(&raw mut (*h).slot);
        std::ptr::drop_in_place(&raw mut (*h).vtable);
        std::ptr::drop_in_place(&raw mut (*h).scope);
        std::ptr::drop_in_place(&raw mut (*h).vars);
        std::ptr::drop_in_place(&raw mut (*h).local);
    }
}

// --- waker --------------------------------------------------------------

static WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

unsafe fn waker_clone(p: *const ()) -> RawWaker {
    // SAFETY: a waker holds a reference, so the task is live.
    add_ref(unsafe { &*(p as *const Header) });
    RawWaker::new(p, &WAKER_VTABLE)
}

unsafe fn waker_wake(p: *const ()) {
    // SAFETY: the waker's reference keeps the task live; we consume it after.
    unsafe {
        waker_wake_by_ref(p);
        waker_drop(p);
    }
}

unsafe fn waker_wake_by_ref(p: *const ()) {
    // SAFETY: the waker's reference keeps the task live.
    let ptr = unsafe { NonNull::new_unchecked(p as *mut Header) };
    schedule(ptr);
}

unsafe fn waker_drop(p: *const ()) {
    // SAFETY: the waker owns one reference, released here.
    unsafe { release(NonNull::new_unchecked(p as *mut Header)) };
}

/// A waker borrowing the caller's reference: no count change; the
/// `ManuallyDrop` keeps it from releasing one.
pub(crate) fn waker_ref(ptr: NonNull<Header>) -> ManuallyDrop<Waker> {
    // SAFETY: the caller keeps `ptr` alive while the waker is in use; it is
    // never dropped, so it never releases the reference it does not own.
    ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr() as *const (), &WAKER_VTABLE)) })
}

// --- the state word ------------------------------------------------------
//
// Wakes come from any thread; the loop takes queue entries and completes
// tasks. `QUEUED` (a wake on the loop thread) and `SCHEDULED` (a wake from
// elsewhere) each make a task queued at most once, and keep its alive
// reference for the entry; `COMPLETE` makes later wakes no-ops (see
// `header`'s docs). The loom model `tests/loom_task.rs` runs the remote
// path: `schedule`, `dequeue_remote`, `set_complete`.

/// Puts the task on its loop's run queue unless it is queued or complete.
pub(crate) fn schedule(ptr: NonNull<Header>) {
    // SAFETY: callers hold a reference.
    let h = unsafe { ptr.as_ref() };
    // The `alive` reference now also covers the queue entry.
    h.shared.schedule(TaskPtr(ptr));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header stays at 96 bytes, so the cell of a small task (a future
    /// and an output of up to two words) is at most 120 bytes: the largest
    /// request glibc serves from its fast bins, its cheapest path.
    #[test]
    fn a_small_task_fits_the_fast_bins() {
        fn cell_size<F: Future>(_: &F) -> usize {
            size_of::<TaskCell<F>>()
        }
        let i = std::hint::black_box(5u64);
        assert_eq!(size_of::<Header>(), 96);
        assert!(cell_size(&async move { i }) <= 120);
    }
}
