//! CPython's own tests of eager tasks (`Lib/test/test_asyncio/
//! test_eager_task_factory.py`, the newest version: 3.12's tests, plus the
//! staggered-race tests, `test_eager_start_false`, `test_name` and
//! `DefaultTaskFactoryEagerStart`), ported step for step: the same tasks
//! and futures, the same sleeps, the same assertions.
//!
//! How the constructs map:
//!
//! - `loop.set_task_factory(asyncio.create_eager_task_factory(Task))` is
//!   the loop's eager setting ([`Builder::eager_tasks`],
//!   [`Loop::set_eager_tasks`]): aio has no factory callable, the setting
//!   is the factory. `self.loop.create_task(coro)` is
//!   [`Loop::create_task`] on a handle to the test's loop, which honours
//!   it (as the free `create_task` does); `create_task(coro,
//!   eager_start=True)` on a loop without the factory is
//!   [`create_eager_task`](aio_core::create_eager_task).
//! - CPython runs `EagerTaskFactoryLoopTests` twice, with the Python and
//!   the C `Task`; aio has one task, so each test is ported once. The
//!   counting classes (`NonEager*Tests`, `Eager*Tests`, each for the
//!   default, the Python and the C `Task`) are the modules
//!   `non_eager_tests` and `eager_tests`, with CPython's test names.
//! - `run_coro(coro)` is `loop.run_until_complete(coro)`, as in CPython
//!   (whose helper defines a `coro_runner` that checks the loop runs but
//!   never uses it). Every loop has a paused clock, so `sleep(0.1)` only
//!   orders events.
//! - `loop.create_future()` is [`Loop::create_future`]; `asyncio.current_task()`,
//!   `asyncio.all_tasks()` are [`current_task`], [`all_tasks`] (task
//!   handles compare by identity, as `assertIs` and `assertIn` do);
//!   `contextvars.ContextVar('cv', default=0)` is a `static`
//!   [`ContextVar`].
//! - A `CancelledError` that leaves `run_until_complete` is the
//!   cancellation as a value (`Err(TaskError::Cancelled(c))`, as in
//!   `core_cpython_cancel.rs`): awaiting a task that ended cancelled gives
//!   it, and the outer coroutine returns it.
//! - `AsyncTaskCounter` is a task factory that counts the tasks constructed
//!   with `eager_start=False`. `create_eager_task_factory` constructs every
//!   task with `eager_start=True` (the main task too, which the loop, not
//!   running yet, still schedules), so its count is 0 by construction, and
//!   without it the count is every task the loop made. With no factory
//!   callable to count in, the port counts by the same rule: the tasks the
//!   loop made (task ids are sequential per loop, so a probe task made
//!   after the run has the id one past the last), none when the loop's
//!   eager setting is on.
//!
//! Where aio's outcome differs by design, the test asserts aio's:
//!
//! - `non_eager_tests::test_recursive_taskgroups` and
//!   `non_eager_tests::test_recursive_gather`: asyncio's count is 781
//!   (1 + 5 + 5² + 5³ + 5⁴: the main task and its 780 descendants, each a
//!   task); aio's `TaskGroup` and `gather` children are not tasks (they run
//!   inside the calling task, so they may borrow from it: the
//!   `combinator::group` docs and README's `gather` and `TaskGroup` rows),
//!   so the loop makes the main task alone, and the count is 1. The eager
//!   counts (0) and the chain's (0 and 1) are asyncio's.
//!
//! A related difference no test here asserts: under the eager factory,
//! asyncio's `tg.create_task(coro)` runs the child's first step inside the
//! call (the child is a task, made by the factory); an aio `TaskGroup`
//! child starts when the body next waits, whatever the loop's setting
//! ([`TaskGroup::create_task`]'s docs). `gather` polls its children, in
//! order, when it is first awaited, which is the order asyncio's eager
//! factory runs their first steps in.
//!
//! Parts of tests not ported:
//!
//! - in `test_eager_task_factory_set`, `assertIs(loop.get_task_factory(),
//!   factory)` and `assertIsInstance(t, self.Task)`: aio has no getter for
//!   the loop's eager setting, and a task handle's type is static
//!   ([`Task<T>`](aio_core::Task)); the task is created and awaited.
//! - `test_name` and `test_eager_start_true_with_default_factory` name the
//!   task in `create_task(..., name=...)`; aio's `create_task` takes no
//!   name (names are set with `set_name` after the call, after an eager
//!   first step), so `test_eager_start_true_with_default_factory` checks
//!   that the eager step saw the task's own name. CPython's `test_name`
//!   runs `coro()` itself, not `main()` (its `main()` is never run), so it
//!   asserts nothing; the port runs `coro()` as CPython does.
//!
//! Tests not ported:
//!
//! - `test_staggered_race_with_eager_tasks`,
//!   `test_staggered_race_with_eager_tasks_no_delay`:
//!   `asyncio.staggered.staggered_race`, the private helper behind happy
//!   eyeballs, has no counterpart in aio.
//! - `test_eager_start_false`: `create_task(coro, eager_start=False,
//!   name=...)` on an eager loop, a per-call override of the factory
//!   that aio's `create_task` does not take (nor a name).
//! - `test_issue105987`: a Python subprocess that calls the C module's
//!   private `_swap_current_task` with a dummy loop and task.
//! - `test_issue122332`: `task.get_coro()` is `None` once the task is done;
//!   an aio task does not expose its future.

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::rc::Rc;

