//! Task-local context: asyncio's `contextvars`.
//!
//! A [`ContextVar`] holds one value per *context*. Every task runs in a
//! context of its own that starts as a copy of its creator's (asyncio copies
//! the context in `create_task`), so a value set inside a task is seen by
//! the code it runs and the tasks it creates afterwards, never by its
//! parent or its siblings:
//!
//! | asyncio | aio |
//! |---|---|
//! | `var = ContextVar("var", default=0)` | `static VAR: ContextVar<u32> = ContextVar::new("var", 0);` |
//! | `var.get()` | `VAR.get()` |
//! | `token = var.set(1)` / `var.reset(token)` | `let token = VAR.set(1);` / `VAR.reset(&token)?` |
//! | `contextvars.copy_context().run(f)` | `aio::copy_context().run(f)` |
//!
//! Where each piece of code runs:
//! - a task ([`create_task`](crate::create_task), `run`, `Runner::run`): a
//!   copy of the context current where it was created;
//! - a child of [`gather`](fn@crate::gather) or of a
//!   [`TaskGroup`](crate::TaskGroup), and the future inside
//!   [`shield`](crate::shield): a copy of the context current where the
//!   gather, child or shield was created. asyncio wraps each of these in a
//!   task, which copies the context; aio runs them inside the calling task
//!   but gives each its copy, so they behave the same (a child's `set` is
//!   not seen by the caller or the other children). A `timeout` body runs
//!   in the caller's context, as in asyncio;
//! - a callback ([`Loop::call_soon`](crate::Loop::call_soon),
//!   `call_later`, `call_at`, done callbacks of tasks and futures): a copy
//!   of the context current when it was scheduled (when the done callback
//!   was added), or the [`Context`] given to
//!   [`Loop::call_soon_in`](crate::Loop::call_soon_in) (`call_later_in`,
//!   `call_at_in`) itself, as asyncio's `context=`;
//!   `LoopHandle::call_soon_threadsafe` takes the calling thread's;
//! - [`to_thread`](crate::to_thread): the closure runs in a copy of the
//!   caller's context (asyncio's `copy_context().run`);
//! - code outside any of these (a plain thread, `main` before the loop
//!   runs): the thread's own context.
//!
//! # Cost
//!
//! A context is a copy-on-write map shared by reference: copying one (each
//! task creation) copies a pointer, and only a [`set`](ContextVar::set) in
//! a context that shares its map with another clones the map. A program
//! that never sets a variable copies a null pointer per task and pays
//! nothing else. Values live behind an `Arc` (a context crosses to
//! `to_thread`'s threads), so a variable's type is `Send + Sync`; reading
//! one clones it ([`get`](ContextVar::get)) or borrows it
//! ([`with`](ContextVar::with)).
//!
//! # Examples
//!
//! ```
//! use aio_core::ContextVar;
//!
//! static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id", 0);
//!
//! async fn handle(id: u32) -> u32 {
//!     REQUEST_ID.set(id);
//!     aio_core::sleep(0.001).await.unwrap();
//!     log_line() // sees this task's id, whatever the other tasks set
//! }
//!
//! fn log_line() -> u32 {
//!     REQUEST_ID.get()
//! }
//!
//! aio_core::run(async {
//!     let a = aio_core::create_task(handle(1));
//!     let b = aio_core::create_task(handle(2));
//!     assert_eq!(a.await.unwrap(), 1);
//!     assert_eq!(b.await.unwrap(), 2);
//!     assert_eq!(REQUEST_ID.get(), 0, "the parent never saw the children's sets");
//! });
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) mod vars;

use vars::Value;
pub(crate) use vars::{ContextSlot, Snapshot};

use crate::context::{CONTEXT, Restore};

impl ContextSlot {
    /// Makes this the current context until the guard drops.
    #[inline]
    pub(crate) fn enter(&self) -> Restore<'_> {
        Restore::change(|c| c.vars.set(self))
    }
}

thread_local! {
    /// The context of code that runs outside any task or callback.
    static THREAD: ContextSlot = const { ContextSlot::new(None) };
}

/// A copy of the current context (what a new task, child or callback
/// starts with).
#[inline]
pub(crate) fn current() -> Snapshot {
    let p = CONTEXT.with(|c| c.vars.get());
    if p.is_null() {
        return thread_snapshot();
    }
    // SAFETY: a non-null pointer was installed by a live `Restore` (of `ContextSlot::enter` or
    // `Restore::poll`) whose slot outlives it, on this thread.
    unsafe { (*p).snapshot() }
}

#[cold]
fn thread_snapshot() -> Snapshot {
    THREAD.try_with(ContextSlot::snapshot).unwrap_or(None)
}

/// Runs `f` with the current context's slot.
fn with_slot<R>(f: impl FnOnce(&ContextSlot) -> R) -> R {
    let p = CONTEXT.with(|c| c.vars.get());
    if p.is_null() {
        THREAD.with(f)
    } else {
        // SAFETY: as in `current`.
        f(unsafe { &*p })
    }
}

