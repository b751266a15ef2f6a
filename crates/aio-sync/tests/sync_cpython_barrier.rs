//! CPython's own tests of `asyncio.Barrier` (`Lib/test/test_asyncio/
//! test_locks.py`, `BarrierTests`), ported: the same tasks, turns and
//! assertions. `async with barrier as i` is `let i = barrier.wait().await`
//! (its exit does nothing), `BrokenBarrierError` is
//! `Err(BarrierError::Broken)`, `reset()` and `abort()` complete at once,
//! and `repr(barrier)`'s state is `Debug`'s. Left out: the repr format,
//! `await barrier` (a type error), and the two tests that read the private
//! `_count` mid-drain.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use aio_core::{Task, TaskOutput, create_task, run, sleep, wait};
use aio_sync::{Barrier, BarrierError};

const N: usize = 5;

/// `self.make_tasks(n, coro)`.
fn make_tasks<F, Fut>(n: usize, coro: F) -> Vec<Task<Fut::Output>>
where
    F: Fn() -> Fut,
    Fut: Future + 'static,
    Fut::Output: TaskOutput,
{
    (0..n).map(|_| create_task(coro())).collect()
}

/// `self.gather_tasks(n, coro)`: the tasks' results, in order.
async fn gather_tasks<F, Fut>(n: usize, coro: F) -> Vec<Fut::Output>
where
    F: Fn() -> Fut,
    Fut: Future + 'static,
    Fut::Output: TaskOutput,
{
    let mut out = Vec::new();
    for t in make_tasks(n, coro) {
        out.push(t.await.expect("a barrier task"));
    }
    out
}

fn barrier(parties: usize) -> Rc<Barrier> {
    Rc::new(Barrier::new(parties).expect("parties > 0"))
}

type Results = Rc<RefCell<Vec<bool>>>;

fn is_draining(b: &Barrier) -> bool {
    format!("{b:?}").contains("Draining")
}

#[test]
fn test_filling_one_task_twice() {
    run(async {
        let barrier = barrier(1);
        let b = barrier.clone();
        let t1 = create_task(async move { b.wait().await });
        sleep(0).await.unwrap();
        assert_eq!(barrier.n_waiting(), 0);
        let b = barrier.clone();
        let t2 = create_task(async move { b.wait().await });
        sleep(0).await.unwrap();
        let result = |t: &Task<Result<usize, BarrierError>>| t.cloned_result().map(|r| r.ok());
        assert_eq!(result(&t1), result(&t2));
        assert_eq!(t1.done(), t2.done());
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    });
}

#[test]
fn test_filling_task_by_task() {
    run(async {
        let barrier = barrier(3);
        let mut tasks = Vec::new();
        for n in 1..=3 {
            let b = barrier.clone();
            tasks.push(create_task(async move { b.wait().await }));
            sleep(0).await.unwrap();
            if n < 3 {
                assert_eq!(barrier.n_waiting(), n);
                assert!(format!("{barrier:?}").contains("Filling"));
            }
        }
        wait(tasks, aio_core::ALL_COMPLETED).await.unwrap();
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    });
}

/// `test_filling_tasks_wait_twice` and
/// `test_filling_tasks_check_return_value`, one program: N tasks pass the
/// barrier twice, marking each pass; the second pass returns the arrival
/// indexes 0..N.
#[test]
fn test_filling_tasks_wait_twice_and_check_return_value() {
    run(async {
        let barrier = barrier(N);
        let (results1, results2): (Results, Results) = Default::default();
        let mut res = gather_tasks(N, || {
            let (b, r1, r2) = (barrier.clone(), results1.clone(), results2.clone());
            async move {
                b.wait().await.unwrap();
                r1.borrow_mut().push(true);
                let i = b.wait().await.unwrap();
                r2.borrow_mut().push(true);
                i
            }
        })
        .await;
        assert_eq!(*results1.borrow(), [true; N]);
        assert_eq!(*results2.borrow(), [true; N]);
        res.sort();
        assert_eq!(res, (0..N).collect::<Vec<_>>());
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    });
}

