//! loom model of the injection handshake: other threads push onto a loop's
//! injection queue (`LoopHandle::call_soon_threadsafe`) and unpark it if it
//! announced a park; the loop announces the park, looks at the queue, and
//! parks in the real `ParkDriver`. A lost wake-up leaves the loop parked
//! forever, which loom reports as a deadlock.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p aio-core --test loom_inject --release`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use aio_core::loom::model::LoopModel;

/// Counts calls run and calls dropped, to check that each submission
/// ends exactly one way.
#[derive(Default)]
struct Tally {
    ran: AtomicUsize,
    dropped: AtomicUsize,
}

/// A submission: counts a run when called, a drop when dropped.
struct Call(Arc<Tally>);

impl Call {
    fn run(self) {
        self.0.ran.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn send(h: &aio_core::LoopHandle, tally: &Arc<Tally>) -> bool {
    let call = Call(tally.clone());
    h.call_soon_threadsafe(move || call.run()).is_ok()
}

/// Runs the loop on a thread of its own, parking and taking what was sent
/// until `n` calls ran. The loop thread does nothing else (a real loop
/// thread may get a late unpark at any point; loom takes an unpark of a
/// thread blocked in a join or a lock for a broken model).
fn spawn_loop(mut lp: LoopModel, tally: Arc<Tally>, n: usize) -> thread::JoinHandle<LoopModel> {
    thread::spawn(move || {
        while tally.ran.load(Ordering::Relaxed) < n {
            lp.park();
            lp.run_remote();
        }
        lp
    })
}

/// One sender, at any point of the loop's first park: before the parker
/// knows the loop's thread, between the announcement and the sleep, after.
/// (It found the lost wake-up fixed in `ParkDriver`'s `unpark`: see there.)
#[test]
fn a_call_sent_to_a_parking_loop_runs() {
    loom::model(|| {
        let lp = LoopModel::new();
        let tally = Arc::new(Tally::default());
        let h = lp.handle();
        let lp = spawn_loop(lp, tally.clone(), 1);
        assert!(send(&h, &tally));
        drop(h);
        let lp = lp.join().unwrap();
        assert_eq!(tally.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(lp.outside_refs(), 0);
    });
}

/// Two senders: the second may find the loop already notified (no unpark
/// of its own) and must still be seen, by this turn or the next park.
#[test]
fn two_senders_both_run() {
    loom::model(|| {
        let lp = LoopModel::new();
        let tally = Arc::new(Tally::default());
        let h = lp.handle();
        let lp = spawn_loop(lp, tally.clone(), 2);
        let other = {
            let h = h.clone();
            let t = tally.clone();
            thread::spawn(move || assert!(send(&h, &t)))
        };
        assert!(send(&h, &tally));
        other.join().unwrap();
        lp.join().unwrap();
        assert_eq!(tally.dropped.load(Ordering::Relaxed), 2);
    });
}

/// A send racing the loop's close: the call runs (taken before the close),
/// is dropped by the close, is dropped by the sender (who saw the close
/// after pushing), or is refused — never left in the queue, never twice.
#[test]
fn a_send_racing_close_is_run_or_dropped_once() {
    loom::model(|| {
        let mut lp = LoopModel::new();
        let tally = Arc::new(Tally::default());
        let h = lp.handle();
        let t = tally.clone();
        let sender = thread::spawn(move || send(&h, &t));
        lp.run_remote();
        lp.close();
        let accepted = sender.join().unwrap();
        assert!(!lp.has_remote(), "a call stayed in the closed loop's queue");
        assert_eq!(tally.dropped.load(Ordering::Relaxed), 1);
        if !accepted {
            assert_eq!(tally.ran.load(Ordering::Relaxed), 0);
        }
        assert_eq!(lp.outside_refs(), 0);
    });
}
