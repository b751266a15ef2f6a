//! Random interleavings of puts and gets — waiting and not, cancelled while
//! they wait or just after they were served, with a shutdown now and then —
//! from fixed seeds. Whatever happens, no item is lost or duplicated and
//! items come out in the order they went in: the items gotten, followed by
//! those left in the queue, are exactly the items put, in order; an item
//! whose put failed comes back to its putter and is never gotten.
//!
//! One loop makes every run deterministic (the seed decides each step);
//! the threaded variant puts from one loop and gets on another.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use aio_core::{Task, create_task, run, yield_now};
use aio_queue::{GetError, PutError, Queue, TryGetError};
use aio_test::Rng;

/// What the tasks saw, in the order they saw it.
#[derive(Default)]
struct Log {
    /// Items whose put returned `Ok`, in the order they returned.
    put: Vec<u64>,
    /// Items a put gave back (cancelled, or the queue shut down).
    returned: Vec<u64>,
    /// Items gotten, in the order the gets returned.
    got: Vec<u64>,
}

/// Checks the log against what is left in the queue. An immediate
/// shutdown drops what the queue holds (asyncio 3.13's
/// `shutdown(immediate=True)`): then what came out is the first part of
/// what went in.
fn check(seed: u64, log: &Log, left: Vec<u64>, dropped_by_shutdown: bool) {
    let mut out = log.got.clone();
    out.extend(left);
    if dropped_by_shutdown {
        assert!(
            log.put.starts_with(&out),
            "seed {seed}: items out {out:?} are not the first of the items in {:?}",
            log.put
        );
    } else {
        assert_eq!(
            out, log.put,
            "seed {seed}: items out (gotten, then left) differ from items in"
        );
    }
    for r in &log.returned {
        assert!(
            !log.put.contains(r),
            "seed {seed}: item {r} was both put and given back"
        );
    }
}

/// Takes what is left, without waiting.
fn drain(q: &Queue<u64>) -> Vec<u64> {
    let mut left = Vec::new();
    loop {
        match q.get_nowait() {
            Ok(v) => left.push(v),
            Err(TryGetError::Empty | TryGetError::ShutDown) => return left,
        }
    }
}

async fn producer(q: Arc<Queue<u64>>, log: Rc<RefCell<Log>>, first: u64, n: u64, nowait_every: u64) {
    for item in first..first + n {
        if nowait_every != 0 && item % nowait_every == 0 {
            match q.put_nowait(item) {
                Ok(()) => log.borrow_mut().put.push(item),
                Err(e) => log.borrow_mut().returned.push(e.into_inner()),
            }
            continue;
        }
        match q.put(item).await {
            Ok(()) => log.borrow_mut().put.push(item),
            Err(PutError::Cancelled(_, item)) => {
                log.borrow_mut().returned.push(item);
                return;
            }
            Err(PutError::ShutDown(item)) => {
                log.borrow_mut().returned.push(item);
                return;
            }
        }
    }
}

async fn consumer(q: Arc<Queue<u64>>, log: Rc<RefCell<Log>>) {
    loop {
        match q.get().await {
            Ok(v) => log.borrow_mut().got.push(v),
            Err(GetError::Cancelled(_) | GetError::ShutDown) => return,
        }
    }
}

/// One scenario on the running loop.
async fn scenario(seed: u64) {
    let mut rng = Rng::new(seed);
    let maxsize = [0, 1, 2, 5][rng.below(4)];
    let q = Arc::new(Queue::with_maxsize(maxsize));
    let log = Rc::new(RefCell::new(Log::default()));
    let mut tasks: Vec<Task<()>> = Vec::new();
    let producers = 1 + rng.below(3);
    for p in 0..producers {
        let nowait_every: u64 = [0, 0, 3, 7][rng.below(4)];
        tasks.push(create_task(producer(
            q.clone(),
            log.clone(),
            p as u64 * 1000,
            5 + rng.below(20) as u64,
            nowait_every,
        )));
    }
    for _ in 0..1 + rng.below(3) {
        tasks.push(create_task(consumer(q.clone(), log.clone())));
    }
    let shutdown_at = if rng.below(3) == 0 { Some(rng.below(60)) } else { None };
    let mut immediate = false;
    for step in 0..80 {
        if shutdown_at == Some(step) {
            immediate = rng.below(2) == 0;
            q.shutdown(immediate);
        }
        match rng.below(8) {
            // A task is cancelled wherever it is: waiting, or served but
            // not run yet.
            0 => {
                let t = &tasks[rng.below(tasks.len())];
                t.cancel();
            }
            // A fresh consumer or a get that gives up at once.
            1 => tasks.push(create_task(consumer(q.clone(), log.clone()))),
            2 => {
                let (q, log) = (q.clone(), log.clone());
                tasks.push(create_task(async move {
                    if let Ok(v) = q.get_nowait() {
                        log.borrow_mut().got.push(v);
                    }
                }));
            }
            _ => {}
        }
        for _ in 0..rng.below(3) {
            let _ = yield_now().await;
        }
    }
    // Everyone still waiting is cancelled and ends.
    for t in &tasks {
        t.cancel();
    }
    for t in tasks {
        let _ = t.await;
    }
    let left = drain(&q);
    check(seed, &log.borrow(), left, immediate);
}

#[test]
fn random_puts_and_gets_on_one_loop_lose_nothing() {
    for seed in 1..=300 {
        run(scenario(seed));
    }
}

/// Puts on one loop, gets on another, with cancellations on both sides.
#[test]
fn random_puts_and_gets_across_loops_lose_nothing() {
    for seed in 1..=100 {
        let mut rng = Rng::new(seed);
        let q = Arc::new(Queue::with_maxsize([0, 1, 3][rng.below(3)]));
        let (put_seed, get_seed) = (rng.bits(), rng.bits());
        let put_log = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let got = Arc::new(Mutex::new(Vec::new()));

        let (qp, pl) = (q.clone(), put_log.clone());
        let putter = std::thread::spawn(move || {
            run(async move {
                let mut rng = Rng::new(put_seed);
                let log = Rc::new(RefCell::new(Log::default()));
                let p = create_task(producer(qp.clone(), log.clone(), 0, 200, 0));
                // The getter may stop first: the put waiting for room then
                // ends by this cancel (once the producer is done it is a
                // no-op).
                for _ in 0..rng.below(400) {
                    let _ = yield_now().await;
                }
                p.cancel();
                let _ = p.await;
                let log = log.borrow();
                *pl.lock().unwrap() = (log.put.clone(), log.returned.clone());
            });
        });
        let (qg, g) = (q.clone(), got.clone());
        let getter = std::thread::spawn(move || {
            run(async move {
                let mut rng = Rng::new(get_seed);
                let log = Rc::new(RefCell::new(Log::default()));
                let mut consumers: Vec<Task<()>> =
                    (0..2).map(|_| create_task(consumer(qg.clone(), log.clone()))).collect();
                for _ in 0..400 {
                    if rng.below(50) == 0 {
                        let i = rng.below(consumers.len());
                        consumers[i].cancel();
                        consumers.push(create_task(consumer(qg.clone(), log.clone())));
                    }
                    let _ = yield_now().await;
                }
                for c in &consumers {
                    c.cancel();
                }
                for c in consumers {
                    let _ = c.await;
                }
                *g.lock().unwrap() = log.borrow().got.clone();
            });
        });
        putter.join().unwrap();
        getter.join().unwrap();
        let (put, returned) = put_log.lock().unwrap().clone();
        let log = Log {
            put,
            returned,
            got: got.lock().unwrap().clone(),
        };
        check(seed, &log, drain(&q), false);
    }
}
