//! Setting the ring up and taking it down: the fastest setup the kernel
//! takes, the features and opcodes the driver cannot do without, the
//! optional ones (provided buffers, registered files, file opcodes) probed
//! once; and at shutdown, waiting for the kernel before freeing anything
//! it may still write.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aio_core::driver::Blocking;
use aio_core::io::RawOp;
use io_uring::{IoUring, Probe, opcode, types};
use slab::Slab;

use super::fds::MAX_SLOTS;
use super::multishot::{BUF_COUNT, BUF_SIZE};
use super::orphans::close_unclaimed;
use super::wake::{EventFd, WAKE};
use super::{CANCEL, Ring, State};
use crate::bufs::BufRing;

/// The opcodes the driver uses; a kernel without one of them is not used.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Read::CODE, "READ"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::RecvMsg::CODE, "RECVMSG"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Shutdown::CODE, "SHUTDOWN"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
];

/// File opcodes the driver uses when the kernel has them; without one, its
/// calls run on threads.
const FILE_OPCODES: [u8; 8] = [
    opcode::OpenAt::CODE,
    opcode::Statx::CODE,
    opcode::Fsync::CODE,
    opcode::Ftruncate::CODE,
    opcode::UnlinkAt::CODE,
    opcode::RenameAt::CODE,
    opcode::MkDirAt::CODE,
    opcode::Splice::CODE,
];

impl Ring {
    pub(crate) fn new(entries: u32) -> io::Result<Ring> {
        let (ring, defer_taskrun) = build(entries)?;
        let probe = probe(&ring)?;
        // SAFETY: plain eventfd creation; we own the result.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nobody else owns.
        let wake_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let multishot = kernel_version() >= (6, 0);
        let bufs = if multishot { provided_buffers(&ring) } else { None };
        let file_opcodes = FILE_OPCODES
            .into_iter()
            .filter(|&c| probe.is_supported(c))
            .fold(0u128, |m, c| m | 1u128 << c);
        let free_slots = registered_files(&ring);
        let blocking = Blocking::new(Arc::new(EventFd(wake_fd.try_clone()?)));
        Ok(Ring {
            ring,
            blocking,
            file_opcodes,
            ops: Slab::with_capacity(256),
            backlog: VecDeque::new(),
            wake_fd,
            wake_buf: Box::new(0),
            wake_armed: false,
            defer_taskrun,
            unsubmitted: false,
            bufs,
            multishot,
            fds: Vec::new(),
            free_slots,
            next_generation: 1,
            self_completing: 0,
        })
    }

    pub(crate) fn defer_taskrun(&self) -> bool {
        self.defer_taskrun
    }

    /// Asks the kernel to cancel every operation (a multishot one not in
    /// the kernel goes at once) and the wake read.
    fn cancel_all(&mut self) {
        let keys: Vec<u64> = self.ops.iter().map(|(k, _)| k as u64).collect();
        for k in keys {
            let op = &mut self.ops[k as usize];
            if matches!(op.raw, RawOp::Close { fd: 0.. }) {
                // A close must happen: wait for it, never cancel it.
                continue;
            }
            let armed = match &mut op.state {
                State::Multi(m) => {
                    m.orphaned = true;
                    m.armed
                }
                _ => true,
            };
            if armed {
                self.cancel(k);
            } else {
                self.ops.remove(k as usize);
            }
        }
        if self.wake_armed {
            self.push(opcode::AsyncCancel::new(WAKE).build().user_data(CANCEL));
        }
    }

    /// Reaps until every operation and the wake read completed, or
    /// `deadline` passed.
    fn wait_for_cancelled(&mut self, deadline: Instant) {
        while (!self.ops.is_empty() || self.wake_armed) && Instant::now() < deadline {
            self.drain_backlog();
            let ts = types::Timespec::from(Duration::from_millis(10));
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            self.reap();
            // Completed (not orphaned) operations stay as `Done` until their
            // futures poll them; their futures are gone, so drop them here.
            let done: Vec<usize> = self
                .ops
                .iter()
                .filter(|(_, o)| matches!(o.state, State::Done(_)))
                .map(|(k, _)| k)
                .collect();
            for k in done {
                let op = self.ops.remove(k);
                if let State::Done(res) = op.state {
                    close_unclaimed(&op.raw, res);
                }
            }
        }
    }

