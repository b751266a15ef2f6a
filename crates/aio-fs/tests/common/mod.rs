//! The per-backend harness: each test is an `async fn(Dir) ->
//! io::Result<()>` written once; `backend_tests!` expands it into
//! `poll::name` and `uring::name`, each with a fresh temporary directory.
//! With `AIO_REQUIRE_URING=1` (CI), a missing io_uring is a failure.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

/// A temporary directory, removed when dropped.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("aio-fs-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run_poll<F: Future<Output = io::Result<()>> + 'static>(f: F) {
    let lp = aio_core::Loop::builder()
        .driver(aio_poll::PollDriver::new().expect("epoll"))
        .build();
    aio_core::Runner::with_loop(lp).run(f).unwrap();
}

pub fn run_uring<F: Future<Output = io::Result<()>> + 'static>(f: F) {
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

/// Expands each listed `async fn(Dir) -> io::Result<()>` into one test per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod poll {
            $(
                #[test]
                fn $name() {
                    let d = $crate::common::Dir::new(concat!("poll-", stringify!($name)));
                    $crate::common::run_poll(super::$name(d));
                }
            )*
        }
        mod uring {
            $(
                #[test]
                fn $name() {
                    let d = $crate::common::Dir::new(concat!("uring-", stringify!($name)));
                    $crate::common::run_uring(super::$name(d));
                }
            )*
        }
    };
}
