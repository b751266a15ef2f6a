//! Cancel a task that is only a long sleep.

#[aio::main]
async fn main() -> aio::Result<()> {
    let task = aio::create_task(aio::sleep(10));
    aio::sleep(1).await?;
    task.cancel(); // cancels the task
    match task.await {
        Err(e) if e.is_cancelled() => println!("Task was cancelled!"),
        _ => println!("Task was not cancelled"),
    }
    Ok(())
}
