//! Unix signals, asyncio's way: [`add_signal_handler`] runs a callback on
//! the loop each time a signal arrives, [`remove_signal_handler`] puts
//! back the disposition that was there before (so a second Ctrl-C is not
//! swallowed), and [`ctrl_c`] / [`wait_signal`] are awaitables for the
//! next delivery. The constants (`SIGINT`, `SIGTERM`, ...) are here too,
//! as in Python's `signal` module.
//!
//! One implementation serves every backend: a process-wide `sigaction`
//! handler writes to a self-pipe of each loop that handles the signal,
//! and the loop reads that pipe like any other descriptor (in a task named
//! `aio-signals`) and runs the callbacks on its own thread, where they may
//! touch anything the loop owns. Several loops (on several threads) may
//! handle the same signal: each one gets every delivery. Deliveries that
//! arrive before the loop gets to them coalesce, as signals do.
//!
//! A loop's handlers end with the loop: closing it (or cancelling its
//! `aio-signals` task) removes them and restores the dispositions.
//!
//! # Examples
//!
//! asyncio's `loop.add_signal_handler` example: stop on SIGTERM.
//!
//! ```no_run
//! use std::rc::Rc;
//!
//! # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
//! let stop = Rc::new(std::cell::Cell::new(false));
//! let flag = stop.clone();
//! aio_net::add_signal_handler(aio_net::signal::SIGTERM, move || flag.set(true))?;
//! while !stop.get() {
//!     aio_core::sleep(0.1).await?;
//! }
//! aio_net::remove_signal_handler(aio_net::signal::SIGTERM)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod dispatch;
mod registry;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub(crate) use dispatch::Subscription;
use dispatch::{LoopSignals, check};

/// Hangup.
pub const SIGHUP: i32 = libc::SIGHUP;
/// Interrupt from the keyboard (Ctrl-C).
pub const SIGINT: i32 = libc::SIGINT;
/// Quit from the keyboard (Ctrl-\\).
pub const SIGQUIT: i32 = libc::SIGQUIT;
/// Kill (cannot be caught: only for [`Process::send_signal`](crate::Process::send_signal)).
pub const SIGKILL: i32 = libc::SIGKILL;
/// User-defined signal 1.
pub const SIGUSR1: i32 = libc::SIGUSR1;
/// User-defined signal 2.
pub const SIGUSR2: i32 = libc::SIGUSR2;
/// Broken pipe.
pub const SIGPIPE: i32 = libc::SIGPIPE;
/// Timer signal from `alarm(2)`.
pub const SIGALRM: i32 = libc::SIGALRM;
/// Termination request.
pub const SIGTERM: i32 = libc::SIGTERM;
/// A child stopped or terminated.
pub const SIGCHLD: i32 = libc::SIGCHLD;
/// Continue if stopped.
pub const SIGCONT: i32 = libc::SIGCONT;
/// Stop (cannot be caught).
pub const SIGSTOP: i32 = libc::SIGSTOP;
/// Stop typed at the terminal.
pub const SIGTSTP: i32 = libc::SIGTSTP;
/// Window size change.
pub const SIGWINCH: i32 = libc::SIGWINCH;

/// Why a signal could not be handled.
#[derive(Debug)]
pub enum SignalError {
    /// Not a signal number a handler can be installed for (0, out of
    /// range, `SIGKILL`, `SIGSTOP`, or one the C library reserves):
    /// asyncio's `ValueError`.
    Invalid(i32),
    /// Called outside code running on an aio loop: asyncio's
    /// `RuntimeError`.
    NoRunningLoop,
    /// More loops handle signals at once than aio's table holds (256).
    TooManyLoops,
    /// The loop's signal handling ended (the loop closed, or its
    /// `aio-signals` task was cancelled) while waiting.
    Stopped,
    /// The system refused (`sigaction`, creating or registering the
    /// self-pipe).
    Io(io::Error),
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::Invalid(sig) => write!(f, "invalid signal number {sig} (it cannot be caught)"),
            SignalError::NoRunningLoop => {
                f.write_str("no running event loop: signals are handled by a running aio loop")
            }
            SignalError::TooManyLoops => f.write_str("too many event loops handle signals at once (at most 256)"),
            SignalError::Stopped => f.write_str("the event loop's signal handling stopped (the loop closed)"),
            SignalError::Io(e) => write!(f, "cannot handle the signal: {e}"),
        }
    }
}

impl std::error::Error for SignalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SignalError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for SignalError {
    fn from(e: io::Error) -> SignalError {
        SignalError::Io(e)
    }
}

