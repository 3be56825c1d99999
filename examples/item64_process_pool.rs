//! Item 64: your own CPU-bound task on a process pool. This program is also its own
//! worker: `pool::worker_main` serves the tasks when the pool starts it as one.
//!
//! `cargo run --release --example item64_process_pool`

use std::num::NonZeroUsize;

use concur::parallel::pool::{self, PoolOptions, Task};
use concur::process::CancelToken;
use serde::{Deserialize, Serialize};

/// The book's deliberately slow gcd, as a task of this program's own.
#[derive(Clone, Serialize, Deserialize)]
struct SlowGcd(u64, u64);

impl std::fmt::Display for SlowGcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gcd({}, {})", self.0, self.1)
    }
}

impl Task for SlowGcd {
    type Output = u64;
    const NAME: &'static str = "example-slow-gcd";

    fn run(&self) -> u64 {
        let low = self.0.min(self.1);
        (1..=low)
            .rev()
            .find(|&i| self.0.is_multiple_of(i) && self.1.is_multiple_of(i))
            .unwrap_or(1)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pool::worker_main::<SlowGcd>(); // a worker serves here, and never returns
    let workers = NonZeroUsize::new(2).expect("above 0");
    let options = PoolOptions::new(workers, std::env::current_exe()?);
    let tasks = [
        SlowGcd(1963309, 2265973),
        SlowGcd(2030677, 3814172),
        SlowGcd(1551645, 2229620),
    ];
    let run = pool::map(&tasks, &options, &CancelToken::new()?)?;
    for (task, result) in tasks.iter().zip(run.results) {
        println!("{task} = {}", result?);
    }
    Ok(())
}
