//! `Process`: a running child, asyncio's `asyncio.subprocess.Process`.

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use super::exit::Exit;
use crate::{StreamReader, StreamWriter};

/// How much input `communicate` queues before waiting for the pipe.
const FEED_CHUNK: usize = 256 * 1024;

/// A child process: asyncio's `asyncio.subprocess.Process`.
///
/// The pipes asked for with [`PIPE`](crate::PIPE) are the public fields
/// `stdin`, `stdout` and `stderr`, as in asyncio; the others are `None`.
/// Take them out (`proc.stdout.take()`) to move them into other tasks.
///
/// Dropping a `Process` does not kill the child (as with std's and
/// tokio's `Child`; asyncio kills it when the process transport is
/// garbage-collected): a child still running is handed to its loop's
/// reaper, which reaps it when it exits, so no zombie is left behind; if
/// the loop closes first (or has closed), a process-wide thread takes the
/// child over and reaps it when it exits. Call [`kill`](Process::kill)
/// first to stop it.
pub struct Process {
    /// The child's stdin, when spawned with `stdin(PIPE)`.
    pub stdin: Option<StreamWriter>,
    /// The child's stdout, when spawned with `stdout(PIPE)` (with
    /// `stderr(STDOUT)` it carries both streams).
    pub stdout: Option<StreamReader>,
    /// The child's stderr, when spawned with `stderr(PIPE)`.
    pub stderr: Option<StreamReader>,
    pub(super) pid: u32,
    pub(super) exit: Exit,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("returncode", &self.exit.status().map(returncode))
            .finish_non_exhaustive()
    }
}

/// asyncio's `returncode`: the exit code, or minus the signal number that
/// killed the process.
fn returncode(s: ExitStatus) -> i32 {
    match (s.code(), s.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => -sig,
        (None, None) => i32::MIN,
    }
}

fn broken_pipe(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
}

/// Reads a stream to EOF (`None` when there is no stream).
async fn read_all(r: Option<&mut StreamReader>) -> io::Result<Option<Vec<u8>>> {
    match r {
        Some(r) => r.read(-1).await.map(Some).map_err(io::Error::from),
        None => Ok(None),
    }
}

