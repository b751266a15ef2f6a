//! A ring of provided buffers (`IORING_REGISTER_PBUF_RING`, kernel 5.19):
//! the kernel picks a buffer when data arrives, so a multishot receive needs
//! no buffer per connection while the connection is idle.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::Submitter;
use io_uring::types::BufRingEntry;

pub(crate) struct BufRing {
    entries: NonNull<BufRingEntry>,
    layout: Layout,
    count: u16,
    tail: u16,
    /// Buffers the kernel filled that have not come back yet.
    out: u16,
    size: usize,
    mem: Box<[u8]>,
    pub(crate) group: u16,
}

impl BufRing {
    /// Registers `count` buffers of `size` bytes as buffer group `group`.
    /// `count` must be a power of two.
    pub(crate) fn new(submitter: &Submitter<'_>, count: u16, size: usize, group: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two());
        let layout = Layout::from_size_align(count as usize * std::mem::size_of::<BufRingEntry>(), 4096)
            .map_err(|_| io::Error::other("bad buffer ring layout"))?;
        // SAFETY: non-zero size; zeroed memory is a valid (empty) ring.
        let ptr = unsafe { alloc_zeroed(layout) }.cast::<BufRingEntry>();
        let entries = NonNull::new(ptr).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut ring = BufRing {
            entries,
            layout,
            count,
            tail: 0,
            out: 0,
            size,
            mem: vec![0u8; count as usize * size].into_boxed_slice(),
            group,
        };
        // SAFETY: the ring memory is page-aligned, sized for `count`
        // entries, and lives until `unregister` (the driver unregisters it
        // before dropping it).
        unsafe { submitter.register_buf_ring_with_flags(entries.as_ptr() as u64, count, group, 0)? };
        for bid in 0..count {
            ring.push(bid);
        }
        ring.publish();
        Ok(ring)
    }

    fn push(&mut self, bid: u16) {
        let i = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `i < count`, within the ring allocation; the kernel reads
        // entries only below the published tail, which moves after this.
        let e = unsafe { &mut *self.entries.as_ptr().add(i) };
        e.set_addr(self.mem.as_ptr() as u64 + bid as u64 * self.size as u64);
        e.set_len(self.size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lies in the first entry's reserved word
        // (the layout io_uring defines), which we own; the kernel reads it
        // atomically.
        let tail = unsafe { BufRingEntry::tail(self.entries.as_ptr()) } as *const AtomicU16;
        // SAFETY: as above; aligned u16 inside our allocation.
        unsafe { (*tail).store(self.tail, Ordering::Release) };
    }

    /// The data the kernel put in buffer `bid`.
    pub(crate) fn data(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * self.size;
        &self.mem[start..start + len.min(self.size)]
    }

    /// Notes that the kernel filled a buffer (a completion named it).
    pub(crate) fn taken(&mut self) {
        self.out += 1;
    }

    /// How many buffers the kernel may still fill.
    pub(crate) fn free(&self) -> u16 {
        self.count - self.out
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.out = self.out.saturating_sub(1);
        self.push(bid);
        self.publish();
    }

    /// Unregisters the ring (before it is freed).
    pub(crate) fn unregister(&self, submitter: &Submitter<'_>) {
        let _ = submitter.unregister_buf_ring(self.group);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the driver
        // unregistered the ring (and drained the kernel's use) first.
        unsafe { dealloc(self.entries.as_ptr().cast(), self.layout) };
    }
}
