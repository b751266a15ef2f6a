//! The scheduler time slice a thread asks for (`aio::set_scheduler_slice`)
//! and the one a pool's loop threads ask for by default. What the kernel
//! grants shows on Linux 6.12 and later; elsewhere the calls are checked
//! to succeed (or to leave a thread alone) and nothing more.
#![cfg(target_os = "linux")]

use std::time::Duration;

use aio_test::{has_custom_slices, scheduler_slice_ns, within};

#[test]
fn a_thread_gets_the_slice_it_asks_for_clamped_by_the_kernel() {
    std::thread::spawn(|| {
        aio::set_scheduler_slice(Duration::from_micros(100)).unwrap();
        if has_custom_slices() {
            assert_eq!(scheduler_slice_ns(), Some(100_000));
        }
        // Absurd lengths are clamped by the kernel, not refused.
        aio::set_scheduler_slice(Duration::MAX).unwrap();
        if has_custom_slices() {
            assert_eq!(scheduler_slice_ns(), Some(100_000_000));
        }
        aio::set_scheduler_slice(Duration::from_nanos(1)).unwrap();
        if has_custom_slices() {
            assert_eq!(scheduler_slice_ns(), Some(100_000));
        }
    })
    .join()
    .unwrap();
}

#[test]
fn an_idle_thread_keeps_its_policy() {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is valid for the call; pid 0 is this thread,
        // which may always lower itself to SCHED_IDLE.
        assert_eq!(unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) }, 0);
        let e = aio::set_scheduler_slice(Duration::from_micros(100)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        // SAFETY: pid 0 is this thread; no memory is passed.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_IDLE);
    })
    .join()
    .unwrap();
}

/// The loop threads ask for the scheduler's shortest slice (0.1 ms) by
/// default, and keep the kernel's own with `scheduler_slice(None)`
/// (shown where the kernel has custom slices, 6.12 and later).
#[test]
fn loop_threads_ask_for_a_short_scheduler_slice() {
    fn slices(pool: &aio::LoopPool) -> Vec<Option<u64>> {
        pool.run(|_| async { scheduler_slice_ns() })
    }
    if !has_custom_slices() {
        eprintln!("skipped: no custom scheduler slices before Linux 6.12");
        return;
    }
    within(60, || {
        let pool = aio::LoopPool::builder(2)
            .loop_builder(aio::Builder::new().backend(aio::Backend::None))
            .build()
            .unwrap();
        assert_eq!(slices(&pool), [Some(100_000), Some(100_000)]);
        pool.shutdown(Duration::ZERO);
        let pool = aio::LoopPool::builder(2)
            .loop_builder(aio::Builder::new().backend(aio::Backend::None))
            .scheduler_slice(None)
            .build()
            .unwrap();
        assert!(slices(&pool).iter().all(|s| *s != Some(100_000)), "{:?}", slices(&pool));
        pool.shutdown(Duration::ZERO);
    });
}
