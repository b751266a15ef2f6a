//! `create_task`, then awaiting the task.

async fn worker() -> aio::Result<()> {
    aio::sleep(1).await?;
    println!("done");
    Ok(())
}

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let task = aio::create_task(worker());
    task.await??;
    Ok(())
}
