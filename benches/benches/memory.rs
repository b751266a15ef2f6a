//! Memory: bytes per idle task and per idle connection, aio beside tokio
//! (current-thread) and smol, counted by a global allocator that tallies
//! each thread's live bytes (so the load generator's allocations do not
//! count against the server).
//!
//! The figures are printed (`memory/<what>/<runtime>: N bytes`); criterion
//! times the setup as well, so `cargo bench -- --test` exercises it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::sync::mpsc;

use criterion::{Criterion, criterion_group, criterion_main};

use common::tokio_ct;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the thread-local counter is
// const-initialized, so touching it never allocates (no recursion).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + l.size() as isize));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - l.size() as isize));
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + n as isize - l.size() as isize));
        // SAFETY: forwarded.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

const TASKS: usize = 10_000;
const CONNS: usize = 1_000;

fn report(what: &str, rt: &str, total: isize, n: usize) {
    eprintln!("memory/{what}/{rt}: {} bytes each", total / n as isize);
}

/// Bytes per task waiting forever on a zero-sized future.
fn idle_task(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory_idle_task");
    g.sample_size(10);
    g.bench_function("aio", |b| {
        b.iter(|| {
            aio::Runner::new().run(async {
                let before = live();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| aio::create_task(std::future::pending::<()>()))
                    .collect();
                aio::yield_now().await.unwrap();
                report("idle_task", "aio", live() - before, TASKS);
                for t in &tasks {
                    t.abort();
                }
            })
        })
    });
    g.bench_function("tokio-ct", |b| {
        b.iter(|| {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let before = live();
                let tasks: Vec<_> = (0..TASKS).map(|_| tokio::spawn(std::future::pending::<()>())).collect();
                tokio::task::yield_now().await;
                report("idle_task", "tokio-ct", live() - before, TASKS);
                for t in &tasks {
                    t.abort();
                }
            })
        })
    });
    g.bench_function("smol", |b| {
        b.iter(|| {
            let ex = smol::LocalExecutor::new();
            smol::future::block_on(ex.run(async {
                let before = live();
                let tasks: Vec<_> = (0..TASKS).map(|_| ex.spawn(std::future::pending::<()>())).collect();
                smol::future::yield_now().await;
                report("idle_task", "smol", live() - before, TASKS);
                drop(tasks);
            }))
        })
    });
    g.finish();
}

/// Bytes per idle connection of an asyncio-style line server: a handler
/// per connection waiting in `readline` (buffered readers in the peers).
fn idle_connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory_idle_connection");
    g.sample_size(10);
    for (name, backend) in [("aio-poll", aio::Backend::Poll), ("aio-uring", aio::Backend::Uring)] {
        g.bench_function(name, |b| b.iter(|| aio_conns(name, backend)));
    }
    g.bench_function("tokio-ct", |b| b.iter(tokio_conns));
    g.finish();
}

/// Connects `CONNS` plain clients to `addr` and keeps them open until told.
fn clients(addr: std::net::SocketAddr, done: mpsc::Receiver<()>) {
    let socks: Vec<_> = (0..CONNS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let _ = done.recv();
    drop(socks);
}

fn aio_conns(name: &'static str, backend: aio::Backend) {
    let Ok(lp) = aio::Builder::new().backend(backend).build() else {
        eprintln!("memory/idle_connection/{name}: backend unavailable");
        return;
    };
    aio::Runner::with_loop(lp)
        .run(async move {
            let server = aio::start_server(
                |mut r: aio::StreamReader, _w: aio::StreamWriter| async move { r.readline().await.map(drop) },
                "127.0.0.1",
                0,
            )
            .await?;
            let addr = server.sockets()[0];
            let (tx, rx) = mpsc::channel();
            let before = live();
            let th = std::thread::spawn(move || clients(addr, rx));
            while server.connections() < CONNS {
                aio::sleep(0.001).await?;
            }
            // Let every handler reach its read.
            aio::sleep(0.01).await?;
            report("idle_connection", name, live() - before, CONNS);
            let _ = tx.send(());
            aio::to_thread(move || th.join()).await.map_err(io::Error::from)?.ok();
            server.close();
            Ok::<_, io::Error>(())
        })
        .unwrap();
}

fn tokio_conns() {
    use tokio::io::AsyncBufReadExt;
    let rt = tokio_ct();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let before = live();
        let th = std::thread::spawn(move || clients(addr, rx));
        let mut handlers = Vec::new();
        for _ in 0..CONNS {
            let (s, _) = l.accept().await.unwrap();
            handlers.push(tokio::spawn(async move {
                let mut r = tokio::io::BufReader::new(s);
                let mut line = String::new();
                let _ = r.read_line(&mut line).await;
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        report("idle_connection", "tokio-ct", live() - before, CONNS);
        let _ = tx.send(());
        tokio::task::spawn_blocking(move || th.join()).await.unwrap().unwrap();
        for h in handlers {
            let _ = h.await;
        }
    });
}

criterion_group!(memory, idle_task, idle_connection);
criterion_main!(memory);
