//! A task's header: what every part of aio reaches a task by (its state
//! word and reference count, its vtable, its loop's [`Shared`], its cancel
//! scope and context variables), the counted pointer [`TaskPtr`], and the
//! reference counting and state-word steps that need no waker.
//!
//! Threading rule: wakers may be cloned, woken and dropped on any thread, so
//! they touch only `state` and the immutable `shared`/`vtable` fields —
//! except on the loop's own thread while it runs, where a wake is a step of
//! the loop and touches the `Local` flags instead. Everything else — the
//! stage, the scope, the `Local` cells — is touched only on the loop thread.
//!
//! # Queue entries and the alive reference
//!
//! A task is in its loop's run queue at most twice: once queued by a wake
//! on the loop's own thread ([`QUEUED`], a plain flag: no atomic step on
//! the path every local wake and every step takes), once by a wake from
//! another thread ([`SCHEDULED`], in the atomic state word, whose entry
//! travels through the injection queue). Both entries are covered by the
//! task's alive reference; of completion and the entries taken after it,
//! the last releases it. A task in the queue twice may be polled once more
//! than it was woken, which futures allow.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Waker};

use crate::cancel::scope::Scope;
use crate::contextvars::vars::ContextSlot;
use crate::event_loop::shared::Shared;
use crate::loom::sync::atomic::{AtomicU32, Ordering, fence};
use crate::task::error::TaskError;

// The state word: two flags and, above them, the reference count (one
// word, as tokio's and async-task's, so the header has room for the
// registry slot).

/// Queued by a wake from another thread (an entry in the injection queue,
/// or one the loop moved to its run queue). Cleared by the loop when it
/// takes that entry; a wake that finds it set is taken with that entry.
pub(crate) const SCHEDULED: u32 = 1;
/// The future is gone (finished, cancelled or aborted).
pub(crate) const COMPLETE: u32 = 2;
/// One reference, in the state word.
pub(crate) const REF_ONE: u32 = 4;

// Flags in `Local::flags` (loop thread only).
pub(crate) const HANDLE: u8 = 1; // a `Task<T>` handle exists
pub(crate) const STARTED: u8 = 2; // polled at least once
pub(crate) const POLLING: u8 = 4; // inside its own poll right now
pub(crate) const ABORT: u8 = 8; // abort requested while polling
pub(crate) const RETRIEVED: u8 = 16; // output taken
pub(crate) const OBSERVED: u8 = 32; // its failure was seen (a copy read, `exception()`)
pub(crate) const QUEUED: u8 = 64; // an entry in the loop's own run queue, from a wake on the loop thread
pub(crate) const REMOTE_ENTRY: u8 = 128; // completed with a `SCHEDULED` entry still to be taken

/// How a finished task ended, readable without the generic stage.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Outcome {
    Running = 0,
    Ok = 1,
    Cancelled = 2,
    Panicked = 3,
}

/// Where the outcome and the id sit in [`Local::word`].
const OUTCOME_SHIFT: u32 = 8;
const ID_SHIFT: u32 = 16;

pub(crate) enum PollOutcome {
    Pending,
    Ready,
    Panicked,
}

pub(crate) struct VTable {
    /// Polls the future once; stores the output when it finishes.
    pub(crate) poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> PollOutcome,
    /// Drops the future (or finished output) and stores `Err(error)`.
    pub(crate) finish_with: unsafe fn(NonNull<Header>, TaskError),
    /// Moves the output into `*dst`, an `Option<Result<T, TaskError>>`.
    pub(crate) take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Takes the error of a task that finished with one (output type unknown).
    pub(crate) take_error: unsafe fn(NonNull<Header>) -> Option<TaskError>,
    /// Points at the finished output, a `Result<T, TaskError>` (null while
    /// the task runs or once the output was taken).
    pub(crate) peek: unsafe fn(NonNull<Header>) -> *const (),
    /// Points at the error of a task that finished with one (null otherwise).
    pub(crate) error_ref: unsafe fn(NonNull<Header>) -> *const TaskError,
    /// Drops whatever the stage holds and marks it consumed.
    pub(crate) drop_stage: unsafe fn(NonNull<Header>),
    /// Frees the allocation.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// Describes a finished output that is a failure (an `Err`), for the
    /// report of a detached task; `None` when the output type is not known
    /// to be [`Reportable`] (tasks made by `run`, which are never
    /// detached).
    pub(crate) failure: Option<unsafe fn(NonNull<Header>) -> Option<String>>,
}

