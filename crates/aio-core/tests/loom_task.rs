//! loom model of a task's state word and waker across threads: wakers
//! cloned, woken and dropped on other threads (reference count, `SCHEDULED`
//! and the injection queue), the loop taking queue entries of both kinds
//! (its own `QUEUED` ones and injected ones), stepping and completing the
//! task (`dequeue_local`, `dequeue_remote`, `set_complete`), and the loop
//! closing with entries still queued. Checked: a wake is never lost (the loop would
//! park forever: a deadlock for loom), a completed task is never run, the
//! future is dropped once and on the loop thread, and every reference is
//! released, whichever thread drops the last one.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p aio-core --test loom_task --release`.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::mpsc;
use loom::thread::{self, ThreadId};

use aio_core::loom::model::LoopModel;

/// What the task's future reports.
#[derive(Default)]
struct Probe {
    /// The condition the future waits for, set by another thread.
    set: AtomicBool,
    drops: AtomicUsize,
    dropped_off_loop: AtomicBool,
}

/// Finishes once `probe.set` is true. Its waker was handed out when the
/// task was made (as a future registers `cx.waker()` with whatever will
/// wake it), so polls touch no lock.
struct WaitFor {
    probe: Arc<Probe>,
    loop_thread: ThreadId,
}

impl WaitFor {
    /// Made on the loop thread.
    fn new(probe: Arc<Probe>) -> WaitFor {
        WaitFor {
            probe,
            loop_thread: thread::current().id(),
        }
    }
}

impl Future for WaitFor {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.probe.set.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        // No assertion here: the task drops its future under
        // `catch_unwind`.
        self.probe.drops.fetch_add(1, Ordering::Relaxed);
        if thread::current().id() != self.loop_thread {
            self.probe.dropped_off_loop.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs a loop on a thread of its own: creates the task, sends `wakers`
/// of it out, runs turns until it completes, drops the handle and closes
/// (with whatever is still queued). The loop thread does nothing else: a
/// late unpark may reach it at any point, and loom takes an unpark of a
/// thread blocked in a join or a lock for a broken model.
fn spawn_loop(probe: Arc<Probe>, wakers: Vec<mpsc::Sender<Waker>>) -> thread::JoinHandle<LoopModel> {
    thread::spawn(move || {
        let mut lp = LoopModel::new();
        let task = lp.spawn(WaitFor::new(probe));
        for tx in wakers {
            tx.send(task.waker()).unwrap();
        }
        while !task.is_complete() {
            lp.park();
            lp.run_remote();
        }
        drop(task);
        lp.close();
        lp
    })
}

/// A wake on the loop thread queued the task in the loop's own run queue
/// (`QUEUED`) while another thread wakes it (`SCHEDULED`): whichever
/// entry's step completes the task, the other may still be pending, and
/// the alive reference goes once, with the last of the two (or at close,
/// on whichever thread drops the injected one).
#[test]
fn local_and_remote_entries_share_the_alive_reference() {
    loom::model(|| {
        let probe = Arc::new(Probe::default());
        let (tx, rx) = mpsc::channel();
        let lp = {
            let probe = probe.clone();
            thread::spawn(move || {
                let mut lp = LoopModel::new();
                let task = lp.spawn(WaitFor::new(probe));
                assert!(lp.wake_local(&task));
                assert!(!lp.wake_local(&task), "queued twice locally");
                tx.send(task.waker()).unwrap();
                loop {
                    lp.run_remote();
                    lp.run_local();
                    if task.is_complete() {
                        break;
                    }
                    lp.park();
                }
                assert!(!lp.wake_local(&task), "a complete task was queued");
                drop(task);
                lp.close();
                lp
            })
        };
        let waker = rx.recv().unwrap();
        probe.set.store(true, Ordering::Release);
        waker.wake();
        let lp = lp.join().unwrap();
        check_end(&lp, &probe);
    });
}

/// After every thread is done: nothing left queued, every reference
/// released (each header holds one to the loop's shared half), the future
/// dropped once, on the loop thread.
fn check_end(lp: &LoopModel, probe: &Probe) {
    assert!(!lp.has_remote(), "an entry stayed queued");
    assert_eq!(lp.outside_refs(), 0, "a task reference leaked");
    assert_eq!(probe.drops.load(Ordering::Relaxed), 1);
    assert!(!probe.dropped_off_loop.load(Ordering::Relaxed));
}

/// Another thread sets the condition and wakes the task while the loop
/// steps it, parks, or completes it: the wake is never lost, and the last
/// reference may go on either thread.
#[test]
fn a_remote_wake_is_never_lost() {
    loom::model(|| {
        let probe = Arc::new(Probe::default());
        let (tx, rx) = mpsc::channel();
        let lp = spawn_loop(probe.clone(), vec![tx]);
        let waker = rx.recv().unwrap();
        probe.set.store(true, Ordering::Release);
        waker.wake();
        let lp = lp.join().unwrap();
        check_end(&lp, &probe);
    });
}

/// The task is aborted (completed without a step) while it waits in the
/// loop's own run queue and another thread wakes it: with both entries
/// pending at completion, the first one taken keeps the alive reference
/// and the second (taken by the loop, or dropped at close on the waking
/// thread) releases it; a wake after completion queues nothing. The loop
/// takes its own entries first or the injected ones first (`local_first`).
fn completed_while_queued_both_ways(local_first: bool) {
    loom::model(move || {
        let probe = Arc::new(Probe::default());
        let (tx, rx) = mpsc::channel();
        let lp = {
            let probe = probe.clone();
            thread::spawn(move || {
                let mut lp = LoopModel::new();
                let task = lp.spawn(WaitFor::new(probe));
                assert!(lp.wake_local(&task));
                tx.send(task.waker()).unwrap();
                lp.abort(&task);
                if local_first {
                    lp.run_local();
                    lp.run_remote();
                } else {
                    lp.run_remote();
                    lp.run_local();
                }
                drop(task);
                lp.close();
                lp
            })
        };
        rx.recv().unwrap().wake();
        let lp = lp.join().unwrap();
        check_end(&lp, &probe);
    });
}

#[test]
fn a_task_completed_while_queued_both_ways_is_released_once() {
    completed_while_queued_both_ways(true);
}

#[test]
fn the_same_with_the_injected_entry_taken_first() {
    completed_while_queued_both_ways(false);
}

/// Two wakers on two threads, one waking early for nothing (wake by
/// reference, then a clone dropped), one setting the condition: the wakes
/// coalesce while the task is queued, queue it again while it is polled,
/// do nothing once it completed, and an entry queued just before the
/// completion is released when the loop takes it or closes.
#[test]
fn wakes_race_the_step_and_the_completion() {
    loom::model(|| {
        let probe = Arc::new(Probe::default());
        let (tx1, rx1) = mpsc::channel();
        let (tx2, rx2) = mpsc::channel();
        let lp = spawn_loop(probe.clone(), vec![tx1, tx2]);
        let setter = {
            let probe = probe.clone();
            thread::spawn(move || {
                let waker = rx2.recv().unwrap();
                probe.set.store(true, Ordering::Release);
                waker.wake();
            })
        };
        let waker = rx1.recv().unwrap();
        waker.wake_by_ref();
        drop(waker.clone());
        drop(waker);
        setter.join().unwrap();
        let lp = lp.join().unwrap();
        check_end(&lp, &probe);
    });
}