impl Process {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// asyncio's `returncode`: `None` until the loop has handled the
    /// child's exit; then its exit code, or `-N` when signal `N` ended it.
    ///
    /// The loop watches every child from its spawn on and records its exit
    /// as soon as it sees it, whether or not anyone awaits
    /// [`wait`](Process::wait) (as asyncio's child watcher does). This
    /// only reads what the loop recorded (it makes no system call), so it
    /// changes only while the task reading it is suspended at an `await`,
    /// never between two of its statements.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
    /// let p = aio_net::create_subprocess_exec("true", []).await?;
    /// assert_eq!(p.returncode(), None); // the loop has not run since the spawn
    /// while p.returncode().is_none() {
    ///     aio_core::sleep(0.01).await?; // nobody waits: the loop records it
    /// }
    /// assert_eq!(p.returncode(), Some(0));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn returncode(&self) -> Option<i32> {
        self.exit.status().map(returncode)
    }

    /// The child's exit status once the loop has handled its exit (the
    /// same moment as [`returncode`](Process::returncode)), without a
    /// system call.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit.status()
    }

    /// Waits until the loop has handled the child's exit and returns its
    /// [`returncode`](Process::returncode): asyncio's `wait()`. (Awaited
    /// on another loop of the thread than the child's own, it watches the
    /// child itself there.)
    ///
    /// Like asyncio's, this can deadlock when the child writes more to a
    /// pipe than the pipe holds and nobody reads it; use
    /// [`communicate`](Process::communicate) to read while waiting.
    /// Several tasks may wait at once (share the `Process` in an `Rc`).
    ///
    /// # Cancellation
    /// Returns an `Interrupted` error (made from
    /// [`Cancelled`](aio_core::Cancelled)); the child is untouched, and
    /// can still be signalled and waited for (the loop still records its
    /// exit).
    ///
    /// # Examples
    /// ```
    /// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
    /// let p = aio_net::create_subprocess_shell("exit 3").await?;
    /// assert_eq!(p.wait().await?, 3);
    /// assert_eq!(p.returncode(), Some(3));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn wait(&self) -> io::Result<i32> {
        self.exit.wait().await.map(returncode)
    }

    /// Sends `input` to stdin and closes it, reads stdout and stderr to
    /// EOF, and waits for the child to exit: asyncio's
    /// `communicate(input)`. Returns `(stdout, stderr)`, each `None` when
    /// that stream is not a pipe.
    ///
    /// `input` is bytes (`b"..."`, a `&[u8]`, `Vec<u8>`, `&str`,
    /// `String`), or `None`, asyncio's `communicate()`: nothing is
    /// written. Either way stdin is closed, as in asyncio since Python
    /// 3.12 (and as `subprocess`'s `communicate` always did), so a child
    /// that reads its input to EOF finishes; to keep stdin open, take it
    /// out of [`stdin`](Process::stdin) first. Input is ignored when stdin
    /// is not a pipe.
    ///
    /// The three run concurrently, so a child that fills its stdout or
    /// stderr pipe before it has read all its input cannot deadlock it. A
    /// child that exits without reading its input is not an error (as in
    /// asyncio, a broken pipe on stdin is ignored). All output is kept in
    /// memory: for large or endless output, read the streams instead.
    ///
    /// # Cancellation
    /// Returns an `Interrupted` error (made from
    /// [`Cancelled`](aio_core::Cancelled)). stdin is closed by then (input
    /// already queued still goes to the child). Output already read stays
    /// in the `stdout`/`stderr` readers, so nothing the child wrote is
    /// lost: read them (or `kill` and `wait`) afterwards.
    ///
    /// # Examples
    /// ```
    /// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
    /// let mut p = aio_net::create_subprocess_exec("tr", ["a-z", "A-Z"])
    ///     .stdin(aio_net::PIPE)
    ///     .stdout(aio_net::PIPE)
    ///     .await?;
    /// let (out, err) = p.communicate(b"hello").await?;
    /// assert_eq!(out.as_deref(), Some(&b"HELLO"[..]));
    /// assert_eq!(err, None);
    /// assert_eq!(p.returncode(), Some(0));
    ///
    /// // asyncio's `communicate()`: no input, stdin closed all the same.
    /// let mut p = aio_net::create_subprocess_exec("cat", [])
    ///     .stdin(aio_net::PIPE)
    ///     .stdout(aio_net::PIPE)
    ///     .await?;
    /// assert_eq!(p.communicate(None).await?, (Some(Vec::new()), None));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn communicate(
        &mut self,
        input: impl CommunicateInput,
    ) -> io::Result<(Option<Vec<u8>>, Option<Vec<u8>>)> {
        let input = input.as_input().unwrap_or_default();
        let stdin = self.stdin.take();
        let feed = async move {
            if let Some(w) = stdin {
                for chunk in input.chunks(FEED_CHUNK) {
                    w.write(chunk);
                    match w.drain().await {
                        Ok(()) => {}
                        Err(e) if broken_pipe(&e) => break,
                        Err(e) => return Err(e),
                    }
                }
                w.close();
            }
            Ok::<(), io::Error>(())
        };
        let (out, err) = (self.stdout.as_mut(), self.stderr.as_mut());
        let ((), out, err) = aio_core::gather!(feed, read_all(out), read_all(err)).await?;
        self.exit.wait().await?;
        Ok((out, err))
    }

    /// Sends signal `sig` to the child: asyncio's `send_signal`.
    ///
    /// # Errors
    /// Once the child's exit was recorded ([`returncode`](Process::returncode)
    /// is set), the OS error `ESRCH` ("No such process"), asyncio's
    /// `ProcessLookupError`, and nothing is sent: its pid may belong to
    /// another process by then. `InvalidInput` for a number that is not a
    /// signal.
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        self.exit.send_signal(sig)
    }

    /// Sends `SIGTERM`: asyncio's `terminate()`. Errors as
    /// [`send_signal`](Process::send_signal).
    pub fn terminate(&self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Sends `SIGKILL`: asyncio's `kill()`. [`wait`](Process::wait) then
    /// returns `-9`. Errors as [`send_signal`](Process::send_signal): after
    /// the exit, `ESRCH` (asyncio's `ProcessLookupError`).
    pub fn kill(&self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }
}

/// What [`Process::communicate`] writes to the child's stdin: asyncio's
/// `input`, bytes or `None` (nothing).
///
/// Implemented for `Option<&[u8]>` alone among options, so that a bare
/// `None` needs no annotation; for byte strings (`b"..."`), slices,
/// `Vec<u8>`, `&str` and `String`, by value or by reference.
pub trait CommunicateInput {
    /// The bytes to write, or `None` to write nothing.
    fn as_input(&self) -> Option<&[u8]>;
}

impl CommunicateInput for Option<&[u8]> {
    fn as_input(&self) -> Option<&[u8]> {
        *self
    }
}

impl CommunicateInput for &[u8] {
    fn as_input(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl<const N: usize> CommunicateInput for &[u8; N] {
    fn as_input(&self) -> Option<&[u8]> {
        Some(&self[..])
    }
}

impl CommunicateInput for Vec<u8> {
    fn as_input(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl CommunicateInput for &Vec<u8> {
    fn as_input(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl CommunicateInput for &str {
    fn as_input(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl CommunicateInput for String {
    fn as_input(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}

impl CommunicateInput for &String {
    fn as_input(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}
