//! `gather` returns the results in argument order.

async fn square(x: u32) -> aio::Result<u32> {
    aio::sleep(0.1).await?;
    Ok(x * x)
}

#[aio::main]
async fn main() -> aio::Result<()> {
    let results = aio::gather([square(2), square(3), square(4)]).await?;
    println!("{results:?}");
    Ok(())
}
