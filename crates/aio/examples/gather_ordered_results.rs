//! `gather` orders results by argument, not by completion.

async fn task(name: &str, delay: f64) -> aio::Result<String> {
    aio::sleep(delay).await?;
    Ok(format!("Task {name} done"))
}

#[aio::main]
async fn main() -> aio::Result<()> {
    let results = aio::gather!(task("A", 2.0), task("B", 1.0)).await?;
    println!("{results:?}"); // ("Task A done", "Task B done")
    Ok(())
}
