//! Does io_uring's zero-copy send (`SendZc`) pay on this machine? Sends
//! 1 GiB over loopback TCP with `Send` and with `SendZc` from one ring, a
//! plain thread reading the other end, for several write sizes, and prints
//! throughput and the sender's CPU per MB.
//!
//! Each write waits for its completion, and a zero-copy write also for the
//! notification that the kernel let go of the buffer: an owned-buffer API
//! can hand the buffer back only then.
//!
//! ```text
//! cargo run --release -p aio-uring --example send_zc_loopback
//! ```

#[cfg(target_os = "linux")]
fn main() -> std::io::Result<()> {
    let total = 1usize << 30;
    println!(
        "{:>9} {:>12} {:>16} {:>12} {:>16} {:>8}",
        "write", "Send MB/s", "Send us CPU/MB", "SendZc MB/s", "SendZc us CPU/MB", "zc/send"
    );
    for chunk in [16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let (a, ac) = linux::run(false, chunk, total)?;
        let (b, bc) = linux::run(true, chunk, total)?;
        println!(
            "{:>6} KiB {a:>12.0} {ac:>16.0} {b:>12.0} {bc:>16.0} {:>8.2}",
            chunk >> 10,
            b / a
        );
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("io_uring is Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, Read};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    use io_uring::{IoUring, cqueue, opcode, types};

    /// This thread's user + system CPU time in seconds.
    fn cpu() -> f64 {
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid out-pointer.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(ru.ru_utime) + t(ru.ru_stime)
    }

    /// Sends `total` bytes in writes of `chunk`; returns (MB/s, sender CPU
    /// in microseconds per MB).
    pub fn run(zero_copy: bool, chunk: usize, total: usize) -> io::Result<(f64, f64)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let reader = std::thread::spawn(move || -> io::Result<usize> {
            let (mut s, _) = listener.accept()?;
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0;
            loop {
                match s.read(&mut buf)? {
                    0 => return Ok(n),
                    r => n += r,
                }
            }
        });
        let stream = TcpStream::connect(addr)?;
        let fd = types::Fd(stream.as_raw_fd());
        let mut ring = IoUring::new(8)?;
        let buf = vec![7u8; chunk];
        let (c0, t0) = (cpu(), Instant::now());
        let mut sent = 0;
        while sent < total {
            let len = chunk.min(total - sent) as u32;
            let e = if zero_copy {
                opcode::SendZc::new(fd, buf.as_ptr(), len).build()
            } else {
                opcode::Send::new(fd, buf.as_ptr(), len).build()
            };
            // SAFETY: `buf` outlives the operation: we wait below for its
            // completion and, for SendZc, for the notification that the
            // kernel released the buffer.
            unsafe { ring.submission().push(&e.user_data(1)) }.map_err(io::Error::other)?;
            let (mut done, mut released) = (false, !zero_copy);
            while !(done && released) {
                ring.submit_and_wait(1)?;
                for cqe in ring.completion() {
                    if cqueue::notif(cqe.flags()) {
                        released = true;
                        continue;
                    }
                    if cqe.result() < 0 {
                        return Err(io::Error::from_raw_os_error(-cqe.result()));
                    }
                    sent += cqe.result() as usize;
                    done = true;
                    if !cqueue::more(cqe.flags()) {
                        released = true;
                    }
                }
            }
        }
        let (secs, cpu_secs) = (t0.elapsed().as_secs_f64(), cpu() - c0);
        drop(stream);
        let got = reader.join().map_err(|_| io::Error::other("reader panicked"))??;
        assert_eq!(got, total);
        let mb = total as f64 / 1e6;
        Ok((mb / secs, cpu_secs / mb * 1e6))
    }
}
