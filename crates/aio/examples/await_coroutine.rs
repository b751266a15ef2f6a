//! Awaiting an `async fn` that sleeps and returns a value.

async fn fetch_name() -> aio::Result<&'static str> {
    aio::sleep(0.2).await?;
    Ok("jon")
}

#[aio::main]
async fn main() -> aio::Result<()> {
    let name = fetch_name().await?;
    println!("{name}");
    Ok(())
}
