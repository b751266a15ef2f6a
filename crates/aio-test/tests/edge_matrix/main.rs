//! The edge matrix: every I/O operation (a row) ended every way it can end
//! (a column: completes, dropped mid-flight, dropped as it completes,
//! dropped from inside the driver by another executor's waker, `timeout`, `task.cancel()`, the loop closed, the peer closes or resets,
//! absurd input), on both backends, each cell checking the same
//! invariants — no descriptor leaked, nothing received lost or reordered,
//! no hang, the documented outcome.
//!
//! A new operation gets one row: a [`harness::Case`] and a line in
//! `matrix!`. `AIO_MATRIX_RANDOM=n` runs `n` random cells per backend
//! (fixed seed `AIO_MATRIX_SEED`, default 1) after the table.

mod files;
mod group;
mod harness;
mod hyper;
mod misc;
mod net;
mod pool;
mod streams;

use aio_net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use aio_test::Backend;
use harness::{Ending, Row, row};

/// One `#[test]` per row and backend (`poll::tcp_recv`,
/// `uring::tcp_recv`) and the random cells of each backend
/// (`poll::random_cells`), and [`rows`], the same rows for the
/// randomized variant.
macro_rules! matrix {
    (@mod $m:ident $backend:ident $($name:ident: $case:ty,)*) => {
        mod $m {
            use super::*;
            $( #[test] fn $name() { row::<$case>(Backend::$backend); } )*
            /// `AIO_MATRIX_RANDOM` random cells (none by default).
            #[test] fn random_cells() { random(Backend::$backend); }
        }
    };
    ($($name:ident: $case:ty,)*) => {
        matrix!(@mod poll Poll $($name: $case,)*);
        matrix!(@mod uring Uring $($name: $case,)*);
        /// Every row, for the randomized variant (and the count).
        fn rows() -> Vec<Row> {
            vec![$(Row::of::<$case>(),)*]
        }
    };
}

matrix! {
    tcp_recv: net::StreamRecv<TcpStream>,
    unix_recv: net::StreamRecv<UnixStream>,
    tcp_send: net::StreamSend<TcpStream>,
    unix_send: net::StreamSend<UnixStream>,
    split_tcp_recv: net::StreamRecv<net::SplitTcp>,
    split_tcp_send: net::StreamSend<net::SplitTcp>,
    duplex_recv: net::StreamRecv<net::DuplexTcp>,
    duplex_send: net::StreamSend<net::DuplexTcp>,
    tcp_accept: net::Accept<TcpListener>,
    unix_accept: net::Accept<UnixListener>,
    tcp_connect: net::Connect<TcpListener>,
    unix_connect: net::Connect<UnixListener>,
    udp_recv: net::DgramRecv<UdpSocket>,
    unix_datagram_recv: net::DgramRecv<UnixDatagram>,
    udp_send: net::DgramSend<UdpSocket>,
    unix_datagram_send: net::DgramSend<UnixDatagram>,
    stream_read: streams::StreamRead<streams::Plain, streams::ReadN>,
    stream_readline: streams::StreamRead<streams::Plain, streams::Readline>,
    stream_readuntil: streams::StreamRead<streams::Plain, streams::Readuntil>,
    stream_readuntil_any: streams::StreamRead<streams::Plain, streams::ReaduntilAny>,
    stream_readexactly: streams::StreamRead<streams::Plain, streams::Readexactly>,
    stream_write_drain: streams::WriteDrain<streams::Plain>,
    server_serve_forever: streams::ServeForever,
    server_wait_closed: streams::WaitClosed,
    tls_handshake: streams::Handshake,
    tls_read: streams::StreamRead<streams::Tls, streams::ReadN>,
    tls_readexactly: streams::StreamRead<streams::Tls, streams::Readexactly>,
    tls_write_drain: streams::WriteDrain<streams::Tls>,
    sendfile: streams::Sendfile,
    file_open_fifo: files::FifoOpen,
    file_read_fifo: files::FifoRead,
    file_write_fifo: files::FifoWrite,
    file_read_cursor: files::CursorRead,
    file_read_at: files::ReadAt,
    file_write_at: files::WriteAt,
    file_metadata: files::Metadata,
    file_close: files::Close,
    process_wait: misc::Wait,
    process_communicate: misc::Communicate,
    sleep: misc::Sleep,
    raw_sleep: misc::RawSleep,
    queue_get: misc::QueueGet,
    queue_put: misc::QueuePut,
    lock_acquire: misc::LockAcquire<false>,
    lock_acquire_biased: misc::LockAcquire<true>,
    semaphore_acquire: misc::SemaphoreAcquire,
    barrier_wait: misc::BarrierWait,
    condition_wait: misc::ConditionWait,
    event_wait: misc::EventWait,
    future_await: misc::FutureAwait,
    wait_tasks: misc::WaitTasks,
    task_await: misc::TaskAwait,
    hyper_request: hyper::HyperRequest,
    pool_spawn: pool::PoolSpawn,
    pool_connection: pool::PoolConnection,
    group_tcp_recv: group::InGroup<net::StreamRecv<TcpStream>>,
    group_stream_readexactly: group::InGroup<streams::StreamRead<streams::Plain, streams::Readexactly>>,
    group_file_read_at: group::InGroup<files::ReadAt>,
    group_sleep: group::InGroup<misc::Sleep>,
    group_queue_get: group::InGroup<misc::QueueGet>,
}

/// The table's size, so a row that goes missing shows.
#[test]
fn every_row_is_in_both_lists() {
    let cells: usize = rows().iter().map(|r| r.endings.len()).sum();
    assert_eq!(rows().len(), 60, "the matrix has every row");
    eprintln!("edge matrix: {} rows, {cells} cells per backend", rows().len());
}

/// `AIO_MATRIX_RANDOM=n`: `n` cells per backend, each a random row and a
/// random one of its endings, from a fixed seed (`AIO_MATRIX_SEED`).
fn random(b: Backend) {
    let n: usize = std::env::var("AIO_MATRIX_RANDOM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if n == 0 {
        return;
    }
    let seed: u64 = std::env::var("AIO_MATRIX_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let _one = aio_test::serial();
    let rows = rows();
    let mut rng = aio_test::Rng::new(seed);
    for i in 0..n {
        let r = &rows[rng.below(rows.len())];
        let ending = r.endings[rng.below(r.endings.len())];
        eprintln!("random cell {i} ({}, seed {seed}): {} / {ending:?}", b.name(), r.name);
        if ending == Ending::LoopClosed {
            (r.loop_closed)(b);
        } else {
            aio_test::run_on(b, (r.cell)(ending));
        }
    }
}
