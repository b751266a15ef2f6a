//! The loop clock: elapsed loop time across a half-second sleep.

#[aio::main]
async fn main() -> aio::Result<()> {
    let lp = aio::get_running_loop();
    let start = lp.time();
    aio::sleep(0.5).await?;
    println!("{}", lp.time() - start);
    Ok(())
}
