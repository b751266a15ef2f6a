//! The data of context variables: a context's values ([`Vars`]), a copy of
//! a context ([`Snapshot`]), and where running code keeps its current one
//! ([`ContextSlot`]). Plain data: what reads the thread-local context is in
//! the parent module.

use std::any::Any;
use std::cell::Cell;
use std::sync::Arc;

pub(super) type Value = Arc<dyn Any + Send + Sync>;

/// A context's values: a small map from variable id to value, shared
/// between contexts until one of them sets something.
#[derive(Clone, Default)]
pub(crate) struct Vars {
    entries: Vec<(u64, Value)>,
}

impl Vars {
    pub(super) fn get(&self, id: u64) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| *k == id).map(|(_, v)| v)
    }

    pub(super) fn insert(&mut self, id: u64, v: Value) -> Option<Value> {
        match self.entries.iter_mut().find(|(k, _)| *k == id) {
            Some((_, slot)) => Some(std::mem::replace(slot, v)),
            None => {
                self.entries.push((id, v));
                None
            }
        }
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<Value> {
        let at = self.entries.iter().position(|(k, _)| *k == id)?;
        Some(self.entries.swap_remove(at).1)
    }
}

/// A context as it is copied: `None` is the empty context.
pub(crate) type Snapshot = Option<Arc<Vars>>;

/// Where a running piece of code keeps its current context: a task's
/// header, a callback, a gather child, a `to_thread` run, a thread.
/// Loop-thread (or owning-thread) only, hence a plain `Cell`.
#[derive(Default)]
pub(crate) struct ContextSlot(pub(super) Cell<Snapshot>);

impl ContextSlot {
    pub(crate) const fn new(snapshot: Snapshot) -> ContextSlot {
        ContextSlot(Cell::new(snapshot))
    }

    /// Makes `snapshot` the context held here.
    pub(crate) fn set(&self, snapshot: Snapshot) {
        self.0.set(snapshot);
    }

    /// A copy of the context held here (a pointer copy).
    #[inline]
    pub(crate) fn snapshot(&self) -> Snapshot {
        // SAFETY: the cell is only touched by its thread, and cloning an
        // `Arc` runs no code that could reach this cell, so no other access
        // overlaps this shared read.
        unsafe { (*self.0.as_ptr()).clone() }
    }

    /// Drops the context held here (a finished task lets its values go).
    pub(crate) fn clear(&self) {
        drop(self.0.take());
    }
}
