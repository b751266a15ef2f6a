//! `Command`: what to run and how its standard streams are connected.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::future::{Future, IntoFuture};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::pin::Pin;
use std::process::{self as sp, Child};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use aio_core::driver::FdKind;
use aio_core::io::Registered;

use super::Process;
use super::exit::{ChildWatcher, Exit};
use super::orphans::{orphan, reap_pending};
use super::reaper::Reaper;
use crate::stream::Transport;
use crate::{StreamReader, StreamWriter, sys};

/// Where a child's standard stream goes: asyncio's `PIPE`, `DEVNULL`,
/// `STDOUT` and `None` (inherit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdio {
    /// The parent's own stream (asyncio's `None`, the default).
    #[default]
    Inherit,
    /// A pipe to the parent: a [`StreamWriter`] for stdin, a
    /// [`StreamReader`] for stdout and stderr (asyncio's `PIPE`).
    Pipe,
    /// `/dev/null` (asyncio's `DEVNULL`).
    DevNull,
    /// stderr only: wherever stdout goes (asyncio's `STDOUT`).
    Stdout,
}

/// asyncio's `subprocess.PIPE`.
pub const PIPE: Stdio = Stdio::Pipe;
/// asyncio's `subprocess.DEVNULL`.
pub const DEVNULL: Stdio = Stdio::DevNull;
/// asyncio's `subprocess.STDOUT`: stderr merged into stdout.
pub const STDOUT: Stdio = Stdio::Stdout;

/// A process to spawn: a builder over [`std::process::Command`] that
/// spawns onto the running loop. Awaiting it spawns, as
/// `await asyncio.create_subprocess_exec(...)` does; so does
/// [`spawn`](Command::spawn).
///
/// Made by [`create_subprocess_exec`](crate::create_subprocess_exec),
/// [`create_subprocess_shell`](crate::create_subprocess_shell) or
/// [`Command::new`]. By default the child inherits the parent's stdin,
/// stdout and stderr, environment and working directory.
pub struct Command {
    std: sp::Command,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    limit: Option<usize>,
    watcher: ChildWatcher,
    /// The session and group the child puts itself in, set up by a hook
    /// installed on first use (a command without one may be spawned
    /// without `fork`).
    setup: Option<Arc<sys::ChildSetup>>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("command", &self.std)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("limit", &self.limit)
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

impl Command {
    /// Runs `program` (looked up in `PATH` when it has no `/`), with no
    /// arguments yet.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            std: sp::Command::new(program),
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            limit: None,
            watcher: ChildWatcher::Auto,
            setup: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Where the child's stdin comes from ([`PIPE`]: [`Process::stdin`]).
    pub fn stdin(mut self, s: Stdio) -> Command {
        self.stdin = s;
        self
    }

    /// Where the child's stdout goes ([`PIPE`]: [`Process::stdout`]).
    pub fn stdout(mut self, s: Stdio) -> Command {
        self.stdout = s;
        self
    }