use aio_core::{
    Builder, Cancelled, ContextVar, Failure, Future, Loop, TaskError, TaskGroup, TaskGroupError, TaskRef, all_tasks,
    create_eager_task, current_task, gather, sleep,
};

// --- EagerTaskFactoryLoopTests -------------------------------------------------

/// `setUp`: a new loop (paused clock) whose task factory is the eager one.
fn set_up() -> Loop {
    Builder::new().paused_clock().eager_tasks(true).build()
}

/// `self.run_coro(coro)`: `loop.run_until_complete(coro)`.
fn run_coro<T>(lp: &Loop, coro: impl StdFuture<Output = T> + 'static) -> Result<T, TaskError> {
    lp.run_until_complete(coro)
}

#[test]
fn test_eager_task_factory_set() {
    let lp = set_up();
    // (assertIs(loop.get_task_factory(), factory), assertIsInstance(t,
    // Task): the module docs.)
    let l = lp.clone();
    let run = async move {
        let t = l.create_task(async {}); // noop()
        t.await.unwrap();
    };
    run_coro(&lp, run).unwrap();
    lp.close();
}

#[test]
fn test_await_future_during_eager_step() {
    let lp = set_up();
    let l = lp.clone();
    let run = async move {
        let fut: Future<&'static str> = l.create_future();
        let f = fut.clone();
        let t = l.create_task(async move {
            // set_result(fut, 'my message')
            f.set_result("my message").unwrap();
        });
        // assert the eager step completed the task
        assert!(t.done());
        fut.await.unwrap()
    };
    assert_eq!(run_coro(&lp, run).unwrap(), "my message");
    lp.close();
}

#[test]
fn test_eager_completion() {
    let lp = set_up();
    let l = lp.clone();
    let run = async move {
        let t = l.create_task(async { "hello" });
        // assert the eager step completed the task
        assert!(t.done());
        t.await.unwrap()
    };
    assert_eq!(run_coro(&lp, run).unwrap(), "hello");
    lp.close();
}

#[test]
fn test_block_after_eager_step() {
    let lp = set_up();
    let l = lp.clone();
    let run = async move {
        let t = l.create_task(async {
            sleep(0.1).await?;
            Ok::<_, Cancelled>("finished after blocking")
        });
        assert!(!t.done());
        let t2 = t.to_ref();
        let result = t.await.unwrap().unwrap();
        assert!(t2.done());
        result
    };
    assert_eq!(run_coro(&lp, run).unwrap(), "finished after blocking");
    lp.close();
}

