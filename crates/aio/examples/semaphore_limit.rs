//! A `Semaphore(3)` lets three of eight fetches run at a time. As in
//! asyncio, the three whose sleeps end together all print "done" before the
//! waiters they release print "start": a release hands the permit to the
//! first waiter, which runs after the tasks already ready.

static SEM: aio::Semaphore = aio::Semaphore::new(3);

async fn fetch(i: u32) -> aio::Result<()> {
    let _permit = SEM.acquire().await?;
    println!("start {i}");
    aio::sleep(0.2).await?;
    println!("done {i}");
    Ok(())
}

#[aio::main]
async fn main() -> aio::Result<()> {
    aio::gather((0..8).map(fetch)).await?;
    Ok(())
}
