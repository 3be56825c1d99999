//! Item 55: a closable queue between threads, and a three-stage pipeline whose outputs
//! come back in input order and whose errors name their stage, item and cause, and the
//! async form of the queue.
//!
//! `cargo run --example item55_queues` (the async queue needs the `async` feature, on by
//! default).

use std::time::Duration;

use std::sync::Arc;

use concur::queue::{AsyncClosableQueue, BoxError, ClosableQueue, Pipeline, TryGet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue = ClosableQueue::bounded(4);
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 0..10 {
                queue.put(n).expect("open until closed below");
            }
            queue.close();
        });
        let mut sum = 0;
        // Python's `for item in queue:` with a sentinel; here closing ends the loop.
        loop {
            match queue.get_timeout(Duration::from_secs(10)) {
                Ok(n) => sum += n,
                Err(TryGet::Closed) => break,
                Err(TryGet::Empty) => panic!("no item in 10 s"),
            }
        }
        println!("the consumer summed {sum}");
    });

    let pipeline = Pipeline::builder(10)
        .stage("parse", 2, |text: String| {
            text.parse::<u64>().map_err(BoxError::from)
        })
        .stage("square", 3, |x: u64| Ok::<_, BoxError>(x * x))
        .build()?;
    let report = pipeline.run(["1", "2", "3"].map(String::from))?;
    println!("squares: {:?}", report.outputs);
    let pipeline = Pipeline::builder(10)
        .stage("parse", 2, |text: String| {
            text.parse::<u64>().map_err(BoxError::from)
        })
        .build()?;
    if let Err(err) = pipeline.run(["1", "two"].map(String::from)) {
        println!("as expected: {err}");
    }

    // The same queue for async tasks (item 60's coroutines): `get` and `put` are awaited.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()?;
    let total = runtime.block_on(async {
        let queue = Arc::new(AsyncClosableQueue::bounded(4));
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let queue = Arc::clone(&queue);
                tokio::spawn(async move {
                    let mut sum = 0u64;
                    while let Some(n) = queue.get().await {
                        sum += n;
                    }
                    sum
                })
            })
            .collect();
        for n in 1..=100 {
            queue.put(n).await.expect("open until closed below");
        }
        queue.close();
        let mut total = 0;
        for consumer in consumers {
            total += consumer.await.expect("a consumer panicked");
        }
        total
    });
    println!("three async consumers summed {total}");
    Ok(())
}
