//! `Lock` and `Semaphore` under random interleavings of acquires, holds
//! across yields, releases and cancellations (of waiters, of waiters just
//! served, of holders), from fixed seeds on one loop, checked step by step
//! against a model of asyncio's fair semaphore:
//!
//! - an acquire that finds a permit free and nobody waiting takes it at
//!   once; any other waits in arrival order;
//! - a release hands its permit to the first waiter (who takes it when it
//!   runs), or frees it;
//! - a waiter handed a permit counts as waiting until it runs: acquires
//!   made meanwhile queue behind it even if a permit is free, and each
//!   acquire, as it ends, hands free permits to the waiters behind;
//! - a waiter cancelled before it took a handed permit passes it on;
//! - never more holders than permits, and at the end every permit is back.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use aio_core::{Task, create_task, run, yield_now};
use aio_sync::{Lock, Semaphore};
use aio_test::Rng;

/// The fair semaphore as asyncio defines it, fed the events the tasks see
/// in the order they see them.
struct Model {
    seed: u64,
    free: usize,
    permits: usize,
    /// Waiting, in arrival order.
    queue: VecDeque<usize>,
    /// Handed a permit, not yet run.
    owed: Vec<usize>,
    holders: Vec<usize>,
    /// An arrival that must take its permit at once (next event).
    immediate: Option<usize>,
}

impl Model {
    fn new(seed: u64, permits: usize) -> Model {
        Model {
            seed,
            free: permits,
            permits,
            queue: VecDeque::new(),
            owed: Vec::new(),
            holders: Vec::new(),
            immediate: None,
        }
    }

    fn arrive(&mut self, id: usize) {
        assert_eq!(
            self.immediate, None,
            "seed {}: an immediate acquire did not happen",
            self.seed
        );
        if self.free > 0 && self.queue.is_empty() && self.owed.is_empty() {
            self.free -= 1;
            self.immediate = Some(id);
        } else {
            self.queue.push_back(id);
        }
    }

    fn acquired(&mut self, id: usize) {
        if self.immediate == Some(id) {
            self.immediate = None;
        } else {
            let at = self.owed.iter().position(|&o| o == id);
            let Some(at) = at else {
                panic!(
                    "seed {}: task {id} took a permit it was not handed (queue {:?}, owed {:?}, free {})",
                    self.seed, self.queue, self.owed, self.free
                );
            };
            self.owed.remove(at);
        }
        self.holders.push(id);
        assert!(
            self.holders.len() <= self.permits,
            "seed {}: too many holders",
            self.seed
        );
        self.wake_as_allowed();
    }

    /// What every acquire does as it ends (asyncio's `finally`): while
    /// permits are free, the next waiters get them.
    fn wake_as_allowed(&mut self) {
        while self.free > 0 {
            let Some(next) = self.queue.pop_front() else { break };
            self.free -= 1;
            self.owed.push(next);
        }
    }

    /// A permit comes back: to the first waiter, or to the pool.
    fn give_back(&mut self) {
        match self.queue.pop_front() {
            Some(next) => self.owed.push(next),
            None => self.free += 1,
        }
    }

    fn released(&mut self, id: usize) {
        let at = self.holders.iter().position(|&h| h == id).expect("a holder releases");
        self.holders.remove(at);
        self.give_back();
    }

    /// The acquire of `id` ended cancelled.
    fn cancelled(&mut self, id: usize) {
        assert_ne!(
            self.immediate,
            Some(id),
            "seed {}: an acquire with a free permit was cancelled",
            self.seed
        );
        if let Some(at) = self.queue.iter().position(|&q| q == id) {
            self.queue.remove(at);
        } else if let Some(at) = self.owed.iter().position(|&o| o == id) {
            self.owed.remove(at);
            self.free += 1;
        } else {
            panic!("seed {}: task {id} cancelled while not waiting", self.seed);
        }
        self.wake_as_allowed();
    }

    fn finish(&self) {
        assert!(self.holders.is_empty() && self.owed.is_empty() && self.queue.is_empty());
        assert_eq!(self.free, self.permits, "seed {}: permits lost", self.seed);
    }
}

/// What a primitive says of itself, to compare with the model after every
/// step: its free permits (asyncio's `_value`), and `locked()`.
trait Observed {
    fn free(&self) -> Option<usize>;
    fn is_locked(&self) -> bool;
    /// asyncio's `locked()` in the model's terms.
    fn locked_in(model: &Model) -> bool;
}

impl Observed for Semaphore {
    fn free(&self) -> Option<usize> {
        Some(self.value())
    }
    fn is_locked(&self) -> bool {
        self.locked()
    }
    /// No permit free, or tasks wait (served ones that have not run too).
    fn locked_in(m: &Model) -> bool {
        m.free == 0 || !m.queue.is_empty() || !m.owed.is_empty()
    }
}

