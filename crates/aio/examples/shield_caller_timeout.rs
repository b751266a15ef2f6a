//! `wait_for(shield(task), 0.1)`: the caller times out, the task runs on.

async fn worker() -> aio::Result<&'static str> {
    aio::sleep(1).await?;
    Ok("finished")
}

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut task = aio::create_task(worker());
    if let Err(aio::TimeoutError { .. }) = aio::wait_for(aio::shield(&mut task), 0.1).await {
        println!("caller timed out");
    }
    println!("{}", task.await??);
    Ok(())
}