/// Runs `f` in `snapshot` (a copy: what `f` sets is dropped afterwards).
pub(crate) fn run_in<R>(snapshot: Snapshot, f: impl FnOnce() -> R) -> R {
    let slot = ContextSlot::new(snapshot);
    let _g = slot.enter();
    f()
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A context variable: asyncio's `contextvars.ContextVar`, a value per
/// task (per context, precisely: see the [module docs](self)).
///
/// Declare one as a `static` (the constructor is `const`), or keep one in
/// a struct; each variable is distinct from every other, whatever its
/// name. The value type is `Send + Sync` because a context travels with
/// [`to_thread`](crate::to_thread) to its threads.
///
/// # Examples
/// ```
/// use aio_core::ContextVar;
///
/// static USER: ContextVar<Option<&'static str>> = ContextVar::new("user", None);
///
/// aio_core::run(async {
///     let token = USER.set(Some("alice"));
///     let seen = aio_core::create_task(async { USER.get() }).await.unwrap();
///     assert_eq!(seen, Some("alice"), "the task started with a copy");
///     USER.reset(&token).unwrap();
///     assert_eq!(USER.get(), None);
/// });
/// ```
pub struct ContextVar<T> {
    name: &'static str,
    default: T,
    /// Assigned on first use (0: not yet), so `new` can be `const`.
    id: AtomicU64,
}

impl<T> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> ContextVar<T> {
    /// A variable named `name` (for debugging only: two variables with one
    /// name are still two) whose value is `default` in every context that
    /// did not set it.
    pub const fn new(name: &'static str, default: T) -> ContextVar<T> {
        ContextVar {
            name,
            default,
            id: AtomicU64::new(0),
        }
    }

    /// The variable's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn id(&self) -> u64 {
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        let new = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        match self.id.compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => new,
            Err(won) => won,
        }
    }

    /// The value in the current context (its default if never set there),
    /// cloned. [`with`](ContextVar::with) borrows it instead.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }

    /// Runs `f` with a reference to the value in the current context (its
    /// default if never set there).
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let id = self.id();
        // Hold the value by its own `Arc`, not through the slot: `f` may
        // set variables, which replaces the map.
        let value = with_slot(|slot| {
            // SAFETY: as in `ContextSlot::snapshot`: a shared read of the
            // cell that runs no code able to reach it.
            let vars = unsafe { &*slot.0.as_ptr() };
            vars.as_ref().and_then(|v| v.get(id)).cloned()
        });
        match value.as_ref().and_then(|v| v.downcast_ref::<T>()) {
            Some(v) => f(v),
            None => f(&self.default),
        }
    }

    /// Sets the value in the current context and returns a [`Token`] that
    /// [`reset`](ContextVar::reset) takes to restore the previous one. The
    /// change is seen by this task (callback, child) from now on and by
    /// what it creates afterwards, never by its parent or siblings.
    pub fn set(&self, value: T) -> Token<T> {
        let id = self.id();
        let value: Value = Arc::new(value);
        with_slot(|slot| {
            let mut vars = slot.0.take();
            // Copy-on-write: the map is cloned only if another context
            // shares it.
            let old = Arc::make_mut(vars.get_or_insert_with(Default::default)).insert(id, value);
            slot.0.set(vars);
            Token {
                var: id,
                context: slot as *const ContextSlot as usize,
                old,
                used: AtomicBool::new(false),
                _type: PhantomData,
            }
        })
    }

    /// Restores the value the variable had before the [`set`](ContextVar::set)
    /// that returned `token` (unset again, if it was): asyncio's
    /// `var.reset(token)`.
    ///
    /// The token is borrowed, as asyncio's is: after a reset refused
    /// because it ran in the wrong context, the program can retry in the
    /// right one. A token serves one successful reset.
    ///
    /// # Errors
    /// [`ResetError`], and nothing changes, when `token` was already used
    /// (asyncio's `RuntimeError`), comes from another variable, or from a
    /// set in another context (another task) — asyncio's `ValueError`.
    ///
    /// # Examples
    /// ```
    /// use aio_core::ContextVar;
    /// use aio_core::contextvars::{ResetError, copy_context};
    ///
    /// static V: ContextVar<u32> = ContextVar::new("v", 0);
    ///
    /// let token = V.set(1);
    /// let elsewhere = copy_context();
    /// assert_eq!(elsewhere.run(|| V.reset(&token)), Err(ResetError::OtherContext));
    /// V.reset(&token).unwrap(); // here, where it was set
    /// assert_eq!(V.get(), 0);
    /// assert_eq!(V.reset(&token), Err(ResetError::Used));
    /// ```
    pub fn reset(&self, token: &Token<T>) -> Result<(), ResetError> {
        if token.used.load(Ordering::Relaxed) {
            return Err(ResetError::Used);
        }
        let id = self.id();
        if token.var != id {
            return Err(ResetError::OtherVar);
        }
        with_slot(|slot| {
            if token.context != slot as *const ContextSlot as usize {
                return Err(ResetError::OtherContext);
            }
            // A token is used once, from the context it was made in: on
            // that context's thread (the address check above), so a plain
            // load then store cannot race with another reset.
            token.used.store(true, Ordering::Relaxed);
            let mut vars = slot.0.take();
            let map = Arc::make_mut(vars.get_or_insert_with(Default::default));
            let replaced = match &token.old {
                Some(old) => map.insert(id, old.clone()),
                None => map.remove(id),
            };
            slot.0.set(vars);
            // Dropped with the slot restored: a destructor may read variables.
            drop(replaced);
            Ok(())
        })
    }
}

