//! Diagnostics: a detached task's `Err` (or panic) that nobody read is
//! reported to the exception handler ("Task exception was never
//! retrieved") with the error's `Debug`; results that were read are not;
//! debug mode's `log` records for task creation, cancellation and slow
//! steps.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::{Mutex, Once};
use std::time::Duration;

use aio_core::{Builder, Cancelled, ExceptionContext, Loop, TaskFailure, TaskOutput, create_task, sleep, yield_now};

/// What a report said: (message, task, panic, error).
type Report = (String, Option<String>, Option<String>, Option<String>);
/// A [`Report`], borrowed (to compare with literals).
type BorrowedReport<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// A loop whose exception handler records what it is given.
fn recording_loop() -> (Loop, Rc<RefCell<Vec<Report>>>) {
    let lp = Loop::new();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    lp.set_exception_handler(Some(move |ctx: &ExceptionContext| {
        s.borrow_mut().push((
            ctx.message.clone(),
            ctx.task.clone(),
            ctx.panic.as_ref().map(|p| p.to_string()),
            ctx.error.clone(),
        ));
    }));
    (lp, seen)
}

/// Runs `body` on a recording loop, then checks that nothing was
/// reported.
fn nothing_reported(body: impl std::future::Future<Output = Result<(), Cancelled>> + 'static) {
    let (lp, seen) = recording_loop();
    lp.run_until_complete(body).unwrap().unwrap();
    assert!(seen.borrow().is_empty(), "{:?}", seen.borrow());
    lp.close();
}

#[test]
fn a_detached_task_that_returns_an_err_is_reported_with_its_debug() {
    let (lp, seen) = recording_loop();
    lp.run_until_complete(async {
        let t = create_task(async {
            yield_now().await?;
            Err::<(), io::Error>(io::Error::new(io::ErrorKind::ConnectionRefused, "boom"))
        });
        t.set_name("fetcher");
        drop(t); // detached while it runs
        sleep(0.001).await
    })
    .unwrap()
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (msg, task, panic, error) = &seen[0];
    assert_eq!(msg, "Task exception was never retrieved");
    assert_eq!(task.as_deref(), Some("fetcher"));
    assert_eq!(panic, &None);
    let error = error.as_deref().unwrap();
    assert!(error.contains("ConnectionRefused") && error.contains("boom"), "{error}");
    lp.close();
}

/// asyncio's `run()` cancels what is left at shutdown and reports each
/// task that failed instead, held or not, as "unhandled exception during
/// asyncio.run() shutdown", marking it retrieved: nothing more is reported
/// when a held task's handle drops, and the handle still has the failure.
/// A task a cancelled one starts while it cleans up was not cancelled by
/// the shutdown: its failure is "never retrieved".
#[test]
fn tasks_failing_as_the_loop_closes_are_reported_once_as_shutdown_failures() {
    let (lp, seen) = recording_loop();
    let (held, held_err) = lp
        .run_until_complete(async {
            let held = create_task(async {
                if sleep(10.0).await.is_err() {
                    panic!("held: cleanup failed");
                }
            });
            held.set_name("held");
            let held_err = create_task(async {
                sleep(10.0).await.map_err(|_| "held_err: cleanup failed")?;
                Ok::<_, &str>(())
            });
            held_err.set_name("held_err");
            let detached = create_task(async {
                if sleep(10.0).await.is_err() {
                    // Started during the shutdown: not cancelled by it.
                    create_task(async {
                        yield_now().await.ok();
                        panic!("late: failed");
                    })
                    .set_name("late");
                    panic!("detached: cleanup failed");
                }
            });
            detached.set_name("detached");
            drop(detached);
            yield_now().await.unwrap();
            (held, held_err)
        })
        .unwrap();
    lp.close();
    let mut seen = seen.borrow().clone();
    seen.sort();
    let shutdown = "unhandled exception during asyncio.run() shutdown";
    let summary: Vec<BorrowedReport> = seen
        .iter()
        .map(|(m, t, p, e)| (m.as_str(), t.as_deref(), p.as_deref(), e.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Task exception was never retrieved",
                Some("late"),
                Some("late: failed"),
                None
            ),
            (shutdown, Some("detached"), Some("detached: cleanup failed"), None),
            (shutdown, Some("held"), Some("held: cleanup failed"), None),
            (shutdown, Some("held_err"), None, Some("\"held_err: cleanup failed\"")),
        ]
    );
    // The handles still hold the failures.
    let mut held = held;
    match held.result() {
        Some(Err(aio_core::TaskError::Panicked(p))) => assert_eq!(p.message(), Some("held: cleanup failed")),
        other => panic!("{other:?}"),
    }
    // Dropped now, a handle whose failure was not reported would report it
    // to the default handler (stderr: the loop is closed). A child process
    // runs this test with its output shown, and says nothing more.
    drop(held);
    drop(held_err);
    if std::env::var(SHUTDOWN_CHILD).is_ok() {
        return;
    }
    let test = "tasks_failing_as_the_loop_closes_are_reported_once_as_shutdown_failures";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(SHUTDOWN_CHILD, "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{stderr}");
    assert!(!stderr.contains("never retrieved"), "reported twice: {stderr}");
}

