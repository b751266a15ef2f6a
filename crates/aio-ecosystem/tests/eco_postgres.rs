//! tokio-postgres on aio's sockets against a real PostgreSQL server, on
//! both backends: `Config::connect_raw` on an aio `TcpStream` (plain) and
//! on a `Duplex` upgraded by aio's TLS ([`AioTls`]); queries, a
//! transaction, and 16 tasks querying at once on one connection.
//!
//! Skipped (`skipped: postgres not installed`) where PostgreSQL is
//! missing, unless `AIO_REQUIRE_SERVERS=1`.

use std::rc::Rc;

use aio::{Duplex, TcpStream, TlsConnector, create_task};
use aio_ecosystem::AioTls;
use aio_ecosystem::servers::Postgres;
use aio_test::{Backend, TestResult, backend_tests, run_on};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

/// What every connection is put through: a parameter, a table, a
/// transaction, and 16 concurrent tasks sharing the client (its requests
/// are pipelined on the one connection).
async fn exercise(client: Client) -> TestResult {
    let row = client
        .query_one("SELECT $1::int + 1, $2::text", &[&41i32, &"aio"])
        .await?;
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, &str>(1), "aio");

    client
        .batch_execute("CREATE TEMP TABLE t (id int PRIMARY KEY, name text NOT NULL)")
        .await?;
    let mut client = client;
    let tx = client.transaction().await?;
    for i in 0..10 {
        tx.execute("INSERT INTO t VALUES ($1, $2)", &[&i, &format!("n{i}")])
            .await?;
    }
    tx.commit().await?;
    let n: i64 = client.query_one("SELECT count(*) FROM t", &[]).await?.get(0);
    assert_eq!(n, 10);

    let client = Rc::new(client);
    let stmt = client.prepare("SELECT $1::int * 2").await?;
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (client, stmt) = (client.clone(), stmt.clone());
            create_task(async move {
                for i in 0..50 {
                    let v: i32 = client.query_one(&stmt, &[&(t * 1000 + i)]).await?.get(0);
                    assert_eq!(v, 2 * (t * 1000 + i));
                }
                Ok::<_, tokio_postgres::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Plain: the aio `TcpStream` is the stream tokio-postgres speaks on.
fn plain(b: Backend) {
    let Some(pg) = Postgres::start() else { return };
    run_on(b, async move {
        let tcp = TcpStream::connect(pg.addr()).await?;
        let (client, connection) = pg.config().connect_raw(tcp, NoTls).await?;
        let conn = create_task(connection);
        exercise(client).await?;
        // Dropping the client ends the connection task.
        conn.await??;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
}

/// TLS: tokio-postgres asks for TLS on the plain connection, then
/// `AioTls` upgrades it with aio's TLS (server certificate verified).
fn tls(b: Backend) {
    let Some(pg) = Postgres::start_tls() else { return };
    let pem = pg.tls().unwrap().cert_pem.clone();
    run_on(b, async move {
        let (r, w) = aio::open_connection("127.0.0.1", pg.port()).await?;
        let tls = AioTls::new(TlsConnector::from_pem(pem.as_bytes())?, "localhost");
        let mut config = pg.config();
        config.ssl_mode(SslMode::Require);
        let (client, connection) = config.connect_raw(Duplex::new(r, w), tls).await?;
        let conn = create_task(connection);
        let ssl: bool = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await?
            .get(0);
        assert!(ssl, "the session runs over TLS");
        exercise(client).await?;
        conn.await??;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
}

/// A certificate for another name is refused by aio's TLS.
fn tls_wrong_name(b: Backend) {
    let Some(pg) = Postgres::start_tls() else { return };
    let pem = pg.tls().unwrap().cert_pem.clone();
    run_on(b, async move {
        let (r, w) = aio::open_connection("127.0.0.1", pg.port()).await?;
        let tls = AioTls::new(TlsConnector::from_pem(pem.as_bytes())?, "elsewhere.example");
        let mut config = pg.config();
        config.ssl_mode(SslMode::Require);
        let Err(err) = config.connect_raw(Duplex::new(r, w), tls).await else {
            panic!("a certificate for another name is refused")
        };
        assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");
        Ok::<_, Box<dyn std::error::Error>>(())
    });
}

backend_tests!(each: plain, tls, tls_wrong_name);
