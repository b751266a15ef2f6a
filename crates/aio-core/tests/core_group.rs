//! TaskGroup and gather: failure and cancellation propagation, panics,
//! borrowing children, result order.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use aio_core::{Cancelled, Failure, TaskGroup, TaskGroupError, create_task, gather, run, sleep, yield_now};

#[derive(Debug, PartialEq)]
enum E {
    Boom(&'static str),
    /// Keeps the `Cancelled`: `?` on an await point then propagates the
    /// cancellation (a conversion that dropped it would handle it).
    Cancelled(Cancelled),
    /// An error a child raises while handling its cancellation.
    CleanupFailed,
}

impl From<Cancelled> for E {
    fn from(c: Cancelled) -> E {
        E::Cancelled(c)
    }
}

#[test]
fn children_run_concurrently_and_the_group_waits_for_all() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    run(async move {
        let log = &l;
        let n = TaskGroup::run(|tg| async move {
            for (name, d) in [("a", 0.02), ("b", 0.01), ("c", 0.015)] {
                tg.create_task(async move {
                    sleep(d).await?;
                    log.borrow_mut().push(name);
                    Ok::<_, Cancelled>(())
                });
            }
            Ok(3)
        })
        .await;
        assert_eq!(n.unwrap(), 3);
    });
    assert_eq!(*log.borrow(), ["b", "c", "a"]);
}

