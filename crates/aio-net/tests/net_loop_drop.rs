//! Dropping a loop without `close()` closes it, as `close()` does, even
//! while its tasks hold sockets (which hold references to their loop): the
//! sockets close, the loop reports closed, and the driver goes.

use std::io;

use aio_core::{create_task, sleep, yield_now};
use aio_net::{TcpListener, TcpStream};
use aio_test::{Backend, backend_tests};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Starts a task that holds a listener and 50 connections (both ends),
/// then drops the loop without closing it.
fn a_dropped_loop_closes_its_sockets(b: Backend) {
    // Both tests count this process's descriptors (a loop's driver has
    // some too): one at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lp) = aio_test::new_loop(b) else { return };
    let before = open_fds();
    let h = lp.handle();
    lp.run_until_complete(async {
        let ready = std::rc::Rc::new(std::cell::Cell::new(false));
        let r = ready.clone();
        drop(create_task(async move {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let addr = l.local_addr()?;
            let mut held = Vec::new();
            for _ in 0..50 {
                let c = create_task(async move { TcpStream::connect(addr).await });
                let (s, _) = l.accept().await?;
                held.push((s, c.await.map_err(|e| io::Error::other(e.to_string()))??));
            }
            r.set(true);
            sleep(3600).await?;
            drop((l, held));
            Ok::<_, io::Error>(())
        }));
        while !ready.get() {
            yield_now().await.unwrap();
        }
    })
    .unwrap();
    assert!(open_fds() >= before + 101, "the sockets are open while the task runs");
    drop(lp);
    assert!(h.is_closed(), "dropping the loop closed it");
    assert!(
        open_fds() <= before,
        "{} descriptors still open after the loop was dropped",
        open_fds() - before
    );
}

backend_tests!(each: a_dropped_loop_closes_its_sockets);
