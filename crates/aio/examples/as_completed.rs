//! `as_completed` yields results in completion order.

async fn worker(name: &'static str, delay: f64) -> aio::Result<&'static str> {
    aio::sleep(delay).await?;
    Ok(name)
}

#[aio::main]
async fn main() -> aio::Result<()> {
    let tasks = [worker("a", 0.3), worker("b", 0.1), worker("c", 0.2)];
    let mut futures = aio::as_completed(tasks);
    while let Some(result) = futures.next().await {
        println!("{}", result?);
    }
    Ok(())
}
