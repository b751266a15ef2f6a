//! A bounded thread pool that grows on demand and shrinks when idle.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct ThreadPool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    work: Condvar,
    exited: Condvar,
    max: usize,
    keep_alive: Duration,
    name: &'static str,
}

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    /// Threads waiting for work and not yet claimed by `execute`.
    idle: usize,
    /// Wake-ups handed out by `execute` and not yet taken by a waiter.
    wakeups: usize,
    /// Jobs queued or running: a paused clock must not jump meanwhile.
    unfinished: usize,
    shutdown: bool,
}

impl ThreadPool {
    pub(crate) fn new(max: usize, keep_alive: Duration) -> ThreadPool {
        ThreadPool::with_name(max, keep_alive, "aio-to-thread")
    }

    /// A pool whose threads are called `name`.
    pub(crate) fn with_name(max: usize, keep_alive: Duration, name: &'static str) -> ThreadPool {
        ThreadPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    wakeups: 0,
                    unfinished: 0,
                    shutdown: false,
                }),
                work: Condvar::new(),
                exited: Condvar::new(),
                max,
                keep_alive,
                name,
            }),
        }
    }

    /// Queues `job`; starts a thread if none is idle and the bound allows.
    /// Returns `false` after shutdown.
    pub(crate) fn execute(&self, job: Job) -> bool {
        let mut st = self.inner.state.lock();
        if st.shutdown {
            return false;
        }
        st.jobs.push_back(job);
        st.unfinished += 1;
        if st.idle > 0 {
            st.idle -= 1;
            st.wakeups += 1;
            self.inner.work.notify_one();
        } else if st.threads < self.inner.max {
            st.threads += 1;
            let inner = self.inner.clone();
            let spawned = thread::Builder::new()
                .name(self.inner.name.into())
                .spawn(move || worker(inner));
            if spawned.is_err() {
                st.threads -= 1;
                // The job stays queued for an existing thread; with none at
                // all, it would never run: report it rather than hang.
                if st.threads == 0 {
                    st.jobs.pop_back();
                    st.unfinished -= 1;
                    return false;
                }
            }
        }
        true
    }

    /// Whether a job is queued or running (a paused loop clock waits for
    /// blocking work in real time instead of jumping ahead of it).
    pub(crate) fn is_busy(&self) -> bool {
        self.inner.state.lock().unfinished > 0
    }

    /// Stops accepting work and waits (up to `timeout`) for running and
    /// queued jobs to finish and the threads to exit. Returns how many
    /// threads were still running at the deadline (0: all joined).
    pub(crate) fn shutdown(&self, timeout: Duration) -> usize {
        let mut st = self.inner.state.lock();
        st.shutdown = true;
        self.inner.work.notify_all();
        let deadline = Instant::now() + timeout;
        while st.threads > 0 {
            if self.inner.exited.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        st.threads
    }
}

fn worker(inner: Arc<Inner>) {
    let mut st = inner.state.lock();
    'run: loop {
        while let Some(job) = st.jobs.pop_front() {
            drop(st);
            job();
            st = inner.state.lock();
            st.unfinished -= 1;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let deadline = Instant::now() + inner.keep_alive;
        loop {
            let timed_out = inner.work.wait_until(&mut st, deadline).timed_out();
            if st.wakeups > 0 {
                // Claimed by `execute`, which already took us off `idle`.
                st.wakeups -= 1;
                continue 'run;
            }
            if st.shutdown || timed_out {
                st.idle -= 1;
                break 'run;
            }
        }
    }
    st.threads -= 1;
    inner.exited.notify_all();
}
