//! Owned buffers for I/O operations.
//!
//! An operation owns its buffer for as long as the kernel may touch it
//! (io_uring reads and writes asynchronously), and gives it back in a
//! [`BufResult`]. A buffer's memory must not move when the value moves:
//! heap allocations and `'static` slices qualify.

/// The result of an owned-buffer operation: the outcome and the buffer.
pub type BufResult<T, B> = (std::io::Result<T>, B);

/// A buffer an operation may send from: `bytes_init` bytes at `stable_ptr`.
///
/// # Safety
/// `stable_ptr` must point to `bytes_total` bytes of which the first
/// `bytes_init` are initialized, and the pointer must stay valid and
/// unchanged while the value is alive, even if the value is moved.
pub unsafe trait IoBuf: 'static {
    /// Start of the memory.
    fn stable_ptr(&self) -> *const u8;
    /// How many bytes hold data.
    fn bytes_init(&self) -> usize;
    /// How many bytes the memory has.
    fn bytes_total(&self) -> usize;
}

/// A buffer an operation may receive into: receives append after the
/// initialized bytes, into the spare capacity.
///
/// # Safety
/// As [`IoBuf`], for `stable_mut_ptr`; `set_init(n)` may only be trusted
/// to be called once the first `n` bytes were written.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the memory, writable.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Records that the first `pos` bytes are initialized.
    ///
    /// # Safety
    /// The first `pos` bytes must have been written.
    unsafe fn set_init(&mut self, pos: usize);
}

// SAFETY: a Vec's heap buffer does not move when the Vec moves; `len`
// bytes are initialized out of `capacity`.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as above; `set_init` only grows the length over written bytes.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        if pos > self.len() {
            // SAFETY: the caller guarantees the bytes up to `pos` are written.
            unsafe { self.set_len(pos) };
        }
    }
}

// SAFETY: a boxed slice's memory does not move with the box; all of it is
// initialized.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: `'static` data never moves and is fully initialized.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: as above.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
}

// SAFETY: a String's heap buffer does not move with it.
unsafe impl IoBuf for String {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}