impl From<SignalError> for io::Error {
    fn from(e: SignalError) -> io::Error {
        match e {
            SignalError::Io(e) => e,
            SignalError::Invalid(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            other => io::Error::other(other),
        }
    }
}

/// Runs `callback` on the running loop each time `sig` arrives:
/// asyncio's `loop.add_signal_handler(sig, callback)`. Replaces the
/// loop's previous callback for `sig`, if any.
///
/// The callback runs as a loop callback (like `call_soon`'s), on the
/// loop's thread, so it need not be `Send`; a panic in it goes to the
/// loop's exception handler and the handler stays installed. The first
/// handler of a signal in the process saves the disposition it replaces;
/// [`remove_signal_handler`] puts it back.
///
/// # Errors
/// [`SignalError::Invalid`] for `SIGKILL`, `SIGSTOP` and numbers that are
/// not signals; [`SignalError::NoRunningLoop`] outside a loop.
///
/// # Examples
/// ```
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// use aio_net::signal::SIGUSR1;
/// aio_net::add_signal_handler(SIGUSR1, || println!("got SIGUSR1"))?;
/// assert!(aio_net::remove_signal_handler(SIGUSR1)?);
/// assert!(!aio_net::remove_signal_handler(SIGUSR1)?); // already removed
/// # Ok::<(), aio_net::SignalError>(())
/// # }).unwrap();
/// ```
pub fn add_signal_handler(sig: i32, callback: impl Fn() + 'static) -> Result<(), SignalError> {
    check(sig)?;
    LoopSignals::current()?.set_handler(sig, Rc::new(callback))
}

/// Removes the running loop's callback for `sig`: asyncio's
/// `loop.remove_signal_handler(sig)`. Returns whether there was one. When
/// nothing else in the process handles `sig` any more (another loop, a
/// pending [`wait_signal`]), the disposition saved by the first
/// [`add_signal_handler`] is restored — for `SIGINT`, usually the default,
/// so the next Ctrl-C ends the program.
///
/// # Errors
/// [`SignalError::Invalid`] for numbers that cannot be handled;
/// [`SignalError::NoRunningLoop`] outside a loop.
pub fn remove_signal_handler(sig: i32) -> Result<bool, SignalError> {
    check(sig)?;
    if aio_core::try_get_running_loop().is_none() {
        return Err(SignalError::NoRunningLoop);
    }
    Ok(LoopSignals::find().is_some_and(|s| s.remove_handler(sig)))
}

/// Waits for the next `SIGINT` (Ctrl-C), then puts back the disposition
/// that was there before: the same as [`wait_signal(SIGINT)`](wait_signal).
/// asyncio has no such function (tokio's name); `asyncio.run` handles
/// Ctrl-C by cancelling the main task.
///
/// # Cancellation
/// See [`WaitSignal`].
///
/// # Examples
/// ```no_run
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// println!("press Ctrl-C to stop");
/// aio_net::ctrl_c().await?;
/// println!("stopping");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub fn ctrl_c() -> WaitSignal {
    wait_signal(SIGINT)
}

/// Waits for the next delivery of `sig` to the running loop. The signal is
/// handled from the first poll of the future until it completes or is
/// dropped, after which the previous disposition is back (unless something
/// else still handles it).
///
/// # Cancellation
/// A cancelled wait returns an `Interrupted` error (made from
/// [`Cancelled`](aio_core::Cancelled)) and stops handling the signal; a
/// signal arriving after that gets the previous disposition.
pub fn wait_signal(sig: i32) -> WaitSignal {
    WaitSignal {
        sig,
        sub: None,
        seen: 0,
    }
}

/// Future of [`wait_signal`] and [`ctrl_c`]: `Ok(())` at the next
/// delivery; an error for a signal that cannot be handled, outside a loop,
/// or when cancelled.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitSignal {
    sig: i32,
    sub: Option<Subscription>,
    seen: u64,
}

impl fmt::Debug for WaitSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitSignal")
            .field("sig", &self.sig)
            .field("listening", &self.sub.is_some())
            .finish()
    }
}

impl Future for WaitSignal {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(c) = aio_core::cancel::check() {
            self.sub = None;
            return Poll::Ready(Err(c.into()));
        }
        if self.sub.is_none() {
            let sub = Subscription::new(self.sig)?;
            self.seen = sub.generation();
            self.sub = Some(sub);
        }
        let sub = self.sub.as_ref().expect("set above");
        let res = std::task::ready!(sub.poll_after(self.seen, cx));
        self.sub = None;
        Poll::Ready(res.map_err(io::Error::from))
    }
}

/// asyncio's signal methods on a [`Loop`](aio_core::Loop) value: import
/// the trait, then `lp.add_signal_handler(sig, callback)`.
///
/// The loop must be the one running on this thread (call them from code
/// running on it, as asyncio's examples do); otherwise they return
/// [`SignalError::NoRunningLoop`].
///
/// # Examples
/// ```
/// use aio_net::LoopSignalExt;
///
/// # aio_core::run_on(aio_poll::PollDriver::new().unwrap(), async {
/// let lp = aio_core::get_running_loop();
/// lp.add_signal_handler(aio_net::signal::SIGHUP, || println!("reload"))?;
/// assert!(lp.remove_signal_handler(aio_net::signal::SIGHUP)?);
/// # Ok::<(), aio_net::SignalError>(())
/// # }).unwrap();
/// ```
pub trait LoopSignalExt {
    /// See [`add_signal_handler`].
    fn add_signal_handler(&self, sig: i32, callback: impl Fn() + 'static) -> Result<(), SignalError>;

    /// See [`remove_signal_handler`].
    fn remove_signal_handler(&self, sig: i32) -> Result<bool, SignalError>;
}

impl LoopSignalExt for aio_core::Loop {
    fn add_signal_handler(&self, sig: i32, callback: impl Fn() + 'static) -> Result<(), SignalError> {
        // A `Loop` never leaves its thread and a thread runs one loop at a
        // time: a running `self` is the running loop.
        if !self.is_running() {
            return Err(SignalError::NoRunningLoop);
        }
        add_signal_handler(sig, callback)
    }

    fn remove_signal_handler(&self, sig: i32) -> Result<bool, SignalError> {
        if !self.is_running() {
            return Err(SignalError::NoRunningLoop);
        }
        remove_signal_handler(sig)
    }
}

/// Whether `sig`'s current disposition is aio's handler (for tests and
/// diagnostics).
#[doc(hidden)]
pub fn is_handled_by_aio(sig: i32) -> io::Result<bool> {
    Ok(registry::is_ours(crate::sys::current(sig)?.handler()))
}
