//! The per-backend harness (as aio-net's): each test is an
//! `async fn() -> Result<(), Box<dyn Error>>` written once;
//! `backend_tests!` expands it into `poll::name` and `uring::name`. With
//! `AIO_REQUIRE_URING=1`, a missing io_uring is a failure, not a skip.
#![allow(dead_code)]

use std::future::Future;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn run_poll<F: Future<Output = TestResult> + 'static>(f: F) {
    let lp = aio_core::Loop::builder()
        .driver(aio_poll::PollDriver::new().expect("epoll"))
        .build();
    aio_core::Runner::with_loop(lp).run(f).unwrap();
}

pub fn run_uring<F: Future<Output = TestResult> + 'static>(f: F) {
    match aio_uring::UringDriver::new() {
        Ok(d) => {
            let lp = aio_core::Loop::builder().driver(d).build();
            aio_core::Runner::with_loop(lp).run(f).unwrap();
        }
        Err(e) => {
            if std::env::var("AIO_REQUIRE_URING").is_ok_and(|v| v == "1") {
                panic!("io_uring is required (AIO_REQUIRE_URING=1) but unavailable: {e}");
            }
            eprintln!("io_uring unavailable ({e}): skipped");
        }
    }
}

/// Expands each listed test into one per backend.
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

pub mod raw_http;
