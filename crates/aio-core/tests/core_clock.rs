//! The paused (test) clock: instant timeouts with the right virtual time,
//! deadline order, `advance`, `pause`, callbacks on the virtual clock,
//! blocking work that holds the clock, and the macro's `start_paused`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use aio_core::{Builder, Cancelled, Loop, TimeoutError, create_task, monotonic, sleep, time, timeout, wait_for};

fn paused() -> Loop {
    Builder::new().paused_clock().build()
}

/// Virtual seconds since `t0`, rounded to the microsecond (f64 seconds
/// since the process epoch keep well under that).
fn since(t0: f64, t: f64) -> f64 {
    ((t - t0) * 1e6).round() / 1e6
}

#[test]
fn a_30_second_timeout_resolves_at_once_with_30_virtual_seconds() {
    let lp = paused();
    let t0 = lp.time();
    let real = Instant::now();
    let r = lp
        .run_until_complete(async { wait_for(sleep(3600), 30).await })
        .unwrap();
    assert_eq!(r, Err(TimeoutError));
    assert_eq!(since(t0, lp.time()), 30.0);
    assert!(real.elapsed() < Duration::from_secs(5), "took {:?}", real.elapsed());
    lp.close();
}

#[test]
fn timers_fire_in_deadline_order_each_at_its_deadline() {
    let lp = paused();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    lp.run_until_complete(async move {
        let t0 = monotonic();
        let mut tasks = Vec::new();
        for (name, d) in [("c", 3.0), ("a", 1.0), ("d", 3.5), ("b", 2.0), ("a2", 1.0)] {
            let l = l.clone();
            tasks.push(create_task(async move {
                sleep(d).await?;
                l.borrow_mut().push((name, since(t0, monotonic())));
                Ok::<_, Cancelled>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    })
    .unwrap();
    assert_eq!(
        *log.borrow(),
        [("a", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0), ("d", 3.5)]
    );
    lp.close();
}

#[test]
fn call_later_and_call_at_follow_the_virtual_clock() {
    let lp = paused();
    let t0 = lp.time();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    let lp1 = lp.clone();
    lp.call_later(10, move || l1.borrow_mut().push(("later", lp1.time())))
        .unwrap();
    let lp2 = lp.clone();
    let h = lp
        .call_at(t0 + 5.0, move || l2.borrow_mut().push(("at", lp2.time())))
        .unwrap();
    assert_eq!(since(t0, h.when()), 5.0);
    lp.run_until_complete(sleep(20)).unwrap().unwrap();
    let got: Vec<_> = log.borrow().iter().map(|(n, t)| (*n, since(t0, *t))).collect();
    assert_eq!(got, [("at", 5.0), ("later", 10.0)]);
    assert_eq!(since(t0, lp.time()), 20.0);
    lp.close();
}

#[test]
fn advance_fires_what_is_due_and_lets_it_run_first() {
    let lp = paused();
    lp.run_until_complete(async {
        let t0 = monotonic();
        let timer = create_task(async move {
            sleep(5).await?;
            Ok::<_, Cancelled>(since(t0, monotonic()))
        });
        aio_core::yield_now().await?; // the timer task arms its sleep
        time::advance(4.0).await?;
        assert!(!timer.done());
        assert_eq!(since(t0, monotonic()), 4.0);
        time::advance(Duration::from_secs(1)).await?;
        assert!(timer.done(), "the woken task ran before advance returned");
        assert_eq!(timer.await.unwrap().unwrap(), 5.0);
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    lp.close();
}

#[test]
fn advance_past_several_deadlines_fires_them_in_order() {
    let lp = paused();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    lp.run_until_complete(async move {
        for (name, d) in [("2", 2), ("1", 1), ("3", 3)] {
            let l = l.clone();
            create_task(async move {
                sleep(d).await?;
                l.borrow_mut().push(name);
                Ok::<_, Cancelled>(())
            });
        }
        aio_core::yield_now().await?;
        time::advance(10).await?;
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    assert_eq!(*log.borrow(), ["1", "2", "3"]);
    lp.close();
}

#[test]
fn advance_without_a_paused_clock_panics() {
    let lp = Loop::new();
    let r = lp.run_until_complete(async { time::advance(1).await });
    let p = r.unwrap_err().into_panic().expect("a panic");
    assert!(p.message().unwrap().contains("paused clock"), "{p}");
    lp.close();
}

#[test]
fn advance_reports_a_nan_delay_and_moves_nothing() {
    let lp = paused();
    let t0 = lp.time();
    let r = lp.run_until_complete(async { time::advance(f64::NAN).await }).unwrap();
    assert!(r.unwrap_err().is_invalid_delay());
    assert_eq!(lp.time(), t0);
    lp.close();
}

#[test]
fn pause_at_run_time_makes_later_sleeps_virtual() {
    let lp = Loop::new();
    let real = Instant::now();
    let virt = lp
        .run_until_complete(async {
            assert!(!time::is_paused());
            time::pause();
            assert!(time::is_paused());
            let t0 = monotonic();
            sleep(600).await?;
            Ok::<_, Cancelled>(since(t0, monotonic()))
        })
        .unwrap()
        .unwrap();
    assert_eq!(virt, 600.0);
    assert!(real.elapsed() < Duration::from_secs(5));
    lp.close();
}

#[test]
fn the_clock_does_not_jump_while_blocking_work_runs() {
    let lp = paused();
    let t0 = lp.time();
    let r = lp
        .run_until_complete(async {
            timeout(
                1,
                aio_core::to_thread(|| {
                    std::thread::sleep(Duration::from_millis(50));
                    7
                }),
            )
            .await
        })
        .unwrap();
    assert_eq!(
        r.unwrap().unwrap(),
        7,
        "the blocking call finished before the 1 s timeout"
    );
    assert!(since(t0, lp.time()) < 1.0);
    lp.close();
}

#[test]
fn the_paused_clock_is_per_loop() {
    let lp = paused();
    lp.run_until_complete(async {
        let t0 = monotonic();
        sleep(1000).await?;
        // Another thread reads the real clock meanwhile.
        let other = std::thread::spawn(monotonic).join().unwrap();
        assert!(monotonic() - t0 >= 1000.0);
        assert!(other < t0 + 1000.0, "the other thread's clock did not jump");
        Ok::<_, Cancelled>(())
    })
    .unwrap()
    .unwrap();
    lp.close();
}

#[test]
fn a_timeout_that_is_not_reached_keeps_the_value_and_the_time() {
    let lp = paused();
    let t0 = lp.time();
    let r = lp
        .run_until_complete(async {
            timeout(30, async {
                sleep(2).await?;
                Ok::<_, Cancelled>("in time")
            })
            .await
        })
        .unwrap();
    assert_eq!(r, Ok(Ok("in time")));
    assert_eq!(since(t0, lp.time()), 2.0);
    lp.close();
}

#[test]
fn closing_a_paused_loop_does_not_wait_in_real_time() {
    // A task that ignores its cancellation keeps sleeping: the shutdown
    // timeout passes on the virtual clock.
    let lp = Builder::new()
        .paused_clock()
        .shutdown_timeout(Duration::from_secs(30))
        .build();
    lp.run_until_complete(async {
        create_task(async {
            loop {
                let _ = sleep(1).await;
            }
        });
        sleep(0).await
    })
    .unwrap()
    .unwrap();
    let real = Instant::now();
    lp.close();
    assert!(real.elapsed() < Duration::from_secs(5));
}

#[aio_core::test(start_paused = true)]
async fn the_test_macro_starts_paused() {
    assert!(time::is_paused());
    let real = Instant::now();
    let t0 = monotonic();
    assert_eq!(timeout(30, sleep(3600)).await, Err(TimeoutError));
    assert_eq!(since(t0, monotonic()), 30.0);
    assert!(real.elapsed() < Duration::from_secs(5));
}

#[aio_core::test]
async fn the_test_macro_without_arguments_runs_on_the_real_clock() {
    assert!(!time::is_paused());
    sleep(0.001).await.unwrap();
}