    /// Frees what the kernel is done with, and leaks the memory of what did
    /// not complete: never free memory the kernel may still write.
    fn free_or_leak(&mut self) {
        if !self.ops.is_empty() {
            log::error!(
                "io_uring: {} operations did not complete at shutdown; leaking their buffers",
                self.ops.len()
            );
            for (_, op) in std::mem::take(&mut self.ops) {
                if let State::Orphaned { owner, .. } = op.state {
                    std::mem::forget(owner);
                }
            }
        }
        if self.wake_armed {
            // The eventfd buffer too.
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
        if let Some(b) = self.bufs.take() {
            if self.ops.is_empty() {
                b.unregister(&self.ring.submitter());
                drop(b);
            } else {
                // The kernel may still fill them: never free.
                std::mem::forget(b);
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel may write into an operation's memory until its
        // completion, and closing the ring does not wait for that: cancel
        // everything and wait (bounded) for the completions, then free.
        self.cancel_all();
        self.wait_for_cancelled(Instant::now() + Duration::from_secs(5));
        self.free_or_leak();
    }
}

/// The ring, and whether it defers task work to our `io_uring_enter`.
fn build(entries: u32) -> io::Result<(IoUring, bool)> {
    // The fastest setup first (one issuer thread, task work deferred to
    // our own io_uring_enter: kernel 6.1+), then plainer ones.
    let cq = entries.saturating_mul(4);
    let mut b = IoUring::builder();
    b.setup_cqsize(cq).setup_single_issuer().setup_defer_taskrun();
    if let Ok(r) = b.build(entries) {
        return Ok((r, true));
    }
    let mut b = IoUring::builder();
    b.setup_cqsize(cq).setup_coop_taskrun();
    if let Ok(r) = b.build(entries) {
        return Ok((r, false));
    }
    Ok((IoUring::builder().setup_cqsize(cq).build(entries)?, false))
}

/// The kernel's opcodes, once `ring` proved to have every feature and
/// opcode the driver needs.
fn probe(ring: &IoUring) -> io::Result<Probe> {
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring lacks IORING_FEAT_EXT_ARG (kernel 5.11+)",
        ));
    }
    if !ring.params().is_feature_nodrop() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring lacks IORING_FEAT_NODROP (kernel 5.5+)",
        ));
    }
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for (code, name) in REQUIRED {
        if !probe.is_supported(*code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring lacks IORING_OP_{name}"),
            ));
        }
    }
    Ok(probe)
}

/// The provided buffers of multishot receives, if the kernel takes them
/// (without, receives stay one-shot).
fn provided_buffers(ring: &IoUring) -> Option<BufRing> {
    match BufRing::new(&ring.submitter(), BUF_COUNT, BUF_SIZE, 0) {
        Ok(b) => Some(b),
        Err(e) => {
            log::debug!("aio: io_uring provided buffers unavailable ({e}); one-shot receives");
            None
        }
    }
}

/// Registers an empty table of files, filled as descriptors register;
/// returns its slots (none if the kernel refuses: descriptors go by number).
fn registered_files(ring: &IoUring) -> Vec<u32> {
    let slots = nofile_limit().min(MAX_SLOTS);
    match ring.submitter().register_files_sparse(slots) {
        Ok(()) => (0..slots).rev().collect(),
        Err(e) => {
            log::debug!("aio: io_uring registered files unavailable ({e}); descriptors by number");
            Vec::new()
        }
    }
}

/// The process's descriptor limit (`RLIMIT_NOFILE`): more slots could
/// never be used.
fn nofile_limit() -> u32 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        u32::try_from(r.rlim_cur).unwrap_or(u32::MAX)
    } else {
        1024
    }
}

/// The running kernel's (major, minor) version.
fn kernel_version() -> (u32, u32) {
    // SAFETY: `uts` is a valid out-pointer.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    let rel: String = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    let mut it = rel.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}
