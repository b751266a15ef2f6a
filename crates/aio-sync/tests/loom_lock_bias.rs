//! loom models of `Lock`'s bias: a lock released with nobody waiting is
//! biased to the releasing thread, whose acquires and releases are then
//! plain loads and stores; another thread that uses it revokes the bias.
//! Under loom both of the protocol's fences are full fences (the
//! symmetric form of the guarantee `membarrier` gives the real one), so
//! the models check the protocol itself: whatever the interleaving, two
//! tasks never hold the lock at once, no acquire or release is lost to a
//! revocation racing it, and nobody is left waiting.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p aio-sync --test loom_lock_bias --release`.
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use aio_sync::Lock;

/// Takes the lock (waiting), checks nobody else is inside, leaves.
fn critical_section(lock: &Lock, inside: &AtomicUsize) {
    let g = block_on(lock.acquire()).unwrap();
    assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0, "two holders");
    inside.fetch_sub(1, Ordering::Relaxed);
    drop(g);
}

/// The owner of the bias takes and releases the lock while another thread
/// takes it once (revoking the bias at some point of the owner's
/// sequence): never both inside, both done, the lock free at the end.
#[test]
fn a_revocation_racing_the_owner_keeps_mutual_exclusion() {
    loom::model(|| {
        let lock = Arc::new(Lock::new());
        let inside = Arc::new(AtomicUsize::new(0));
        // Released with nobody waiting: biased to this thread.
        drop(lock.try_acquire().unwrap());
        let other = {
            let (lock, inside) = (lock.clone(), inside.clone());
            thread::spawn(move || critical_section(&lock, &inside))
        };
        critical_section(&lock, &inside);
        other.join().unwrap();
        assert!(!lock.locked());
        drop(lock.try_acquire().expect("the lock is free at the end"));
    });
}

/// The owner holds the lock (biased) while another thread waits for it:
/// the waiter revokes the bias, stays queued, and gets the lock when the
/// owner's guard drops.
#[test]
fn a_waiter_on_another_thread_gets_the_lock_the_owner_held() {
    loom::model(|| {
        let lock = Arc::new(Lock::new());
        drop(lock.try_acquire().unwrap());
        let held = lock.try_acquire().expect("biased and free");
        let other = {
            let lock = lock.clone();
            thread::spawn(move || {
                let g = block_on(lock.acquire()).unwrap();
                assert!(lock.locked());
                drop(g);
            })
        };
        drop(held);
        other.join().unwrap();
        assert!(!lock.locked());
    });
}

/// A release that would bias the lock races a waiter queueing on another
/// thread: either the releaser sees the waiter (and hands it the lock) or
/// the waiter sees the bias (and revokes it): the waiter always gets the
/// lock.
#[test]
fn a_bias_granted_as_a_waiter_queues_reaches_the_waiter() {
    loom::model(|| {
        let lock = Arc::new(Lock::new());
        let held = lock.try_acquire().unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let other = {
            let (lock, inside) = (lock.clone(), inside.clone());
            thread::spawn(move || critical_section(&lock, &inside))
        };
        drop(held);
        other.join().unwrap();
        assert!(!lock.locked());
        drop(lock.try_acquire().expect("the lock is free at the end"));
    });
}
