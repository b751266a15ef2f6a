//! Two gathered futures run concurrently: 2 s in all.

async fn task1() -> aio::Result<()> {
    aio::sleep(2).await?;
    println!("Task 1 done");
    Ok(())
}

async fn task2() -> aio::Result<()> {
    aio::sleep(1).await?;
    println!("Task 2 done");
    Ok(())
}

#[aio::main]
async fn main() -> aio::Result<()> {
    aio::gather!(task1(), task2()).await?; // runs both concurrently
    Ok(())
}
