//! `TaskGroup`: children print in completion order; the group waits for both.

async fn worker(name: &str, delay: f64) -> aio::Result<()> {
    aio::sleep(delay).await?;
    println!("{name}");
    Ok(())
}

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    aio::TaskGroup::run(|tg| async move {
        tg.create_task(worker("a", 0.2));
        tg.create_task(worker("b", 0.1));
        Ok(())
    })
    .await?;
    Ok(())
}
