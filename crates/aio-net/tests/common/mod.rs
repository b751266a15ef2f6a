//! The per-backend harness: each test is an `async fn() -> io::Result<()>`
//! written once; `backend_tests!` expands it into `poll::name` and
//! `uring::name`. With `AIO_REQUIRE_URING=1` (CI), a missing io_uring is a
//! failure instead of a skip.
#![allow(dead_code)]

use std::future::Future;
use std::io;

/// Waits (10 s at most) until `done()`, looking every millisecond.
pub async fn until(what: &str, done: impl Fn() -> bool) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within 10 s");
        aio_core::sleep(0.001).await?;
    }
    Ok(())
}

pub fn poll_loop() -> aio_core::Loop {
    aio_core::Loop::builder()
        .driver(aio_poll::PollDriver::new().expect("epoll"))
        .build()
}

pub fn run_poll<F: Future<Output = io::Result<()>> + 'static>(f: F) {
    aio_core::Runner::with_loop(poll_loop()).run(f).unwrap();
}

/// A loop on io_uring, or `None` (skip) where the kernel refuses it —
/// unless `AIO_REQUIRE_URING=1`, which makes that a failure.
pub fn uring_loop() -> Option<aio_core::Loop> {
    match aio_uring::UringDriver::new() {
        Ok(d) => Some(aio_core::Loop::builder().driver(d).build()),
        Err(e) => {
            if std::env::var("AIO_REQUIRE_URING").is_ok_and(|v| v == "1") {
                panic!("io_uring is required (AIO_REQUIRE_URING=1) but unavailable: {e}");
            }
            eprintln!("io_uring unavailable ({e}): skipped");
            None
        }
    }
}

pub fn run_uring<F: Future<Output = io::Result<()>> + 'static>(f: F) {
    if let Some(lp) = uring_loop() {
        aio_core::Runner::with_loop(lp).run(f).unwrap();
    }
}

/// Raises the open-file soft limit to the hard limit (1,000 connections
/// need 2,000 descriptors).
pub fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// A deterministic payload: every byte depends on its position and `seed`.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Expands each listed `async fn() -> io::Result<()>` into one test per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod poll {
            $(
                #[test]
                fn $name() {
                    $crate::common::run_poll(super::$name());
                }
            )*
        }
        mod uring {
            $(
                #[test]
                fn $name() {
                    $crate::common::run_uring(super::$name());
                }
            )*
        }
    };
}

/// A boxed test future, for harnesses that pick the backend at run time.
pub type Boxed = std::pin::Pin<Box<dyn Future<Output = io::Result<()>>>>;

pub fn run_poll_boxed(f: Boxed) {
    run_poll(f);
}

pub fn run_uring_boxed(f: Boxed) {
    run_uring(f);
}