pub(crate) struct Local {
    /// The task's id (asyncio's `Task-<id>`), its [`Outcome`] and its
    /// flags, in one word: `id << 16 | outcome << 8 | flags`. One word
    /// rather than three fields keeps the header at 96 bytes, so the task
    /// cell of a small future stays within the allocator's smallest, cheapest
    /// chunks (glibc's fast bins take up to 120 bytes). Ids are 48 bits:
    /// at ten million tasks a second, they wrap after nine centuries.
    pub(crate) word: Cell<u64>,
    pub(crate) join_waker: Cell<Option<Waker>>,
    /// Rarely used fields, boxed on first use to keep the header small
    /// (it is read at every wake; fewer cache lines per task matters when
    /// a hundred thousand tasks wake in an order unrelated to memory).
    pub(crate) extras: Cell<Option<Box<Extras>>>,
}

#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) name: Option<Box<str>>,
    /// Done callbacks, with the ids `remove_done_callback` takes.
    pub(crate) callbacks: Vec<(u64, Box<dyn FnOnce()>)>,
}

impl Local {
    /// The loop-thread state of a new task numbered `id`: no flags,
    /// running, no awaiter, no extras.
    pub(crate) fn new(id: u64) -> Local {
        Local {
            word: Cell::new(id << ID_SHIFT),
            join_waker: Cell::new(None),
            extras: Cell::new(None),
        }
    }

    /// Runs `f` on the extras, creating them if needed.
    pub(crate) fn with_extras<R>(&self, f: impl FnOnce(&mut Extras) -> R) -> R {
        let mut e = self.extras.take().unwrap_or_default();
        let r = f(&mut e);
        self.extras.set(Some(e));
        r
    }
}

/// A field added here is also dropped by `raw::header_drop_but_shared`
/// (a task freed on its loop's thread gives `shared` back to the loop).
#[repr(C)]
pub(crate) struct Header {
    /// `refs * REF_ONE | COMPLETE | SCHEDULED`.
    pub(crate) state: AtomicU32,
    /// Where the loop's registry of live tasks keeps this one (loop thread
    /// only; meaningless once the task is complete).
    pub(crate) slot: Cell<u32>,
    pub(crate) vtable: &'static VTable,
    /// The owning loop's thread-safe half (run queue for remote wakes).
    pub(crate) shared: Arc<Shared>,
    /// The task's root cancel scope (loop thread only).
    pub(crate) scope: Scope,
    /// The task's context variables: a copy of its creator's, shared until
    /// either sets one (loop thread only; kept, as asyncio keeps a task's
    /// context, until the task is freed).
    pub(crate) vars: ContextSlot,
    /// Loop-thread-only bookkeeping.
    pub(crate) local: Local,
}

// SAFETY: the fields reachable from other threads (`state`, `vtable`,
// `shared`) are atomics or immutable `Sync` data; `slot`, `scope`,
// `vars` and `local` are only accessed on the loop thread, which every accessor
// guarantees (they are reached through `Task`/`TaskRef`, which are `!Send`,
// or through the loop's own code). `Local` holds only `Send` data, so
// dropping it on another thread after the loop is gone is fine.
unsafe impl Sync for Header {}
// SAFETY: see above; `vars` holds an `Arc` of `Send + Sync` values;
// `local` contains only `Send` values (wakers, strings,
// and callbacks that have been run or dropped on the loop thread before the
// last reference can move).
unsafe impl Send for Header {}

impl Header {
    /// The task's name: the one it was given, or asyncio's `Task-<id>`.
    pub(crate) fn name(&self) -> String {
        let e = self.local.extras.take();
        let s = e
            .as_ref()
            .and_then(|e| e.name.as_deref())
            .map_or_else(|| format!("Task-{}", self.id()), str::to_owned);
        self.local.extras.set(e);
        s
    }

    /// The task's number, counted per loop from 1 (loop thread only).
    pub(crate) fn id(&self) -> u64 {
        self.local.word.get() >> ID_SHIFT
    }

    #[inline]
    pub(crate) fn flag(&self, f: u8) -> bool {
        self.local.word.get() & u64::from(f) != 0
    }