#[test]
fn test_draining_state() {
    run(async {
        let barrier = barrier(N);
        let results: Results = Rc::default();
        gather_tasks(N, || {
            let (b, r) = (barrier.clone(), results.clone());
            async move {
                b.wait().await.unwrap();
                // The state changes to filling as the last task leaves.
                r.borrow_mut().push(is_draining(&b));
            }
        })
        .await;
        let results = results.borrow();
        assert_eq!(results.len(), N);
        assert!(!results[N - 1]);
        assert!(results[..N - 1].iter().all(|&x| x));
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    });
}

#[test]
fn test_blocking_tasks_while_draining() {
    run(async {
        let rewait = 2;
        let barrier = barrier(N);
        let barrier_nowaiting = self::barrier(N - rewait);
        let rewait_n = Rc::new(Cell::new(rewait));
        // A success means that barrier_nowaiting was waited for exactly
        // N - rewait = 3 times.
        gather_tasks(N, || {
            let (b, nowaiting, rewait_n) = (barrier.clone(), barrier_nowaiting.clone(), rewait_n.clone());
            async move {
                // First time waiting.
                b.wait().await.unwrap();
                // After waiting once for all tasks.
                if rewait_n.get() > 0 {
                    rewait_n.set(rewait_n.get() - 1);
                    // Wait again only for the rewait tasks.
                    b.wait().await.unwrap();
                } else {
                    // Wait for the end of the draining state.
                    nowaiting.wait().await.unwrap();
                    // Wait for the other waiting tasks.
                    b.wait().await.unwrap();
                }
            }
        })
        .await;
    });
}

#[test]
fn test_filling_tasks_cancel_one() {
    run(async {
        let barrier = barrier(3);
        let results: Results = Rc::default();
        let coro = || {
            let (b, r) = (barrier.clone(), results.clone());
            async move {
                b.wait().await?;
                r.borrow_mut().push(true);
                Ok::<(), BarrierError>(())
            }
        };
        let t1 = create_task(coro());
        sleep(0).await.unwrap();
        assert_eq!(barrier.n_waiting(), 1);
        let t2 = create_task(coro());
        sleep(0).await.unwrap();
        assert_eq!(barrier.n_waiting(), 2);
        t1.cancel();
        sleep(0).await.unwrap();
        assert_eq!(barrier.n_waiting(), 1);
        let probe = t1.to_ref();
        assert!(t1.await.is_err());
        assert!(probe.cancelled());
        let t3 = create_task(coro());
        sleep(0).await.unwrap();
        assert_eq!(barrier.n_waiting(), 2);
        let t4 = create_task(coro());
        for t in [t2, t3, t4] {
            t.await.unwrap().unwrap();
        }
        assert_eq!(results.borrow().len(), 3);
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.broken());
    });
}

#[test]
fn test_reset_barrier_while_tasks_waiting() {
    run(async {
        let barrier = barrier(N);
        let results: Results = Rc::default();
        // N-1 tasks waiting on a barrier of N parties.
        let tasks = make_tasks(N - 1, || {
            let (b, r) = (barrier.clone(), results.clone());
            async move {
                if let Err(BarrierError::Broken) = b.wait().await {
                    r.borrow_mut().push(true);
                }
            }
        });
        sleep(0).await.unwrap();
        // Reset the barrier.
        let b = barrier.clone();
        create_task(async move { b.reset() });
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*results.borrow(), [true; N - 1]);
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!format!("{barrier:?}").contains("Resetting"));
        assert!(!barrier.broken());
    });
}

#[test]
fn test_reset_barrier_while_tasks_waiting_and_waiting_again() {
    run(async {
        let barrier = barrier(N);
        let (results1, results2): (Results, Results) = Default::default();
        let tasks = make_tasks(N - 1, || {
            let (b, r1, r2) = (barrier.clone(), results1.clone(), results2.clone());
            async move {
                if let Err(BarrierError::Broken) = b.wait().await {
                    r1.borrow_mut().push(true);
                }
                // `finally:`
                b.wait().await.unwrap();
                r2.borrow_mut().push(true);
            }
        });
        // Reset the barrier: the N-1 waiting tasks raise BrokenBarrierError.
        let b = barrier.clone();
        create_task(async move { b.reset() });
        sleep(0).await.unwrap();
        // Complete the waiting tasks in their `finally`.
        let (b, r2) = (barrier.clone(), results2.clone());
        create_task(async move {
            b.wait().await.unwrap();
            r2.borrow_mut().push(true);
        });
        for t in tasks {
            t.await.unwrap();
        }
        assert!(!barrier.broken());
        assert_eq!(*results1.borrow(), [true; N - 1]);
        assert_eq!(results2.borrow().len(), N);
        assert_eq!(barrier.n_waiting(), 0);
    });
}