const SHUTDOWN_CHILD: &str = "AIO_TEST_SHUTDOWN_CHILD";

#[test]
fn a_handle_dropped_unread_after_the_task_failed_reports_it() {
    let (lp, seen) = recording_loop();
    let s = seen.clone();
    lp.run_until_complete(async move {
        let t = create_task(async { Err::<u32, _>("bad input") });
        sleep(0.001).await?;
        assert!(t.done());
        assert!(s.borrow().is_empty(), "not while the handle may still read it");
        drop(t);
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].3.as_deref(), Some("\"bad input\""));
    let ctx = ExceptionContext {
        message: seen[0].0.clone(),
        task: seen[0].1.clone(),
        error: seen[0].3.clone(),
        ..Default::default()
    };
    assert!(ctx.to_string().ends_with(": \"bad input\""), "{ctx}");
    lp.close();
}

#[derive(Debug, PartialEq)]
struct ValueError(&'static str);

/// asyncio: `t.exception()` returns the exception and marks it retrieved,
/// so dropping `t` reports nothing; a twin task nobody looked at is
/// reported (CPython prints `ValueError('bad')` then `['Task exception
/// was never retrieved']`). Both the typed `failure()` and the untyped
/// `exception()` count as looking.
#[test]
fn exception_reads_an_err_and_marks_it_retrieved() {
    let (lp, seen) = recording_loop();
    let s = seen.clone();
    lp.run_until_complete(async move {
        let fail = || create_task(async { Err::<(), _>(ValueError("bad")) });
        let t = fail();
        assert!(t.failure().is_none(), "still running");
        sleep(0).await?;
        match t.failure() {
            Some(Ok(Some(TaskFailure::Error(e)))) => assert_eq!(e, &ValueError("bad")),
            other => panic!("failure() gave {other:?}"),
        }
        drop(t);
        let u = fail();
        sleep(0).await?;
        assert_eq!(u.exception(), Some(Ok(Some("ValueError(\"bad\")".to_owned()))));
        drop(u);
        let mut r = fail();
        sleep(0).await?;
        assert!(matches!(r.failure(), Some(Ok(Some(TaskFailure::Error(_))))));
        assert_eq!(
            r.result().unwrap().unwrap(),
            Err(ValueError("bad")),
            "the result stays in place"
        );
        assert!(matches!(r.failure(), Some(Err(aio_core::TaskError::Retrieved))));
        let ok = create_task(async { Ok::<u8, ValueError>(1) });
        let panicked = create_task(async {
            yield_now().await?;
            if true {
                panic!("boom");
            }
            Ok::<(), Cancelled>(())
        });
        let cancelled = create_task(async { sleep(10).await });
        sleep(0).await?;
        cancelled.cancel_with("stop");
        sleep(0).await?;
        assert!(matches!(ok.failure(), Some(Ok(None))));
        match panicked.failure() {
            Some(Ok(Some(TaskFailure::Panic(p)))) => assert_eq!(p.message(), Some("boom")),
            other => panic!("failure() gave {other:?}"),
        }
        match cancelled.failure() {
            Some(Err(aio_core::TaskError::Cancelled(c))) => assert_eq!(c.message(), Some("stop")),
            other => panic!("failure() gave {other:?}"),
        }
        drop((ok, panicked, cancelled));
        assert!(s.borrow().is_empty(), "{:?}", s.borrow());
        drop(fail()); // a failure nobody looked at
        sleep(0.001).await?;
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "Task exception was never retrieved");
    assert_eq!(seen[0].3.as_deref(), Some("ValueError(\"bad\")"));
    lp.close();
}

#[test]
fn results_that_were_read_are_not_reported() {
    nothing_reported(async {
        // Awaited.
        let a = create_task(async { Err::<(), _>("a") });
        assert!(a.await.unwrap().is_err());
        // Read by reference (a copy), then dropped.
        let b = create_task(async { Err::<(), _>("b") });
        assert!((&b).await.unwrap().is_err());
        drop(b);
        // Read with cloned_result.
        let c = create_task(async { Err::<(), _>("c") });
        sleep(0).await?;
        assert!(c.cloned_result().unwrap().unwrap().is_err());
        drop(c);
        // Taken with result().
        let mut d = create_task(async { Err::<(), _>("d") });
        sleep(0).await?;
        assert!(d.result().unwrap().unwrap().is_err());
        drop(d);
        // Ok outputs and values that are not results never are.
        drop(create_task(async { Ok::<_, &str>(1) }));
        drop(create_task(async { 5u8 }));
        sleep(0.001).await?;
        Ok(())
    });
}

#[test]
fn a_cancelled_task_is_not_a_failure_to_report() {
    nothing_reported(async {
        let t = create_task(async {
            sleep(10).await?; // the cancellation propagates out
            Ok::<_, Cancelled>(())
        });
        sleep(0).await?;
        t.cancel();
        drop(t);
        sleep(0.001).await?;
        Ok(())
    });
}

#[test]
fn a_detached_panic_is_still_reported_and_a_body_that_never_returns_compiles() {
    let (lp, seen) = recording_loop();
    lp.run_until_complete(async {
        // The output is `!` (edition 2024 keeps it): `TaskOutput` covers it.
        drop(create_task(async { panic!("kaboom") }));
        let forever = create_task(async {
            loop {
                if sleep(1).await.is_err() {
                    std::process::abort(); // never reached: aborted below
                }
            }
        });
        sleep(0.001).await?;
        forever.abort();
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].2.as_deref(), Some("kaboom"));
    assert_eq!(seen[0].3, None);
    lp.close();
}

#[test]
fn outputs_of_your_own_type_say_they_never_fail() {
    #[derive(Debug, PartialEq)]
    struct Stats {
        hits: u32,
    }
    impl TaskOutput for Stats {}

    struct Odd(u32);
    impl TaskOutput for Odd {
        fn is_failure(&self) -> bool {
            self.0 % 2 == 1
        }
        fn describe_failure(&self) -> Option<String> {
            Some(format!("odd: {}", self.0))
        }
    }

    let (lp, seen) = recording_loop();
    lp.run_until_complete(async {
        assert_eq!(
            create_task(async { Stats { hits: 2 } }).await.unwrap(),
            Stats { hits: 2 }
        );
        drop(create_task(async { Odd(3) }));
        drop(create_task(async { Odd(4) }));
        sleep(0.001).await
    })
    .unwrap()
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].3.as_deref(), Some("odd: 3"));
    lp.close();
}

