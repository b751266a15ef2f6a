//! `aio::Runner`: two top-level futures, one after the other, on one loop.

async fn ping(name: &'static str) -> aio::Result<String> {
    aio::sleep(0.1).await?;
    Ok(format!("pong:{name}"))
}

fn main() -> aio::Result<()> {
    let runner = aio::Runner::new();
    println!("{}", runner.run(ping("a"))?);
    println!("{}", runner.run(ping("b"))?);
    runner.close();
    Ok(())
}
