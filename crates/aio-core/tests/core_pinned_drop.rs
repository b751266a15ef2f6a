//! A task's future is pinned: when it is dropped (cancelled while waiting on
//! a foreign future, aborted, or left pending at loop close) it must be
//! dropped where it lives, never moved first. A future that borrows its own
//! locals reads through those borrows in its destructor.

use std::cell::Cell;
use std::rc::Rc;

use aio_core::{Loop, create_task, run, yield_now};

/// Records, when dropped, whether the array it borrows still holds 7s.
struct CheckOnDrop<'a> {
    seen: &'a [u8; 64],
    ok: Rc<Cell<Option<bool>>>,
}

impl Drop for CheckOnDrop<'_> {
    fn drop(&mut self) {
        self.ok.set(Some(self.seen.iter().all(|&b| b == 7)));
    }
}

/// A future that borrows one of its own locals across an await on a
/// foreign (never-ready) future, so cancellation takes the hard path.
async fn self_borrowing(ok: Rc<Cell<Option<bool>>>) {
    let data = [7u8; 64];
    let _guard = CheckOnDrop { seen: &data, ok };
    std::future::pending::<()>().await;
}

#[test]
fn a_cancelled_self_borrowing_future_is_dropped_in_place() {
    let ok = Rc::new(Cell::new(None));
    let seen = ok.clone();
    run(async move {
        let t = create_task(self_borrowing(seen));
        yield_now().await.unwrap();
        assert!(t.cancel());
        assert!(t.await.unwrap_err().is_cancelled());
    });
    assert_eq!(ok.get(), Some(true), "the destructor saw a moved future");
}

#[test]
fn an_aborted_self_borrowing_future_is_dropped_in_place() {
    let ok = Rc::new(Cell::new(None));
    let seen = ok.clone();
    run(async move {
        let t = create_task(self_borrowing(seen));
        yield_now().await.unwrap();
        t.abort();
        assert!(t.await.unwrap_err().is_cancelled());
    });
    assert_eq!(ok.get(), Some(true), "the destructor saw a moved future");
}

#[test]
fn a_self_borrowing_future_left_at_loop_close_is_dropped_in_place() {
    let ok = Rc::new(Cell::new(None));
    let seen = ok.clone();
    let lp = Loop::new();
    lp.run_until_complete(async move {
        drop(create_task(self_borrowing(seen)));
        yield_now().await.unwrap();
    })
    .unwrap();
    assert_eq!(ok.get(), None, "still waiting before close");
    lp.close();
    assert_eq!(ok.get(), Some(true), "the destructor saw a moved future");
}

#[test]
fn a_cancelled_flume_receive_is_dropped_in_place() {
    let (tx, rx) = flume::unbounded::<u32>();
    run(async move {
        let rx2 = rx.clone();
        let t = create_task(async move { rx2.recv_async().await });
        yield_now().await.unwrap();
        assert!(t.cancel());
        assert!(t.await.unwrap_err().is_cancelled());
        // The channel is intact: the receiver's hook was unregistered.
        tx.send(5).unwrap();
        assert_eq!(rx.recv_async().await.unwrap(), 5);
    });
}

#[test]
fn a_flume_receive_left_at_loop_close_is_dropped_in_place() {
    let (tx, rx) = flume::unbounded::<u32>();
    let lp = Loop::new();
    let rx2 = rx.clone();
    lp.run_until_complete(async move {
        drop(create_task(async move { rx2.recv_async().await }));
        yield_now().await.unwrap();
    })
    .unwrap();
    lp.close();
    tx.send(9).unwrap();
    assert_eq!(rx.recv().unwrap(), 9);
}
