//! A server that runs out of descriptors keeps serving once they free up,
//! without spinning a core. Its own test binary: the limit it lowers is
//! process-wide, so the backends take turns.

mod servers;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aio_core::{sleep, timeout};
use aio_net::{StreamReader, StreamWriter, open_connection};
use aio_test::{Backend, backend_tests};
use servers::local_server;

static LIMIT: Mutex<()> = Mutex::new(());

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

fn set_nofile(cur: libc::rlim_t) {
    let mut r = nofile();
    r.rlim_cur = cur;
    // SAFETY: valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
}

/// CPU time of this thread (the loop runs here).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Uses up every descriptor below the current limit.
fn exhaust() -> Vec<OwnedFd> {
    let mut v = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        v.push(OwnedFd::from(f));
        if v.len() > 100_000 {
            break;
        }
    }
    v
}

async fn serve_through_emfile() -> io::Result<()> {
    let server = local_server(|mut r: StreamReader, w: StreamWriter| async move {
        let line = r.readline().await?;
        w.write(&line);
        w.drain().await?;
        Ok::<_, aio_net::StreamError>(())
    })
    .await?;
    let port = server.sockets()[0].port();
    // A client made before the limit, then the limit: the server's accept
    // of the next connection fails with EMFILE.
    let before = nofile().rlim_cur;
    let (mut r0, w0) = open_connection("127.0.0.1", port).await?;
    w0.write(b"first\n");
    assert_eq!(r0.readline().await.map_err(io::Error::from)?, b"first\n");
    // The server closes its side after one line: wait until its socket is
    // really gone (closing is asynchronous on io_uring), so the descriptor
    // count below is exact.
    assert_eq!(r0.read(-1).await.map_err(io::Error::from)?, b"");
    drop((r0, w0));
    while server.connections() > 0 {
        sleep(0.001).await?;
    }
    // Sleeping parks the driver, so the asynchronous closes complete.
    for _ in 0..5 {
        sleep(0.005).await?;
    }

    // One descriptor for the client's socket, none for the server's accept.
    let mut hog = exhaust();
    let spare = hog.pop();
    drop(spare);
    let connecting = aio_core::create_task(async move {
        let (mut r, w) = open_connection("127.0.0.1", port).await?;
        w.write(b"second\n");
        let line = r.readline().await.map_err(io::Error::from)?;
        Ok::<_, io::Error>(line)
    });
    // Watch the loop while the server cannot accept: it must back off.
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    sleep(0.3).await?;
    let cpu = thread_cpu() - cpu0;
    let wall = t0.elapsed();
    assert!(
        cpu < wall / 2,
        "the accept loop spun: {cpu:?} of CPU in {wall:?} while out of descriptors"
    );
    if connecting.done() {
        let mut c = connecting;
        panic!(
            "the client finished while the server was out of descriptors: {:?}",
            c.result()
        );
    }
    // Free the descriptors: the server serves the waiting client.
    drop(hog);
    set_nofile(before);
    let line = timeout(10, connecting)
        .await
        .expect("the server did not recover")
        .map_err(|e| io::Error::other(e.to_string()))??;
    assert_eq!(line, b"second\n");
    server.close();
    Ok(())
}

/// The server on `b`, under a low descriptor limit (restored after).
fn accept_under_emfile(b: Backend) {
    let _g = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    let before = nofile().rlim_cur;
    // A low limit keeps `exhaust` quick.
    set_nofile(256.min(before));
    let r = std::panic::catch_unwind(|| aio_test::run_on(b, serve_through_emfile()));
    set_nofile(before);
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

backend_tests!(each: accept_under_emfile);
