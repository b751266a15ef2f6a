//! A one-second sleep between two prints.

#[aio::main]
async fn main() -> aio::Result<()> {
    println!("Start");
    aio::sleep(1).await?;
    println!("End after 1 second");
    Ok(())
}