#[test]
fn a_failing_child_cancels_siblings_and_body_and_all_errors_come_back() {
    let cleaned = Rc::new(Cell::new(0));
    let c = cleaned.clone();
    let r = run(async move {
        TaskGroup::run(|tg| async move {
            for _ in 0..3 {
                let c = c.clone();
                tg.create_task(async move {
                    if sleep(10).await.is_err() {
                        sleep(0.001).await.unwrap(); // clean-up awaits
                        c.set(c.get() + 1);
                        return Err(E::CleanupFailed);
                    }
                    Ok(())
                });
            }
            tg.create_task(async {
                sleep(0.01).await?;
                Err::<(), _>(E::Boom("one"))
            });
            tg.create_task(async {
                sleep(0.01).await?;
                Err::<(), _>(E::Boom("two"))
            });
            sleep(10).await?; // the body is cancelled too
            Ok(())
        })
        .await
    });
    match r {
        Err(TaskGroupError::Failed(v)) => {
            let errs: Vec<_> = v
                .into_iter()
                .map(|f| match f {
                    Failure::Error(e) => e,
                    Failure::Panic(p) => panic!("{p}"),
                })
                .collect();
            // Both children whose sleeps ended together fail before the
            // cancellation reaches the second. The three that caught their
            // cancellation and raised another error during clean-up failed
            // with it (asyncio's ExceptionGroup holds such errors too).
            assert_eq!(errs[0], E::Boom("one"));
            assert_eq!(errs.iter().filter(|e| **e == E::CleanupFailed).count(), 3);
            assert!(errs.len() <= 5, "{errs:?}");
            assert!(!errs.iter().any(|e| matches!(e, E::Cancelled(_))), "{errs:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cleaned.get(), 3);
}

/// asyncio's `tg.create_task` raises `RuntimeError` in a group that is
/// shutting down or finished, and the coroutine never runs: here the
/// future is dropped unpolled and its handle says `Cancelled`.
#[test]
fn a_child_created_in_a_group_shutting_down_or_finished_never_runs() {
    let ran = Rc::new(Cell::new(0));
    let (r1, r2) = (ran.clone(), ran.clone());
    run(async move {
        let res = TaskGroup::run(|tg| async move {
            tg.create_task(async { Err::<(), _>(E::Boom("first")) });
            if let Err(c) = sleep(10).await {
                // Handled: the body goes on after the group's cancellation.
                let late = tg.create_task(async move {
                    r1.set(r1.get() + 1);
                    Ok(())
                });
                assert!(late.await.is_err(), "a child of a group shutting down");
                drop(c);
            }
            Ok(())
        })
        .await;
        assert!(matches!(res, Err(TaskGroupError::Failed(ref v)) if v.len() == 1));

        let mut kept = None;
        TaskGroup::<E>::run(|tg| {
            kept = Some(tg.clone());
            async { Ok(()) }
        })
        .await
        .unwrap();
        let done = kept.unwrap().create_task(async move {
            r2.set(r2.get() + 1);
            Ok(())
        });
        assert!(done.await.is_err(), "a child of a finished group");
    });
    assert_eq!(ran.get(), 0, "neither child ran");
}

#[test]
fn cancelling_the_parent_cancels_the_group() {
    let children_cancelled = Rc::new(Cell::new(0));
    let cc = children_cancelled.clone();
    run(async move {
        let t = create_task(async move {
            TaskGroup::run(|tg| async move {
                for _ in 0..2 {
                    let cc = cc.clone();
                    tg.create_task(async move {
                        let r = sleep(10).await;
                        if r.is_err() {
                            cc.set(cc.get() + 1);
                        }
                        r
                    });
                }
                sleep(10).await?;
                Ok(())
            })
            .await
        });
        yield_now().await?;
        yield_now().await?;
        t.cancel();
        let r = t.await;
        assert!(r.unwrap_err().is_cancelled());
        Ok::<_, Cancelled>(())
    })
    .unwrap();
    assert_eq!(children_cancelled.get(), 2);
}

#[test]
fn cancelling_the_parent_after_the_body_finished() {
    run(async {
        let t = create_task(async {
            TaskGroup::run(|tg| async move {
                tg.create_task(async { sleep(10).await });
                Ok(())
            })
            .await
        });
        for _ in 0..3 {
            yield_now().await?;
        }
        t.cancel();
        match t.await {
            Ok(Err(TaskGroupError::Cancelled(_))) | Err(_) => {}
            Ok(other) => panic!("{other:?}"),
        }
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn a_panicking_child_is_reported_and_siblings_cancelled() {
    let r = run(async {
        TaskGroup::run(|tg| async move {
            tg.create_task(async { sleep(10).await });
            tg.create_task(async {
                sleep(0.001).await?;
                panic!("child exploded");
                #[allow(unreachable_code)]
                Ok(())
            });
            Ok(())
        })
        .await
    });
    match r {
        Err(TaskGroupError::Failed(v)) => {
            assert_eq!(v.len(), 1);
            match &v[0] {
                Failure::Panic(p) => assert_eq!(p.message(), Some("child exploded")),
                Failure::Error(e) => panic!("{e:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn group_task_handles_give_results_and_can_cancel() {
    run(async {
        let out = TaskGroup::run(|tg| async move {
            let a = tg.create_task(async {
                sleep(0.001).await?;
                Ok::<_, Cancelled>(10)
            });
            let b = tg.create_task(async { sleep(10).await.map(|_| 0) });
            let va = a.await?;
            assert!(b.cancel());
            let vb = b.await;
            Ok::<_, Cancelled>((va, vb.is_err()))
        })
        .await;
        assert_eq!(out.unwrap(), (10, true));
    });
}

#[test]
fn gather_fails_fast_and_cancels_the_rest() {
    let cancelled = Rc::new(Cell::new(false));
    let c = cancelled.clone();
    let r = run(async move {
        gather([
            Box::pin(async move {
                let r = sleep(10).await;
                c.set(r.is_err());
                r.map_err(E::from)
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), E>>>>,
            Box::pin(async {
                sleep(0.001).await?;
                Err(E::Boom("x"))
            }),
        ])
        .await
    });
    assert_eq!(r, Err(E::Boom("x")));
    assert!(cancelled.get());
}

#[test]
fn gather_macro_mixes_types_and_keeps_argument_order() {
    let r = run(async {
        aio_core::gather!(
            async {
                sleep(0.02).await?;
                Ok::<_, Cancelled>(1u8)
            },
            async {
                sleep(0.01).await?;
                Ok("two")
            },
            async { Ok(3.0f64) },
        )
        .await
    });
    assert_eq!(r, Ok((1, "two", 3.0)));
}

#[test]
fn gather_children_may_borrow() {
    let data = vec![1, 2, 3];
    let sum = run_borrowing(&data);
    assert_eq!(sum, 6);
}

fn run_borrowing(data: &[i32]) -> i32 {
    let lp = aio_core::Loop::new();
    let owned = data.to_vec();
    let r = lp.run_until_complete(async move {
        let d = &owned;
        let v = gather(d.iter().map(|x| async move { Ok::<_, Cancelled>(*x) }))
            .await
            .unwrap();
        v.iter().sum::<i32>()
    });
    lp.close();
    r.unwrap()
}

#[test]
fn a_panic_in_a_gathered_future_propagates_to_the_task() {
    let r = run(async {
        let t = create_task(async {
            aio_core::gather!(async { Ok::<_, Cancelled>(()) }, async {
                panic!("inside gather");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await
        });
        t.await
    });
    assert!(r.unwrap_err().is_panic());
}

/// asyncio's `gather` leaves the other children running after the first
/// error; aio's children live inside the gather, so it cancels them (and
/// a gathered task handle cancels its task) before returning the error,
/// as the README's table says.
#[test]
fn gather_cancels_the_other_children_even_task_handles() {
    run(async {
        let slow = create_task(async { sleep(10).await });
        let awaits_slow = async {
            match (&slow).await {
                Ok(r) => r.map_err(E::from),
                Err(aio_core::TaskError::Cancelled(c)) => Err(E::Cancelled(c)),
                Err(e) => panic!("{e}"),
            }
        };
        let fails = async {
            sleep(0.01).await?;
            Err::<(), _>(E::Boom("first"))
        };
        let r = gather_two(awaits_slow, fails).await;
        assert!(matches!(r, Err(E::Boom("first"))));
        yield_now().await.unwrap();
        assert!(slow.cancelled(), "the gathered task was cancelled");
    });
}

async fn gather_two(
    a: impl std::future::Future<Output = Result<(), E>>,
    b: impl std::future::Future<Output = Result<(), E>>,
) -> Result<((), ()), E> {
    aio_core::gather!(a, b).await
}
