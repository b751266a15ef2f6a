//! asyncio's Task API at the edges: a result read again, `exception()`,
//! done callbacks that read the task and can be removed, `wait` with
//! FIRST_EXCEPTION on an error and with no tasks, `as_completed` with a
//! timeout.

use std::cell::RefCell;
use std::rc::Rc;

use aio_core::{
    Cancelled, FIRST_COMPLETED, FIRST_EXCEPTION, TaskError, TimeoutError, WaitError, as_completed, create_task, run,
    sleep, wait, yield_now,
};

#[test]
fn a_result_is_read_again_never_a_panic() {
    run(async {
        let mut t = create_task(async { 5 });
        // `&task` gives a copy, any number of times (T: Clone).
        assert_eq!((&t).await.unwrap(), 5);
        assert_eq!((&t).await.unwrap(), 5);
        assert_eq!(t.cloned_result().unwrap().unwrap(), 5);
        // Awaiting the task itself takes it; again is a clear error.
        assert_eq!((&mut t).await.unwrap(), 5);
        assert!(matches!((&mut t).await, Err(TaskError::Retrieved)));
        assert!(matches!(t.result(), Some(Err(TaskError::Retrieved))));
        assert!(matches!(t.cloned_result(), Some(Err(TaskError::Retrieved))));

        // A cancelled task's result reads as cancelled every time.
        let c = create_task(sleep(10));
        yield_now().await?;
        c.cancel();
        assert!((&c).await.unwrap_err().is_cancelled());
        assert!((&c).await.unwrap_err().is_cancelled());
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn exception_reports_the_panic_or_the_cancellation() {
    run(async {
        let t = create_task(async {
            yield_now().await.unwrap();
            panic!("boom")
        });
        assert_eq!(t.exception(), None, "still running");
        yield_now().await?;
        yield_now().await?;
        assert_eq!(t.exception(), Some(Ok(Some("boom".to_owned()))));
        let ok = create_task(async { 1 });
        yield_now().await?;
        assert_eq!(ok.exception(), Some(Ok(None)));
        let c = create_task(sleep(10));
        yield_now().await?;
        c.cancel_with("stop");
        yield_now().await?;
        assert_eq!(c.exception().unwrap().unwrap_err().message(), Some("stop"));
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn done_callbacks_read_the_task_and_can_be_removed() {
    run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let t = create_task(sleep(10));
        let l = log.clone();
        t.add_done_callback(move |t| {
            l.borrow_mut().push(format!(
                "first: done={} cancelled={} exc={:?}",
                t.done(),
                t.cancelled(),
                t.exception().map(|e| e.is_err())
            ))
        });
        let l = log.clone();
        let second = t.add_done_callback(move |_| l.borrow_mut().push("second".into()));
        let l = log.clone();
        t.add_done_callback(move |_| l.borrow_mut().push("third".into()));
        assert_eq!(t.remove_done_callback(second), 1);
        assert_eq!(t.remove_done_callback(second), 0);
        yield_now().await?;
        t.cancel();
        assert!((&t).await.unwrap_err().is_cancelled());
        // Callbacks run soon (call_soon), in order.
        yield_now().await?;
        assert_eq!(
            *log.borrow(),
            ["first: done=true cancelled=true exc=Some(true)", "third"]
        );
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

/// A done-callback id names one callback of one task: handed to another
/// task, it removes nothing there (asyncio compares the callback itself;
/// ids once numbered per task from 1 removed the other task's first).
#[test]
fn a_done_callback_id_of_another_task_removes_nothing() {
    run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let a = create_task(sleep(10));
        let b = create_task(sleep(10));
        let l = log.clone();
        let of_a = a.add_done_callback(move |_| l.borrow_mut().push("a"));
        let l = log.clone();
        let of_b = b.add_done_callback(move |_| l.borrow_mut().push("b"));
        assert_eq!(b.remove_done_callback(of_a), 0);
        assert_eq!(a.remove_done_callback(of_b), 0);
        a.cancel();
        b.cancel();
        let _ = (&a).await;
        let _ = (&b).await;
        yield_now().await?;
        assert_eq!(*log.borrow(), ["a", "b"]);
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn wait_first_exception_stops_at_an_error() {
    run(async {
        let ok = create_task(async { sleep(10).await.map(|_| 1) });
        let bad = create_task(async {
            sleep(0.001).await?;
            Err::<i32, Cancelled>(Cancelled::with_message("boom"))
        });
        let (done, pending) = wait([ok, bad], FIRST_EXCEPTION).await.unwrap();
        assert_eq!((done.len(), pending.len()), (1, 1));
        assert!(done[0].cloned_result().unwrap().unwrap().is_err());
        pending[0].cancel();
        // A cancelled task is no exception (asyncio): wait goes on.
        let a = create_task(sleep(10));
        let b = create_task(async { sleep(0.01).await });
        let a2 = a.to_ref();
        let w = create_task(wait([a, b], FIRST_EXCEPTION));
        yield_now().await?;
        a2.cancel();
        let (done, pending) = w.await.unwrap().unwrap();
        assert_eq!((done.len(), pending.len()), (2, 0));
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}

#[test]
fn wait_on_no_tasks_is_an_error() {
    run(async {
        let none: Vec<aio_core::Task<()>> = Vec::new();
        assert_eq!(wait(none, FIRST_COMPLETED).await.unwrap_err(), WaitError::Empty);
    });
}

#[test]
fn as_completed_with_a_timeout() {
    run(async {
        let mut s = as_completed([0.001, 10.0, 0.002, 20.0].map(sleep)).timeout(0.05);
        let mut ok = 0;
        let mut timed_out = 0;
        while let Some(r) = s.next().await {
            match r {
                Ok(v) => {
                    v?;
                    ok += 1;
                }
                Err(TimeoutError { .. }) => timed_out += 1,
            }
        }
        assert_eq!((ok, timed_out), (2, 2));
        Ok::<_, Cancelled>(())
    })
    .unwrap();
}
