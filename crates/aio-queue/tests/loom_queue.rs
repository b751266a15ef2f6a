//! loom models of the queues across threads: every interleaving of a
//! putter and a getter on two threads (unbounded and of capacity 1), a
//! getter that gives up after an item was reserved for it, a shutdown
//! racing a waiting getter, `join` waiting for a `task_done` made on
//! another thread, and a `put` racing a `task_done` on the unfinished
//! count, a putter that gives up after a slot was promised to it, and a
//! shutdown racing a waiting putter. Whatever the interleaving, no item is lost, duplicated
//! or reordered, and nobody is left waiting. Each thread drives its
//! futures with loom's `block_on`, whose waker parks the thread: a lost
//! wake-up leaves it parked for good, which loom reports as a deadlock.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p aio-queue --test loom_queue --release`.
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;

use aio_queue::{GetError, Queue, TryGetError};

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Two items put on one thread come out on the other, once each and in
/// order, whether the getter waits or finds them there; a queue of
/// capacity 1 also makes the putter wait for room.
#[test]
fn items_cross_threads_once_and_in_order() {
    for maxsize in [0, 1] {
        loom::model(move || {
            let q = Arc::new(Queue::with_maxsize(maxsize));
            let putter = {
                let q = q.clone();
                thread::spawn(move || {
                    for i in 1..=2u32 {
                        block_on(q.put(i)).unwrap();
                    }
                })
            };
            let got: Vec<u32> = (0..2).map(|_| block_on(q.get()).unwrap()).collect();
            putter.join().unwrap();
            assert_eq!(got, [1, 2]);
            assert!(q.empty());
            assert_eq!(q.unfinished_tasks(), 2);
        });
    }
}

/// A getter polled once then dropped, while another thread puts: the item
/// is either taken by it (ready at its one poll) or goes to the next
/// getter, whether it was reserved for the quitter (which passes it on)
/// or not. Never lost, never twice.
#[test]
fn an_item_reserved_for_a_getter_that_gives_up_passes_on() {
    loom::model(|| {
        let q = Arc::new(Queue::new());
        let quitter = {
            let q = q.clone();
            thread::spawn(move || {
                let mut get = pin!(q.get());
                match poll_once(get.as_mut()) {
                    Poll::Ready(r) => Some(r.unwrap()),
                    Poll::Pending => None,
                }
            })
        };
        let putter = {
            let q = q.clone();
            thread::spawn(move || q.put_nowait(7u32).unwrap())
        };
        let took = quitter.join().unwrap();
        putter.join().unwrap();
        match took {
            Some(v) => {
                assert_eq!(v, 7);
                assert_eq!(q.get_nowait(), Err(TryGetError::Empty));
            }
            None => assert_eq!(block_on(q.get()), Ok(7)),
        }
        assert!(q.empty());
    });
}

/// A graceful shutdown racing a waiting getter and a put: the item put
/// before the shutdown is gotten (by the waiting getter, or left for the
/// next get), and a getter that finds the queue empty and shut down fails.
#[test]
fn a_shutdown_never_loses_an_item_put_before_it() {
    loom::model(|| {
        let q = Arc::new(Queue::new());
        let getter = {
            let q = q.clone();
            thread::spawn(move || block_on(q.get()))
        };
        q.put_nowait(1u32).unwrap();
        q.shutdown(false);
        match getter.join().unwrap() {
            Ok(v) => {
                assert_eq!(v, 1);
                assert_eq!(q.get_nowait(), Err(TryGetError::ShutDown));
            }
            Err(GetError::ShutDown) => panic!("a getter failed while an item was there"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
}

/// `join` on one thread waits for the `task_done` of the item gotten on
/// another, and wakes once it comes.
#[test]
fn join_sees_a_task_done_from_another_thread() {
    loom::model(|| {
        let q = Arc::new(Queue::new());
        q.put_nowait(1u32).unwrap();
        let worker = {
            let q = q.clone();
            thread::spawn(move || {
                assert_eq!(block_on(q.get()), Ok(1));
                q.task_done().unwrap();
            })
        };
        block_on(q.join()).unwrap();
        assert_eq!(q.unfinished_tasks(), 0);
        worker.join().unwrap();
    });
}

/// A `put` on one thread races a `task_done` on another: the unfinished
/// count, changed by both, loses neither, and `join` returns once the
/// last item is done.
#[test]
fn a_put_and_a_task_done_on_two_threads_both_count() {
    loom::model(|| {
        let q = Arc::new(Queue::new());
        q.put_nowait(1u32).unwrap();
        let worker = {
            let q = q.clone();
            thread::spawn(move || {
                assert_eq!(q.get_nowait(), Ok(1));
                q.task_done().unwrap();
            })
        };
        q.put_nowait(2).unwrap();
        worker.join().unwrap();
        assert_eq!(q.unfinished_tasks(), 1);
        assert_eq!(q.get_nowait(), Ok(2));
        q.task_done().unwrap();
        block_on(q.join()).unwrap();
        assert_eq!(q.task_done(), Err(aio_queue::TaskDoneError));
    });
}

/// A full queue of capacity 1: a putter polled once then dropped while
/// another thread takes the item. The slot freed is either promised to
/// the quitter (which passes it on) or left free: a `put_nowait`
/// afterwards always finds room, and nothing is put twice.
#[test]
fn a_slot_promised_to_a_putter_that_gives_up_passes_on() {
    loom::model(|| {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(1u32).unwrap();
        let quitter = {
            let q = q.clone();
            thread::spawn(move || {
                let mut put = pin!(q.put(2));
                poll_once(put.as_mut()).is_ready()
            })
        };
        let getter = {
            let q = q.clone();
            thread::spawn(move || block_on(q.get()).unwrap())
        };
        let put = quitter.join().unwrap();
        assert_eq!(getter.join().unwrap(), 1);
        if put {
            assert_eq!(q.get_nowait(), Ok(2));
        }
        q.put_nowait(3).unwrap();
        assert_eq!(q.get_nowait(), Ok(3));
        assert!(q.empty());
    });
}

/// A shutdown racing a putter waiting for room: the putter is woken and
/// gets its item back (or had put it before the shutdown), never left
/// waiting; the item that filled the queue can still be taken.
#[test]
fn a_shutdown_wakes_a_waiting_putter_with_its_item() {
    loom::model(|| {
        let q = Arc::new(Queue::with_maxsize(1));
        q.put_nowait(1u32).unwrap();
        let putter = {
            let q = q.clone();
            thread::spawn(move || block_on(q.put(2)))
        };
        q.shutdown(false);
        match putter.join().unwrap() {
            Err(aio_queue::PutError::ShutDown(item)) => assert_eq!(item, 2),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(q.get_nowait(), Ok(1));
        assert_eq!(q.get_nowait(), Err(TryGetError::ShutDown));
    });
}
