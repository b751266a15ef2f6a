//! A `PriorityQueue` of `(priority, text)` tuples gives the lowest first.

use std::error::Error;

#[aio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let queue = aio::PriorityQueue::new();
    queue.put((20, "normal")).await?;
    queue.put((10, "urgent")).await?;
    println!("{:?}", queue.get().await?);
    println!("{:?}", queue.get().await?);
    Ok(())
}
