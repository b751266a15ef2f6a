//! Files: aio on io_uring and on the readiness driver (file-call threads)
//! beside tokio (current-thread; tokio::fs runs each call on its blocking
//! pool, so positional reads are `spawn_blocking` of `pread`, which is what
//! tokio::fs does inside), in one run.
//!
//! - `fs_random_read_4k/<runtime>/<tasks>`: 4 KiB reads at random offsets
//!   of a 256 MiB file in the page cache, by 1, 16 and 64 tasks at once;
//! - `fs_seq_read_1m`, `fs_seq_write_1m`: a 64 MiB file in 1 MiB calls;
//! - `fs_open_stat_close`: open, statx and close of 10k files.
//!
//! Throughput is per call, so criterion prints the time per call.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use common::{group, tokio_ct};

const FILE_SIZE: u64 = 256 << 20;
const CHUNK: usize = 1 << 20;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("aio-fs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A file of `len` bytes, written and read once so it is in the page cache.
fn cached_file(path: &Path, len: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block: Vec<u8> = (0..CHUNK).map(|i| (i * 31) as u8).collect();
    for _ in 0..len / CHUNK as u64 {
        f.write_all(&block).unwrap();
    }
    f.sync_all().unwrap();
    let _ = std::fs::read(path).unwrap();
}

/// The offsets every runtime reads, the same for all.
fn offsets(n: u64) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (FILE_SIZE / 4096)) * 4096
        })
        .collect()
}

fn aio_loops() -> Vec<(&'static str, aio::Runner)> {
    let mut v = Vec::new();
    if let Ok(lp) = aio::Builder::new().backend(aio::Backend::Uring).build() {
        v.push(("aio-uring", aio::Runner::with_loop(lp)));
    }
    let lp = aio::Builder::new().backend(aio::Backend::Poll).build().unwrap();
    v.push(("aio-poll", aio::Runner::with_loop(lp)));
    v
}

fn random_read(c: &mut Criterion) {
    const READS: u64 = 8192;
    let d = dir();
    let path = d.join("random.bin");
    cached_file(&path, FILE_SIZE);
    let offs = Arc::new(offsets(READS));
    let mut g = group(c, "fs_random_read_4k", READS, 10);
    for tasks in [1u64, 16, 64] {
        for (name, runner) in aio_loops() {
            let f = Rc::new(runner.run({
                let p = path.clone();
                async move { aio::fs::File::open(p).await.unwrap() }
            }));
            g.bench_function(BenchmarkId::new(name, tasks), |b| {
                b.iter(|| {
                    let f = f.clone();
                    let offs = offs.clone();
                    runner.run(async move {
                        let per = (READS / tasks) as usize;
                        let ts: Vec<_> = (0..tasks as usize)
                            .map(|t| {
                                let f = f.clone();
                                let offs = offs.clone();
                                aio::create_task(async move {
                                    let mut buf = vec![0u8; 4096];
                                    for &o in &offs[t * per..(t + 1) * per] {
                                        let (n, b) = f.read_at(buf, o).await;
                                        assert_eq!(n.unwrap(), 4096);
                                        buf = b;
                                    }
                                })
                            })
                            .collect();
                        for t in ts {
                            t.await.unwrap();
                        }
                    })
                })
            });
        }
        let rt = tokio_ct();
        let f = Arc::new(std::fs::File::open(&path).unwrap());
        g.bench_function(BenchmarkId::new("tokio-ct", tasks), |b| {
            b.iter(|| {
                let f = f.clone();
                let offs = offs.clone();
                rt.block_on(async move {
                    let per = (READS / tasks) as usize;
                    let ts: Vec<_> = (0..tasks as usize)
                        .map(|t| {
                            let f = f.clone();
                            let offs = offs.clone();
                            tokio::spawn(async move {
                                let mut buf = vec![0u8; 4096];
                                for i in t * per..(t + 1) * per {
                                    let o = offs[i];
                                    let f = f.clone();
                                    let (n, b) = tokio::task::spawn_blocking(move || {
                                        let n = f.read_at(&mut buf, o);
                                        (n, buf)
                                    })
                                    .await
                                    .unwrap();
                                    assert_eq!(n.unwrap(), 4096);
                                    buf = b;
                                }
                            })
                        })
                        .collect();
                    for t in ts {
                        t.await.unwrap();
                    }
                })
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_file(&path);
}

fn sequential(c: &mut Criterion) {
    const SEQ_SIZE: u64 = 64 << 20;
    let d = dir();
    let path = d.join("seq.bin");
    cached_file(&path, SEQ_SIZE);
    let calls = SEQ_SIZE / CHUNK as u64;

    let mut g = group(c, "fs_seq_read_1m", calls, 10);
    for (name, runner) in aio_loops() {
        g.bench_function(name, |b| {
            b.iter(|| {
                let p = path.clone();
                runner.run(async move {
                    let f = aio::fs::File::open(p).await.unwrap();
                    let mut buf = vec![0u8; CHUNK];
                    let mut total = 0;
                    loop {
                        let (n, b) = f.read(buf).await;
                        buf = b;
                        match n.unwrap() {
                            0 => break,
                            n => total += n,
                        }
                    }
                    assert_eq!(total as u64, SEQ_SIZE);
                })
            })
        });
    }
    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let p = path.clone();
            rt.block_on(async move {
                use tokio::io::AsyncReadExt;
                let mut f = tokio::fs::File::open(p).await.unwrap();
                let mut buf = vec![0u8; CHUNK];
                let mut total = 0;
                loop {
                    match f.read(&mut buf).await.unwrap() {
                        0 => break,
                        n => total += n,
                    }
                }
                assert_eq!(total as u64, SEQ_SIZE);
            })
        })
    });
    g.finish();

    let mut g = group(c, "fs_seq_write_1m", calls, 10);
    let out = d.join("seq-out.bin");
    let block: Vec<u8> = (0..CHUNK).map(|i| i as u8).collect();
    for (name, runner) in aio_loops() {
        g.bench_function(name, |b| {
            b.iter(|| {
                let p = out.clone();
                let block = block.clone();
                runner.run(async move {
                    let f = aio::fs::File::create(p).await.unwrap();
                    let mut buf = block;
                    for _ in 0..calls {
                        let (r, b) = f.write_all(buf).await;
                        r.unwrap();
                        buf = b;
                    }
                })
            })
        });
    }
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let p = out.clone();
            let block = block.clone();
            rt.block_on(async move {
                use tokio::io::AsyncWriteExt;
                let mut f = tokio::fs::File::create(p).await.unwrap();
                for _ in 0..calls {
                    f.write_all(&block).await.unwrap();
                }
                f.flush().await.unwrap();
            })
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&out);
}

