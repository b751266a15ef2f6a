//! Opens, stats and closes `N` files (10,000 by default) from 16 tasks,
//! as the `fs_open_stat_close` bench does once, on the backend named by
//! the first argument (`uring` by default, or `poll`), and prints how long
//! it took. Run it under strace to count the system calls a file costs:
//!
//! ```sh
//! cargo build --release -p aio-fs --example open_stat_close
//! target/release/examples/open_stat_close make 10000
//! strace -f -c -e trace=io_uring_enter,io_uring_register,openat,close,statx \
//!     target/release/examples/open_stat_close uring 10000
//! target/release/examples/open_stat_close clean 10000
//! ```
//!
//! `make` writes the files (in `$TMPDIR/aio-open-stat-close-N`) and
//! `clean` removes them, so the counted run makes no system call of
//! its own beyond the loop's set-up.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use aio_test::Backend;

const TASKS: usize = 16;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "uring".to_owned());
    let n: usize = args.next().map_or(10_000, |v| v.parse().expect("a number of files"));
    let dir = std::env::temp_dir().join(format!("aio-open-stat-close-{n}"));
    let backend = match what.as_str() {
        "uring" => Backend::Uring,
        "poll" => Backend::Poll,
        "make" => {
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                std::fs::write(dir.join(format!("f{i}")), b"x").unwrap();
            }
            return;
        }
        "clean" => return std::fs::remove_dir_all(&dir).unwrap(),
        other => panic!("{other:?}: uring, poll, make or clean"),
    };
    assert!(dir.is_dir(), "no files: run `open_stat_close make {n}` first");
    let paths: Rc<Vec<PathBuf>> = Rc::new((0..n).map(|i| dir.join(format!("f{i}"))).collect());
    let Some(lp) = aio_test::new_loop(backend) else { return };
    let t0 = Instant::now();
    lp.run_until_complete(async move {
        let per = paths.len().div_ceil(TASKS);
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let paths = paths.clone();
                aio_core::create_task(async move {
                    for p in paths.iter().skip(t * per).take(per) {
                        let f = aio_fs::File::open(p).await.unwrap();
                        assert_eq!(f.metadata().await.unwrap().len(), 1);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    })
    .unwrap();
    let took = t0.elapsed();
    lp.close();
    println!("{n} × open + statx + close on {}: {took:?}", backend.name());
}
