//! CPython's own tests of `asyncio.TaskGroup` (`Lib/test/test_asyncio/
//! test_taskgroups.py`, from EdgeDB), ported: the same children, sleeps,
//! cancellations and expected outcomes. `ExceptionGroup` is
//! `TaskGroupError::Failed`, whose error types are compared as sets, as
//! CPython's `get_error_types` does; a nested group's error is one
//! `Exc::Group`. On a paused clock, so the sleeps order events exactly and
//! cost no time.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::future::Future;
use std::rc::Rc;

use aio_core::{Builder, Cancelled, Failure, TaskGroup, TaskGroupError, create_task, sleep};

/// The exceptions of CPython's tests (`MyExc` keeps its name there).
#[derive(Debug)]
#[allow(clippy::enum_variant_names)]
enum Exc {
    ZeroDivision,
    MyExc,
    Value,
    Group(Vec<Failure<Exc>>),
    /// Keeps the delivery, so `?` propagates the cancellation.
    Cancelled(#[allow(dead_code)] Cancelled),
}

impl From<Cancelled> for Exc {
    fn from(c: Cancelled) -> Exc {
        Exc::Cancelled(c)
    }
}

/// A nested group's outcome, raised in its parent: its cancellation
/// propagates as such, its failures as one group error.
impl From<TaskGroupError<Exc>> for Exc {
    fn from(e: TaskGroupError<Exc>) -> Exc {
        match e {
            TaskGroupError::Cancelled(c) => Exc::Cancelled(c),
            TaskGroupError::Failed(v) => Exc::Group(v),
        }
    }
}

/// CPython's `get_error_types`.
fn types(v: &[Failure<Exc>]) -> BTreeSet<&'static str> {
    v.iter()
        .map(|f| match f {
            Failure::Error(Exc::ZeroDivision) => "ZeroDivisionError",
            Failure::Error(Exc::MyExc) => "MyExc",
            Failure::Error(Exc::Value) => "ValueError",
            Failure::Error(Exc::Group(_)) => "ExceptionGroup",
            Failure::Error(Exc::Cancelled(_)) => "CancelledError",
            Failure::Panic(_) => "panic",
        })
        .collect()
}

fn failed(r: Result<(), TaskGroupError<Exc>>) -> Vec<Failure<Exc>> {
    match r {
        Err(TaskGroupError::Failed(v)) => v,
        other => panic!("expected an ExceptionGroup, got {other:?}"),
    }
}

fn paused<T>(f: impl Future<Output = T> + 'static) -> T {
    let lp = Builder::new().paused_clock().build();
    let out = lp.run_until_complete(f).expect("the test's main task");
    lp.close();
    out
}

type Group = Result<(), TaskGroupError<Exc>>;

#[test]
fn test_taskgroup_01_and_03() {
    paused(async {
        let (r1, r2) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (a, b) = (r1.clone(), r2.clone());
        let r: Group = TaskGroup::run(|g| async move {
            let t1 = g.create_task(async move {
                sleep(1).await?;
                a.set(42);
                Ok(())
            });
            sleep(0.15).await?;
            // Cancel t1 explicitly: everything goes on working.
            t1.cancel();
            g.create_task(async move {
                sleep(0.2).await?;
                b.set(11);
                Ok(())
            });
            Ok(())
        })
        .await;
        r.unwrap();
        assert_eq!((r1.get(), r2.get()), (0, 11));
    });
}

#[test]
fn test_taskgroup_04() {
    paused(async {
        let (num, t2_cancel) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(false)));
        let (n, c) = (num.clone(), t2_cancel.clone());
        let runner = create_task(async move {
            let n1 = n.clone();
            let r: Group = TaskGroup::run(|g| async move {
                let n = n1;
                g.create_task(async {
                    sleep(0.1).await?;
                    Err::<(), _>(Exc::ZeroDivision)
                });
                let n2 = n.clone();
                g.create_task(async move {
                    if let Err(e) = sleep(1).await {
                        c.set(true);
                        return Err(e.into());
                    }
                    n2.set(n2.get() + 1);
                    Ok(())
                });
                Ok(())
            })
            .await;
            if r.is_ok() {
                n.set(n.get() + 10);
            }
            r
        });
        let errs = failed(runner.await.unwrap());
        assert_eq!(types(&errs), ["ZeroDivisionError"].into());
        assert_eq!(num.get(), 0);
        assert!(t2_cancel.get());
    });
}