fn open_stat_close(c: &mut Criterion) {
    const FILES: u64 = 10_000;
    let d = dir().join("many");
    std::fs::create_dir_all(&d).unwrap();
    let paths: Arc<Vec<PathBuf>> = Arc::new(
        (0..FILES)
            .map(|i| {
                let p = d.join(format!("f{i}"));
                std::fs::write(&p, b"x").unwrap();
                p
            })
            .collect(),
    );
    let mut g = group(c, "fs_open_stat_close", FILES, 10);
    for (name, runner) in aio_loops() {
        g.bench_function(name, |b| {
            b.iter(|| {
                let paths = paths.clone();
                runner.run(async move {
                    // 16 at a time, as a server handling requests would.
                    let per = paths.len() / 16;
                    let ts: Vec<_> = (0..16)
                        .map(|t| {
                            let paths = paths.clone();
                            aio::create_task(async move {
                                for p in &paths[t * per..(t + 1) * per] {
                                    let f = aio::fs::File::open(p).await.unwrap();
                                    assert_eq!(f.metadata().await.unwrap().len(), 1);
                                    drop(f);
                                }
                            })
                        })
                        .collect();
                    for t in ts {
                        t.await.unwrap();
                    }
                })
            })
        });
    }
    let rt = tokio_ct();
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let paths = paths.clone();
            rt.block_on(async move {
                let per = paths.len() / 16;
                let ts: Vec<_> = (0..16)
                    .map(|t| {
                        let paths = paths.clone();
                        tokio::spawn(async move {
                            for p in &paths[t * per..(t + 1) * per] {
                                let f = tokio::fs::File::open(p).await.unwrap();
                                assert_eq!(f.metadata().await.unwrap().len(), 1);
                                drop(f);
                            }
                        })
                    })
                    .collect();
                for t in ts {
                    t.await.unwrap();
                }
            })
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(dir());
}

criterion_group!(benches, random_read, sequential, open_stat_close);
criterion_main!(benches);
