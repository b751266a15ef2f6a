//! Tasks: panics that never take the loop down, reports of unretrieved
//! panics, names, done callbacks, current/all tasks, eager tasks, wait and
//! as_completed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use aio_core::{
    Builder, Cancelled, ReturnWhen, all_tasks, as_completed, create_eager_task, create_task, current_task, run, sleep,
    wait, yield_now,
};

#[test]
fn a_panicking_task_does_not_take_the_loop_down() {
    let lp = aio_core::Loop::new();
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    lp.set_exception_handler(Some(move |ctx: &aio_core::ExceptionContext| {
        r.borrow_mut().push(ctx.to_string())
    }));
    let out = lp.run_until_complete(async {
        let awaited = create_task(async { panic!("awaited boom") });
        let detached = create_task(async {
            yield_now().await.unwrap();
            panic!("detached boom")
        });
        detached.set_name("worker-7");
        drop(detached);
        let e = awaited.await.unwrap_err();
        assert_eq!(e.into_panic().unwrap().message(), Some("awaited boom"));
        sleep(0.001).await.unwrap();
        "still running"
    });
    assert_eq!(out.unwrap(), "still running");
    lp.close();
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].contains("worker-7") && reports[0].contains("detached boom"),
        "{}",
        reports[0]
    );
}

#[test]
fn a_dropped_handle_of_a_panicked_task_is_reported() {
    let lp = aio_core::Loop::new();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    lp.set_exception_handler(Some(move |_: &aio_core::ExceptionContext| n2.set(n2.get() + 1)));
    lp.run_until_complete(async {
        let t = create_task(async { panic!("x") });
        yield_now().await.unwrap();
        yield_now().await.unwrap();
        assert!(t.done() && t.panicked());
        drop(t); // never retrieved
    })
    .unwrap();
    lp.close();
    assert_eq!(n.get(), 1);
}

#[test]
fn run_resumes_a_panic_of_the_main_future() {
    let r = std::panic::catch_unwind(|| run(async { panic!("main boom") }));
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"main boom"));
}

#[test]
fn names_ids_current_and_all_tasks() {
    run(async {
        let me = current_task().unwrap();
        assert!(me.name().starts_with("Task-"));
        let t = create_task(async {
            let me = current_task().unwrap();
            me.name()
        });
        t.set_name("child");
        assert_eq!(all_tasks().len(), 2);
        assert_ne!(t.id(), me.id());
        assert_eq!(t.await.unwrap(), "child");
        assert_eq!(all_tasks().len(), 1);
    });
}

#[test]
fn done_callbacks_run_soon_after_completion() {
    run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let t = create_task(async { 5 });
        let l = log.clone();
        t.add_done_callback(move |t| l.borrow_mut().push(format!("{} cancelled={}", t.done(), t.cancelled())));
        let v = (&mut { t }).await.unwrap();
        assert_eq!(v, 5);
        yield_now().await.unwrap();
        assert_eq!(*log.borrow(), ["true cancelled=false"]);
    });
}

#[test]
fn eager_tasks_finish_inside_create_task() {
    run(async {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let t = create_eager_task(async move {
            r.set(true);
            1
        });
        assert!(ran.get() && t.done());
        assert_eq!(t.await.unwrap(), 1);
        // A task that waits is queued as usual after its first step.
        let t = create_eager_task(async {
            sleep(0.001).await?;
            Ok::<_, Cancelled>(2)
        });
        assert!(!t.done());
        assert_eq!(t.await.unwrap().unwrap(), 2);
    });
    // The builder's factory makes every create_task eager.
    let lp = Builder::new().eager_tasks(true).build();
    lp.run_until_complete(async {
        let t = create_task(async { 3 });
        assert!(t.done());
    })
    .unwrap();
    lp.close();
}

#[test]
fn wait_first_completed_returns_done_and_pending() {
    run(async {
        let a = create_task(async { sleep(0.01).await.map(|_| "a") });
        let b = create_task(async { sleep(10).await.map(|_| "b") });
        let (mut done, pending) = wait([a, b], ReturnWhen::FirstCompleted).await.unwrap();
        assert_eq!((done.len(), pending.len()), (1, 1));
        assert_eq!(done[0].result().unwrap().unwrap()?, "a");
        for t in pending {
            t.cancel();
        }
        // With a timeout: nothing finishes in time.
        let c = create_task(async { sleep(10).await });
        let (done, pending) = wait([c], ReturnWhen::AllCompleted).timeout(0.01).await.unwrap();
        assert_eq!((done.len(), pending.len()), (0, 1));
        pending[0].cancel();
        // FIRST_EXCEPTION stops at a panic.
        let p = create_task(async {
            yield_now().await.unwrap();
            panic!("p")
        });
        let q = create_task(async { sleep(10).await.unwrap() });
        let (done, pending) = wait([p, q], ReturnWhen::FirstException).await.unwrap();
        assert!(done[0].panicked());
        pending[0].cancel();
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn as_completed_yields_in_completion_order() {
    run(async {
        let mut s = as_completed([0.03, 0.01, 0.02].map(|d| async move {
            sleep(d).await?;
            Ok::<_, Cancelled>(d)
        }));
        let mut v = vec![];
        while let Some(r) = s.next().await {
            v.push(r?);
        }
        assert_eq!(v, [0.01, 0.02, 0.03]);
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn many_tasks_spawn_and_join() {
    run(async {
        let tasks: Vec<_> = (0..10_000u64).map(|i| create_task(async move { i })).collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        assert_eq!(sum, 10_000 * 9_999 / 2);
    });
}
