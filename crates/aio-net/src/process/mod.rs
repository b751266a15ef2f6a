//! Subprocesses, asyncio's way: [`create_subprocess_exec`] and
//! [`create_subprocess_shell`] give a [`Command`] to configure and await;
//! the [`Process`] has asyncio's `stdin`/`stdout`/`stderr` streams,
//! `wait`, `communicate`, `send_signal`, `terminate`, `kill` and
//! `returncode`.
//!
//! Pipes are the same [`StreamReader`](crate::StreamReader) and
//! [`StreamWriter`](crate::StreamWriter) as sockets', on `read`/`write`,
//! so they run on every backend. As asyncio's child watcher does, the loop
//! watches every child from its spawn on, without a thread (a pidfd
//! registered with the loop on Linux 5.3+, SIGCHLD elsewhere: see
//! [`ChildWatcher`]), reaps it as soon as it exits and records its
//! `returncode`, whether or not anyone waits. Every child is reaped, even
//! one whose `Process` is dropped first or whose loop closes before it
//! exits (a process-wide thread reaps those; it never waits for children
//! aio did not spawn).

mod child;
mod command;
mod exit;
mod orphans;
mod reaper;

use std::ffi::OsStr;

pub use child::{CommunicateInput, Process};
pub use command::{Command, DEVNULL, PIPE, STDOUT, Spawn, Stdio};
pub use exit::ChildWatcher;

/// Runs `program` with `args`: asyncio's
/// `create_subprocess_exec(program, *args)`. Configure the returned
/// [`Command`] (stdio, environment, directory), then await it (or call
/// [`spawn`](Command::spawn)) to start the child.
///
/// # Examples
/// ```
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let mut p = aio_net::create_subprocess_exec("echo", ["hello", "world"])
///     .stdout(aio_net::PIPE)
///     .await?;
/// let line = p.stdout.as_mut().unwrap().readline().await?;
/// assert_eq!(line, b"hello world\n");
/// assert_eq!(p.wait().await?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn create_subprocess_exec(program: impl AsRef<OsStr>, args: impl ExecArgs) -> Command {
    args.add_to(Command::new(program))
}

/// The argument lists [`create_subprocess_exec`] takes: an array of string
/// literals (`[]` included: asyncio's `create_subprocess_exec(prog)`), or a
/// `Vec`, slice or array reference of anything `AsRef<OsStr>` (`String`,
/// `OsString`, `PathBuf`, ...). [`Command::args`] takes any iterator.
///
/// (Arrays by value are only of `&str`, so that `[]` has one meaning.)
pub trait ExecArgs {
    /// Adds the arguments to `cmd`.
    fn add_to(self, cmd: Command) -> Command;
}

impl<const N: usize> ExecArgs for [&str; N] {
    fn add_to(self, cmd: Command) -> Command {
        cmd.args(self)
    }
}

impl<S: AsRef<OsStr>, const N: usize> ExecArgs for &[S; N] {
    fn add_to(self, cmd: Command) -> Command {
        cmd.args(self)
    }
}

impl<S: AsRef<OsStr>> ExecArgs for &[S] {
    fn add_to(self, cmd: Command) -> Command {
        cmd.args(self)
    }
}

impl<S: AsRef<OsStr>> ExecArgs for Vec<S> {
    fn add_to(self, cmd: Command) -> Command {
        cmd.args(self)
    }
}

impl<S: AsRef<OsStr>> ExecArgs for &Vec<S> {
    fn add_to(self, cmd: Command) -> Command {
        cmd.args(self)
    }
}

/// Runs `cmd` through the shell (`/bin/sh -c cmd`): asyncio's
/// `create_subprocess_shell(cmd)`. As there, quoting is the caller's job:
/// never pass it unescaped input.
///
/// # Examples
/// ```
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let mut p = aio_net::create_subprocess_shell("echo out; echo err >&2")
///     .stdout(aio_net::PIPE)
///     .stderr(aio_net::PIPE)
///     .await?;
/// let (out, err) = p.communicate(None).await?;
/// assert_eq!(out.unwrap(), b"out\n");
/// assert_eq!(err.unwrap(), b"err\n");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub fn create_subprocess_shell(cmd: impl AsRef<OsStr>) -> Command {
    Command::new("/bin/sh").arg("-c").arg(cmd)
}
