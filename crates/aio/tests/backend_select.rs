//! Backend selection: forcing a backend, `AIO_BACKEND`, and the fall back
//! from io_uring to poll when the kernel refuses `io_uring_setup`
//! (simulated with a seccomp filter in a child process).

use std::process::Command;

use aio::{Backend, Builder};

#[test]
fn forcing_poll_and_none() {
    let lp = Builder::new().backend(Backend::Poll).build().unwrap();
    assert_eq!(lp.backend(), "poll");
    lp.close();
    let lp = Builder::new().backend(Backend::None).build().unwrap();
    assert_eq!(lp.backend(), "park");
    lp.close();
}

#[test]
fn forcing_uring() {
    match Builder::new().backend(Backend::Uring).build() {
        Ok(lp) => {
            assert!(
                aio_uring_available(),
                "uring built without the feature or the kernel's support"
            );
            assert_eq!(lp.backend(), "uring");
            let v = aio::Runner::with_loop(lp).run(async { aio::sleep(0.001).await.map(|_| 1) });
            assert_eq!(v.unwrap(), 1);
        }
        // Without the feature, or where io_uring cannot run: an error, as
        // documented (forcing is never silently ignored).
        Err(e) => assert!(!cfg!(feature = "uring") || !aio_uring_available(), "{e}"),
    }
}

fn aio_uring_available() -> bool {
    #[cfg(feature = "uring")]
    {
        aio_uring::UringDriver::is_available()
    }
    #[cfg(not(feature = "uring"))]
    false
}

const CHILD: &str = "AIO_TEST_REFUSE_URING";

/// Makes `io_uring_setup` fail with `errno` in this process (and only it).
fn refuse_io_uring_setup(errno: u32) {
    // BPF: load the syscall number; if io_uring_setup, fail with errno;
    // otherwise allow.
    let filter = [
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0, // offsetof(struct seccomp_data, nr)
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA),
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: valid filter program; the calls only restrict this process.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn auto_falls_back_to_poll_when_io_uring_is_refused() {
    if let Ok(v) = std::env::var(CHILD) {
        // The child: io_uring refused with errno `v`.
        refuse_io_uring_setup(v.parse().unwrap());
        let lp = Builder::new()
            .build()
            .expect("the default backend never fails for lack of io_uring");
        assert_eq!(lp.backend(), "poll");
        let echoed = aio::Runner::with_loop(lp).run(async {
            let l = aio::TcpListener::bind("127.0.0.1:0").await?;
            let a = l.local_addr()?;
            let c = aio::create_task(async move { aio::TcpStream::connect(a).await });
            let (s, _) = l.accept().await?;
            c.await.unwrap()?.write_all(b"ok".to_vec()).await.0?;
            let (n, b) = s.read(Vec::with_capacity(2)).await;
            n?;
            Ok::<_, std::io::Error>(b)
        });
        assert_eq!(echoed.unwrap(), b"ok");
        assert!(
            Builder::new().backend(Backend::Uring).build().is_err(),
            "forcing uring must fail"
        );
        return;
    }
    if !cfg!(feature = "uring") {
        return; // nothing to fall back from
    }
    let exe = std::env::current_exe().unwrap();
    for errno in [libc::ENOSYS, libc::EPERM, libc::ENOMEM] {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "auto_falls_back_to_poll_when_io_uring_is_refused",
                "--nocapture",
            ])
            .env(CHILD, errno.to_string())
            .env_remove("AIO_BACKEND")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "errno {errno}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn aio_backend_variable() {
    // In a child, so the variable cannot leak into other tests.
    if std::env::var("AIO_TEST_ENV_CHILD").is_ok() {
        let lp = Builder::new().build().unwrap();
        assert_eq!(lp.backend(), "park", "AIO_BACKEND=none picks the parker");
        lp.close();
        // An explicit backend wins over the variable.
        let lp = Builder::new().backend(Backend::Poll).build().unwrap();
        assert_eq!(lp.backend(), "poll");
        lp.close();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "aio_backend_variable", "--nocapture"])
        .env("AIO_TEST_ENV_CHILD", "1")
        .env("AIO_BACKEND", "none")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "forcing_poll_and_none"])
        .env("AIO_BACKEND", "bogus")
        .output()
        .unwrap();
    assert!(out.status.success(), "an explicit backend ignores the variable");
    assert!(aio::Backend::from_env().is_ok());
}
