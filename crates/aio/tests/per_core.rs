//! Thread-per-core: one loop per thread, each accepting its own connections
//! on a port shared with SO_REUSEPORT.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn loops_on_threads_share_a_port_with_reuseport() {
    // Find a free port, then bind it from every loop with SO_REUSEPORT.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let served = Arc::new(AtomicUsize::new(0));
    let s2 = served.clone();
    let clients = std::thread::spawn(move || {
        // Wait until both loops listen, then connect many times.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut ok = 0;
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                use std::io::{Read, Write};
                // Once 150 are served the loops stop listening: a
                // connection still in a backlog then is reset.
                let mut b = [0u8; 1];
                if s.write_all(b"x").is_ok() && s.read_exact(&mut b).is_ok() {
                    ok += 1;
                }
            } else {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        ok
    });
    let per_loop = aio::run_per_core(2, move |_i| {
        let served = s2.clone();
        async move {
            let l = aio::TcpListener::bind_addr(([127, 0, 0, 1], port).into(), 128, true)?;
            let mut mine = 0usize;
            while served.load(Ordering::SeqCst) < 150 {
                match aio::timeout(0.2, l.accept()).await {
                    Ok(Ok((s, _))) => {
                        let (n, buf) = s.read(Vec::with_capacity(1)).await;
                        n?;
                        s.write_all(buf).await.0?;
                        mine += 1;
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {}
                }
            }
            Ok::<_, std::io::Error>(mine)
        }
    });
    let ok = clients.join().unwrap();
    let counts: Vec<usize> = per_loop.into_iter().map(Result::unwrap).collect();
    assert!(ok >= 150, "only {ok} exchanges succeeded");
    assert_eq!(counts.iter().sum::<usize>(), served.load(Ordering::SeqCst));
    assert!(
        counts.iter().all(|&c| c > 0),
        "the kernel spread connections over both loops: {counts:?}"
    );
}
