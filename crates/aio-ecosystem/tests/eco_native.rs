//! Crates with no I/O of their own run in aio tasks as they are, on both
//! backends: `tracing` (with aio's `tracing` feature a task carries the
//! span current when it was created), `tokio::sync`, `futures`'s
//! combinators and `async-channel`.

use std::time::Duration;

use aio::{create_task, sleep, wait_for};
use aio_test::{TestResult, backend_tests};
use futures_util::{StreamExt, future, stream};
use tracing::Span;

fn span_name() -> Option<&'static str> {
    Span::current().metadata().map(|m| m.name())
}

async fn tracing_span_carried() -> TestResult {
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
    let request = tracing::info_span!("request", id = 7);
    let task = {
        let _in = request.enter();
        create_task(async {
            let first = span_name();
            sleep(0).await?;
            // A task it creates inherits the span in turn.
            let inner = create_task(async { span_name() }).await?;
            Ok::<_, Box<dyn std::error::Error>>((first, span_name(), inner))
        })
    };
    // Outside the span now; the task still runs in it at every step.
    assert_eq!(span_name(), None);
    assert_eq!(task.await??, (Some("request"), Some("request"), Some("request")));
    // A task created outside any span runs in none.
    assert_eq!(create_task(async { span_name() }).await?, None);
    Ok(())
}

async fn tokio_sync() -> TestResult {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
    let producer = create_task(async move {
        for i in 0..100 {
            tx.send(i).await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    });
    let mut sum = 0;
    while let Some(v) = rx.recv().await {
        sum += v;
    }
    producer.await??;
    assert_eq!(sum, 4950);

    let (otx, orx) = tokio::sync::oneshot::channel();
    create_task(async move {
        sleep(0.001).await.ok();
        otx.send("done").ok();
    });
    assert_eq!(orx.await?, "done");

    let lock = std::rc::Rc::new(tokio::sync::Mutex::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let lock = lock.clone();
            create_task(async move {
                for _ in 0..10 {
                    let mut g = lock.lock().await;
                    sleep(0).await.ok();
                    *g += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    assert_eq!(*lock.lock().await, 80);

    // tokio::sync::Notify woken from another thread.
    let notify = std::sync::Arc::new(tokio::sync::Notify::new());
    let n = notify.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        n.notify_one();
    });
    wait_for(notify.notified(), 5.0).await?;
    t.join().unwrap();
    Ok(())
}

async fn futures_and_async_channel() -> TestResult {
    let (tx, rx) = async_channel::bounded::<u32>(2);
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let tx = tx.clone();
            create_task(async move {
                for i in 0..25 {
                    tx.send(p * 100 + i).await.ok();
                }
            })
        })
        .collect();
    drop(tx);
    let got: Vec<u32> = rx.collect().await;
    assert_eq!(got.len(), 100);
    future::join_all(producers)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    // futures' combinators over aio awaitables.
    let doubled: Vec<u32> = stream::iter(1..=5)
        .then(|x| async move {
            sleep(0).await.ok();
            x * 2
        })
        .collect()
        .await;
    assert_eq!(doubled, [2, 4, 6, 8, 10]);
    let first = future::select(Box::pin(sleep(10.0)), Box::pin(sleep(0.001))).await;
    assert!(matches!(first, future::Either::Right(_)));
    Ok(())
}

backend_tests!(tracing_span_carried, tokio_sync, futures_and_async_channel);