#[test]
fn test_cancellation_after_eager_completion() {
    let lp = set_up();
    let l = lp.clone();
    let run = async move {
        let t = l.create_task(async { "finished without blocking" });
        t.cancel();
        let t2 = t.to_ref();
        let result = t.await.unwrap();
        // finished task can't be cancelled
        assert!(!t2.cancelled());
        result
    };
    assert_eq!(run_coro(&lp, run).unwrap(), "finished without blocking");
    lp.close();
}

#[test]
fn test_cancellation_after_eager_step_blocks() {
    let lp = set_up();
    let l = lp.clone();
    let run = async move {
        let t = l.create_task(async {
            sleep(0.1).await?;
            Ok::<_, Cancelled>("finished after blocking")
        });
        t.cancel_with("cancellation message");
        assert!(t.cancelling() > 0);
        // `result = await t` raises; the error escapes run (the module docs).
        t.await
    };
    let cm = match run_coro(&lp, run).expect("run is not cancelled (the module docs)") {
        Err(TaskError::Cancelled(c)) => c,
        other => panic!("expected CancelledError, got {other:?}"),
    };
    assert_eq!(Some("cancellation message"), cm.message());
    lp.close();
}

#[test]
fn test_current_task() {
    let lp = set_up();
    let captured_current_task: Rc<RefCell<Option<TaskRef>>> = Rc::new(RefCell::new(None));
    let (l, captured) = (lp.clone(), captured_current_task.clone());
    let run = async move {
        let c = captured.clone();
        let t = l.create_task(async move {
            *c.borrow_mut() = current_task();
            // verify the task before and after blocking is identical
            sleep(0.1).await?;
            assert_eq!(current_task(), *c.borrow());
            Ok::<_, Cancelled>(())
        });
        assert_eq!(*captured.borrow(), Some(t.to_ref()));
        t.await.unwrap().unwrap();
    };
    run_coro(&lp, run).unwrap();
    *captured_current_task.borrow_mut() = None;
    lp.close();
}

#[test]
fn test_all_tasks_with_eager_completion() {
    let lp = set_up();
    let l = lp.clone();
    let run = async move {
        let captured_all_tasks: Rc<RefCell<Vec<TaskRef>>> = Rc::default();
        let c = captured_all_tasks.clone();
        let t = l.create_task(async move {
            *c.borrow_mut() = all_tasks();
        });
        assert!(captured_all_tasks.borrow().contains(&t));
        assert!(!all_tasks().contains(&t));
    };
    run_coro(&lp, run).unwrap();
    lp.close();
}

#[test]
fn test_all_tasks_with_blocking() {
    let lp = set_up();
    let l = lp.clone();
    let run = async move {
        let captured_eager_all_tasks: Rc<RefCell<Vec<TaskRef>>> = Rc::default();
        let fut1: Future<()> = l.create_future();
        let fut2: Future<()> = l.create_future();
        let (c, f1, f2) = (captured_eager_all_tasks.clone(), fut1.clone(), fut2.clone());
        let t = l.create_task(async move {
            *c.borrow_mut() = all_tasks();
            f1.await.unwrap();
            f2.set_result(()).unwrap();
        });
        assert!(captured_eager_all_tasks.borrow().contains(&t));
        assert!(all_tasks().contains(&t));
        fut1.set_result(()).unwrap();
        fut2.await.unwrap();
        assert!(!all_tasks().contains(&t));
    };
    run_coro(&lp, run).unwrap();
    lp.close();
}

