fn main() {
    let q = std::sync::Arc::new(aio::Queue::<u64>::with_maxsize(0));
    let l = aio::Lock::new();
    println!(
        "put {} get {} acquire {} yield {}",
        size_of_val(&q.put(1)),
        size_of_val(&q.get()),
        size_of_val(&l.acquire()),
        size_of_val(&aio::yield_now())
    );
}
