//! asyncio's hello world: print, sleep one second, print.

#[aio::main]
async fn main() -> aio::Result<()> {
    println!("hello");
    aio::sleep(1).await?;
    println!("world");
    Ok(())
}
