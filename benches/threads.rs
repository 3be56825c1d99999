//! Criterion benches for items 53 and 55.
//!
//! * `factorize`: the book's numbers, serial against a thread per number (the speed-up
//!   Rust gets where CPython gets a slow-down).
//! * `pipeline_noop`: 1,000,000 items through three stages that do nothing, as a
//!   `concur::queue::Pipeline` (ClosableQueue: a lock-free ring, a mutex and condvars
//!   only to sleep on) and as a raw chain
//!   of three crossbeam bounded channels, built the same way: one thread per stage, a
//!   feeder thread, the caller collecting, capacity 64. The target is >= 0.8x the raw
//!   chain's throughput.

use std::hint::black_box;
use std::thread;
use std::time::Duration;

use concur::queue::{BoxError, Pipeline};
use concur::threads::factorize::{self, BOOK_NUMBERS, Mode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ITEMS: u64 = 1_000_000;
const CAPACITY: usize = 64;

fn factorize_modes(c: &mut Criterion) {
    let mut group = c.benchmark_group("factorize_book_numbers");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("serial", |b| {
        b.iter(|| black_box(factorize::run(Mode::Serial, &BOOK_NUMBERS)))
    });
    group.bench_function("threads", |b| {
        b.iter(|| black_box(factorize::run(Mode::Threads, &BOOK_NUMBERS)))
    });
    group.finish();
}

fn crossbeam_chain(items: u64) -> u64 {
    let (tx0, rx0) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let (tx1, rx1) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let (tx2, rx2) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let (tx3, rx3) = crossbeam_channel::bounded::<u64>(CAPACITY);
    thread::scope(|s| {
        s.spawn(move || {
            for i in 0..items {
                let _ = tx0.send(i);
            }
        });
        for (rx, tx) in [(rx0, tx1), (rx1, tx2), (rx2, tx3)] {
            s.spawn(move || {
                for item in rx {
                    if tx.send(black_box(item)).is_err() {
                        break;
                    }
                }
            });
        }
        rx3.iter().sum::<u64>()
    })
}

fn closable_pipeline(items: u64) -> u64 {
    let pipeline = Pipeline::builder(CAPACITY)
        .stage("a", 1, |x: u64| Ok::<_, BoxError>(black_box(x)))
        .stage("b", 1, |x: u64| Ok::<_, BoxError>(black_box(x)))
        .stage("c", 1, |x: u64| Ok::<_, BoxError>(black_box(x)))
        .build()
        .expect("threads start");
    let report = pipeline.run(0..items).expect("no stage fails");
    report.outputs.iter().sum()
}

fn pipeline_noop(c: &mut Criterion) {
    let expected: u64 = (0..ITEMS).sum();
    assert_eq!(crossbeam_chain(ITEMS), expected);
    assert_eq!(closable_pipeline(ITEMS), expected);
    let mut group = c.benchmark_group("pipeline_noop_3_stages");
    group
        .throughput(Throughput::Elements(ITEMS))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("crossbeam_chain", |b| {
        b.iter(|| crossbeam_chain(black_box(ITEMS)))
    });
    group.bench_function("concur_pipeline", |b| {
        b.iter(|| closable_pipeline(black_box(ITEMS)))
    });
    group.finish();
}

criterion_group!(benches, factorize_modes, pipeline_noop);
criterion_main!(benches);
