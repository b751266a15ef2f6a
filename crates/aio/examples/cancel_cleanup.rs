//! A cancelled task sees `Cancelled` at its sleep, cleans up, re-raises.

async fn worker() -> aio::Result<()> {
    if let Err(cancelled) = aio::sleep(10).await {
        println!("clean up before exit");
        return Err(cancelled);
    }
    Ok(())
}

#[aio::main]
async fn main() -> aio::Result<()> {
    let task = aio::create_task(worker());
    aio::sleep(0.1).await?;
    task.cancel();
    if let Err(e) = task.await {
        if e.is_cancelled() {
            println!("task cancelled");
        }
    }
    Ok(())
}
