//! Asymmetric fences: a [`light`] one that costs nothing at run time,
//! for the fast path of the one thread that runs it nearly always, paired
//! with a [`heavy`] one (a system call) for the rare other thread.
//!
//! Two threads that each store to one location and then load the other's
//! (Dekker's pattern) need a full fence on both sides for at least one of
//! them to see the other's store. When one side is hot (a lock biased to
//! the thread that uses it) and the other rare (another thread taking the
//! lock over), the hot side can use [`light`], a compiler-only fence, if
//! the rare side uses [`heavy`], which makes every thread of the process
//! execute a full fence (Linux's `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`):
//! wherever the hot thread was in its store–load sequence, either its
//! store is visible to the rare side after `heavy` returns, or its load
//! comes after the fence and sees the rare side's store.
//!
//! [`heavy_supported`] says whether the system offers the heavy fence
//! (Linux 4.14 and later, not under some sandboxes); without it the light
//! fence guarantees nothing and a caller must take its symmetric path.
//!
//! # Examples
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
//!
//! static HOT: AtomicBool = AtomicBool::new(false);
//! static RARE: AtomicBool = AtomicBool::new(false);
//!
//! if aio_core::fence::heavy_supported() {
//!     // The hot thread:
//!     HOT.store(true, Relaxed);
//!     aio_core::fence::light();
//!     let rare_seen = RARE.load(Relaxed);
//!     // The rare thread (here the same one, for the example):
//!     RARE.store(true, Relaxed);
//!     aio_core::fence::heavy();
//!     let hot_seen = HOT.load(Relaxed);
//!     assert!(rare_seen || hot_seen);
//! }
//! ```

use std::sync::atomic::{Ordering, compiler_fence};

/// The hot side's fence: orders this thread's memory accesses before it
/// against those after it, for the compiler only (no instruction). Pairs
/// with [`heavy`] on the other side; alone it guarantees nothing across
/// threads.
#[inline(always)]
pub fn light() {
    compiler_fence(Ordering::SeqCst);
}

/// The rare side's fence: a full fence on every running thread of the
/// process, as if each executed one where it was. Returns `false` (and
/// fences only this thread) when the system has none: check
/// [`heavy_supported`] before relying on [`light`].
pub fn heavy() -> bool {
    std::sync::atomic::fence(Ordering::SeqCst);
    if !heavy_supported() {
        return false;
    }
    let ok = sys::private_expedited();
    std::sync::atomic::fence(Ordering::SeqCst);
    ok
}

/// Whether [`heavy`] is available: asked of the system once (and the
/// process registered for it), then remembered.
pub fn heavy_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(sys::register)
}

#[cfg(target_os = "linux")]
mod sys {
    const QUERY: libc::c_long = 0;
    const PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn membarrier(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes three integers and touches no memory
        // of ours; any command the kernel does not know is an error.
        unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long, 0 as libc::c_long) }
    }

    pub(super) fn register() -> bool {
        let cmds = membarrier(QUERY);
        if cmds < 0 || cmds & PRIVATE_EXPEDITED == 0 || cmds & REGISTER_PRIVATE_EXPEDITED == 0 {
            return false;
        }
        membarrier(REGISTER_PRIVATE_EXPEDITED) == 0
    }

    pub(super) fn private_expedited() -> bool {
        membarrier(PRIVATE_EXPEDITED) == 0
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn private_expedited() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

    /// Spins a little, then yields: the other thread may be waiting for
    /// this core (a loaded machine).
    fn pause(spins: &mut u32) {
        *spins += 1;
        if *spins % 256 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }

    /// Dekker's pattern with the light fence on one thread and the heavy
    /// one on the other, many times: never do both miss the other's store.
    #[test]
    fn light_and_heavy_never_both_miss() {
        if !super::heavy_supported() {
            return;
        }
        const ROUNDS: usize = 2000;
        let hot = Arc::new(AtomicBool::new(false));
        let rare = Arc::new(AtomicBool::new(false));
        let round = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let (h, r, rd, dn) = (hot.clone(), rare.clone(), round.clone(), done.clone());
        let hot_thread = std::thread::spawn(move || {
            let mut misses = Vec::new();
            for i in 1..=ROUNDS {
                let mut spins = 0u32;
                while rd.load(std::sync::atomic::Ordering::Acquire) < i {
                    pause(&mut spins);
                }
                h.store(true, Relaxed);
                super::light();
                misses.push(!r.load(Relaxed));
                dn.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            misses
        });
        let mut rare_missed = Vec::new();
        for i in 1..=ROUNDS {
            hot.store(false, Relaxed);
            rare.store(false, Relaxed);
            round.store(i, std::sync::atomic::Ordering::Release);
            rare.store(true, Relaxed);
            assert!(super::heavy());
            rare_missed.push(!hot.load(Relaxed));
            let mut spins = 0u32;
            while done.load(std::sync::atomic::Ordering::Acquire) < i {
                pause(&mut spins);
            }
        }
        let hot_missed = hot_thread.join().unwrap();
        for (i, (a, b)) in hot_missed.iter().zip(&rare_missed).enumerate() {
            assert!(!(*a && *b), "round {i}: both sides missed the other's store");
        }
    }
}
