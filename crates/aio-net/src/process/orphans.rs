//! Children that no loop watches any more, reaped by one process-wide
//! thread so that none stays a zombie after its loop has closed.
//!
//! A child still running when its loop closes (or dropped when no loop
//! of its own runs) is an orphan. One background thread (`aio-orphans`),
//! started with the first orphan and ending when none is left, waits for
//! all of them at once: `poll(2)` on one pidfd per child (Linux 5.3+) and
//! on a wake pipe, or, while some child has no pidfd (SIGCHLD watcher,
//! no pidfds, out of descriptors), a look every [`LOOK_MS`]. It reaps
//! each child with `waitpid(pid, WNOHANG)` on that pid only — never
//! `waitpid(-1)`, so children aio does not own are left alone. Should the
//! thread fail to start, the orphans are still reaped (without waiting)
//! at every spawn and every drop of a `Process`, as before.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::sys;

/// How often the thread looks at children it has no pidfd for: an exited
/// child stays a zombie at most this long.
const LOOK_MS: i32 = 50;

struct State {
    /// Handed over, not yet taken by the thread: `(child, use a pidfd)`.
    pending: Vec<(Child, bool)>,
    /// The thread runs (and will take `pending`).
    thread: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    pending: Vec::new(),
    thread: false,
});
/// `pending.len()`, read without the lock.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// A wake-up byte is in the pipe (or about to be): no need for another,
/// so the pipe never fills.
static WAKE_SENT: AtomicBool = AtomicBool::new(false);

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wake pipe `(read, write)`, made once and kept for the process.
fn wake_pipe() -> Option<&'static (File, File)> {
    static PIPE: OnceLock<Option<(File, File)>> = OnceLock::new();
    PIPE.get_or_init(|| sys::pipe().ok().map(|(r, w)| (File::from(r), File::from(w))))
        .as_ref()
}

/// Hands a child over to the orphan thread (reaping it at once if it has
/// exited). `pidfd`: whether to watch it with a pidfd (else by looking
/// every [`LOOK_MS`]).
pub(crate) fn orphan(mut child: Child, pidfd: bool) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let mut s = state();
    s.pending.push((child, pidfd));
    PENDING.store(s.pending.len(), Ordering::Relaxed);
    if s.thread {
        if !WAKE_SENT.swap(true, Ordering::AcqRel) {
            if let Some((_, w)) = wake_pipe() {
                // A failed write leaves the thread to its next look at worst.
                let _ = (&*w).write(&[1]);
            }
        }
        return;
    }
    if wake_pipe().is_none() {
        return;
    }
    // Spawned under the lock, so no second thread can start meanwhile.
    s.thread = std::thread::Builder::new()
        .name("aio-orphans".into())
        .spawn(run)
        .is_ok();
}

/// Reaps the orphans not taken by a thread (it could not start) that
/// have exited, without waiting.
pub(crate) fn reap_pending() {
    if PENDING.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut s = state();
    s.pending.retain_mut(|(c, _)| matches!(c.try_wait(), Ok(None)));
    PENDING.store(s.pending.len(), Ordering::Relaxed);
}

/// An orphan the thread waits for. `pidfd` is dropped (closed) with it,
/// once the child is reaped.
struct Adopted {
    child: Child,
    pidfd: Option<OwnedFd>,
}

/// The orphan thread: waits for its children until none is left.
fn run() {
    let Some((wake, _)) = wake_pipe() else {
        unreachable!("the thread starts only with a wake pipe");
    };
    let mut mine: Vec<Adopted> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        {
            let mut s = state();
            // Orphans handed over from here on send a new wake-up.
            WAKE_SENT.store(false, Ordering::Release);
            for (child, pidfd) in s.pending.drain(..) {
                // The child is ours and not reaped: its pid is its own.
                let pidfd = if pidfd { sys::pidfd_open(child.id()).ok() } else { None };
                mine.push(Adopted { child, pidfd });
            }
            PENDING.store(0, Ordering::Relaxed);
            mine.retain_mut(|a| matches!(a.child.try_wait(), Ok(None)));
            if mine.is_empty() {
                // Decided under the lock: the next orphan starts a thread.
                s.thread = false;
                return;
            }
        }
        fds.clear();
        let entry = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.push(entry(wake.as_raw_fd()));
        fds.extend(
            mine.iter()
                .filter_map(|a| a.pidfd.as_ref())
                .map(|fd| entry(fd.as_raw_fd())),
        );
        let timeout = if mine.iter().any(|a| a.pidfd.is_none()) {
            LOOK_MS
        } else {
            -1
        };
        match sys::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // A failure that must not make the thread spin.
                std::thread::sleep(std::time::Duration::from_millis(LOOK_MS as u64));
                continue;
            }
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // Poll said there is data: this read does not block.
            let _ = (&*wake).read(&mut [0; 64]);
        }
    }
}
