//! Crates that start tokio themselves, through `aio::compat::tokio` (the
//! side runtime), on both backends: redis-rs's multiplexed connection
//! against a real `redis-server`, sqlx's pool against a real PostgreSQL,
//! and reqwest against an aio-hyper server on the aio loop.
//!
//! redis-rs's `MultiplexedConnection::new` would take a stream, but it
//! spawns the connection's driver with `Send` bounds that aio's sockets
//! (which belong to their loop) cannot meet: so redis goes through compat
//! like the others.
//!
//! Skipped (`skipped: ... not installed`) where a server is missing,
//! unless `AIO_REQUIRE_SERVERS=1`.

use std::convert::Infallible;

use aio::compat;
use aio::hyper::http::{Request, Response};
use aio::hyper::hyper::body::Incoming;
use aio::hyper::hyper::service::service_fn;
use aio::hyper::{BodyExt, Bytes, Full};
use aio::{TcpListener, create_task};
use aio_ecosystem::servers::{Postgres, Redis};
use aio_test::{Backend, TestResult, backend_tests, run_on};
use redis::AsyncCommands;

type BoxError = Box<dyn std::error::Error>;

fn redis_multiplexed(b: Backend) {
    let Some(server) = Redis::start() else { return };
    let url = server.url();
    run_on(b, async move {
        let con = compat::tokio(async move {
            let client = redis::Client::open(url)?;
            client.get_multiplexed_async_connection().await
        })
        .await?;
        let mut c = con.clone();
        compat::tokio(async move {
            let () = c.set("greeting", "hello from aio").await?;
            let v: String = c.get("greeting").await?;
            assert_eq!(v, "hello from aio");
            Ok::<_, redis::RedisError>(())
        })
        .await?;
        // 16 aio tasks share the multiplexed connection.
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let mut c = con.clone();
                create_task(compat::tokio(async move {
                    for i in 0..50 {
                        let n: i64 = c.incr("counter", 1).await?;
                        assert!(n >= 1);
                        let () = c.rpush(format!("list{t}"), i).await?;
                    }
                    let len: usize = c.llen(format!("list{t}")).await?;
                    assert_eq!(len, 50);
                    Ok::<_, redis::RedisError>(())
                }))
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        let mut c = con.clone();
        let total: i64 = compat::tokio(async move { c.get("counter").await }).await?;
        assert_eq!(total, 16 * 50);
        Ok::<_, BoxError>(())
    });
}

fn sqlx_pool(b: Backend) {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.url();
    run_on(b, async move {
        let pool = compat::tokio(async move {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect(&url)
                .await
        })
        .await?;
        let p = pool.clone();
        let v: i32 =
            compat::tokio(async move { sqlx::query_scalar("SELECT $1 + 1").bind(41i32).fetch_one(&p).await }).await?;
        assert_eq!(v, 42);
        // 16 aio tasks share the pool (4 connections).
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let p = pool.clone();
                create_task(compat::tokio(async move {
                    for i in 0..20 {
                        let v: i32 = sqlx::query_scalar("SELECT $1::int * 2")
                            .bind(t * 100 + i)
                            .fetch_one(&p)
                            .await?;
                        assert_eq!(v, 2 * (t * 100 + i));
                    }
                    Ok::<_, sqlx::Error>(())
                }))
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        compat::tokio(pool.close()).await;
        Ok::<_, BoxError>(())
    });
}

/// reqwest (its connections on the side runtime) calls a server served by
/// aio-hyper on the aio loop.
async fn reqwest_to_aio_hyper() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let svc = service_fn(|req: Request<Incoming>| async move {
        let path = req.uri().path().to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = format!("{path} {}", String::from_utf8_lossy(&body));
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
    });
    let server = create_task(async move { aio::hyper::serve(&listener, svc).await });
    let client = reqwest::Client::new();
    let c = client.clone();
    let text = compat::tokio(async move { c.get(format!("http://{addr}/hello")).send().await?.text().await }).await?;
    assert_eq!(text, "/hello ");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let c = client.clone();
            create_task(compat::tokio(async move {
                let res = c
                    .post(format!("http://{addr}/p{i}"))
                    .body(format!("b{i}"))
                    .send()
                    .await?;
                assert!(res.status().is_success());
                res.text().await
            }))
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await??, format!("/p{i} b{i}"));
    }
    server.cancel();
    Ok(())
}

backend_tests!(plain: reqwest_to_aio_hyper; each: redis_multiplexed, sqlx_pool);
