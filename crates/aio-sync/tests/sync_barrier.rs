//! Barrier: arrival indexes, rounds, abort, reset and cancellation.

use std::num::NonZeroUsize;
use std::sync::Arc;

use aio_core::{create_task, run};
use aio_sync::{Barrier, BarrierError, ZeroPartiesError};
use aio_test::{assert_cancelled, settle, spawn_on};

fn spawn_waiters(b: &Arc<Barrier>, n: usize) -> Vec<aio_core::Task<Result<usize, BarrierError>>> {
    (0..n).map(|_| spawn_on(b, |b| async move { b.wait().await })).collect()
}

#[test]
fn everyone_passes_with_distinct_indexes_round_after_round() {
    run(async {
        let b = Arc::new(Barrier::new(3).unwrap());
        assert_eq!(b.parties(), 3);
        for _ in 0..3 {
            let tasks = spawn_waiters(&b, 2);
            settle(2).await;
            assert_eq!(b.n_waiting(), 2);
            let mine = b.wait().await.unwrap();
            assert_eq!(mine, 2);
            let mut idx = Vec::new();
            for t in tasks {
                idx.push(t.await.unwrap().unwrap());
            }
            assert_eq!(idx, [0, 1]);
            assert_eq!(b.n_waiting(), 0);
        }
        assert!(!b.broken());
    });
}

#[test]
fn a_single_party_never_waits() {
    run(async {
        let b = Barrier::new(1).unwrap();
        assert_eq!(b.wait().await, Ok(0));
        assert_eq!(b.wait().await, Ok(0));
    });
}

#[test]
fn abort_breaks_it_for_every_waiter_until_reset() {
    run(async {
        let b = Arc::new(Barrier::new(3).unwrap());
        let tasks = spawn_waiters(&b, 2);
        settle(2).await;
        b.abort();
        assert!(b.broken());
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err(BarrierError::Broken));
        }
        assert_eq!(b.wait().await, Err(BarrierError::Broken));
        assert_eq!(b.n_waiting(), 0);
        b.reset();
        assert!(!b.broken());
        let tasks = spawn_waiters(&b, 2);
        settle(2).await;
        assert_eq!(b.wait().await, Ok(2));
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
    });
}

#[test]
fn reset_sends_current_waiters_away_broken() {
    run(async {
        let b = Arc::new(Barrier::new(2).unwrap());
        let tasks = spawn_waiters(&b, 1);
        settle(2).await;
        b.reset();
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert!(e.is_broken());
            assert_eq!(e.to_string(), "the barrier is broken");
        }
        assert!(!b.broken());
        let tasks = spawn_waiters(&b, 1);
        settle(2).await;
        assert_eq!(b.wait().await, Ok(1));
        assert_eq!(tasks.into_iter().next().unwrap().await.unwrap(), Ok(0));
    });
}

#[test]
fn cancelled_while_waiting_no_longer_counts() {
    run(async {
        let b = Arc::new(Barrier::new(3).unwrap());
        let mut tasks = spawn_waiters(&b, 2);
        settle(2).await;
        assert_eq!(b.n_waiting(), 2);
        tasks[0].cancel();
        let t0 = tasks.remove(0);
        assert_cancelled(t0).await;
        assert_eq!(b.n_waiting(), 1);
        // It takes two more arrivals now.
        let more = spawn_waiters(&b, 1);
        settle(2).await;
        assert_eq!(b.n_waiting(), 2);
        b.wait().await.unwrap();
        for t in tasks.into_iter().chain(more) {
            t.await.unwrap().unwrap();
        }
    });
}

#[test]
fn cancelled_after_release_before_it_ran() {
    run(async {
        let b = Arc::new(Barrier::new(3).unwrap());
        let mut tasks = spawn_waiters(&b, 2);
        settle(2).await;
        assert_eq!(b.wait().await, Ok(2)); // releases both, which have not run
        tasks[0].cancel();
        let t0 = tasks.remove(0);
        assert_cancelled(t0).await;
        assert_eq!(tasks.remove(0).await.unwrap(), Ok(1));
        assert_eq!(b.n_waiting(), 0);
        assert!(!b.broken());
    });
}

#[test]
fn zero_parties_is_an_error_not_a_panic() {
    // asyncio: Barrier(0) raises ValueError('parties must be > 0').
    let e = Barrier::new(0).unwrap_err();
    assert_eq!(e, ZeroPartiesError);
    assert_eq!(e.to_string(), "parties must be > 0");
    let b = Barrier::new(1).unwrap();
    assert_eq!(b.parties(), 1);
}

#[test]
fn barrier_in_a_static() {
    static START: Barrier = Barrier::with_parties(NonZeroUsize::new(2).expect("nonzero"));
    let mut idx = run(async {
        let t = create_task(async { START.wait().await });
        let mine = START.wait().await.unwrap();
        vec![mine, t.await.unwrap().unwrap()]
    });
    idx.sort();
    assert_eq!(idx, [0, 1]);
    assert_eq!(START.parties(), 2);
}
