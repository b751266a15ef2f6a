//! The registry of a loop's live tasks ([`Registry`]): what `all_tasks`
//! lists and loop close cancels. Loop thread only.
//!
//! It holds no reference: a task enters when it is created and leaves when
//! it completes (the loop thread does both), and a task is freed only after
//! it completed, so no entry ever points at a freed task. A finished task
//! is thus freed as soon as its last handle goes, while its memory is
//! still in cache, rather than at a later sweep of the registry.
//!
//! Entries are slots in a vector, reused through a free list: entering and
//! leaving are O(1), touch only the entry and the task's header (which
//! holds its slot), and allocate nothing once the vector has grown to the
//! most tasks alive at once.

use std::ptr::NonNull;

use crate::task::header::Header;

/// The live tasks of a loop, by slot.
#[derive(Default)]
pub(crate) struct Registry {
    /// A live task's header, or `None` for a free slot.
    slots: Vec<Option<NonNull<Header>>>,
    /// The free slots, the most recently freed last (reused first: its
    /// entry is likeliest in cache).
    free: Vec<u32>,
}

impl Registry {
    /// Enters the task `ptr` (whose header is `h`), recording its slot in
    /// the header.
    #[inline]
    pub(crate) fn insert(&mut self, h: &Header, ptr: NonNull<Header>) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(ptr);
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).expect("more than 2³² live tasks on one loop");
                self.slots.push(Some(ptr));
                i
            }
        };
        h.slot.set(slot);
    }

    /// The task whose header is `h` leaves (it completed).
    #[inline]
    pub(crate) fn remove(&mut self, h: &Header) {
        let i = h.slot.get();
        debug_assert!(self.slots[i as usize].is_some_and(|p| std::ptr::eq(p.as_ptr(), h)));
        self.slots[i as usize] = None;
        self.free.push(i);
    }

    /// How many tasks are registered (not complete).
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Calls `f` with each live task (in slot order).
    pub(crate) fn each(&self, mut f: impl FnMut(NonNull<Header>)) {
        for p in self.slots.iter().flatten() {
            f(*p);
        }
    }
}
