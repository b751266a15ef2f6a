//! What the ring knows of each registered descriptor ([`FdHint`]): its slot
//! in the ring's table of registered files (entries name it by slot, so
//! the kernel neither looks it up nor counts a reference on it per
//! operation), which registration of its number it is, and the hints its
//! receives go by. Deregistering empties the slot before the descriptor
//! closes, and ends the socket's watch.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

use aio_core::driver::FdKind;
use aio_core::driver::kept::Kept;
use aio_core::io::RawOp;

use super::{Op, Ring, State};
use crate::ops::Target;

/// Slots in the ring's table of registered files (at most; fewer when the
/// descriptor limit is lower). Descriptors beyond them are used by number.
pub(super) const MAX_SLOTS: u32 = 8192;

/// No watch, or no slot.
pub(super) const NONE: u32 = u32::MAX;

/// What the driver knows of a registered descriptor.
pub(super) struct FdHint {
    /// Which registration of the descriptor number this is: a dropped
    /// operation's late result goes to the same socket, never to a new
    /// one that reuses the number.
    pub(super) generation: u32,
    /// What dropped operations received, for the next ones (rarely set).
    pub(super) kept: Option<Box<Kept>>,
    /// A stream socket (TCP, Unix stream).
    pub(super) stream: bool,
    /// Its last receive was short, and no data came since: the socket's
    /// buffer is empty, so the next receive waits for the watch instead of
    /// trying (as tokio and aio-poll skip the `recv` that would say
    /// `EAGAIN`).
    pub(super) drained: bool,
    /// The key of its multishot readiness poll, once a receive waited
    /// (`NONE`: no watch).
    pub(super) watch: u32,
    /// How many watch events came (a receive that saw one come while it
    /// ran may have missed data, so it does not mark the socket drained).
    pub(super) events: u32,
    /// The watch saw the peer's end of file, a hang-up or an error: every
    /// later receive returns at once, so none waits (a short read that
    /// takes the last data before a FIN already reported says nothing).
    pub(super) closed: bool,
    /// Its slot in the ring's registered files (`NONE`: used by number).
    pub(super) slot: u32,
    /// A regular file or directory (its reads complete by themselves).
    pub(super) file: bool,
}

impl FdHint {
    /// How entries name this descriptor, `fd`.
    #[inline]
    pub(super) fn target(&self, fd: RawFd) -> Target {
        match self.slot {
            NONE => Target::Fd(fd),
            slot => Target::Fixed(slot),
        }
    }
}

impl Default for FdHint {
    fn default() -> FdHint {
        FdHint {
            generation: 0,
            kept: None,
            stream: false,
            drained: false,
            watch: NONE,
            events: 0,
            closed: false,
            slot: NONE,
            file: false,
        }
    }
}

impl Ring {
    /// A new descriptor `fd` (a socket or pipe) will take operations.
    pub(crate) fn register(&mut self, fd: RawFd, kind: FdKind) {
        let Ok(i) = usize::try_from(fd) else { return };
        if i >= self.fds.len() {
            self.fds.resize_with(i + 1, FdHint::default);
        }
        self.deregister(fd);
        self.fds[i].stream = kind.is_stream_socket(fd);
        self.fds[i].file = kind == FdKind::File;
        self.fds[i].generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        if kind == FdKind::File {
            // No slot: see the crate docs (files cost no system call of
            // their own).
            return;
        }
        if let Some(slot) = self.free_slots.pop() {
            match self.ring.submitter().register_files_update(slot, &[fd]) {
                Ok(_) => self.fds[i].slot = slot,
                Err(e) => {
                    log::debug!("aio: io_uring could not register descriptor {fd} ({e}); used by number");
                    self.free_slots.push(slot);
                }
            }
        }
    }

    /// `fd` is closed (its number may come back as another descriptor).
    pub(crate) fn deregister(&mut self, fd: RawFd) {
        let Some(h) = hint_mut(&mut self.fds, fd) else {
            return;
        };
        let h = std::mem::take(h);
        if h.slot != NONE {
            // The table holds a reference to the file: drop it, or closing
            // the descriptor would not close the socket. Operations still in
            // flight keep theirs until they complete.
            match self.ring.submitter().register_files_update(h.slot, &[-1]) {
                Ok(_) => self.free_slots.push(h.slot),
                Err(e) => log::error!("io_uring: could not unregister descriptor {fd} ({e})"),
            }
        }
        if h.watch == NONE {
            return;
        }
        let k = u64::from(h.watch);
        if let Some(Op {
            state: State::Watch { live, waiters, .. },
            ..
        }) = self.ops.get_mut(k as usize)
        {
            *live = false;
            // Whoever still waits tries again and meets the closed socket.
            for w in waiters.drain(..) {
                w.wake();
            }
        }
        self.cancel(k);
    }
}

impl Ring {
    /// Deregisters `fd` and closes it: a file in the ring (its result
    /// ignored, as a dropped std `File` ignores it), anything else at once.
    /// A socket's close stays synchronous: its peer sees the end of the
    /// connection when the socket is dropped, even if the loop never waits
    /// again.
    pub(crate) fn close(&mut self, fd: OwnedFd) {
        let raw = fd.as_raw_fd();
        let file = hint(&self.fds, raw).is_some_and(|h| h.generation != 0 && h.file);
        self.deregister(raw);
        if !file {
            return drop(fd);
        }
        let raw = fd.into_raw_fd();
        let key = self.ops.insert(Op {
            // The driver owns the descriptor now: the ring closes it, and
            // the completion frees the slot.
            state: State::Orphaned {
                owner: Box::new(()),
                keep: None,
            },
            raw: RawOp::Close { fd: raw },
            busy: true,
            seen: 0,
            cancelled: false,
        }) as u64;
        self.self_completing += 1;
        self.push(crate::ops::entry(&RawOp::Close { fd: raw }, Target::Fd(raw)).user_data(key));
    }
}

/// What the driver knows of descriptor `fd`, if it registered.
#[inline]
pub(super) fn hint(fds: &[FdHint], fd: RawFd) -> Option<&FdHint> {
    fds.get(usize::try_from(fd).ok()?)
}

#[inline]
pub(super) fn hint_mut(fds: &mut [FdHint], fd: RawFd) -> Option<&mut FdHint> {
    fds.get_mut(usize::try_from(fd).ok()?)
}

/// The hint of `fd` if it is still registration `generation` (`u32::MAX`:
/// whichever registration is current).
#[inline]
pub(super) fn live_hint(fds: &mut [FdHint], fd: RawFd, generation: u32) -> Option<&mut FdHint> {
    let h = hint_mut(fds, fd)?;
    (h.generation != 0 && (generation == u32::MAX || h.generation == generation)).then_some(h)
}

/// Where operations name descriptor `fd`: its registered slot if it has one.
#[inline]
pub(super) fn target(fds: &[FdHint], fd: RawFd) -> Target {
    hint(fds, fd).map_or(Target::Fd(fd), |h| h.target(fd))
}
