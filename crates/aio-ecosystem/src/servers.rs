//! Throwaway servers for the tests: a PostgreSQL cluster and a
//! `redis-server`, each in its own temporary directory on a free port of
//! 127.0.0.1, stopped and removed when the value is dropped (also when the
//! test panics: unwinding drops it).
//!
//! A missing server binary skips the test (it prints `skipped: postgres
//! not installed` and the start returns `None`), so that `cargo test
//! --workspace` passes on a machine with only the Rust toolchain. With
//! `AIO_REQUIRE_SERVERS=1` (as `.ci/run` sets it) a missing binary is a
//! failure: CI cannot silently lose these tests.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to come up before the start fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a missing server is a failure (`AIO_REQUIRE_SERVERS=1`) rather
/// than a skipped test.
pub fn require_servers() -> bool {
    std::env::var("AIO_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// Reports a missing server: panics under [`require_servers`], otherwise
/// prints `skipped: <what> not installed` and returns `None`.
fn missing<T>(what: &str) -> Option<T> {
    assert!(
        !require_servers(),
        "{what} not installed, and AIO_REQUIRE_SERVERS=1 makes that a failure"
    );
    eprintln!("skipped: {what} not installed");
    println!("skipped: {what} not installed");
    None
}

/// The first of `dirs` (then `$PATH`) holding an executable `name`.
fn find_binary(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A port that was free a moment ago on 127.0.0.1 (the OS picks it).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh, empty directory under `/tmp` (or `$TMPDIR` where there is no
/// `/tmp`): `/tmp` is open to the user PostgreSQL runs as when we are
/// root, and short enough for a Unix socket's path, which `$TMPDIR` need
/// not be.
fn temp_dir(kind: &str) -> io::Result<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = Some(PathBuf::from("/tmp"))
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("aio-eco-{kind}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The last lines of a log file, for an error message.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The uid and gid PostgreSQL runs as when the tests run as root (it
/// refuses root): the `postgres` user if there is one, else `nobody`.
fn unprivileged_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    find("postgres").or_else(|| find("nobody")).or(Some((65534, 65534)))
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

/// Gives `path` and everything under it to `user` (when running as root).
fn chown_tree(path: &Path, user: Option<(u32, u32)>) -> io::Result<()> {
    let Some((uid, gid)) = user else { return Ok(()) };
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for e in fs::read_dir(path)? {
            chown_tree(&e?.path(), user)?;
        }
    }
    Ok(())
}

/// A command that runs as `user` when given.
fn command_as(program: &Path, user: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

/// The TLS material of a server: a self-signed certificate for
/// `localhost` (rcgen), its key, and the certificate's PEM for clients.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    /// The certificate, PEM: what a client trusts.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

impl SelfSigned {
    /// A fresh certificate for `localhost` and 127.0.0.1.
    pub fn localhost() -> SelfSigned {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("rcgen makes a certificate");
        SelfSigned {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
        }
    }
}

/// A throwaway PostgreSQL cluster: `initdb` (trust authentication, user
/// `postgres`) in a temporary directory, `postgres` listening on
/// 127.0.0.1 at a free port, stopped (`pg_ctl stop -m immediate`, then
/// killed) and removed on drop.
///
/// As root (CI), the cluster runs as the `postgres` user (or `nobody`):
/// PostgreSQL refuses to run as root.
#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    child: Option<Child>,
    pg_ctl: PathBuf,
    user: Option<(u32, u32)>,
    tls: Option<SelfSigned>,
}

impl Postgres {
    /// Starts a cluster; `None` (test skipped) when PostgreSQL is not
    /// installed, unless [`require_servers`].
    ///
    /// # Panics
    /// If the server is installed but does not start within a minute.
    pub fn start() -> Option<Postgres> {
        Postgres::start_with(None)
    }

    /// As [`start`](Postgres::start), with `ssl=on` and a fresh
    /// self-signed certificate for `localhost` ([`Postgres::tls`]).
    pub fn start_tls() -> Option<Postgres> {
        Postgres::start_with(Some(SelfSigned::localhost()))
    }

    fn start_with(tls: Option<SelfSigned>) -> Option<Postgres> {
        let mut dirs: Vec<PathBuf> = vec!["/usr/local/bin".into(), "/usr/local/pgsql/bin".into()];
        // Debian's packages put the binaries beside each other, off PATH.
        if let Ok(versions) = fs::read_dir("/usr/lib/postgresql") {
            let mut v: Vec<PathBuf> = versions.filter_map(|e| Some(e.ok()?.path().join("bin"))).collect();
            v.sort();
            dirs.extend(v.into_iter().rev());
        }
        let Some(postgres) = find_binary("postgres", &dirs) else {
            return missing("postgres");
        };
        let bin = postgres.parent().unwrap().to_path_buf();
        let initdb = bin.join("initdb");
        let pg_ctl = bin.join("pg_ctl");
        if !initdb.exists() || !pg_ctl.exists() {
            return missing("postgres (initdb, pg_ctl)");
        }
        let user = unprivileged_user();
        let dir = temp_dir("pg").expect("a temporary directory");
        chown_tree(&dir, user).expect("chown the temporary directory");
        let data = dir.join("data");
        let out = command_as(&initdb, user)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .current_dir(&dir)
            .output()
            .expect("run initdb");
        if !out.status.success() {
            let _ = fs::remove_dir_all(&dir);
            panic!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if let Some(tls) = &tls {
            fs::write(data.join("server.crt"), &tls.cert_pem).unwrap();
            fs::write(data.join("server.key"), &tls.key_pem).unwrap();
            fs::set_permissions(data.join("server.key"), fs::Permissions::from_mode(0o600)).unwrap();
            chown_tree(&data, user).unwrap();
        }
        let mut pg = Postgres {
            dir,
            data,
            port: 0,
            child: None,
            pg_ctl,
            user,
            tls,
        };
        // A port free when picked may be taken before the server binds it:
        // try a few.
        let mut last = String::new();
        for _ in 0..3 {
            match pg.launch(&postgres) {
                Ok(()) => return Some(pg),
                Err(e) => last = e,
            }
        }
        panic!("postgres did not start: {last}");
    }

    fn launch(&mut self, postgres: &Path) -> Result<(), String> {
        self.port = free_port().map_err(|e| e.to_string())?;
        let log = self.dir.join(format!("postgres-{}.log", self.port));
        let logf = fs::File::create(&log).map_err(|e| e.to_string())?;
        chown_tree(&log, self.user).map_err(|e| e.to_string())?;
        let mut c = command_as(postgres, self.user);
        c.arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(&self.dir)
            // Small: a test run starts several clusters at once.
            .args([
                "-c",
                "fsync=off",
                "-c",
                "max_connections=40",
                "-c",
                "shared_buffers=16MB",
            ])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf);
        if self.tls.is_some() {
            c.args(["-c", "ssl=on"]);
        }
        let mut child = c.spawn().map_err(|e| e.to_string())?;
        let pid_file = self.data.join("postmaster.pid");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}:\n{}", log_tail(&log)));
            }
            // The postmaster writes "ready" into its pid file once it
            // accepts connections.
            if fs::read_to_string(&pid_file).is_ok_and(|s| s.lines().any(|l| l.trim() == "ready")) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not ready within {START_TIMEOUT:?}:\n{}", log_tail(&log)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A connection URL (`postgres://postgres@127.0.0.1:<port>/postgres`),
    /// for sqlx and the like.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A tokio-postgres configuration for it (user `postgres`, database
    /// `postgres`; no password: trust authentication).
    pub fn config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1").port(self.port).user("postgres").dbname("postgres");
        c
    }

    /// The certificate the server presents, when started with
    /// [`start_tls`](Postgres::start_tls).
    pub fn tls(&self) -> Option<&SelfSigned> {
        self.tls.as_ref()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: the postmaster ends its backends and
            // releases its shared memory; killing it would leave both.
            let _ = command_as(&self.pg_ctl, self.user)
                .args(["stop", "-m", "immediate", "-w", "-t", "10", "-D"])
                .arg(&self.data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !matches!(child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A throwaway `redis-server`: no persistence, its own temporary
/// directory, 127.0.0.1 at a free port; killed and removed on drop.
#[derive(Debug)]
pub struct Redis {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Redis {
    /// Starts a server; `None` (test skipped) when `redis-server` is not
    /// installed, unless [`require_servers`].
    ///
    /// # Panics
    /// If it is installed but does not answer `PING` within a minute.
    pub fn start() -> Option<Redis> {
        let Some(bin) = find_binary("redis-server", &["/usr/bin".into(), "/usr/local/bin".into()]) else {
            return missing("redis-server");
        };
        let dir = temp_dir("redis").expect("a temporary directory");
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().expect("a free port");
            let log = dir.join(format!("redis-{port}.log"));
            let mut child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                .args(["--appendonly", "no", "--protected-mode", "no", "--logfile"])
                .arg(&log)
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run redis-server");
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("exited with {status}:\n{}", log_tail(&log));
                    break;
                }
                if ping(port).is_ok() {
                    return Some(Redis { dir, port, child });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("no PONG within {START_TIMEOUT:?}:\n{}", log_tail(&log));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!("redis-server did not start: {last}");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// One `PING`, answered `+PONG`.
fn ping(port: u16) -> io::Result<()> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.write_all(b"PING\r\n")?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf)?;
    if &buf == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(io::Error::other("not a PONG (still loading?)"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
