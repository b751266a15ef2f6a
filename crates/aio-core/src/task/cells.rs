//! A loop's cache of freed task cells ([`CellCache`]): the memory of a task
//! that finished on its loop's thread is kept for the next task of the same
//! size instead of going back to the allocator. Loop thread only.
//!
//! What it saves is the allocator's work per task, and more: a program that
//! spawns a burst of tasks and joins them frees every cell at once, the
//! allocator hands the top of its heap back to the kernel, and the next
//! burst takes page faults on all of it again (with glibc, a fifth of the
//! time of a 100k-task spawn and join went to the kernel's page faults).
//!
//! Cells are kept by size class (their size rounded up to 8 bytes, up to
//! [`MAX_CELL`]) in intrusive lists threaded through the free cells
//! themselves, so keeping one allocates nothing. Every cacheable cell,
//! whether it comes from the cache or the allocator, is allocated with its
//! class's layout, so any of them can go back to the allocator. A cell
//! freed on another thread, or while its loop is not running, goes back to
//! the allocator.
//!
//! What is kept is bounded ([`MAX_BYTES`]) and given back when the loop
//! goes idle (it is about to block in its driver): all but [`IDLE_KEEP`]
//! cells of each class. A loop that keeps busy reuses the memory of its
//! largest burst; one that waits gives it back.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::Cell;
use std::ptr::{self, NonNull};

/// The largest cell kept (bigger ones always come from the allocator).
pub(crate) const MAX_CELL: usize = 512;
/// The most bytes of free cells a loop keeps while busy.
pub(crate) const MAX_BYTES: usize = 32 << 20;
/// The cells of each class a loop keeps when it goes idle.
pub(crate) const IDLE_KEEP: usize = 64;

const ALIGN: usize = 8;
const CLASSES: usize = MAX_CELL / ALIGN;

/// The first word of a free cell: the next free cell of its class.
struct Free {
    next: *mut Free,
}

/// A cell's size class, if cells of `layout` are cached.
#[inline]
pub(crate) const fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() > MAX_CELL || layout.size() < size_of::<Free>() {
        return None;
    }
    Some(layout.size().div_ceil(ALIGN) - 1)
}

/// The layout every cell of class `c` is allocated with.
#[inline]
const fn class_layout(c: usize) -> Layout {
    match Layout::from_size_align((c + 1) * ALIGN, ALIGN) {
        Ok(l) => l,
        Err(_) => panic!("a size class has a valid layout"),
    }
}

/// The layout a cell of `layout` is allocated with: its class's, or its own.
#[inline]
pub(crate) const fn alloc_layout(layout: Layout) -> Layout {
    match class_of(layout) {
        Some(c) => class_layout(c),
        None => layout,
    }
}

/// Allocates a cell of `layout` from the allocator (with [`alloc_layout`]).
#[inline]
pub(crate) fn alloc_cell(layout: Layout) -> NonNull<u8> {
    let l = alloc_layout(layout);
    // SAFETY: `l` has a non-zero size (a task cell holds at least a header).
    let p = unsafe { alloc(l) };
    NonNull::new(p).unwrap_or_else(|| handle_alloc_error(l))
}

/// Gives a cell of `layout` back to the allocator.
///
/// # Safety
/// `p` was allocated by [`alloc_cell`] or [`CellCache::take`] for `layout`,
/// and is not used afterwards.
#[inline]
pub(crate) unsafe fn free_cell(p: NonNull<u8>, layout: Layout) {
    // SAFETY: allocated with this very layout (caller's promise).
    unsafe { dealloc(p.as_ptr(), alloc_layout(layout)) }
}

/// Free task cells by size class (see the module docs).
pub(crate) struct CellCache {
    heads: [Cell<*mut Free>; CLASSES],
    counts: [Cell<u32>; CLASSES],
    bytes: Cell<usize>,
}

impl Default for CellCache {
    fn default() -> Self {
        CellCache {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            counts: [const { Cell::new(0) }; CLASSES],
            bytes: Cell::new(0),
        }
    }
}

impl CellCache {
    /// A free cell for `layout`, from the cache or the allocator.
    #[inline]
    pub(crate) fn take(&self, layout: Layout) -> NonNull<u8> {
        if let Some(c) = class_of(layout) {
            let head = self.heads[c].get();
            if !head.is_null() {
                // SAFETY: a cell on the list is free and starts with its
                // `Free` link, written by `put`.
                self.heads[c].set(unsafe { (*head).next });
                self.counts[c].set(self.counts[c].get() - 1);
                self.bytes.set(self.bytes.get() - class_layout(c).size());
                // SAFETY: `head` is non-null.
                return unsafe { NonNull::new_unchecked(head.cast()) };
            }
        }
        alloc_cell(layout)
    }

    /// Keeps the free cell `p` of `layout`, or gives it back to the
    /// allocator when its class is not cached or the cache is full.
    ///
    /// # Safety
    /// As [`free_cell`]; its contents were dropped.
    #[inline]
    pub(crate) unsafe fn put(&self, p: NonNull<u8>, layout: Layout) {
        let Some(c) = class_of(layout) else {
            // SAFETY: forwarded.
            return unsafe { free_cell(p, layout) };
        };
        let size = class_layout(c).size();
        if self.bytes.get() + size > MAX_BYTES {
            // SAFETY: forwarded.
            return unsafe { free_cell(p, layout) };
        }
        let f = p.as_ptr().cast::<Free>();
        // SAFETY: the cell is free, at least a `Free` large and aligned for
        // it (`class_of`).
        unsafe {
            f.write(Free {
                next: self.heads[c].get(),
            })
        };
        self.heads[c].set(f);
        self.counts[c].set(self.counts[c].get() + 1);
        self.bytes.set(self.bytes.get() + size);
    }

    /// Gives back all but `keep` cells of each class (the loop goes idle,
    /// or closes with `keep` 0).
    pub(crate) fn trim(&self, keep: usize) {
        if self.bytes.get() <= keep * MAX_CELL {
            return;
        }
        for c in 0..CLASSES {
            let layout = class_layout(c);
            while self.counts[c].get() as usize > keep {
                let head = self.heads[c].get();
                // SAFETY: the count says the list holds a cell; it starts
                // with its link.
                self.heads[c].set(unsafe { (*head).next });
                self.counts[c].set(self.counts[c].get() - 1);
                self.bytes.set(self.bytes.get() - layout.size());
                // SAFETY: a cached cell was allocated with its class's layout.
                unsafe { dealloc(head.cast(), layout) };
            }
        }
    }
}

impl Drop for CellCache {
    fn drop(&mut self) {
        self.trim(0);
    }
}
