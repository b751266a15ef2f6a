//! Files at their edges, as a hostile user meets them, on every backend:
//! opens dropped mid-flight (no descriptor leaked), offsets no file can
//! have, a FIFO whose dropped read must lose nothing, calls a timeout must
//! end though the kernel would block them forever, a loop closed with such
//! calls in flight, and a path with a NUL byte.
//!
//! Every test holds `aio_test::serial()`: they count the process's
//! descriptors.

use std::ffi::CString;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use aio_core::{create_task, sleep, timeout};
use aio_fs::File;
use aio_test::{Backend, Dir, Either, backend_tests, fd_count, fds_settle, open_fds, payload, race};

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

/// 2,000 opens, each raced against a 1 ms sleep and dropped where it
/// stands when the sleep wins: every descriptor the kernel (or a thread)
/// opened for a dropped open is closed when it arrives.
async fn dropped_opens_leak_no_descriptor(d: Dir) -> io::Result<()> {
    aio_test::raise_nofile();
    let p = d.join("target");
    let base = fd_count();
    let tasks: Vec<_> = (0..2000)
        .map(|_| {
            let p = p.clone();
            create_task(async move {
                let mut options = File::options();
                let open = options.create(true).write(true).open(&p);
                match race(open, sleep(0.001)).await {
                    Either::Left(f) => f.map(drop).or_else(|e| match e.raw_os_error() {
                        Some(libc::EMFILE) => Ok(()),
                        _ => Err(e),
                    }),
                    Either::Right(_) => Ok(()),
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| io::Error::other(e.to_string()))??;
    }
    let n = fds_settle(base, Duration::from_secs(10)).await;
    assert!(n <= base, "{} descriptors leaked: {}", n - base, open_fds());
    Ok(())
}

/// Opens raced against a yield (dropped just after they were handed to
/// the kernel or a thread) and closed as they complete: nothing leaks.
async fn opens_dropped_at_once_leak_no_descriptor(d: Dir) -> io::Result<()> {
    let p = d.join("target");
    aio_fs::write(&p, b"x").await?;
    let base = fd_count();
    for round in 0..20 {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let p = p.clone();
                create_task(async move {
                    match race(File::open(&p), aio_core::yield_now()).await {
                        Either::Left(f) => f.map(drop),
                        Either::Right(_) => Ok(()),
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(|e| io::Error::other(format!("round {round}: {e}")))??;
        }
    }
    let n = fds_settle(base, Duration::from_secs(10)).await;
    assert!(n <= base, "{} descriptors leaked: {}", n - base, open_fds());
    Ok(())
}

/// Large reads at the cursor of a regular file, every other one raced
/// against a short sleep that often wins while the read's call runs (the
/// read is dropped in flight, and the call still moves the cursor): the
/// reads that complete get every byte of the file, in order.
async fn dropped_cursor_reads_lose_nothing(d: Dir) -> io::Result<()> {
    let p = d.join("data");
    let data = payload(32 << 20, 9);
    aio_fs::write(&p, &data).await?;
    let f = File::open(&p).await?;
    let mut got = Vec::new();
    let mut dropped = 0;
    loop {
        let (n, buf) = match race(f.read(Vec::with_capacity(4 << 20)), sleep(0.0002)).await {
            Either::Left(r) => r,
            Either::Right(_) => {
                dropped += 1;
                // Waits for the dropped read's call, then gets its data.
                f.read(Vec::with_capacity(4 << 20)).await
            }
        };
        if n? == 0 {
            break;
        }
        got.extend_from_slice(&buf);
    }
    assert_eq!(got.len(), data.len(), "bytes lost ({dropped} reads dropped)");
    assert!(got == data, "bytes reordered ({dropped} reads dropped)");
    Ok(())
}

/// A FIFO handed over as a blocking std file (its reads run on threads on
/// the readiness driver): a read dropped while it waits, then data
/// written, and the next reads get all of it.
async fn a_dropped_read_of_a_blocking_fifo_loses_nothing(d: Dir) -> io::Result<()> {
    let p = d.join("fifo");
    mkfifo(&p);
    let mut w = std::fs::OpenOptions::new().read(true).write(true).open(&p)?;
    let r = std::fs::File::open(&p)?;
    let f = File::from_std(r, &p)?;
    for _ in 0..3 {
        match race(f.read(Vec::with_capacity(1 << 16)), sleep(0.01)).await {
            Either::Left((r, _)) => panic!("a read of an empty FIFO finished: {r:?}"),
            Either::Right(r) => r?,
        }
    }
    let data = payload(50_000, 5);
    w.write_all(&data)?;
    let mut got = Vec::new();
    while got.len() < data.len() {
        let (n, buf) = f.read(Vec::with_capacity(1 << 16)).await;
        assert!(n? > 0, "end of file before all the data");
        got.extend_from_slice(&buf);
    }
    assert!(got == data, "bytes lost or reordered");
    // The threads still blocked on the FIFO (the dropped reads) finish
    // when the writer closes; none of them takes data meant for others.
    drop(w);
    let (n, _) = f.read(Vec::with_capacity(16)).await;
    assert_eq!(n?, 0);
    Ok(())
}

/// Offsets above `i64::MAX` are no offset at all: `InvalidInput`, and
/// nothing is read or written (io_uring takes -1 for "the cursor").
async fn offsets_past_i64_max_are_invalid(d: Dir) -> io::Result<()> {
    let p = d.join("hundred");
    let data = payload(100, 7);
    aio_fs::write(&p, &data).await?;
    let f = File::options().read(true).write(true).open(&p).await?;
    for off in [u64::MAX, i64::MAX as u64 + 1] {
        let (r, _) = f.read_at(vec![0u8; 10], off).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput, "read_at({off})");
        let (r, _) = f.write_at(b"XYZ".to_vec(), off).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput, "write_at({off})");
        let (r, _) = f.write_all_at(b"XYZ".to_vec(), off).await;
        assert_eq!(
            r.unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "write_all_at({off})"
        );
    }
    assert_eq!(aio_fs::read(&p).await?, data, "the file is unchanged");
    // The cursor did not move either.
    let (n, buf) = f.read(vec![0u8; 100]).await;
    assert_eq!(&buf[..n?], &data[..]);
    Ok(())
}

/// A read on a FIFO dropped while it waits, then 74,655 bytes written:
/// the next reads get every one of them, in order.
async fn a_dropped_fifo_read_loses_nothing(d: Dir) -> io::Result<()> {
    for round in 0..3 {
        let p = d.join(&format!("fifo{round}"));
        mkfifo(&p);
        let data = payload(74_655, round);
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (wp, wdata) = (p.clone(), data.clone());
        let writer = std::thread::spawn(move || -> io::Result<()> {
            let mut w = std::fs::OpenOptions::new().write(true).open(wp)?;
            let _ = wait.recv();
            w.write_all(&wdata)
        });
        let f = File::open(&p).await?;
        match race(f.read(Vec::with_capacity(1 << 16)), sleep(0.01)).await {
            Either::Left((r, _)) => panic!("a read of an empty FIFO finished: {r:?}"),
            Either::Right(r) => r?,
        }
        go.send(()).unwrap();
        let mut got = Vec::new();
        loop {
            let (n, buf) = f.read(Vec::with_capacity(1 << 16)).await;
            if n? == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        writer.join().unwrap()?;
        assert_eq!(got.len(), data.len(), "round {round}: bytes lost");
        assert!(got == data, "round {round}: bytes reordered");
    }
    Ok(())
}

/// `timeout` ends an open of a FIFO nobody writes to and a read of an
/// empty FIFO, though the kernel would block either forever; the data
/// written after the read timed out goes to the next read.
async fn a_timeout_ends_calls_the_kernel_would_block(d: Dir) -> io::Result<()> {
    let p = d.join("fifo");
    mkfifo(&p);
    let base = fd_count();
    let t0 = Instant::now();
    // (io_uring's first, non-blocking attempt at an open may open a FIFO
    // with no writer at once; either way the await ends.)
    let r = timeout(0.2, File::open(&p)).await;
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the open's timeout did not end it"
    );
    if let Ok(opened) = r {
        drop(opened?);
    }

    // A writer that never writes (O_RDWR does not wait for a reader).
    let mut w = std::fs::OpenOptions::new().read(true).write(true).open(&p)?;
    let f = File::open(&p).await?;
    let t0 = Instant::now();
    let r = timeout(0.2, f.read(Vec::with_capacity(64))).await;
    assert!(r.is_err(), "a read of an empty FIFO finished");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the read's timeout did not end it"
    );
    w.write_all(b"after the timeout")?;
    let (n, buf) = f.read(Vec::with_capacity(64)).await;
    assert_eq!(&buf[..n?], b"after the timeout");
    drop((f, w));
    // The open that timed out (and whose thread may still wait on the
    // FIFO) holds no descriptor once a writer let it finish.
    let unblock = std::fs::OpenOptions::new().read(true).write(true).open(&p)?;
    let n = fds_settle(base + 1, Duration::from_secs(10)).await;
    assert!(n <= base + 1, "{} descriptors leaked: {}", n - base - 1, open_fds());
    drop(unblock);
    Ok(())
}

/// A path with a NUL byte is `InvalidInput`, and its message shows the
/// byte escaped, never raw.
async fn a_nul_in_a_path_is_printed_escaped(d: Dir) -> io::Result<()> {
    let p = d.join("a\0b");
    let e = File::open(&p).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let m = e.to_string();
    assert!(!m.contains('\0'), "raw NUL in {m:?}");
    assert!(m.contains("a\\0b"), "{m:?}");
    Ok(())
}

/// Closing a loop whose tasks wait in 20 reads of empty FIFOs cancels
/// them and returns well within the shutdown bound, with no descriptor
/// left open.
fn closing_with_blocked_reads(b: Backend) {
    let _one = aio_test::serial();
    let Some(lp) = aio_test::new_loop(b) else { return };
    let d = Dir::new(&format!("{}-close", b.name()));
    let base = fd_count();
    let mut writers = Vec::new();
    let runner = aio_core::Runner::with_loop(lp);
    for i in 0..20 {
        let p = d.join(&format!("fifo{i}"));
        mkfifo(&p);
        writers.push(std::fs::OpenOptions::new().read(true).write(true).open(&p).unwrap());
        runner
            .run(async move {
                let f = File::open(&p).await?;
                create_task(async move {
                    let _ = f.read(Vec::with_capacity(64)).await;
                });
                sleep(0.001).await?;
                Ok::<_, io::Error>(())
            })
            .unwrap();
    }
    let t0 = Instant::now();
    runner.close();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(10), "close took {took:?}");
    drop(writers);
    let n = fd_count();
    assert!(n <= base, "{} descriptors leaked: {}", n - base, open_fds());
}

backend_tests!(
    serial_dir: dropped_opens_leak_no_descriptor,
    opens_dropped_at_once_leak_no_descriptor,
    dropped_cursor_reads_lose_nothing,
    a_dropped_read_of_a_blocking_fifo_loses_nothing,
    offsets_past_i64_max_are_invalid,
    a_dropped_fifo_read_loses_nothing,
    a_timeout_ends_calls_the_kernel_would_block,
    a_nul_in_a_path_is_printed_escaped;
    each: closing_with_blocked_reads,
);