#[test]
fn test_reset_barrier_while_tasks_draining() {
    run(async {
        let barrier = barrier(N);
        let (results1, results2, results3): (Results, Results, Results) = Default::default();
        let count = Rc::new(Cell::new(0));
        gather_tasks(N, || {
            let (b, count) = (barrier.clone(), count.clone());
            let (r1, r2, r3) = (results1.clone(), results2.clone(), results3.clone());
            async move {
                b.wait().await.unwrap();
                count.set(count.get() + 1);
                if count.get() == N {
                    // The last task out of the barrier.
                    b.reset();
                    // Wait here to reach the parties.
                    b.wait().await.unwrap();
                } else {
                    // Second waiting: N-1 tasks here.
                    match b.wait().await {
                        Ok(_) => r1.borrow_mut().push(true),
                        // Never here.
                        Err(_) => r2.borrow_mut().push(true),
                    }
                }
                // Now pass the barrier again: the last wait must complete.
                b.wait().await.unwrap();
                r3.borrow_mut().push(true);
            }
        })
        .await;
        assert!(!barrier.broken());
        assert_eq!(*results1.borrow(), [true; N - 1]);
        assert!(results2.borrow().is_empty());
        assert_eq!(*results3.borrow(), [true; N]);
        assert_eq!(barrier.n_waiting(), 0);
    });
}

/// The `try` of the two abort tests: wait twice, the task that arrived
/// halfway raising `RuntimeError` (and aborting) after its first wait;
/// a second wait that ends broken is counted in `broken`, one that passes
/// in `passed`.
async fn wait_twice_or_abort(b: &Barrier, passed: &Results, broken: &Results) {
    let body = async {
        let i = b.wait().await?;
        if i == N / 2 {
            return Err(None); // RuntimeError
        }
        b.wait().await?;
        passed.borrow_mut().push(true);
        Ok(())
    };
    match body.await {
        Ok(()) => {}
        Err(Some(BarrierError::Broken)) => broken.borrow_mut().push(true),
        Err(None) => b.abort(),
        Err(Some(e)) => panic!("{e}"),
    }
}

#[test]
fn test_abort_barrier_when_exception() {
    // From threading.Barrier's tests: see `lock_tests.test_reset`.
    run(async {
        let barrier = barrier(N);
        let (results1, results2): (Results, Results) = Default::default();
        gather_tasks(N, || {
            let (b, r1, r2) = (barrier.clone(), results1.clone(), results2.clone());
            async move {
                wait_twice_or_abort(&b, &r1, &r2).await;
            }
        })
        .await;
        assert!(barrier.broken());
        assert!(results1.borrow().is_empty());
        assert_eq!(*results2.borrow(), [true; N - 1]);
        assert_eq!(barrier.n_waiting(), 0);
    });
}

#[test]
fn test_abort_barrier_when_exception_then_resetting() {
    // From threading.Barrier's tests: see `lock_tests.test_abort_and_reset`.
    run(async {
        let (barrier1, barrier2) = (barrier(N), barrier(N));
        let (results1, results2, results3): (Results, Results, Results) = Default::default();
        gather_tasks(N, || {
            let (b1, b2) = (barrier1.clone(), barrier2.clone());
            let (r1, r2, r3) = (results1.clone(), results2.clone(), results3.clone());
            async move {
                wait_twice_or_abort(&b1, &r1, &r2).await;
                // Synchronize and reset the barrier. Must synchronize first
                // so that everyone has left it when we reset, and after so
                // that no one enters it before the reset.
                let i = b2.wait().await.unwrap();
                if i == N / 2 {
                    b1.reset();
                }
                b2.wait().await.unwrap();
                b1.wait().await.unwrap();
                r3.borrow_mut().push(true);
            }
        })
        .await;
        assert!(!barrier1.broken());
        assert!(results1.borrow().is_empty());
        assert_eq!(*results2.borrow(), [true; N - 1]);
        assert_eq!(*results3.borrow(), [true; N]);
        assert_eq!(barrier1.n_waiting(), 0);
    });
}
