//! `OpFuture` against a scripted completion driver: the cancellation races
//! an operation in flight both ways, and a dropped in-flight future hands
//! its memory to the driver.

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use aio_core::driver::{Driver, FdKind, IoDriver, ParkDriver, Unpark};
use aio_core::io::{self as aio_io, RawOp};
use aio_core::{Loop, create_task, sleep, yield_now};

#[derive(Default)]
struct Script {
    /// What the next completion is, once the operation was cancelled.
    after_cancel: Option<i32>,
    cancelled: Vec<u64>,
    forgotten: Vec<(u64, Box<dyn Any>)>,
    waker: Option<Waker>,
    next: u64,
}

/// A completion driver whose operations finish only when cancelled, with
/// the scripted result.
struct Fake {
    park: ParkDriver,
    s: Rc<RefCell<Script>>,
}

impl Driver for Fake {
    fn park(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.park.park(t)
    }
    fn unparker(&self) -> Arc<dyn Unpark> {
        self.park.unparker()
    }
    fn name(&self) -> &'static str {
        "fake"
    }
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn io(&mut self) -> Option<&mut dyn IoDriver> {
        Some(self)
    }
}

impl IoDriver for Fake {
    fn register_kind(&mut self, _: RawFd, _: FdKind) -> io::Result<()> {
        Ok(())
    }
    fn deregister(&mut self, _: RawFd) {}
    fn poll_op(&mut self, _op: &RawOp, token: &mut Option<u64>, waker: &Waker) -> Poll<io::Result<usize>> {
        let mut s = self.s.borrow_mut();
        match *token {
            None => {
                s.next += 1;
                *token = Some(s.next);
                s.waker = Some(waker.clone());
                Poll::Pending
            }
            Some(t) if s.cancelled.contains(&t) => {
                let r = s.after_cancel.take().expect("scripted");
                *token = None;
                Poll::Ready(if r >= 0 {
                    Ok(r as usize)
                } else {
                    Err(io::Error::from_raw_os_error(-r))
                })
            }
            Some(_) => {
                s.waker = Some(waker.clone());
                Poll::Pending
            }
        }
    }
    fn cancel_op(&mut self, token: u64) {
        let mut s = self.s.borrow_mut();
        s.cancelled.push(token);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
    fn forget_op(&mut self, token: u64, owner: Box<dyn Any>) {
        self.s.borrow_mut().forgotten.push((token, owner));
    }
    fn is_completion_based(&self) -> bool {
        true
    }
}

fn fake(after_cancel: i32) -> (Loop, Rc<RefCell<Script>>) {
    let s = Rc::new(RefCell::new(Script {
        after_cancel: Some(after_cancel),
        ..Script::default()
    }));
    let lp = Loop::builder()
        .driver(Fake {
            park: ParkDriver::new(),
            s: s.clone(),
        })
        .build();
    (lp, s)
}

/// Runs a read in flight, cancels it, and reports what the read returned
/// and what the next await point returned.
fn race(after_cancel: i32) -> (io::Result<usize>, Vec<u8>, Result<(), aio_core::Cancelled>) {
    let (lp, _s) = fake(after_cancel);
    let out = lp
        .run_until_complete(async {
            let seen = Rc::new(RefCell::new(None));
            let s2 = seen.clone();
            let t = create_task(async move {
                let (res, buf) = aio_io::submit(aio_io::Recv::new(0, Vec::with_capacity(8), 0)).await;
                let next = sleep(0.001).await;
                *s2.borrow_mut() = Some((res, buf, next));
            });
            yield_now().await.unwrap();
            t.cancel();
            let _ = t.await;
            seen.borrow_mut().take().unwrap()
        })
        .unwrap();
    lp.close();
    out
}

#[test]
fn a_read_that_wins_the_race_keeps_its_data_and_the_cancellation_moves_on() {
    let (res, _buf, next) = race(5);
    assert_eq!(res.unwrap(), 5, "the completed read's result is returned");
    assert!(next.is_err(), "the cancellation is delivered at the next await point");
}

#[test]
fn a_read_the_cancel_stops_reports_the_cancellation() {
    let (res, _buf, next) = race(-libc::ECANCELED);
    let e = res.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Interrupted);
    assert!(next.is_ok(), "the delivery was consumed by the read");
}

#[test]
fn a_dropped_future_in_flight_hands_its_memory_to_the_driver() {
    let (lp, s) = fake(0);
    lp.run_until_complete(async {
        let t = create_task(aio_io::submit(aio_io::Recv::new(0, vec![1u8; 4], 0)));
        yield_now().await.unwrap();
        t.abort();
    })
    .unwrap();
    let forgotten = std::mem::take(&mut s.borrow_mut().forgotten);
    assert_eq!(forgotten.len(), 1, "the driver got the operation's memory");
    lp.close();
}