/// What [`ContextVar::set`] returns: the previous value, for
/// [`ContextVar::reset`] (asyncio's `contextvars.Token`).
pub struct Token<T> {
    var: u64,
    /// The context (slot address) the set happened in.
    context: usize,
    old: Option<Value>,
    /// A reset used it (asyncio's `Token has already been used once`).
    used: AtomicBool,
    _type: PhantomData<fn() -> T>,
}

impl<T: 'static> Token<T> {
    /// The value before the set; `None` if the variable was not set in
    /// that context (asyncio's `Token.MISSING`).
    pub fn old_value(&self) -> Option<&T> {
        self.old.as_ref().and_then(|v| v.downcast_ref::<T>())
    }
}

impl<T> fmt::Debug for Token<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("set", &self.old.is_some())
            .field("used", &self.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why [`ContextVar::reset`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetError {
    /// The token already served a reset (asyncio's `RuntimeError: Token
    /// has already been used once`).
    Used,
    /// The token was made by another variable's `set`.
    OtherVar,
    /// The token was made in another context (another task, callback or
    /// child).
    OtherContext,
}

impl fmt::Display for ResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResetError::Used => "the token has already been used once",
            ResetError::OtherVar => "the token was created by a different ContextVar",
            ResetError::OtherContext => "the token was created in a different Context",
        })
    }
}

impl std::error::Error for ResetError {}

/// A context to run code in: asyncio's `contextvars.Context`, made by
/// [`copy_context`] (or empty, by `Context::default()`).
///
/// What code run in it sets stays in it, for the next
/// [`run`](Context::run) — and for the callbacks given it with
/// [`Loop::call_soon_in`](crate::Loop::call_soon_in) and its timed
/// variants, which run in this context itself, as asyncio's
/// `call_soon(cb, context=ctx)` does. `clone` makes a copy (asyncio's
/// `Context.copy()`); a `Context` stays on its thread.
///
/// # Examples
/// ```
/// use aio_core::ContextVar;
/// use aio_core::contextvars::copy_context;
///
/// static N: ContextVar<u32> = ContextVar::new("n", 0);
///
/// let ctx = copy_context();
/// ctx.run(|| N.set(5));
/// assert_eq!(N.get(), 0, "the set stayed in ctx");
/// assert_eq!(ctx.run(|| N.get()), 5);
/// ```
#[derive(Default)]
pub struct Context {
    /// Shared with the callbacks scheduled to run in it.
    slot: Rc<ContextSlot>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// Runs `f` with this context as the current one.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.slot.enter();
        f()
    }

    /// The context itself (not a copy), for a callback to run in.
    pub(crate) fn shared_slot(&self) -> Rc<ContextSlot> {
        self.slot.clone()
    }
}

impl Clone for Context {
    /// Another context with the same values (asyncio's `Context.copy()`).
    fn clone(&self) -> Context {
        Context {
            slot: Rc::new(ContextSlot::new(self.slot.snapshot())),
        }
    }
}

/// A copy of the current context: asyncio's `contextvars.copy_context()`.
pub fn copy_context() -> Context {
    Context {
        slot: Rc::new(ContextSlot::new(current())),
    }
}

/// Whether the current context is the slot at `p` (tests).
#[cfg(test)]
fn is_current(p: &ContextSlot) -> bool {
    std::ptr::eq(CONTEXT.with(|c| c.vars.get()), p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_share_until_a_set() {
        static V: ContextVar<u32> = ContextVar::new("v", 1);
        let a = ContextSlot::new(None);
        {
            let _g = a.enter();
            assert!(is_current(&a));
            let _ = V.set(2);
        }
        let b = ContextSlot::new(a.snapshot());
        let (pa, pb) = (a.snapshot().unwrap(), b.snapshot().unwrap());
        assert!(Arc::ptr_eq(&pa, &pb), "a copy shares the map");
        drop((pa, pb));
        {
            let _g = b.enter();
            assert_eq!(V.get(), 2);
            let _ = V.set(3);
        }
        assert!(!Arc::ptr_eq(&a.snapshot().unwrap(), &b.snapshot().unwrap()));
        assert_eq!(run_in(a.snapshot(), || V.get()), 2);
        assert_eq!(run_in(b.snapshot(), || V.get()), 3);
        assert_eq!(V.get(), 1, "the thread's context never saw either");
    }
}