    #[inline]
    pub(crate) fn set_flag(&self, f: u8, on: bool) {
        let v = self.local.word.get();
        let f = u64::from(f);
        self.local.word.set(if on { v | f } else { v & !f });
    }

    /// How the task ended (`Running` until it has).
    #[inline]
    pub(crate) fn outcome(&self) -> Outcome {
        match (self.local.word.get() >> OUTCOME_SHIFT) as u8 {
            0 => Outcome::Running,
            1 => Outcome::Ok,
            2 => Outcome::Cancelled,
            _ => Outcome::Panicked,
        }
    }

    pub(crate) fn set_outcome(&self, o: Outcome) {
        let v = self.local.word.get() & !(0xff << OUTCOME_SHIFT);
        self.local.word.set(v | (o as u64) << OUTCOME_SHIFT);
    }

    #[cfg(loom)]
    pub(crate) fn is_complete(&self) -> bool {
        self.state.load(Ordering::Acquire) & COMPLETE != 0
    }
}

/// A counted pointer to a task; `Send` so it can travel through the
/// injection queue. Dereferencing the loop-only parts is the holder's job.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TaskPtr(pub(crate) NonNull<Header>);

// SAFETY: a `TaskPtr` is only a pointer; the rules in the module docs
// decide which thread may touch which part of what it points to.
unsafe impl Send for TaskPtr {}

impl TaskPtr {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: whoever holds a `TaskPtr` holds a reference (or the
        // alive/scheduled reference), so the allocation is live.
        unsafe { self.0.as_ref() }
    }
}

// --- reference counting -------------------------------------------------

pub(crate) fn add_ref(h: &Header) {
    let old = h.state.fetch_add(REF_ONE, Ordering::Relaxed);
    if old > i32::MAX as u32 {
        std::process::abort();
    }
}

/// Releases one reference, freeing the task when it was the last.
///
/// # Safety
/// The caller owns one reference to a live task and gives it up.
#[inline]
pub(crate) unsafe fn release(ptr: NonNull<Header>) {
    // SAFETY: the caller owns a reference, so the header is live.
    let h = unsafe { ptr.as_ref() };
    if h.state.fetch_sub(REF_ONE, Ordering::Release) < 2 * REF_ONE {
        fence(Ordering::Acquire);
        // SAFETY: this was the last reference.
        unsafe { dealloc(ptr) };
    }
}

/// [`release`] for a reference that is usually the last (a joined task's
/// handle): freed without an atomic step when it is. Only a holder can
/// make another reference, so a count of one seen here stays one, and the
/// acquire load sees every release made before. Wakers, rarely the last,
/// keep the plain release (the load would be one more step for them).
///
/// # Safety
/// As [`release`].
pub(crate) unsafe fn release_likely_last(ptr: NonNull<Header>) {
    // SAFETY: the caller owns a reference, so the header is live.
    let h = unsafe { ptr.as_ref() };
    if h.state.load(Ordering::Acquire) < 2 * REF_ONE {
        // SAFETY: the only reference, given up.
        unsafe { dealloc(ptr) };
    } else {
        // SAFETY: forwarded.
        unsafe { release(ptr) };
    }
}

/// Frees a task whose last reference was just released.
///
/// # Safety
/// No reference to the task is left.
#[inline]
unsafe fn dealloc(ptr: NonNull<Header>) {
    // SAFETY: the caller's promise: the header is still allocated.
    let vt = unsafe { ptr.as_ref() }.vtable;
    // SAFETY: forwarded.
    unsafe { (vt.dealloc)(ptr) };
}

/// A wake on the loop's own thread while it runs: marks the task queued
/// in the run queue. Returns whether the caller queues it: `false` when it
/// already is, or is complete. Loop thread only; no atomic step.
#[inline]
pub(crate) fn mark_queued(h: &Header) -> bool {
    // Only the loop thread sets `COMPLETE`: a relaxed load sees its own
    // stores.
    if h.flag(QUEUED) || h.state.load(Ordering::Relaxed) & COMPLETE != 0 {
        return false;
    }
    h.set_flag(QUEUED, true);
    true
}

