//! Two tasks created at once run concurrently: 2 s in all, not 3 s.

async fn task(name: &str, delay: f64) -> aio::Result<()> {
    aio::sleep(delay).await?;
    println!("{name} finished");
    Ok(())
}

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t1 = aio::create_task(task("Task 1", 2.0));
    let t2 = aio::create_task(task("Task 2", 1.0));
    t1.await??;
    t2.await??;
    Ok(())
}
