//! Signal handlers on every backend: a callback runs on SIGUSR1 sent to
//! our own pid, removing it restores the disposition that was there
//! before (checked with `sigaction`), `ctrl_c` resolves at SIGINT and
//! restores SIGINT's default, cancellation, panicking callbacks, two loops
//! on two threads, invalid signals.
//!
//! Dispositions are process-wide: this binary holds only signal tests, and
//! each one takes `LOCK` so the poll and uring variants never overlap.

// The lock serializes whole tests, awaits included.
#![allow(clippy::await_holding_lock)]

use aio_test::{backend_tests, until};

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use aio_core::{create_task, timeout, yield_now};
use aio_net::signal::{SIGHUP, SIGINT, SIGKILL, SIGSTOP, SIGUSR1, SIGUSR2};
use aio_net::{LoopSignalExt, SignalError, add_signal_handler, ctrl_c, remove_signal_handler, wait_signal};

static LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `sig` to our own process.
fn raise(sig: i32) {
    // SAFETY: kill takes plain integers.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

/// The current handler address of `sig` (`SIG_DFL` = 0, `SIG_IGN` = 1).
fn disposition(sig: i32) -> usize {
    // SAFETY: an all-zero sigaction is valid; a null new action only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

/// Installs a plain disposition (a handler address, `SIG_DFL` or `SIG_IGN`).
fn set_disposition(sig: i32, handler: usize) {
    // SAFETY: as above; `handler` is SIG_DFL, SIG_IGN or `foreign_handler`,
    // which is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

/// Someone else's handler (it does nothing), to see it restored.
extern "C" fn foreign_handler(_sig: libc::c_int) {}

fn foreign() -> usize {
    foreign_handler as *const () as usize
}

async fn handler_runs_on_sigusr1() -> io::Result<()> {
    let _g = serial();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let before = disposition(SIGUSR1);
    add_signal_handler(SIGUSR1, move || h.set(h.get() + 1))?;
    assert!(aio_net::signal::is_handled_by_aio(SIGUSR1)?);
    raise(SIGUSR1);
    until("the first SIGUSR1", || hits.get() >= 1).await?;
    raise(SIGUSR1);
    until("the second SIGUSR1", || hits.get() >= 2).await?;
    assert!(remove_signal_handler(SIGUSR1)?);
    assert_eq!(disposition(SIGUSR1), before);
    // With nothing left to handle, the loop's signal task ends.
    until("the aio-signals task ends", || {
        !aio_core::all_tasks().iter().any(|t| t.name() == "aio-signals")
    })
    .await?;
    Ok(())
}

async fn removing_restores_the_old_disposition() -> io::Result<()> {
    let _g = serial();
    for old in [foreign(), libc::SIG_IGN, libc::SIG_DFL] {
        set_disposition(SIGUSR2, old);
        add_signal_handler(SIGUSR2, || {})?;
        assert_ne!(disposition(SIGUSR2), old, "aio's handler is installed");
        // Replacing the callback keeps aio's handler and the saved one.
        add_signal_handler(SIGUSR2, || {})?;
        assert!(remove_signal_handler(SIGUSR2)?);
        assert_eq!(disposition(SIGUSR2), old, "the previous disposition is back");
        assert!(!remove_signal_handler(SIGUSR2)?, "nothing left to remove");
    }
    set_disposition(SIGUSR2, libc::SIG_DFL);
    Ok(())
}

async fn loop_methods() -> io::Result<()> {
    let _g = serial();
    let lp = aio_core::get_running_loop();
    let hit = Rc::new(Cell::new(false));
    let h = hit.clone();
    // Whatever was there before (SIG_IGN under nohup) comes back.
    let before = disposition(SIGHUP);
    lp.add_signal_handler(SIGHUP, move || h.set(true))?;
    raise(SIGHUP);
    until("SIGHUP", || hit.get()).await?;
    assert!(lp.remove_signal_handler(SIGHUP)?);
    assert_eq!(disposition(SIGHUP), before);
    // A loop that is not running is refused.
    let other = aio_test::poll_loop();
    assert!(matches!(
        other.add_signal_handler(SIGHUP, || {}),
        Err(SignalError::NoRunningLoop)
    ));
    Ok(())
}

async fn ctrl_c_resolves_and_restores() -> io::Result<()> {
    let _g = serial();
    // A shell without job control starts background commands with SIGINT
    // ignored: start from the default, as an interactive program does.
    set_disposition(SIGINT, libc::SIG_DFL);
    let t = create_task(ctrl_c());
    // Its first poll installs the handler: only then is SIGINT safe to send.
    until("ctrl_c listening", || disposition(SIGINT) != libc::SIG_DFL).await?;
    assert!(!t.done());
    raise(SIGINT);
    timeout(10, t)
        .await
        .map_err(io::Error::other)?
        .map_err(|e| io::Error::other(e.to_string()))??;
    assert_eq!(disposition(SIGINT), libc::SIG_DFL, "a second Ctrl-C ends the program");
    Ok(())
}

async fn cancelled_wait_restores() -> io::Result<()> {
    let _g = serial();
    let t = create_task(wait_signal(SIGUSR1));
    until("wait_signal listening", || disposition(SIGUSR1) != libc::SIG_DFL).await?;
    t.cancel();
    assert!(t.await.unwrap_err().is_cancelled());
    assert_eq!(disposition(SIGUSR1), libc::SIG_DFL);
    // Dropped without being cancelled: the same.
    let mut w = Box::pin(wait_signal(SIGUSR1));
    assert!(futures_poll_once(w.as_mut()).is_none());
    assert_ne!(disposition(SIGUSR1), libc::SIG_DFL);
    drop(w);
    assert_eq!(disposition(SIGUSR1), libc::SIG_DFL);
    // A listener and a handler share the signal: removing the handler
    // keeps it handled until the listener goes too.
    add_signal_handler(SIGUSR1, || {})?;
    let t = create_task(wait_signal(SIGUSR1));
    yield_now().await?;
    assert!(remove_signal_handler(SIGUSR1)?);
    assert_ne!(disposition(SIGUSR1), libc::SIG_DFL);
    raise(SIGUSR1);
    timeout(10, t)
        .await
        .map_err(io::Error::other)?
        .map_err(|e| io::Error::other(e.to_string()))??;
    assert_eq!(disposition(SIGUSR1), libc::SIG_DFL);
    Ok(())
}

/// Polls `f` once with a no-op waker.
fn futures_poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

async fn panicking_callback_keeps_the_handler() -> io::Result<()> {
    let _g = serial();
    let lp = aio_core::get_running_loop();
    let reports = Rc::new(Cell::new(0));
    let r = reports.clone();
    lp.set_exception_handler(Some(move |_: &aio_core::ExceptionContext| r.set(r.get() + 1)));
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    add_signal_handler(SIGUSR2, move || {
        h.set(h.get() + 1);
        if h.get() == 1 {
            panic!("the first SIGUSR2 panics");
        }
    })?;
    raise(SIGUSR2);
    until("the panic reported", || reports.get() == 1).await?;
    raise(SIGUSR2);
    until("the second SIGUSR2", || hits.get() == 2).await?;
    assert!(remove_signal_handler(SIGUSR2)?);
    lp.set_exception_handler(None::<fn(&aio_core::ExceptionContext)>);
    assert_eq!(disposition(SIGUSR2), libc::SIG_DFL);
    Ok(())
}

/// Two loops on two threads handle the same signal: both see it, and the
/// disposition comes back only when the last one removes its handler.
async fn two_loops_share_a_signal() -> io::Result<()> {
    let _g = serial();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        aio_test::run_poll(async move {
            let hit = Rc::new(Cell::new(false));
            let h = hit.clone();
            add_signal_handler(SIGUSR1, move || h.set(true))?;
            ready_tx.send(()).unwrap();
            until("SIGUSR1 on the other loop", || hit.get()).await?;
            // Keep the handler until the main loop removed its own.
            aio_core::to_thread(move || go_rx.recv().unwrap())
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            assert!(remove_signal_handler(SIGUSR1)?);
            Ok::<_, io::Error>(())
        })
    });
    let hit = Rc::new(Cell::new(false));
    let h = hit.clone();
    add_signal_handler(SIGUSR1, move || h.set(true))?;
    aio_core::to_thread(move || ready_rx.recv().unwrap())
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    raise(SIGUSR1);
    until("SIGUSR1 on this loop", || hit.get()).await?;
    assert!(remove_signal_handler(SIGUSR1)?);
    assert!(
        aio_net::signal::is_handled_by_aio(SIGUSR1)?,
        "the other loop still handles it"
    );
    go_tx.send(()).unwrap();
    aio_core::to_thread(move || other.join())
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
        .expect("the other loop's test passed");
    assert_eq!(disposition(SIGUSR1), libc::SIG_DFL);
    Ok(())
}

async fn invalid_signals_are_errors() -> io::Result<()> {
    let _g = serial();
    for sig in [0, -1, 65, 1000, SIGKILL, SIGSTOP] {
        assert!(
            matches!(add_signal_handler(sig, || {}), Err(SignalError::Invalid(s)) if s == sig),
            "signal {sig}"
        );
        assert!(matches!(remove_signal_handler(sig), Err(SignalError::Invalid(_))));
    }
    // glibc keeps 32 and 33 for its threads: sigaction refuses them.
    #[cfg(target_env = "gnu")]
    for sig in [32, 33] {
        assert!(
            matches!(add_signal_handler(sig, || {}), Err(SignalError::Invalid(s)) if s == sig),
            "signal {sig}"
        );
        assert!(!remove_signal_handler(sig)?);
    }
    let e = wait_signal(SIGKILL).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(disposition(SIGKILL), libc::SIG_DFL);
    Ok(())
}

/// Outside a loop, the functions say so (no test harness loop here).
#[test]
fn outside_a_loop() {
    assert!(matches!(
        add_signal_handler(SIGUSR1, || {}),
        Err(SignalError::NoRunningLoop)
    ));
    assert!(matches!(
        remove_signal_handler(SIGUSR1),
        Err(SignalError::NoRunningLoop)
    ));
    assert_eq!(
        SignalError::Invalid(9).to_string(),
        "invalid signal number 9 (it cannot be caught)"
    );
}

backend_tests!(
    handler_runs_on_sigusr1,
    removing_restores_the_old_disposition,
    loop_methods,
    ctrl_c_resolves_and_restores,
    cancelled_wait_restores,
    panicking_callback_keeps_the_handler,
    two_loops_share_a_signal,
    invalid_signals_are_errors,
);