#[test]
fn test_context_vars() {
    static CV: ContextVar<u32> = ContextVar::new("cv", 0);

    let lp = set_up();
    let coro_first_step_ran = Rc::new(Cell::new(false));
    let coro_second_step_ran = Rc::new(Cell::new(false));
    let (first, second) = (coro_first_step_ran.clone(), coro_second_step_ran.clone());
    let coro = async move {
        assert_eq!(CV.get(), 1);
        CV.set(2);
        assert_eq!(CV.get(), 2);
        first.set(true);
        sleep(0.1).await?;
        assert_eq!(CV.get(), 2);
        CV.set(3);
        assert_eq!(CV.get(), 3);
        second.set(true);
        Ok::<_, Cancelled>(())
    };
    let l = lp.clone();
    let run = async move {
        CV.set(1);
        let t = l.create_task(coro);
        assert!(coro_first_step_ran.get());
        assert!(!coro_second_step_ran.get());
        assert_eq!(CV.get(), 1);
        t.await.unwrap().unwrap();
        assert!(coro_second_step_ran.get());
        assert_eq!(CV.get(), 1);
    };
    run_coro(&lp, run).unwrap();
    lp.close();
}

// --- CEagerTaskFactoryLoopTests --------------------------------------------------

#[test]
fn test_name() {
    let lp = set_up();
    let name: Rc<RefCell<Option<String>>> = Rc::default();
    let n = name.clone();
    let coro = async move {
        *n.borrow_mut() = current_task().map(|t| t.name());
    };
    // CPython's `main()` (`create_task(coro(), name="test name")`, then
    // `assertEqual(name, "test name")`) is never run: it runs `coro()`
    // (the module docs).
    run_coro(&lp, coro).unwrap();
    lp.close();
}

// --- the task counting tests ---------------------------------------------------

/// `AsyncTaskCounter`: the tasks `lp` makes without an eager start, by
/// the rule of the module docs.
struct AsyncTaskCounter {
    lp: Loop,
    eager: bool,
}

impl AsyncTaskCounter {
    /// Sets `lp`'s task factory: eager or not.
    fn new(lp: &Loop, eager: bool) -> AsyncTaskCounter {
        lp.set_eager_tasks(eager);
        AsyncTaskCounter { lp: lp.clone(), eager }
    }

    /// `counter.get()` (once per loop: the probe task counts in a second).
    fn get(&self) -> u64 {
        // Task ids are sequential per loop, from 1: the probe takes the
        // next one.
        let probe = self.lp.create_task(async {});
        let made = probe.id() - 1;
        self.lp.run_until_complete(probe).unwrap().unwrap();
        if self.eager { 0 } else { made }
    }
}

/// `awaitable_chain(depth)`: `depth` nested awaits, no task.
async fn awaitable_chain(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    1 + Box::pin(awaitable_chain(depth - 1)).await
}

/// What `recursive_taskgroups` raises: a cancellation, or a nested
/// group's failures (`ExceptionGroup`).
#[derive(Debug)]
#[allow(dead_code)] // read through Debug only
enum GroupError {
    Cancelled(Cancelled),
    Group(Vec<Failure<GroupError>>),
}

impl From<Cancelled> for GroupError {
    fn from(c: Cancelled) -> GroupError {
        GroupError::Cancelled(c)
    }
}

impl From<TaskGroupError<GroupError>> for GroupError {
    fn from(e: TaskGroupError<GroupError>) -> GroupError {
        match e {
            TaskGroupError::Cancelled(c) => GroupError::Cancelled(c),
            TaskGroupError::Failed(v) => GroupError::Group(v),
        }
    }
}

/// `recursive_taskgroups(width, depth)`: a group of `width` children,
/// each the same with `depth - 1`.
async fn recursive_taskgroups(width: usize, depth: u32) -> Result<(), GroupError> {
    if depth == 0 {
        return Ok(());
    }
    TaskGroup::run(|tg| async move {
        let _futures: Vec<_> = (0..width)
            .map(|_| tg.create_task(Box::pin(recursive_taskgroups(width, depth - 1))))
            .collect();
        Ok(())
    })
    .await?;
    Ok(())
}

