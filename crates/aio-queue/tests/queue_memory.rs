//! A queue's memory follows the items it holds, not its `maxsize`: an
//! empty queue of maxsize 10 million is small, and 4 billion or
//! `usize::MAX` are valid maxsizes (no abort, no capacity-overflow panic).
//!
//! Its own binary, and the tests take `LOCK`, so no other test allocates
//! while the resident size is measured.

use std::sync::{Mutex, MutexGuard};

use aio_core::run;
use aio_queue::{LifoQueue, PriorityQueue, Queue, TryPutError};

static LOCK: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const HUGE: [usize; 3] = [10_000_000, 4_000_000_000, usize::MAX];

/// The process's resident set, in bytes (`/proc/self/statm`).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's resident field");
    pages * 4096
}

#[test]
fn an_empty_queue_of_maxsize_ten_million_is_small() {
    let _g = serial();
    let before = rss();
    let q: Queue<u64> = Queue::with_maxsize(10_000_000);
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "an empty Queue::with_maxsize(10_000_000) took {grown} bytes"
    );
    assert_eq!(q.maxsize(), 10_000_000);
    assert!(q.empty() && !q.full());
}

#[test]
fn huge_maxsizes_are_constructible_and_work() {
    let _g = serial();
    for maxsize in HUGE {
        let q = Queue::with_maxsize(maxsize);
        assert_eq!(q.maxsize(), maxsize);
        for i in 0..1000u32 {
            q.put_nowait(i).unwrap();
        }
        assert_eq!(q.qsize(), 1000);
        assert!(!q.full());
        for i in 0..1000u32 {
            assert_eq!(q.get_nowait().unwrap(), i);
        }
        assert!(q.empty());

        let p = PriorityQueue::with_maxsize(maxsize);
        let l = LifoQueue::with_maxsize(maxsize);
        for x in [3, 1, 2] {
            p.put_nowait(x).unwrap();
            l.put_nowait(x).unwrap();
        }
        assert_eq!(p.get_nowait().unwrap(), 1);
        assert_eq!(l.get_nowait().unwrap(), 2);
    }
}

#[test]
fn huge_maxsizes_put_and_get_await() {
    let _g = serial();
    run(async {
        for maxsize in HUGE {
            let q = Queue::with_maxsize(maxsize);
            for i in 0..100u32 {
                q.put(i).await.unwrap();
            }
            for i in 0..100u32 {
                assert_eq!(q.get().await.unwrap(), i);
                q.task_done().unwrap();
            }
            q.join().await.unwrap();
        }
    });
}

/// `full()` and `QueueFull` with a maxsize whose slots fit a ring (3) and
/// one that grows with its items instead (5,000 `u64`s: 80 KiB of slots).
#[test]
fn full_follows_the_maxsize() {
    let _g = serial();
    for maxsize in [3u64, 5000] {
        let q = Queue::with_maxsize(maxsize as usize);
        for i in 0..maxsize {
            assert!(!q.full());
            q.put_nowait(i).unwrap();
        }
        assert!(q.full());
        assert!(matches!(q.put_nowait(maxsize), Err(TryPutError::Full(x)) if x == maxsize));
        assert_eq!(q.get_nowait().unwrap(), 0);
        assert!(!q.full());
        q.put_nowait(maxsize).unwrap();
        assert!(q.full());
        for i in 1..=maxsize {
            assert_eq!(q.get_nowait().unwrap(), i);
        }
        assert!(q.empty() && !q.full());
    }
}