#[test]
fn test_cancel_children_on_child_error() {
    paused(async {
        let (t2_cancel, runner_cancel) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let (c2, rc) = (t2_cancel.clone(), runner_cancel.clone());
        let r: Group = TaskGroup::run(|g| async move {
            for _ in 0..3 {
                g.create_task(async {
                    sleep(0.1).await?;
                    Err::<(), _>(Exc::ZeroDivision)
                });
            }
            g.create_task(async move {
                if let Err(e) = sleep(5).await {
                    c2.set(true);
                    return Err(e.into());
                }
                Ok(())
            });
            if let Err(e) = sleep(10).await {
                rc.set(true);
                return Err(e.into());
            }
            Ok(())
        })
        .await;
        assert_eq!(types(&failed(r)), ["ZeroDivisionError"].into());
        assert!(t2_cancel.get());
        assert!(runner_cancel.get());
    });
}

/// `test_cancellation` (NUM 5) and `test_taskgroup_07` (NUM 15): a group
/// whose task is cancelled cancels its children and ends cancelled.
#[test]
fn test_cancellation_and_taskgroup_07() {
    for body_counts in [false, true] {
        paused(async move {
            let num = Rc::new(Cell::new(0));
            let n = num.clone();
            let r = create_task(async move {
                let r: Group = TaskGroup::run(|g| async move {
                    for _ in 0..5 {
                        let n = n.clone();
                        g.create_task(async move {
                            sleep(5).await.inspect_err(|_| n.set(n.get() + 1))?;
                            Ok(())
                        });
                    }
                    if body_counts {
                        sleep(10).await.inspect_err(|_| n.set(n.get() + 10))?;
                    }
                    Ok(())
                })
                .await;
                r
            });
            sleep(0.1).await.unwrap();
            assert!(!r.done());
            r.cancel();
            match r.await {
                Err(e) => assert!(e.is_cancelled(), "{e:?}"),
                Ok(out) => panic!("the runner was not cancelled: {out:?}"),
            }
            assert_eq!(num.get(), if body_counts { 15 } else { 5 });
        });
    }
}

/// Children that fail while handling the group's cancellation turn the
/// cancellation into an ExceptionGroup (`test_taskgroup_08`).
#[test]
fn test_taskgroup_08() {
    paused(async {
        let r = create_task(async {
            TaskGroup::run(|g| async move {
                for _ in 0..5 {
                    g.create_task(async {
                        let _ = sleep(10).await;
                        Err::<(), _>(Exc::ZeroDivision) // finally: 1 / 0
                    });
                }
                sleep(10).await?;
                Ok(())
            })
            .await
        });
        sleep(0.1).await.unwrap();
        assert!(!r.done());
        r.cancel();
        let errs = failed(r.await.expect("an ExceptionGroup, not a cancellation"));
        assert_eq!(types(&errs), ["ZeroDivisionError"].into());
    });
}

/// The body fails (after a sleep, `_09`, or at once, `_10`): the children
/// are cancelled.
#[test]
fn test_taskgroup_09_and_10() {
    for wait_first in [true, false] {
        paused(async move {
            let (c1, c2) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
            let (a, b) = (c1.clone(), c2.clone());
            let r: Group = TaskGroup::run(|g| async move {
                g.create_task(async move {
                    sleep(1).await.inspect_err(|_| a.set(true))?;
                    Ok(())
                });
                g.create_task(async move {
                    sleep(2).await.inspect_err(|_| b.set(true))?;
                    Ok(())
                });
                if wait_first {
                    sleep(0.1).await?;
                }
                Err(Exc::ZeroDivision)
            })
            .await;
            assert_eq!(types(&failed(r)), ["ZeroDivisionError"].into());
            assert!(c1.get() && c2.get(), "both children cancelled");
        });
    }
}

/// Nested groups cancelled from outside; the inner children fail as they
/// clean up (`_11`: the outer group has no children of its own; `_12`:
/// it has one).
#[test]
fn test_taskgroup_11_and_12() {
    for outer_child in [false, true] {
        paused(async move {
            let r = create_task(async move {
                TaskGroup::run(|g1| async move {
                    if outer_child {
                        g1.create_task(async {
                            sleep(10).await?;
                            Ok(())
                        });
                    }
                    TaskGroup::run(|g2| async move {
                        for _ in 0..5 {
                            g2.create_task(async {
                                let _ = sleep(10).await;
                                Err::<(), _>(Exc::ZeroDivision)
                            });
                        }
                        sleep(10).await?;
                        Ok(())
                    })
                    .await?;
                    Ok(())
                })
                .await
            });
            sleep(0.1).await.unwrap();
            assert!(!r.done());
            r.cancel();
            let errs = failed(r.await.expect("an ExceptionGroup"));
            assert_eq!(types(&errs), ["ExceptionGroup"].into());
            let Failure::Error(Exc::Group(inner)) = &errs[0] else {
                unreachable!()
            };
            assert_eq!(types(inner), ["ZeroDivisionError"].into());
        });
    }
}

