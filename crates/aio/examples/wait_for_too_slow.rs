//! `wait_for(slow(), 0.5)`: slow is cancelled at 0.5 s.

async fn slow() -> aio::Result<()> {
    aio::sleep(2).await
}

#[aio::main]
async fn main() -> aio::Result<()> {
    match aio::wait_for(slow(), 0.5).await {
        Err(aio::TimeoutError { .. }) => println!("too slow"),
        Ok(r) => r?,
    }
    Ok(())
}
