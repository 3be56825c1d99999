//! Item 55: a closable queue between threads, and a three-stage pipeline whose outputs
//! come back in input order and whose errors name their stage, item and cause.
//!
//! `cargo run --example item55_queues`

use std::num::NonZeroUsize;
use std::time::Duration;

use concur::queue::{BoxError, ClosableQueue, Pipeline, TryGet};

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

    let n = |w| NonZeroUsize::new(w).expect("above 0");
    let pipeline = Pipeline::builder(10)
        .stage("parse", n(2), |text: String| {
            text.parse::<u64>().map_err(BoxError::from)
        })?
        .stage("square", n(3), |x: u64| Ok::<_, BoxError>(x * x))?
        .build();
    let report = pipeline.run(["1", "2", "3"].map(String::from))?;
    println!("squares: {:?}", report.outputs);
    let pipeline = Pipeline::builder(10)
        .stage("parse", n(2), |text: String| {
            text.parse::<u64>().map_err(BoxError::from)
        })?
        .build();
    if let Err(err) = pipeline.run(["1", "two"].map(String::from)) {
        println!("as expected: {err}");
    }
    Ok(())
}
