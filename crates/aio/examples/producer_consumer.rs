//! A `Queue` between a producer and a consumer: `put`, `get`, `task_done`
//! and `join`, with `None` as the end-of-work sentinel.

use std::error::Error;

async fn producer(queue: &aio::Queue<Option<u32>>) -> Result<(), Box<dyn Error>> {
    for item in [1, 2, 3] {
        queue.put(Some(item)).await?;
    }
    queue.put(None).await?;
    Ok(())
}

async fn consumer(queue: &aio::Queue<Option<u32>>) -> Result<(), Box<dyn Error>> {
    loop {
        let Some(item) = queue.get().await? else {
            queue.task_done()?;
            break;
        };
        println!("{item}");
        queue.task_done()?;
    }
    Ok(())
}

#[aio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let queue = aio::Queue::new();
    aio::gather!(producer(&queue), consumer(&queue)).await?;
    queue.join().await?;
    Ok(())
}
