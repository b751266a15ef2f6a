//! Waiting on an empty `Queue` with a time limit: `wait_for(queue.get(), 1)`.

use std::error::Error;

#[aio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let queue: aio::Queue<u32> = aio::Queue::new();
    match aio::wait_for(queue.get(), 1).await {
        Ok(item) => println!("{}", item?),
        Err(aio::TimeoutError { .. }) => println!("no item available"),
    }
    Ok(())
}
