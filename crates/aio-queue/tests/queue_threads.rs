//! Queues shared by two loops on two threads and by plain threads at once:
//! every item is delivered exactly once, including when getters and
//! putters are cancelled by timeouts in the middle of a hand-off.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::thread;

use aio_core::{create_task, run};
use aio_queue::{GetError, PriorityQueue, Queue};
use aio_test::{block_on, within};

const PER_PRODUCER: usize = 3000;

/// Which item ids were received, and how many times each.
struct Tally(Vec<AtomicU8>);

impl Tally {
    fn new(n: usize) -> Tally {
        Tally((0..n).map(|_| AtomicU8::new(0)).collect())
    }
    fn got(&self, id: usize) {
        self.0[id].fetch_add(1, Relaxed);
    }
    fn assert_each_once(&self) {
        for (id, n) in self.0.iter().enumerate() {
            assert_eq!(n.load(Relaxed), 1, "item {id} delivered {} times", n.load(Relaxed));
        }
    }
}

/// Producers: one loop thread (4 tasks) and one plain thread; consumers:
/// the other loop thread (4 tasks) and another plain thread. When every
/// producer is done the queue is shut down, and consumers drain it.
fn mpmc<Q, P, G>(q: Arc<Q>, put: P, get: G, shutdown: fn(&Q)) -> Arc<Tally>
where
    Q: Send + Sync + 'static,
    P: Fn(Arc<Q>, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + Sync + Copy + 'static,
    G: Fn(Arc<Q>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<usize>>>> + Send + Sync + Copy + 'static,
{
    const PRODUCERS: usize = 5; // 4 tasks + 1 thread
    let tally = Arc::new(Tally::new(PRODUCERS * PER_PRODUCER));
    let producers_left = Arc::new(AtomicUsize::new(PRODUCERS));
    let finish = {
        let (q, left) = (q.clone(), producers_left.clone());
        move || {
            if left.fetch_sub(1, Relaxed) == 1 {
                shutdown(&q);
            }
        }
    };
    let mut hs = Vec::new();
    // Producer loop.
    {
        let (q, finish) = (q.clone(), finish.clone());
        hs.push(thread::spawn(move || {
            run(async move {
                let tasks: Vec<_> = (0..4)
                    .map(|p| {
                        let (q, finish) = (q.clone(), finish.clone());
                        create_task(async move {
                            for k in 0..PER_PRODUCER {
                                put(q.clone(), p * PER_PRODUCER + k).await;
                            }
                            finish();
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        }));
    }
    // Producer thread.
    {
        let (q, finish) = (q.clone(), finish.clone());
        hs.push(thread::spawn(move || {
            for k in 0..PER_PRODUCER {
                block_on(put(q.clone(), 4 * PER_PRODUCER + k));
            }
            finish();
        }));
    }
    // Consumer loop.
    {
        let (q, tally) = (q.clone(), tally.clone());
        hs.push(thread::spawn(move || {
            run(async move {
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        let (q, tally) = (q.clone(), tally.clone());
                        create_task(async move {
                            while let Some(id) = get(q.clone()).await {
                                tally.got(id);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        }));
    }
    // Consumer thread.
    {
        let (q, tally) = (q.clone(), tally.clone());
        hs.push(thread::spawn(move || {
            while let Some(id) = block_on(get(q.clone())) {
                tally.got(id);
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    tally
}

#[test]
fn fifo_queue_delivers_every_item_once_across_loops_and_threads() {
    within(120, || {
        let q = Arc::new(Queue::with_maxsize(16));
        let tally = mpmc(
            q.clone(),
            |q, id| Box::pin(async move { q.put(id).await.unwrap() }),
            |q| {
                Box::pin(async move {
                    match q.get().await {
                        Ok(id) => Some(id),
                        Err(GetError::ShutDown) => None,
                        Err(e) => panic!("{e}"),
                    }
                })
            },
            |q| q.shutdown(false),
        );
        tally.assert_each_once();
        assert!(q.empty());
    });
}

#[test]
fn unbounded_queue_delivers_every_item_once() {
    within(120, || {
        let q = Arc::new(Queue::new());
        let tally = mpmc(
            q,
            |q, id| Box::pin(async move { q.put(id).await.unwrap() }),
            |q| Box::pin(async move { q.get().await.ok() }),
            |q| q.shutdown(false),
        );
        tally.assert_each_once();
    });
}

#[test]
fn priority_queue_delivers_every_item_once() {
    within(120, || {
        let q = Arc::new(PriorityQueue::with_maxsize(16));
        let tally = mpmc(
            q,
            |q, id| Box::pin(async move { q.put(id).await.unwrap() }),
            |q| Box::pin(async move { q.get().await.ok() }),
            |q| q.shutdown(false),
        );
        tally.assert_each_once();
    });
}

#[test]
fn timeouts_on_get_and_put_never_lose_or_duplicate_an_item() {
    within(120, || {
        let q = Arc::new(Queue::with_maxsize(4));
        let put_ok = Arc::new(Tally::new(5 * PER_PRODUCER));
        let timeouts = Arc::new(AtomicUsize::new(0));
        let (p2, t2) = (put_ok.clone(), timeouts.clone());
        let tally = {
            // Statics are simplest for the `Copy` closures of `mpmc`.
            static PUT_OK: std::sync::OnceLock<Arc<Tally>> = std::sync::OnceLock::new();
            static TIMEOUTS: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();
            let _ = PUT_OK.set(p2);
            let _ = TIMEOUTS.set(t2);
            mpmc(
                q.clone(),
                |q, id| {
                    Box::pin(async move {
                        // Retry until it is in; each attempt may time out
                        // while queued or just after a slot was handed over.
                        loop {
                            let d = if aio_core::try_get_running_loop().is_some() {
                                0.00002
                            } else {
                                0.0
                            };
                            let r = if d > 0.0 {
                                aio_core::wait_for(q.put(id), d).await.ok()
                            } else {
                                Some(q.put(id).await)
                            };
                            match r {
                                Some(Ok(())) => {
                                    PUT_OK.get().unwrap().got(id);
                                    return;
                                }
                                Some(Err(e)) => panic!("{e}"),
                                None => {
                                    TIMEOUTS.get().unwrap().fetch_add(1, Relaxed);
                                }
                            }
                        }
                    })
                },
                |q| {
                    Box::pin(async move {
                        loop {
                            if aio_core::try_get_running_loop().is_none() {
                                return q.get().await.ok();
                            }
                            match aio_core::wait_for(q.get(), 0.00002).await {
                                Ok(r) => return r.ok(),
                                Err(_) => {
                                    TIMEOUTS.get().unwrap().fetch_add(1, Relaxed);
                                }
                            }
                        }
                    })
                },
                |q| q.shutdown(false),
            )
        };
        put_ok.assert_each_once();
        tally.assert_each_once();
        assert!(q.empty());
        eprintln!("timeouts: {}", timeouts.load(Relaxed));
    });
}
