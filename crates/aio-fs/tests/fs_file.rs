//! Files on every backend: open, create, reads and writes at an offset and
//! at the cursor, past the end, sync, length, metadata, the poll-based
//! traits, errors that name the path, cancellation and dropped calls.

use std::io;
use std::pin::pin;
use std::task::Poll;

use aio_core::{create_task, sleep, yield_now};
use aio_fs::{File, OpenOptions, PartialWrite};
use aio_test::{Dir, backend_tests, payload};
use futures_util::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

async fn create_write_read_at_and_the_cursor(d: Dir) -> io::Result<()> {
    let p = d.join("a.bin");
    let data = payload(300_000, 1);
    let f = File::create(&p).await?;
    f.write_all(data.clone()).await.0?;
    f.sync_all().await?;
    assert_eq!(f.metadata().await?.len(), data.len() as u64);
    drop(f);

    let f = File::open(&p).await?;
    // At an offset, into a natural buffer.
    let (n, buf) = f.read_at(vec![0u8; 1000], 5000).await;
    assert_eq!(&buf[..n?], &data[5000..6000]);
    // At the cursor, in pieces.
    let mut got = Vec::new();
    loop {
        let (n, buf) = f.read(Vec::with_capacity(70_000)).await;
        if n? == 0 {
            break;
        }
        got.extend_from_slice(&buf);
    }
    assert_eq!(got, data);
    // Past the end: Ok(0), not an error.
    let (n, _) = f.read_at(vec![0u8; 10], 1 << 30).await;
    assert_eq!(n?, 0);
    Ok(())
}

async fn write_at_set_len_sync_data_and_metadata(d: Dir) -> io::Result<()> {
    let p = d.join("b.bin");
    let f = OpenOptions::new().read(true).write(true).create(true).open(&p).await?;
    f.write_all_at(b"world".to_vec(), 6).await.0?;
    f.write_all_at(b"hello ".to_vec(), 0).await.0?;
    f.sync_data().await?;
    let mut all = Vec::new();
    f.read_to_end(&mut all).await?;
    assert_eq!(all, b"hello world");
    f.set_len(5).await?;
    let m = f.metadata().await?;
    assert_eq!(m.len(), 5);
    assert!(m.is_file() && !m.is_dir());
    assert!(m.modified().is_some());
    let m = aio_fs::metadata(d.path()).await?;
    assert!(m.is_dir());
    // Append goes to the end.
    let a = OpenOptions::new().append(true).open(&p).await?;
    a.write_all(b"!".to_vec()).await.0?;
    assert_eq!(aio_fs::read(&p).await?, b"hello!");
    Ok(())
}

