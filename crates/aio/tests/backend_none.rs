//! The facade with or without an I/O backend: built without `poll` and
//! `uring` (`--no-default-features --features sync,queue`), the default
//! loop is the no-I/O one instead of an error at run time; timers, tasks,
//! the paused clock and the macros work either way.

use std::time::Duration;

use aio::{Backend, Builder};

#[test]
fn the_default_backend_needs_no_io_feature() {
    let lp = aio::new_event_loop().unwrap();
    let expect = if cfg!(feature = "uring") || cfg!(feature = "poll") {
        ["poll", "uring"].as_slice()
    } else {
        ["park"].as_slice()
    };
    assert!(expect.contains(&lp.backend()), "{}", lp.backend());
    lp.close();
}

#[test]
fn run_works_on_the_default_backend() {
    let v = aio::run(async {
        aio::sleep(Duration::from_millis(1)).await?;
        let t = aio::create_task(async { 21 * 2 });
        Ok::<_, aio::Cancelled>(t.await.unwrap())
    });
    assert_eq!(v.unwrap(), 42);
}

#[test]
fn forcing_a_backend_that_was_not_built_is_an_error() {
    if !cfg!(feature = "poll") {
        let e = Builder::new().backend(Backend::Poll).build().unwrap_err();
        assert!(e.to_string().contains("`poll` feature"), "{e}");
    }
    let lp = Builder::new().backend(Backend::None).build().unwrap();
    assert_eq!(lp.backend(), "park");
    lp.close();
}

#[aio::test(start_paused = true)]
async fn the_macros_and_the_paused_clock_work_without_io() {
    let t0 = aio::monotonic();
    assert_eq!(aio::wait_for(aio::sleep(60), 1).await, Err(aio::TimeoutError));
    assert!((aio::monotonic() - t0 - 1.0).abs() < 1e-6);
}
