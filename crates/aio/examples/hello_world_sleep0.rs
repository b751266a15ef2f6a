//! `sleep(0)` yields to the loop once and resumes at once.

#[aio::main]
async fn main() -> aio::Result<()> {
    println!("hello");
    aio::sleep(0).await?;
    println!("world");
    Ok(())
}