impl Observed for Lock {
    /// asyncio's `Lock` has no count.
    fn free(&self) -> Option<usize> {
        None
    }
    fn is_locked(&self) -> bool {
        self.locked()
    }
    /// A task holds it (not while it is handed to one that has not run).
    fn locked_in(m: &Model) -> bool {
        !m.holders.is_empty()
    }
}

impl Model {
    fn check<P: Observed>(&self, prim: &P) {
        let what = format!(
            "seed {}: queue {:?}, owed {:?}, holders {:?}",
            self.seed, self.queue, self.owed, self.holders
        );
        if let Some(free) = prim.free() {
            assert_eq!(free, self.free, "{what}: free permits");
        }
        assert_eq!(prim.is_locked(), P::locked_in(self), "{what}: locked()");
    }
}

/// One worker: acquires, holds across `hold` yields, releases, `rounds`
/// times, telling the model each step as it happens and checking the
/// primitive's count against it.
macro_rules! worker {
    ($prim:expr, $model:expr, $id:expr, $rounds:expr, $hold:expr) => {{
        let (prim, model, id, rounds, hold) = ($prim, $model, $id, $rounds, $hold);
        async move {
            for _ in 0..rounds {
                model.borrow_mut().arrive(id);
                let guard = match prim.acquire().await {
                    Ok(g) => g,
                    Err(_) => {
                        model.borrow_mut().cancelled(id);
                        model.borrow().check(&*prim);
                        return;
                    }
                };
                model.borrow_mut().acquired(id);
                model.borrow().check(&*prim);
                let mut cancelled = false;
                for _ in 0..hold {
                    if yield_now().await.is_err() {
                        cancelled = true;
                        break;
                    }
                }
                model.borrow_mut().released(id);
                drop(guard);
                model.borrow().check(&*prim);
                if cancelled {
                    return;
                }
            }
        }
    }};
}

/// Random cancels and fresh workers while the workers run; then the
/// workers are left to finish, and the model must end with every permit
/// back.
async fn drive(rng: &mut Rng, model: &Rc<RefCell<Model>>, mut spawn: impl FnMut(usize, usize, usize) -> Task<()>) {
    let mut tasks: Vec<Task<()>> = (0..2 + rng.below(6))
        .map(|id| spawn(id, 1 + rng.below(5), rng.below(4)))
        .collect();
    for _ in 0..120 {
        match rng.below(10) {
            0 | 1 => {
                tasks[rng.below(tasks.len())].cancel();
            }
            2 => {
                let id = tasks.len();
                tasks.push(spawn(id, 1 + rng.below(5), rng.below(4)));
            }
            _ => {}
        }
        for _ in 0..rng.below(3) {
            let _ = yield_now().await;
        }
    }
    // Left alone, every worker finishes its rounds: a waiter left waiting
    // with a permit free (a lost hand-off) would not.
    for _ in 0..20_000 {
        if tasks.iter().all(|t| t.done()) {
            break;
        }
        let _ = yield_now().await;
    }
    let stuck: Vec<_> = tasks.iter().filter(|t| !t.done()).map(|t| t.name()).collect();
    assert!(
        stuck.is_empty(),
        "seed {}: workers never finished: {stuck:?}",
        model.borrow().seed
    );
    for t in tasks {
        let _ = t.await;
    }
    model.borrow().finish();
}

#[test]
fn random_semaphore_runs_match_the_fair_model() {
    for seed in 1..=300 {
        run(async move {
            let mut rng = Rng::new(seed);
            let permits = 1 + rng.below(3);
            let sem = Rc::new(Semaphore::new(permits));
            let model = Rc::new(RefCell::new(Model::new(seed, permits)));
            let m = model.clone();
            drive(&mut rng, &model, |id, rounds, hold| {
                create_task(worker!(sem.clone(), m.clone(), id, rounds, hold))
            })
            .await;
            assert_eq!(sem.value(), permits, "seed {seed}: the semaphore's own count");
        });
    }
}

#[test]
fn random_lock_runs_match_the_fair_model() {
    for seed in 1..=300 {
        run(async move {
            let mut rng = Rng::new(seed);
            let lock = Rc::new(Lock::new());
            let model = Rc::new(RefCell::new(Model::new(seed, 1)));
            let m = model.clone();
            drive(&mut rng, &model, |id, rounds, hold| {
                create_task(worker!(lock.clone(), m.clone(), id, rounds, hold))
            })
            .await;
            assert!(!lock.locked(), "seed {seed}: the lock is still locked");
        });
    }
}
