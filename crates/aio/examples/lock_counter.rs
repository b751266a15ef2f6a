//! 100 tasks increment a shared counter under one `Lock`, yielding inside
//! the critical section; without the lock the count would come out wrong.

use std::cell::Cell;

static LOCK: aio::Lock = aio::Lock::new();

thread_local! {
    // Python's module-level `counter`: the loop runs on this one thread.
    static COUNTER: Cell<u32> = const { Cell::new(0) };
}

async fn increment() -> aio::Result<()> {
    let _guard = LOCK.acquire().await?;
    let current = COUNTER.get();
    aio::sleep(0).await?;
    COUNTER.set(current + 1);
    Ok(())
}

#[aio::main]
async fn main() -> aio::Result<()> {
    aio::gather((0..100).map(|_| increment())).await?;
    println!("{}", COUNTER.get());
    Ok(())
}