    /// Where the child's stderr goes ([`PIPE`]: [`Process::stderr`];
    /// [`STDOUT`]: merged into stdout).
    pub fn stderr(mut self, s: Stdio) -> Command {
        self.stderr = s;
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> Command {
        self.std.env(key, val);
        self
    }

    /// Sets several environment variables of the child.
    pub fn envs<I, K, V>(mut self, vars: I) -> Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(mut self) -> Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory (asyncio's `cwd=`). A directory that
    /// does not exist makes spawning fail.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Command {
        self.std.current_dir(dir);
        self
    }

    /// Puts the child in process group `pgid` (0: a new group led by the
    /// child, asyncio's `process_group=0`), so signals sent to the
    /// parent's group (Ctrl-C in a terminal) do not reach it.
    pub fn process_group(mut self, pgid: i32) -> Command {
        self.setup().pgid.store(pgid, Ordering::Relaxed);
        self
    }

    /// Starts the child in a new session (asyncio's
    /// `start_new_session=True`: `setsid` in the child before it runs the
    /// program), so it has no controlling terminal and leads a process
    /// group of its own: a terminal's hang-up or Ctrl-C does not reach it.
    /// With [`process_group`](Command::process_group) as well, the session
    /// comes first, as in asyncio.
    pub fn start_new_session(mut self, on: bool) -> Command {
        self.setup().new_session.store(on, Ordering::Relaxed);
        self
    }

    /// The hook the child runs before its program, installed once.
    fn setup(&mut self) -> &sys::ChildSetup {
        self.setup.get_or_insert_with(|| {
            let setup = Arc::new(sys::ChildSetup::default());
            sys::before_exec(&mut self.std, setup.clone());
            setup
        })
    }

    /// The buffer limit of the stdout and stderr readers (asyncio's
    /// `limit=`, 64 KiB by default): the longest line `readline` accepts.
    /// A limit of 0 makes [`spawn`](Command::spawn) fail with
    /// `InvalidInput` before it starts anything.
    pub fn limit(mut self, limit: usize) -> Command {
        self.limit = Some(limit);
        self
    }

    /// How the child's exit is watched (default [`ChildWatcher::Auto`]).
    pub fn child_watcher(mut self, w: ChildWatcher) -> Command {
        self.watcher = w;
        self
    }

    /// Spawns the child on the running loop.
    ///
    /// # Errors
    /// Whatever stops the child from starting — a program that is not
    /// found (`NotFound`) or not executable (`PermissionDenied`), a
    /// working directory that does not exist — is an `io::Error`, as is
    /// `STDOUT` given for stdin or stdout (`InvalidInput`), or no running
    /// loop. As in asyncio, an error about a file names it: `No such file
    /// or directory (os error 2): 'nosuchprog'`, with the OS error (and
    /// its `raw_os_error`) as the error's `source()`.
    pub fn spawn(&mut self) -> io::Result<Process> {
        if aio_core::try_get_running_loop().is_none() {
            return Err(io::Error::other(
                "no running event loop: spawn subprocesses from code running on an aio loop",
            ));
        }
        if let Some(n) = self.limit {
            // Refused before a child exists (asyncio's readers raise it
            // once the child runs).
            crate::stream::check_limit(n)?;
        }
        reap_pending();
        let merged = self.configure_stdio();
        let spawned = merged.and_then(|merged| Ok((self.std.spawn().map_err(|e| self.named(e))?, merged)));
        // Drop our copies of the child's ends (a merged pipe's write end
        // held here would keep the reader from ever seeing EOF).
        self.std.stdin(sp::Stdio::inherit());
        self.std.stdout(sp::Stdio::inherit());
        self.std.stderr(sp::Stdio::inherit());
        let (child, merged) = spawned?;
        let mut guard = KillOnError(Some(child));
        let p = self.wrap(&mut guard, merged)?;
        guard.0 = None;
        Ok(p)
    }

    /// Names the program (or the missing working directory) in an error
    /// of the exec step, as Python's `OSError` does with its filename.
    fn named(&self, e: io::Error) -> io::Error {
        let Some(code) = e.raw_os_error() else { return e };
        let about_a_file = [
            libc::ENOENT,
            libc::EACCES,
            libc::EPERM,
            libc::ENOEXEC,
            libc::ENOTDIR,
            libc::ELOOP,
            libc::ENAMETOOLONG,
        ];
        if !about_a_file.contains(&code) {
            return e;
        }
        // std reports a failed chdir with the same errno as a failed exec:
        // name the directory when it is what is missing.
        let name = match self.std.get_current_dir() {
            Some(dir) if !dir.is_dir() => dir.as_os_str(),
            _ => self.std.get_program(),
        };
        io::Error::new(
            e.kind(),
            Named {
                name: name.to_string_lossy().into_owned(),
                os: e,
            },
        )
    }

    /// Sets the std command's stdio from ours; returns the read end of a
    /// stdout pipe shared with stderr (`STDOUT` with `PIPE`).
    fn configure_stdio(&mut self) -> io::Result<Option<OwnedFd>> {
        let invalid = |which: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("STDOUT (merge into stdout) can only be used for stderr, not for {which}"),
            )
        };
        let plain = |s: Stdio| match s {
            Stdio::Inherit => sp::Stdio::inherit(),
            Stdio::Pipe => sp::Stdio::piped(),
            Stdio::DevNull | Stdio::Stdout => sp::Stdio::null(),
        };
        if self.stdin == Stdio::Stdout {
            return Err(invalid("stdin"));
        }
        if self.stdout == Stdio::Stdout {
            return Err(invalid("stdout"));
        }
        self.std.stdin(plain(self.stdin));
        if self.stderr != Stdio::Stdout {
            self.std.stdout(plain(self.stdout));
            self.std.stderr(plain(self.stderr));
            return Ok(None);
        }
        let (read, write) = match self.stdout {
            Stdio::Pipe => {
                let (r, w) = sys::pipe()?;
                (Some(r), w)
            }
            Stdio::DevNull => (None, OwnedFd::from(File::options().write(true).open("/dev/null")?)),
            _ => (None, io::stdout().as_fd().try_clone_to_owned()?),
        };
        self.std.stdout(sp::Stdio::from(write.try_clone()?));
        self.std.stderr(sp::Stdio::from(write));
        Ok(read)
    }

