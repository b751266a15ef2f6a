//! A tour of aio in a few seconds: the asyncio patterns of the seed
//! documents, then a TCP echo server and client with streams.
//!
//!     cargo run --release -p aio --example tour

use std::error::Error;
use std::time::Instant;

async fn worker(name: &'static str, delay: f64) -> aio::Result<&'static str> {
    aio::sleep(delay).await?;
    Ok(name)
}

async fn patterns() -> Result<(), Box<dyn Error>> {
    let t0 = Instant::now();
    let lp = aio::get_running_loop();
    println!("backend: {}", lp.backend());

    // gather: results in argument order, run concurrently.
    let both = aio::gather!(worker("a", 0.2), worker("b", 0.1)).await?;
    println!("gather          -> {both:?} in {:.1}s", t0.elapsed().as_secs_f64());

    // as_completed: completion order.
    let mut s = aio::as_completed([worker("a", 0.3), worker("b", 0.1), worker("c", 0.2)]);
    let mut order = vec![];
    while let Some(r) = s.next().await {
        order.push(r?);
    }
    println!("as_completed    -> {order:?}");

    // Catchable cancellation: the task cleans up, awaiting, and re-raises.
    let task = aio::create_task(async {
        if let Err(c) = aio::sleep(10).await {
            aio::sleep(0.01).await?; // clean-up may await
            println!("cancel          -> the task saw {c} and cleaned up");
            return Err(c);
        }
        Ok(())
    });
    aio::sleep(0.05).await?;
    task.cancel();
    println!("cancel          -> awaiting it gives {:?}", task.await.map(|_| ()));

    // timeout / wait_for / shield.
    println!("timeout         -> {:?}", aio::timeout(0.05, aio::sleep(1)).await);
    let mut t = aio::create_task(worker("finished", 0.2));
    let r = aio::wait_for(aio::shield(&mut t), 0.05).await;
    println!("shield          -> caller: {:?}, task: {:?}", r.map(|_| ()), t.await?);

    // TaskGroup: one failure cancels the siblings; all errors come back.
    let r = aio::TaskGroup::run(|tg| async move {
        // The sibling handles its cancellation (drops the `Cancelled`) and
        // ends quietly; raising another error instead would be reported
        // with "boom", as asyncio's ExceptionGroup would.
        tg.create_task(async {
            let _ = aio::sleep(10).await;
            Ok(())
        });
        tg.create_task(async {
            aio::sleep(0.05).await.map_err(|_| "cancelled")?;
            Err::<(), _>("boom")
        });
        Ok(())
    })
    .await;
    println!("TaskGroup       -> {:?}", r.map_err(|e| e.into_errors()));

    // Lock, Semaphore, Queue.
    let sem = aio::Semaphore::new(2);
    let q = aio::Queue::new();
    let jobs = (0..4).map(|i| {
        let (sem, q) = (&sem, &q);
        async move {
            let _permit = sem.acquire().await?;
            aio::sleep(0.05).await?;
            q.put_nowait(i).map_err(|_| aio::Cancelled::new())?;
            Ok::<_, aio::Cancelled>(())
        }
    });
    aio::gather(jobs).await?;
    let mut got = vec![];
    while let Ok(v) = q.get_nowait() {
        got.push(v);
    }
    println!("Semaphore+Queue -> {got:?} (two at a time)");

    // to_thread: blocking work off the loop.
    let n = aio::to_thread(|| (1..=20u64).product::<u64>()).await?;
    println!("to_thread       -> 20! = {n}");
    Ok(())
}

async fn echo() -> Result<(), Box<dyn Error>> {
    let server = aio::start_server(
        |mut r: aio::StreamReader, w: aio::StreamWriter| async move {
            while let Ok(line) = r.readline().await {
                if line.is_empty() {
                    break;
                }
                w.write(&line);
                w.drain().await?;
            }
            Ok::<_, std::io::Error>(())
        },
        "127.0.0.1",
        0,
    )
    .await?;
    let port = server.sockets()[0].port();
    let (mut r, w) = aio::open_connection("127.0.0.1", port).await?;
    for msg in ["hello", "from", "aio"] {
        w.write(format!("{msg}\n").as_bytes());
        let back = r.readline().await?;
        print!("echo            -> {}", String::from_utf8_lossy(&back));
    }
    w.close();
    w.wait_closed().await?;
    server.close();
    server.wait_closed().await?;
    Ok(())
}

#[aio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    patterns().await?;
    echo().await?;
    println!("tour done");
    Ok(())
}