/// `recursive_gather(width, depth)`: gathers `width` of the same with
/// `depth - 1`.
async fn recursive_gather(width: usize, depth: u32) -> Result<(), Cancelled> {
    if depth == 0 {
        return Ok(());
    }
    gather((0..width).map(|_| Box::pin(recursive_gather(width, depth - 1)))).await?;
    Ok(())
}

/// `BaseTaskCountingTests.setUp`: a new loop and its counter.
fn counting_set_up(eager: bool) -> (Loop, AsyncTaskCounter) {
    let lp = Builder::new().paused_clock().build();
    let counter = AsyncTaskCounter::new(&lp, eager);
    (lp, counter)
}

/// `test_awaitables_chain`.
fn awaitables_chain(eager: bool) {
    let (lp, counter) = counting_set_up(eager);
    let observed_depth = lp.run_until_complete(awaitable_chain(100)).unwrap();
    assert_eq!(observed_depth, 100);
    assert_eq!(counter.get(), if eager { 0 } else { 1 });
    lp.close();
}

/// `test_recursive_taskgroups`.
fn recursive_taskgroups_count(eager: bool, expected_task_count: u64) {
    let (lp, counter) = counting_set_up(eager);
    lp.run_until_complete(recursive_taskgroups(5, 4)).unwrap().unwrap();
    assert_eq!(counter.get(), expected_task_count);
    lp.close();
}

/// `test_recursive_gather`.
fn recursive_gather_count(eager: bool, expected_task_count: u64) {
    let (lp, counter) = counting_set_up(eager);
    lp.run_until_complete(recursive_gather(5, 4)).unwrap().unwrap();
    assert_eq!(counter.get(), expected_task_count);
    lp.close();
}

/// `BaseNonEagerTaskFactoryTests`: `NonEagerTests`, `NonEagerPyTaskTests`,
/// `NonEagerCTaskTests`.
mod non_eager_tests {
    use super::*;

    /// asyncio's `expected_task_count` is 781 (1 + 5 + 5^2 + 5^3 + 5^4);
    /// aio's children are not tasks (the module docs): the main task alone.
    const EXPECTED_TASK_COUNT: u64 = 1;

    #[test]
    fn test_awaitables_chain() {
        awaitables_chain(false);
    }

    #[test]
    fn test_recursive_taskgroups() {
        recursive_taskgroups_count(false, EXPECTED_TASK_COUNT);
    }

    #[test]
    fn test_recursive_gather() {
        recursive_gather_count(false, EXPECTED_TASK_COUNT);
    }
}

/// `BaseEagerTaskFactoryTests`: `EagerTests`, `EagerPyTaskTests`,
/// `EagerCTaskTests`.
mod eager_tests {
    use super::*;

    const EXPECTED_TASK_COUNT: u64 = 0;

    #[test]
    fn test_awaitables_chain() {
        awaitables_chain(true);
    }

    #[test]
    fn test_recursive_taskgroups() {
        recursive_taskgroups_count(true, EXPECTED_TASK_COUNT);
    }

    #[test]
    fn test_recursive_gather() {
        recursive_gather_count(true, EXPECTED_TASK_COUNT);
    }
}

// --- DefaultTaskFactoryEagerStart ------------------------------------------------

#[test]
fn test_eager_start_true_with_default_factory() {
    let name: Rc<RefCell<Option<String>>> = Rc::default();
    let n = name.clone();
    let main = async move {
        let nn = n.clone();
        // create_task(asyncfn(), eager_start=True, name="example")
        let t = create_eager_task(async move {
            *nn.borrow_mut() = current_task().map(|t| t.name());
        });
        assert!(t.done());
        // aio names a task after the call (the module docs): the eager
        // step saw the task's own name.
        assert_eq!(*n.borrow(), Some(t.name()));
        t.await.unwrap();
    };
    // asyncio.run(main(), loop_factory=asyncio.EventLoop)
    aio_core::run(main);
}