async fn errors_name_the_path(d: Dir) -> io::Result<()> {
    let missing = d.join("no-such-file");
    let e = File::open(&missing).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("no-such-file"), "{e}");
    let e = aio_fs::read_to_string(&missing).await.unwrap_err();
    assert!(e.to_string().contains("no-such-file"), "{e}");
    // A directory opens (as in std) but does not read as a file.
    let f = File::open(d.path()).await?;
    let (r, _) = f.read(vec![0u8; 16]).await;
    let e = r.unwrap_err();
    assert_eq!(e.raw_os_error().or_else(|| source_errno(&e)), Some(libc::EISDIR), "{e}");
    assert!(e.to_string().contains(&d.path().display().to_string()), "{e}");
    // Creating where a directory is in the way.
    let e = File::create(d.path()).await.unwrap_err();
    assert!(e.to_string().contains(&d.path().display().to_string()), "{e}");
    // Bad options are an error, not a panic.
    assert_eq!(
        OpenOptions::new().open(d.join("x")).await.unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    // Not UTF-8.
    aio_fs::write(d.join("bin"), [0xff, 0xfe]).await?;
    assert_eq!(
        aio_fs::read_to_string(d.join("bin")).await.unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
    Ok(())
}

fn source_errno(e: &io::Error) -> Option<i32> {
    let inner = e.get_ref()?;
    std::error::Error::source(inner)?
        .downcast_ref::<io::Error>()?
        .raw_os_error()
}

async fn the_poll_based_traits(d: Dir) -> io::Result<()> {
    let p = d.join("t.bin");
    let data = payload(200_000, 2);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .await?;
    // (File's own owned-buffer methods share these names: call the traits.)
    AsyncWriteExt::write_all(&mut f, &data).await?;
    f.flush().await?;
    assert_eq!(f.seek(io::SeekFrom::Start(0)).await?, 0);
    let mut head = [0u8; 10];
    f.read_exact(&mut head).await?;
    assert_eq!(&head, &data[..10]);
    // A relative seek accounts for what was read ahead.
    assert_eq!(f.seek(io::SeekFrom::Current(0)).await?, 10);
    let mut rest = Vec::new();
    AsyncReadExt::read_to_end(&mut f, &mut rest).await?;
    assert_eq!(rest, &data[10..]);
    assert_eq!(f.seek(io::SeekFrom::End(-5)).await?, data.len() as u64 - 5);
    AsyncWriteExt::write_all(&mut f, b"XXXXX").await?;
    f.close().await?;
    let back = aio_fs::read(&p).await?;
    assert_eq!(&back[data.len() - 5..], b"XXXXX");
    Ok(())
}

/// Reads raced against a yield (the yield often wins, dropping the read
/// with its call in flight) and reads of 64 tasks at once: every byte
/// right, no buffer freed under the kernel or a thread.
async fn dropped_and_concurrent_reads(d: Dir) -> io::Result<()> {
    let p = d.join("c.bin");
    let data = payload(1 << 20, 3);
    aio_fs::write(&p, &data).await?;
    let f = std::rc::Rc::new(File::open(&p).await?);
    for i in 0..200u64 {
        let pos = (i * 4093) % (data.len() as u64 - 4096);
        let mut read = pin!(f.read_at(vec![0u8; 4096], pos));
        let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
        if let Poll::Ready((n, buf)) = first {
            assert_eq!(&buf[..n?], &data[pos as usize..pos as usize + 4096]);
        }
        // Dropped here, possibly in flight.
    }
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let f = f.clone();
            create_task(async move {
                let pos = i * 16_384;
                let (n, buf) = f.read_at(vec![0u8; 4096], pos).await;
                Ok::<_, io::Error>((pos, buf[..n?].to_vec()))
            })
        })
        .collect();
    for t in tasks {
        let (pos, got) = t.await.map_err(|e| io::Error::other(e.to_string()))??;
        assert_eq!(got, &data[pos as usize..pos as usize + 4096]);
    }
    yield_now().await?;
    Ok(())
}

/// A cancelled `write_all` says how much it wrote, and that is what the
/// file holds.
async fn a_cancelled_write_all_reports_what_it_wrote(d: Dir) -> io::Result<()> {
    for (round, delay) in [0.0, 0.0005, 0.002].into_iter().enumerate() {
        let p = d.join(&format!("w{round}.bin"));
        let f = File::create(&p).await?;
        let data = payload(32 << 20, 4);
        let total = data.len() as u64;
        let seen = std::rc::Rc::new(std::cell::Cell::new(None));
        let s2 = seen.clone();
        let t = create_task(async move {
            let (r, _) = f.write_all(data).await;
            // What write_all said, whatever the task's outcome.
            s2.set(Some(match &r {
                Ok(()) => total,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
                    PartialWrite::of(e) as u64
                }
            }));
            r
        });
        if delay > 0.0 {
            sleep(delay).await?;
        }
        t.cancel();
        let _ = t.await;
        // Cancelled before its first step, it never ran: nothing written.
        let written = seen.get().unwrap_or(0);
        assert_eq!(aio_fs::metadata(&p).await?.len(), written, "round {round}");
    }
    Ok(())
}

backend_tests!(
    dir:
    create_write_read_at_and_the_cursor,
    write_at_set_len_sync_data_and_metadata,
    errors_name_the_path,
    the_poll_based_traits,
    dropped_and_concurrent_reads,
    a_cancelled_write_all_reports_what_it_wrote,
);
