//! `timeout(0.2)` around a one-second sleep.

#[aio::main]
async fn main() -> aio::Result<()> {
    match aio::timeout(0.2, aio::sleep(1)).await {
        Err(aio::TimeoutError { .. }) => println!("timed out"),
        Ok(slept) => slept?,
    }
    Ok(())
}
