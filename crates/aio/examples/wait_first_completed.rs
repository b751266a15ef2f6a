//! `wait(FIRST_COMPLETED)`: print the first result, cancel the rest.

async fn worker(name: &'static str, delay: f64) -> aio::Result<&'static str> {
    aio::sleep(delay).await?;
    Ok(name)
}

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tasks = [
        aio::create_task(worker("fast", 0.1)),
        aio::create_task(worker("slow", 1.0)),
    ];
    let (done, pending) = aio::wait(tasks, aio::FIRST_COMPLETED).await?;
    for mut task in done {
        println!("{}", task.result().expect("a done task has a result")??);
    }
    for task in pending {
        task.cancel();
    }
    Ok(())
}
