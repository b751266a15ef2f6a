//! One task waits on an `Event`; another sets it after 0.2 s.

static EVENT: aio::Event = aio::Event::new();

async fn waiter() -> aio::Result<()> {
    EVENT.wait().await?;
    println!("event received");
    Ok(())
}

async fn setter() -> aio::Result<()> {
    aio::sleep(0.2).await?;
    EVENT.set();
    Ok(())
}

#[aio::main]
async fn main() -> aio::Result<()> {
    aio::gather!(waiter(), setter()).await?;
    Ok(())
}
