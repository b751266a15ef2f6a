//! The walk-through of the seed document, as four `aio::run` calls in one
//! process: sequential awaits, `gather`, two `create_task` fetches awaited
//! in order, and a `Queue` producer/consumer.

use std::error::Error;
use std::time::Instant;

// Basic async function
async fn say_hello(name: &str, delay: f64) -> aio::Result<()> {
    aio::sleep(delay).await?; // other tasks can run during this wait
    println!("Hello, {name}!");
    Ok(())
}

async fn main_sequential() -> aio::Result<()> {
    // Sequential execution (takes 3 seconds total)
    say_hello("Alice", 1.0).await?;
    say_hello("Bob", 2.0).await?;
    Ok(())
}

// gather: concurrent execution (takes 2 seconds — the longest one)
async fn main_parallel() -> aio::Result<()> {
    let start = Instant::now();
    aio::gather!(say_hello("Alice", 1.0), say_hello("Bob", 2.0), say_hello("Carol", 1.5)).await?;
    println!("Total time: {:.1}s", start.elapsed().as_secs_f64()); // about 2.0s
    Ok(())
}

// create_task: schedule tasks to start immediately
// (the URLs are only strings: nothing here touches the network)
async fn fetch_data(url: &str, delay: f64) -> aio::Result<String> {
    aio::sleep(delay).await?;
    Ok(format!("Data from {url}"))
}

async fn main_tasks() -> Result<(), Box<dyn Error>> {
    // Register as tasks (they start right away)
    let task1 = aio::create_task(fetch_data("https://api1.example.com", 1.0));
    let task2 = aio::create_task(fetch_data("https://api2.example.com", 2.0));
    let result1 = task1.await??;
    let result2 = task2.await??;
    println!("{result1}");
    println!("{result2}");
    Ok(())
}

// Queue: producer-consumer pattern
async fn producer(q: &aio::Queue<Option<u32>>, items: &[u32]) -> Result<(), Box<dyn Error>> {
    for &item in items {
        q.put(Some(item)).await?;
        aio::sleep(0.5).await?;
    }
    q.put(None).await?; // sentinel value to signal completion
    Ok(())
}

async fn consumer(q: &aio::Queue<Option<u32>>) -> Result<(), Box<dyn Error>> {
    while let Some(item) = q.get().await? {
        println!("Processing: {item}");
        q.task_done()?;
    }
    Ok(())
}

async fn main_queue() -> Result<(), Box<dyn Error>> {
    let q = aio::Queue::new();
    aio::gather!(producer(&q, &[1, 2, 3, 4, 5]), consumer(&q)).await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    aio::run(main_sequential())?;
    aio::run(main_parallel())?;
    aio::run(main_tasks())?;
    aio::run(main_queue())?;
    Ok(())
}