/// A wake from another thread (or from the loop's thread while it is not
/// running): sets `SCHEDULED`. Returns whether the caller sends the task
/// to the loop: `false` when an entry is on its way already, or the task is
/// complete. Always a read-modify-write, so the loop's taking of the entry
/// synchronizes with every wake it absorbed.
#[inline]
pub(crate) fn mark_scheduled(h: &Header) -> bool {
    h.state.fetch_or(SCHEDULED, Ordering::AcqRel) & (SCHEDULED | COMPLETE) == 0
}

/// The loop took the task's entry from its own run queue (to run it, or to
/// drop it when the loop closes): clears `QUEUED`, so the next local wake
/// queues it again. Returns whether the task may run: `false` when it
/// completed while queued; then the alive reference is released here,
/// unless a `SCHEDULED` entry is still to be taken.
///
/// # Safety
/// Loop thread; `ptr` comes from a `QUEUED` entry, which the task's alive
/// reference covers.
#[inline]
pub(crate) unsafe fn dequeue_local(ptr: NonNull<Header>) -> bool {
    // SAFETY: the entry's reference keeps the task live.
    let h = unsafe { ptr.as_ref() };
    h.set_flag(QUEUED, false);
    if h.state.load(Ordering::Relaxed) & COMPLETE == 0 {
        return true;
    }
    if !h.flag(REMOTE_ENTRY) {
        // SAFETY: the alive reference, released once: by the last of
        // completion and the entries it left behind.
        unsafe { release(ptr) };
    }
    false
}

/// The loop took the task's `SCHEDULED` entry (to run it, or to drop it
/// when the loop closes), or, once the loop is closed, any thread dropped
/// it (`on_loop` false: no `QUEUED` entry is left by then). Clears
/// `SCHEDULED`, so the next remote wake sends it again. Returns whether
/// the task may run: `false` when it completed while queued; then the alive
/// reference is released here, unless a `QUEUED` entry is still to be
/// taken.
///
/// # Safety
/// `ptr` comes from a `SCHEDULED` entry, which the task's alive reference
/// covers; `on_loop` only on the loop thread.
pub(crate) unsafe fn dequeue_remote(ptr: NonNull<Header>, on_loop: bool) -> bool {
    // SAFETY: the entry's reference keeps the task live.
    let h = unsafe { ptr.as_ref() };
    let prev = h.state.fetch_and(!SCHEDULED, Ordering::AcqRel);
    if prev & COMPLETE == 0 {
        return true;
    }
    let local_entry = on_loop && {
        h.set_flag(REMOTE_ENTRY, false);
        h.flag(QUEUED)
    };
    if !local_entry {
        // SAFETY: as in `dequeue_local`.
        unsafe { release(ptr) };
    }
    false
}

/// Marks the task complete (loop thread), so wakes no longer queue it,
/// and releases its alive reference unless a queue entry holds it (the
/// last entry taken releases it then): the end of a completion, in one
/// atomic step where marking and releasing apart took two (the step every
/// task takes once).
///
/// # Safety
/// Loop thread; the caller holds the alive reference and does not touch
/// the task afterwards (another thread may free it as soon as the alive
/// reference is gone).
pub(crate) unsafe fn complete_and_release(ptr: NonNull<Header>) {
    // SAFETY: the alive reference keeps the header live until the step below.
    let h = unsafe { ptr.as_ref() };
    let queued = h.flag(QUEUED);
    let mut s = h.state.load(Ordering::Acquire);
    if s < 2 * REF_ONE && !queued && s & SCHEDULED == 0 {
        // The alive reference is the last and nothing queued holds it (a
        // detached task nobody else refers to): nobody can see the task
        // any more, so no atomic step is needed to mark or release it.
        // SAFETY: no other reference exists, and none can be made.
        unsafe { dealloc(ptr) };
        return;
    }
    loop {
        let remote_entry = s & SCHEDULED != 0;
        let keep = queued || remote_entry;
        let next = (s | COMPLETE) - if keep { 0 } else { REF_ONE };
        match h
            .state
            .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) if keep => {
                // An entry holds the alive reference: the task is live.
                h.set_flag(REMOTE_ENTRY, remote_entry);
                return;
            }
            Ok(_) => {
                if next < REF_ONE {
                    // That was the last reference (acquired: every other
                    // release happened before).
                    // SAFETY: no reference is left.
                    unsafe { dealloc(ptr) };
                }
                return;
            }
            Err(actual) => s = actual,
        }
    }
}