async fn crash_after(t: f64) -> Result<(), Exc> {
    sleep(t).await?;
    Err(Exc::Value)
}

/// The outer group's child fails first: the inner group is cancelled and
/// the error is the outer child's alone (`_13`). The inner group's child
/// fails first: its group error is the outer group's body error (`_14`).
#[test]
fn test_taskgroup_13_and_14() {
    paused(async {
        let r: Group = TaskGroup::run(|g1| async move {
            g1.create_task(crash_after(0.1));
            TaskGroup::run(|g2| async move {
                g2.create_task(crash_after(10.0));
                Ok(())
            })
            .await?;
            Ok(())
        })
        .await;
        assert_eq!(types(&failed(r)), ["ValueError"].into());

        let r: Group = TaskGroup::run(|g1| async move {
            g1.create_task(crash_after(10.0));
            TaskGroup::run(|g2| async move {
                g2.create_task(crash_after(0.1));
                Ok(())
            })
            .await?;
            Ok(())
        })
        .await;
        let errs = failed(r);
        assert_eq!(types(&errs), ["ExceptionGroup"].into());
        let Failure::Error(Exc::Group(inner)) = &errs[0] else {
            unreachable!()
        };
        assert_eq!(types(inner), ["ValueError"].into());
    });
}

/// The group's task is cancelled; the body handles that slowly, and a
/// child fails meanwhile: an ExceptionGroup, not a cancellation (`_15`;
/// `_16` runs it in a nested task).
#[test]
fn test_taskgroup_15_and_16() {
    for nested in [false, true] {
        paused(async move {
            let group = || async {
                TaskGroup::run(|g1| async move {
                    g1.create_task(async {
                        sleep(0.3).await?;
                        Err::<(), _>(Exc::ZeroDivision)
                    });
                    if let Err(c) = sleep(10).await {
                        sleep(0.5).await?;
                        return Err(c.into());
                    }
                    Ok(())
                })
                .await
            };
            let r = if nested {
                // runner(): t = create_task(nested_runner()); await t
                create_task(async move {
                    match create_task(group()).await {
                        Ok(out) => out,
                        Err(e) => panic!("the nested task ended {e:?}"),
                    }
                })
            } else {
                create_task(group())
            };
            sleep(0.1).await.unwrap();
            assert!(!r.done());
            r.cancel();
            let errs = failed(r.await.expect("an ExceptionGroup"));
            assert_eq!(types(&errs), ["ZeroDivisionError"].into());
        });
    }
}

/// The body handles the cancellation and re-raises it (`_17`: the group
/// ends cancelled), or raises another error instead (`_18`: an
/// ExceptionGroup of it).
#[test]
fn test_taskgroup_17_and_18() {
    for raise_other in [false, true] {
        paused(async move {
            let num = Rc::new(Cell::new(0));
            let n = num.clone();
            let r = create_task(async move {
                TaskGroup::run(|_g| async move {
                    if let Err(c) = sleep(10).await {
                        n.set(n.get() + 10);
                        return Err(if raise_other { Exc::MyExc } else { c.into() });
                    }
                    Ok(())
                })
                .await
            });
            sleep(0.1).await.unwrap();
            assert!(!r.done());
            r.cancel();
            let out = r.await;
            if raise_other {
                let errs = failed(out.expect("an ExceptionGroup"));
                assert_eq!(types(&errs), ["MyExc"].into());
            } else {
                assert!(out.is_err_and(|e| e.is_cancelled()), "cancelled");
            }
            assert_eq!(num.get(), 10);
        });
    }
}

/// A child fails; the body, cancelled, raises another error in its clean-up:
/// both are in the group (`_19`).
#[test]
fn test_taskgroup_19() {
    paused(async {
        let r: Group = TaskGroup::run(|g| async move {
            g.create_task(async {
                sleep(0.1).await?;
                Err::<(), _>(Exc::ZeroDivision)
            });
            // nested(): try: sleep(10) finally: raise MyExc
            let _ = sleep(10).await;
            Err(Exc::MyExc)
        })
        .await;
        assert_eq!(types(&failed(r)), ["MyExc", "ZeroDivisionError"].into());
    });
}