#[test]
fn run_until_complete_takes_any_output() {
    struct NotAnOutput;
    let lp = Loop::new();
    assert!(lp.run_until_complete(async { NotAnOutput }).is_ok());
    lp.close();
}

// --- debug mode's log records ---------------------------------------------

static RECORDS: Mutex<Vec<(std::thread::ThreadId, log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        RECORDS
            .lock()
            .unwrap()
            .push((std::thread::current().id(), r.level(), r.args().to_string()));
    }
    fn flush(&self) {}
}

/// This thread's records.
fn records() -> Vec<(log::Level, String)> {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
    let me = std::thread::current().id();
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == me)
        .map(|r| (r.1, r.2.clone()))
        .collect()
}

#[test]
fn debug_mode_logs_task_creation_cancellation_and_slow_steps() {
    records(); // the logger is installed before the loop runs
    let lp = Builder::new()
        .debug(true)
        .slow_callback_duration(Duration::from_millis(5))
        .build();
    lp.run_until_complete(async {
        let t = create_task(async {
            std::thread::sleep(Duration::from_millis(20)); // blocks the loop
            sleep(10).await
        });
        t.set_name("slowpoke");
        sleep(0.001).await?;
        t.cancel_with("enough");
        let _ = t.await;
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    lp.close();
    let recs = records();
    let has = |level: log::Level, what: &str| recs.iter().any(|(l, m)| *l == level && m.contains(what));
    assert!(has(log::Level::Debug, "created Task-"), "{recs:?}");
    assert!(has(log::Level::Debug, "cancelling slowpoke (enough)"), "{recs:?}");
    assert!(
        has(log::Level::Warn, "task \"slowpoke\" held the loop"),
        "the slow step is a warning: {recs:?}"
    );
}

#[test]
fn without_debug_mode_nothing_is_logged() {
    records();
    let lp = Builder::new().debug(false).build();
    lp.run_until_complete(async {
        let t = create_task(sleep(10));
        yield_now().await?;
        t.cancel();
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    lp.close();
    assert!(records().is_empty(), "{:?}", records());
}