    /// Wraps a spawned child: its pipes as streams, its exit watch.
    fn wrap(&self, guard: &mut KillOnError, merged: Option<OwnedFd>) -> io::Result<Process> {
        let child = guard.0.as_mut().expect("set by spawn");
        let pid = child.id();
        let stdin = child.stdin.take().map(|s| pipe(s.into())).transpose()?;
        let stdout = match merged {
            Some(fd) => Some(pipe(fd)?),
            None => child.stdout.take().map(|s| pipe(s.into())).transpose()?,
        };
        let stderr = child.stderr.take().map(|s| pipe(s.into())).transpose()?;
        let reader = |t: Rc<Transport>| {
            let mut r = StreamReader::new(t);
            if let Some(n) = self.limit {
                r.set_limit(n)?;
            }
            Ok::<_, io::Error>(r)
        };
        // Made while the guard still holds the child (it kills and reaps
        // it if this fails).
        let stdout = stdout.map(reader).transpose()?;
        let stderr = stderr.map(reader).transpose()?;
        let child = guard.0.take().expect("set by spawn");
        Ok(Process {
            stdin: stdin.map(StreamWriter::new),
            stdout,
            stderr,
            pid,
            exit: Exit::new(child, self.watcher, Reaper::current()),
        })
    }
}

/// An OS error about a file, naming the file: `{os}: '{name}'`.
#[derive(Debug)]
struct Named {
    name: String,
    os: io::Error,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: '{}'", self.os, self.name)
    }
}

impl std::error::Error for Named {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.os)
    }
}

/// Our end of a pipe to the child, non-blocking and registered.
fn pipe(fd: OwnedFd) -> io::Result<Rc<Transport>> {
    socket2::SockRef::from(&fd).set_nonblocking(true)?;
    Ok(Rc::new(Transport::pipe(Registered::with_kind(fd, FdKind::Other)?)))
}

/// Kills and hands on a child whose wrapping failed, so no error leaves a
/// process running unwatched.
struct KillOnError(Option<Child>);

impl Drop for KillOnError {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            orphan(c, ChildWatcher::Auto.uses_pidfd());
        }
    }
}

impl IntoFuture for Command {
    type Output = io::Result<Process>;
    type IntoFuture = Spawn;

    fn into_future(self) -> Spawn {
        Spawn { cmd: Some(self) }
    }
}

/// Future of awaiting a [`Command`]: spawns the child on its first poll.
///
/// # Cancellation
/// A cancelled spawn starts nothing and returns an `Interrupted` error
/// (made from [`Cancelled`](aio_core::Cancelled)).
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Spawn {
    cmd: Option<Command>,
}

impl Future for Spawn {
    type Output = io::Result<Process>;

    #[track_caller]
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<Process>> {
        aio_core::cancel::check()?;
        let mut cmd = self.cmd.take().expect("`Spawn` polled after completion");
        Poll::Ready(cmd.spawn())
    }
}
