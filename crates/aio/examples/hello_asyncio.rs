//! The smallest program: one print, no await.

#[aio::main]
async fn main() {
    println!("Hello, asyncio!");
}
