//! Criterion: what each strategy costs per generation when the I/O is free.
//!
//! `concur life bench` measures the book's latency claims (100 ms per cell). This bench
//! measures the other side: the pure coordination overhead of each strategy (threads
//! started, queue hops, task spawns) on a 100x100 grid with zero latency, against the
//! serial baseline in the same run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use concur::life::{Grid, SimulatedIo, Simulation, Strategy};
use criterion::{Criterion, criterion_group, criterion_main};

fn overhead(c: &mut Criterion) {
    let grid = Arc::new(Grid::random(100, 100, 0.3, 1).expect("valid size"));
    let mut group = c.benchmark_group("life_10k_cells_zero_latency");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for strategy in Strategy::ALL {
        let io = Arc::new(SimulatedIo::new(Duration::ZERO));
        let mut sim = Simulation::new(strategy, None, io).expect("strategy starts");
        group.bench_function(strategy.name(), |b| {
            b.iter(|| black_box(sim.step(&grid).expect("no I/O errors")))
        });
        sim.shutdown().expect("clean shutdown");
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
