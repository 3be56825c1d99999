//! Items 53 and 54: threads for blocking I/O, and locks against lost updates.
//!
//! `cargo run --release --example item53_54_threads_and_locks`

use std::time::Duration;

use concur::sync::{CounterMode, race};
use concur::threads::{factorize, slow_io};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // CPU work: no GIL, so a thread per number can use every core.
    let numbers = factorize::BOOK_NUMBERS;
    let serial = factorize::run(factorize::Mode::Serial, &numbers);
    let threads = factorize::run(factorize::Mode::Threads, &numbers);
    println!(
        "factorize: serial {:.4} s, a thread per number {:.4} s",
        serial.seconds, threads.seconds
    );
    // Blocking calls overlap in threads.
    let calls = slow_io::run(slow_io::Mode::Threads, 5, Duration::from_millis(100))?;
    println!(
        "5 blocking calls of 100 ms in threads: {:.3} s",
        calls.seconds
    );
    // A read and a write that are not one step lose updates; a lock or an atomic do not.
    for mode in [
        CounterMode::Unsynchronized,
        CounterMode::Mutex,
        CounterMode::Atomic,
    ] {
        let result = race(mode, 5, 100_000);
        println!("{mode:?}: {} of {} counted", result.got, result.expected);
    }
    Ok(())
}
