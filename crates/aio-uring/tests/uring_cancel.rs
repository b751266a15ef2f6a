//! Futures dropped while their io_uring operation is in flight: the
//! driver keeps their memory until the kernel completes (or cancels) the
//! operation, then frees it — every buffer comes back, none is freed under
//! the kernel. CI runs this binary under valgrind too.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aio_core::io::{self as aio_io, IoBuf, IoBufMut, Registered};
use aio_core::{Loop, create_task, sleep, yield_now};
use aio_uring::UringDriver;

/// A buffer that counts how many are alive.
struct Counted {
    v: Vec<u8>,
    live: Arc<AtomicUsize>,
}

impl Counted {
    fn new(live: &Arc<AtomicUsize>, cap: usize) -> Counted {
        live.fetch_add(1, Ordering::SeqCst);
        Counted {
            v: Vec::with_capacity(cap),
            live: live.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

// SAFETY: delegates to the Vec, whose heap buffer does not move with it.
unsafe impl IoBuf for Counted {
    fn stable_ptr(&self) -> *const u8 {
        self.v.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.v.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.v.bytes_total()
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for Counted {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.v.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: forwarded.
        unsafe { self.v.set_init(pos) }
    }
}

fn uring_loop() -> Option<Loop> {
    match UringDriver::new() {
        Ok(d) => Some(Loop::builder().driver(d).build()),
        Err(e) => {
            assert!(
                std::env::var("AIO_REQUIRE_URING").map_or(true, |v| v != "1"),
                "io_uring required but unavailable: {e}"
            );
            eprintln!("io_uring unavailable ({e}): skipped");
            None
        }
    }
}

fn in_flight(lp: &Loop) -> usize {
    lp.with_driver(|d: &mut UringDriver| d.in_flight()).unwrap()
}

fn registered(fd: impl Into<OwnedFd>) -> Registered {
    Registered::new(fd.into()).unwrap()
}

const N: usize = 2000;

#[test]
fn dropped_reads_accepts_and_connects_give_every_buffer_back() {
    let Some(lp) = uring_loop() else { return };
    let live = Arc::new(AtomicUsize::new(0));
    let l2 = live.clone();
    let lp2 = lp.clone();
    lp.run_until_complete(async move {
        // Reads on sockets nobody writes to: all stay in flight.
        let mut pairs = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..N {
            if i % 2 == 0 {
                let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
                a.set_nonblocking(true).unwrap();
                b.set_nonblocking(true).unwrap();
                pairs.push((registered(a), registered(b)));
            }
            let fd = pairs.last().unwrap().0.as_raw_fd();
            let buf = Counted::new(&l2, 4096);
            tasks.push(create_task(aio_io::submit(aio_io::Recv::new(fd, buf, 0))));
        }
        // Accepts on a listener nobody connects to.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = registered(listener);
        let mut accepts = Vec::new();
        for _ in 0..N / 4 {
            accepts.push(create_task(aio_io::submit(aio_io::Accept::new(listener.as_raw_fd()))));
        }
        // Connects to a listener whose backlog is full and never accepted:
        // the kernel drops their SYNs, so they stay in flight.
        let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        full.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        full.listen(0).unwrap();
        let target = full.local_addr().unwrap();
        let mut connects = Vec::new();
        for _ in 0..N / 4 {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let s = registered(s);
            let fd = s.as_raw_fd();
            let addr = target.clone();
            connects.push(create_task(async move {
                let r = aio_io::submit(aio_io::Connect::new(fd, addr)).await;
                drop(s);
                r
            }));
        }
        // Let every operation reach the kernel.
        for _ in 0..3 {
            yield_now().await.unwrap();
        }
        sleep(0.01).await.unwrap();
        let pending = in_flight(&lp2);
        assert!(pending >= N, "only {pending} operations in flight");
        assert_eq!(l2.load(Ordering::SeqCst), N);

        // Drop every future while the kernel still runs its operation.
        for t in tasks.iter() {
            t.abort();
        }
        for t in accepts.iter() {
            t.abort();
        }
        for t in connects.iter() {
            t.abort();
        }
        // The driver cancels them; their memory is freed at completion.
        for _ in 0..200 {
            if in_flight(&lp2) == 0 {
                break;
            }
            sleep(0.005).await.unwrap();
        }
        assert_eq!(in_flight(&lp2), 0, "operations left in flight after cancelling");
        assert_eq!(l2.load(Ordering::SeqCst), 0, "buffers not given back");
        drop(pairs);
        drop(listener);
        drop(full);
    })
    .unwrap();
    lp.close();
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn a_loop_closed_with_operations_in_flight_frees_them_after_the_kernel() {
    let Some(lp) = uring_loop() else { return };
    let live = Arc::new(AtomicUsize::new(0));
    let l2 = live.clone();
    let keep = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let k2 = keep.clone();
    lp.run_until_complete(async move {
        for _ in 0..500 {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let a = registered(a);
            let fd = a.as_raw_fd();
            k2.borrow_mut().push((a, b));
            let buf = Counted::new(&l2, 1024);
            // Detached: still waiting when the loop closes.
            drop(create_task(aio_io::submit(aio_io::Recv::new(fd, buf, 0))));
        }
        yield_now().await.unwrap();
        sleep(0.005).await.unwrap();
    })
    .unwrap();
    assert_eq!(live.load(Ordering::SeqCst), 500);
    // Closing cancels the tasks; their operations are cancelled in the
    // kernel and the buffers freed once it is done with them.
    lp.close();
    drop(lp);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    drop(keep);
}

#[test]
fn a_cancelled_read_in_flight_keeps_data_that_won_the_race() -> io::Result<()> {
    let Some(lp) = uring_loop() else { return Ok(()) };
    aio_core::Runner::with_loop(lp).run(async {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        b.set_nonblocking(true)?;
        let b = registered(b);
        let fd = b.as_raw_fd();
        let got = std::rc::Rc::new(std::cell::RefCell::new(None));
        let g = got.clone();
        let t = create_task(async move {
            let (res, buf) = aio_io::submit(aio_io::Recv::new(fd, Vec::with_capacity(16), 0)).await;
            // Cancelled before the data came: the error propagates.
            let n = res?;
            *g.borrow_mut() = Some(buf[..n].to_vec());
            // The read won the race: the cancellation arrives here.
            sleep(0.05).await?;
            Ok::<_, io::Error>(())
        });
        sleep(0.005).await?; // the read is in flight now
        // Data arrives and the task is cancelled in the same turn: the
        // kernel completes the read first, so the data must not be lost.
        use std::io::Write;
        (&a).write_all(b"raced")?;
        t.cancel();
        let r = t.await;
        assert!(matches!(r, Err(ref e) if e.is_cancelled()), "{r:?}");
        if let Some(data) = got.borrow_mut().take() {
            assert_eq!(data, b"raced", "the data that won the race is kept");
        }
        Ok::<_, io::Error>(())
    })
}

/// Receives that wait in the driver for their socket's watch (their socket
/// was emptied by a short read, so the driver holds them back from the
/// kernel): dropping them frees their buffers at once, and a loop closed
/// with some still waiting frees the rest and cancels the watches.
#[test]
fn parked_reads_dropped_or_left_at_close_give_every_buffer_back() {
    use std::io::Write;
    let Some(lp) = uring_loop() else { return };
    let live = Arc::new(AtomicUsize::new(0));
    let l2 = live.clone();
    let lp2 = lp.clone();
    let keep = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let k2 = keep.clone();
    lp.run_until_complete(async move {
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let a = registered(a);
            let fd = a.as_raw_fd();
            // A short read empties the socket...
            b.write_all(b"x").unwrap();
            let (n, _) = aio_io::submit(aio_io::Recv::new(fd, Vec::with_capacity(64), 0)).await;
            assert_eq!(n.unwrap(), 1);
            k2.borrow_mut().push((a, b));
            // ...so these wait for data in the driver.
            for _ in 0..3 {
                let buf = Counted::new(&l2, 1024);
                tasks.push(create_task(aio_io::submit(aio_io::Recv::new(fd, buf, 0))));
            }
        }
        yield_now().await.unwrap();
        assert_eq!(l2.load(Ordering::SeqCst), 600);
        assert!(in_flight(&lp2) >= 600, "only {} operations waiting", in_flight(&lp2));
        // Drop the middle one of each socket's three: their buffers come
        // back without a trip to the kernel.
        for t in tasks.iter().skip(1).step_by(3) {
            t.abort();
        }
        yield_now().await.unwrap();
        assert_eq!(
            l2.load(Ordering::SeqCst),
            400,
            "dropped parked reads kept their buffers"
        );
        // Data for the first socket goes to its first waiting read.
        k2.borrow_mut()[0].1.write_all(b"y").unwrap();
        // (Only the length is checked: valgrind cannot see the kernel's
        // write of the byte, and CI runs this test under it.)
        let (n, b) = (&mut tasks[0]).await.unwrap();
        assert_eq!(n.unwrap(), 1);
        drop(b);
        assert_eq!(l2.load(Ordering::SeqCst), 399);
        assert!(!tasks[2].done(), "the third read had nothing to read");
        // The rest are left waiting as the loop closes.
        tasks.clear();
    })
    .unwrap();
    lp.close();
    drop(lp);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    drop(keep);
}
