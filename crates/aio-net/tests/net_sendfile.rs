//! `StreamWriter::sendfile` on every backend: what was written before goes
//! first, ranges and short files, and the bytes are right.

use std::io::{self, Write};

use aio_core::create_task;
use aio_net::{TcpListener, TcpStream};
use aio_test::{Backend, backend_tests, payload};

fn temp_file(len: usize, seed: u64) -> io::Result<(std::fs::File, Vec<u8>, std::path::PathBuf)> {
    let data = payload(len, seed);
    let path = std::env::temp_dir().join(format!("aio-sendfile-{}-{seed}-{len}", std::process::id()));
    let mut f = std::fs::File::create(&path)?;
    f.write_all(&data)?;
    drop(f);
    Ok((std::fs::File::open(&path)?, data, path))
}

async fn sendfile_sends_the_range_after_what_was_written(seed: u64) -> io::Result<()> {
    let (file, data, path) = temp_file(5 << 20, seed)?;
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let client = create_task(async move {
        let (mut r, _w) = TcpStream::connect(addr).await?.into_streams();
        r.read(-1).await.map_err(io::Error::from)
    });
    let (s, _) = l.accept().await?;
    let (_r, w) = s.into_streams();
    w.write(b"head:");
    let all = w.sendfile(&file, 0, None).await?;
    assert_eq!(all, data.len() as u64);
    w.write(b":mid:");
    let part = w.sendfile(&file, 1000, Some(5000)).await?;
    assert_eq!(part, 5000);
    // Asking past the end sends what there is.
    let tail = w.sendfile(&file, data.len() as u64 - 10, Some(100)).await?;
    assert_eq!(tail, 10);
    w.write(b":tail");
    w.close();
    w.wait_closed().await?;
    let got = client.await.map_err(|e| io::Error::other(e.to_string()))??;
    let mut want = b"head:".to_vec();
    want.extend_from_slice(&data);
    want.extend_from_slice(b":mid:");
    want.extend_from_slice(&data[1000..6000]);
    want.extend_from_slice(&data[data.len() - 10..]);
    want.extend_from_slice(b":tail");
    assert!(got == want, "{} bytes received, {} expected", got.len(), want.len());
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Each backend with its own seed (and so its own file).
fn sendfile(b: Backend) {
    let seed = match b {
        Backend::Poll => 1,
        Backend::Uring => 2,
    };
    aio_test::run_on(b, sendfile_sends_the_range_after_what_was_written(seed));
}

backend_tests!(each: sendfile);
